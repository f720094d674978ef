//! `serve`: the server, until SIGTERM or Ctrl-C.

use anyhow::Context;
use dpo_server::ServerConfig;

pub(crate) async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let format = config.log_format;
    let server = dpo_server::start(config).await.context("starting dpo-server")?;
    // On stdout whatever the log level (scripts read the address from it), in the log's own format: a log
    // pipeline reading JSON reads stdout and stderr together.
    match format {
        dpo_server::logging::LogFormat::Text => println!("dpo-server listening on {}", server.base_url()),
        dpo_server::logging::LogFormat::Json => println!(
            "{}",
            serde_json::json!({
                "msg": "dpo-server listening",
                "level": "INFO",
                "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "url": server.base_url(),
            })
        ),
    }
    shutdown_signal().await;
    // Running exports go back to the queue at once, for another replica (or the next start) to resume.
    server.shutdown().await.context("stopping dpo-server")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
