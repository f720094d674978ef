//! Helpers shared by the integration tests: a real dpo server on 127.0.0.1:0 over a real SQLite file in a
//! temporary state directory, and clients for it.
#![allow(dead_code)]

use dpo_server::{
    RunningServer, ServerConfig,
    server::start_with_store,
    store::{OperationStore, UserRecord, sqlite::SqliteStore},
};
use std::sync::Arc;

/// Users every test server knows.
pub fn test_users() -> Vec<UserRecord> {
    let named = ["alice", "bob", "carol", "dave", "erin", "f"];
    named
        .iter()
        .map(|n| n.to_string())
        .chain((0..300).map(|i| format!("user{i}")))
        .map(|id| UserRecord {
            user_principal_name: format!("{id}@contoso.example"),
            display_name: Some(id.clone()),
            mail: Some(format!("{id}@contoso.example")),
            id,
        })
        .collect()
}

/// A running test server with the store it uses.
pub struct TestServer {
    pub server: RunningServer,
    pub store: Arc<SqliteStore>,
    pub base_url: String,
    pub state: tempfile::TempDir,
    pub retry_after: u32,
}

impl TestServer {
    /// Starts a server on a free loopback port over a new state directory; `retry_after` is what it tells
    /// pollers.
    pub async fn start(retry_after: u32) -> TestServer {
        let state = tempfile::tempdir().expect("temporary state directory");
        let server = Self::start_in(state, retry_after).await;
        server
            .store
            .upsert_users(&test_users())
            .expect("users load");
        server
    }

    async fn start_in(state: tempfile::TempDir, retry_after: u32) -> TestServer {
        let store = Arc::new(SqliteStore::open(state.path()).expect("store opens"));
        let config = ServerConfig {
            retry_after_seconds: retry_after,
            log_level: "error".into(),
            state_dir: state.path().to_path_buf(),
            ..Default::default()
        };
        let server = start_with_store(config, store.clone() as Arc<dyn OperationStore>)
            .await
            .expect("server starts");
        let base_url = server.base_url();
        TestServer {
            server,
            store,
            base_url,
            state,
            retry_after,
        }
    }

    /// Stops the server and starts a new one over the same state directory.
    pub async fn restart(self) -> TestServer {
        let TestServer {
            server,
            state,
            retry_after,
            store,
            ..
        } = self;
        server.close().await.expect("server stops");
        drop(store);
        Self::start_in(state, retry_after).await
    }

    /// The generated client, pointed at this server.
    pub fn client(&self) -> dpo_client::Client {
        dpo_client::Client::new(&self.base_url)
    }

    /// A URL on this server.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.server.close().await.expect("server stops");
    }
}

/// A plausible SAS URL of a storage container.
pub fn sas_url() -> String {
    "https://account.blob.core.windows.net/exports?sv=2023-11-03&sp=cw&se=2099-01-01T00:00:00Z&sr=c&sig=abc".into()
}
