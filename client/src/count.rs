//! Reading `GET /dataPolicyOperations/$count`, which answers a bare number as `text/plain`.

use crate::{ClientError, generated::Client};
use futures::TryStreamExt;

impl Client {
    /// How many operations match `filter` / `search` (both optional).
    pub async fn count_operations(&self, filter: Option<&str>, search: Option<&str>) -> Result<u64, ClientError> {
        let response = self.data_policy_operations_get_count_b129(filter, search).await?;
        let bytes: Vec<u8> = response
            .into_inner()
            .into_inner()
            .map_ok(|chunk| chunk.to_vec())
            .try_concat()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes);
        text.trim().parse().map_err(|_| ClientError::Decode(format!("$count answered {text:?}, not a number")))
    }
}
