//! The one hop from async code to the blocking pool: the store's traits are synchronous (SQLite blocks,
//! and a durable commit waits for the disk), so async callers run them here.

use crate::store::StoreError;
use std::sync::Arc;

/// Runs `call` on `store` on the blocking pool.
pub async fn blocking<S, T>(
    store: &Arc<S>,
    call: impl FnOnce(&S) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError>
where
    S: ?Sized + Send + Sync + 'static,
    T: Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(&store)).await.map_err(StoreError::backend)?
}
