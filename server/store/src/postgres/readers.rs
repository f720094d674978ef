//! A few connections shared by every read of the request path, each used by many requests at once.
//!
//! A pooled connection serves one request at a time: each GET costs its own write to the database, its
//! own wake-up of a backend and its own read back. tokio-postgres pipelines the statements of concurrent
//! callers of one client, so under load many GETs travel in one write and their rows come back in one
//! read, which is what a small machine runs out of first. Only single statements outside transactions
//! (a GET, a page of a list, a count) go here; writes keep the pool.

use super::{Built, pg, unreachable};
use crate::{StoreError, failure::Failure};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
};
use tokio_postgres::{Client, NoTls, Row, Statement};

/// Prepared statements a shared connection keeps before it forgets them all (list queries vary with
/// their `$filter`).
const STATEMENTS_PER_READER: usize = 512;

/// One shared connection and the statements prepared on it.
struct Reader {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
}

/// The shared connections, taken in turn; a closed one is made again by the next read that finds it.
pub(super) struct Readers {
    config: tokio_postgres::Config,
    /// Where the connections' driving tasks run (the store's runtime, which outlives every caller).
    runtime: tokio::runtime::Handle,
    slots: Vec<RwLock<Option<Arc<Reader>>>>,
    next: AtomicUsize,
}

impl Readers {
    pub(super) fn new(config: tokio_postgres::Config, runtime: tokio::runtime::Handle, connections: usize) -> Readers {
        Readers {
            config,
            runtime,
            slots: (0..connections.max(1)).map(|_| RwLock::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Runs one statement on a shared connection and returns its rows.
    pub(super) async fn query(&self, Built(text, values): Built) -> Result<Vec<Row>, StoreError> {
        let reader = self.reader().await?;
        let statement = reader.prepared(&text).await?;
        super::super::timing::postgres(&text, reader.client.query(&statement, &values.as_params())).await.map_err(pg)
    }

    /// The next shared connection, made (again) if it is missing or closed.
    async fn reader(&self) -> Result<Arc<Reader>, StoreError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        if let Some(reader) =
            slot.read().map_err(|_| StoreError::from(Failure::Poisoned("a shared connection's lock")))?.as_ref()
            && !reader.client.is_closed()
        {
            return Ok(reader.clone());
        }
        // Two reads finding the slot empty at once both connect; the later one stays, the other is
        // dropped when its statement is done.
        // Made on the store's runtime, whose reactor then drives the socket whoever awaits the reads.
        let config = self.config.clone();
        let client = self
            .runtime
            .spawn(async move {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(connection);
                Ok::<_, tokio_postgres::Error>(client)
            })
            .await
            .map_err(|e| StoreError::from(Failure::Task(e)))?
            .map_err(unreachable)?;
        let reader = Arc::new(Reader { client, statements: Mutex::new(HashMap::new()) });
        *slot.write().map_err(|_| StoreError::from(Failure::Poisoned("a shared connection's lock")))? =
            Some(reader.clone());
        Ok(reader)
    }
}

impl Reader {
    /// `text` prepared on this connection, once.
    async fn prepared(&self, text: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.cache()?.get(text) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(text).await.map_err(pg)?;
        let mut cached = self.cache()?;
        if cached.len() >= STATEMENTS_PER_READER {
            cached.clear();
        }
        cached.insert(text.to_string(), statement.clone());
        Ok(statement)
    }

    fn cache(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Statement>>, StoreError> {
        self.statements.lock().map_err(|_| StoreError::from(Failure::Poisoned("a shared connection's statement cache")))
    }
}
