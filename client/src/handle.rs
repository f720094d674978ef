//! Starting an export and following it: [`Client::export_personal_data`] returns an [`OperationHandle`].

use crate::{
    ClientError, WaitOptions,
    generated::{
        Client,
        types::{MicrosoftGraphDataPolicyOperation as Operation, UsersUserExportPersonalDataBody},
    },
    waiting::{operation_id_from_location, retry_after, status_of},
};
use std::time::Duration;

/// A submitted export.
pub struct OperationHandle<'a> {
    client: &'a Client,
    /// The operation's id.
    pub id: String,
    /// How long the service asked to wait before the first poll.
    pub retry_after: Option<Duration>,
}

impl Client {
    /// Submits an export of `user`'s data to `storage_location` (a container SAS URL).
    pub async fn export_personal_data(
        &self,
        user: &str,
        storage_location: &str,
    ) -> Result<OperationHandle<'_>, ClientError> {
        let body = UsersUserExportPersonalDataBody { storage_location: Some(storage_location.to_string()) };
        let accepted = self.users_user_export_personal_data(user, &body).await?;
        Ok(OperationHandle {
            client: self,
            id: operation_id_from_location(&accepted)?,
            retry_after: retry_after(&accepted),
        })
    }
}

impl OperationHandle<'_> {
    /// The operation as it is now.
    pub async fn get(&self) -> Result<Operation, ClientError> {
        Ok(self
            .client
            .data_policy_operations_data_policy_operation_get_data_policy_operation(&self.id, None, None)
            .await?
            .into_inner())
    }

    /// Waits until the export finishes, polling as `Retry-After` says (capped by `options.max_interval`,
    /// with up to 10% of jitter so that many waiters do not poll in step) and calling `on_progress` after
    /// every poll. A `complete` operation is returned; a `failed` one is [`ClientError::ExportFailed`].
    pub async fn wait(
        &self,
        options: &WaitOptions,
        on_progress: impl FnMut(&Operation),
    ) -> Result<Operation, ClientError> {
        if let Some(first) = self.retry_after {
            tokio::time::sleep(jittered(first.min(options.max_interval))).await;
        }
        let jittered_options = WaitOptions { default_interval: jittered(options.default_interval), ..options.clone() };
        let done = self.client.wait_for_operation_with_progress(&self.id, &jittered_options, on_progress).await?;
        match status_of(&done).map(|s| s.to_string()).as_deref() {
            Some("complete") => Ok(done),
            _ => Err(ClientError::ExportFailed { id: self.id.clone() }),
        }
    }
}

/// `d` plus up to 10% (from the clock's nanoseconds: enough to spread pollers out).
fn jittered(d: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    d + d.mul_f64(f64::from(nanos % 1000) / 10_000.0)
}
