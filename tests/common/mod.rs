//! Helpers shared by the integration tests: a real dpo server on 127.0.0.1:0 and clients for it.
#![allow(dead_code)]

use dpo_server::{
    RunningServer, ServerConfig,
    server::start_with_store,
    store::{OperationStore, memory::MemoryStore},
};
use std::sync::Arc;

/// A running test server with the store it uses.
pub struct TestServer {
    pub server: RunningServer,
    pub store: Arc<MemoryStore>,
    pub base_url: String,
}

impl TestServer {
    /// Starts a server on a free loopback port; `retry_after` is what it tells pollers.
    pub async fn start(retry_after: u32) -> TestServer {
        let store = Arc::new(MemoryStore::new());
        let config = ServerConfig {
            retry_after_seconds: retry_after,
            log_level: "error".into(),
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
        }
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
