//! The commands, on top of the generated client.

use crate::{AuditCommand, Cli, Command, Output, download, failure::Failure, output};
use dpo_client::{
    AuditListOptions, Client, WaitOptions, operation_id_from_location,
    types::UsersUserExportPersonalDataBody,
    waiting::{progress_of, status_of},
};
use futures::TryStreamExt;
use std::time::Duration;

/// The generated client for `cli`'s base URL, sending its token.
pub fn client(cli: &Cli) -> Result<Client, Failure> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &cli.token {
        let value = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| Failure::Other(anyhow::anyhow!("the token contains characters a header cannot carry")))?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Failure::Other(e.into()))?;
    Ok(Client::new_with_client(cli.base_url.trim_end_matches('/'), http))
}

/// `--to` as a storage location: URLs as given, a folder as a file:// URL of its absolute path.
fn storage_location(to: &str) -> Result<String, Failure> {
    if to.starts_with("https://") || to.starts_with("http://") || to.starts_with("file://") {
        return Ok(to.to_string());
    }
    let path = std::path::absolute(to).map_err(|e| Failure::Other(anyhow::anyhow!("{to}: {e}")))?;
    url::Url::from_directory_path(&path)
        .map(|u| u.to_string())
        .map_err(|_| Failure::Other(anyhow::anyhow!("{} is not a folder path", path.display())))
}

/// Runs the command.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let client = client(&cli)?;
    let out = cli.output;
    match cli.command {
        Command::Export { user, to, wait, timeout } => export(&client, &user, &to, wait, timeout, out).await,
        Command::Get { id } => {
            let op =
                client.data_policy_operations_data_policy_operation_get_data_policy_operation(&id, None, None).await?;
            output::operation(&op, out);
            Ok(())
        }
        Command::List { list } => {
            let options = list.options();
            let ops = if list.all {
                client.list_all_operations(options).try_collect::<Vec<_>>().await?
            } else {
                client.list_operations_page(&options).await?.value
            };
            output::operations(&ops, out);
            Ok(())
        }
        Command::Count { filter, search } => {
            let n = client.count_operations(filter.as_deref(), search.as_deref()).await?;
            match out {
                Output::Json => println!("{}", serde_json::json!({ "count": n })),
                Output::Table => println!("{n}"),
            }
            Ok(())
        }
        Command::Delete { id, if_match } => {
            client
                .data_policy_operations_data_policy_operation_delete_data_policy_operation(&id, if_match.as_deref())
                .await?;
            match out {
                Output::Json => println!("{}", serde_json::json!({ "deleted": id })),
                Output::Table => println!("deleted {id}"),
            }
            Ok(())
        }
        Command::Download { id, to, from } => download::run(&client, &id, &to, from.as_deref(), out).await,
        Command::Audit { command: AuditCommand::List { filter, oldest_first, top, all } } => {
            let options = AuditListOptions { filter, oldest_first, top };
            let events = if all {
                client.list_all_audit_events(options).try_collect::<Vec<_>>().await?
            } else {
                client.list_audit_events_page(&options).await?.value
            };
            output::audit_events(&events, out);
            Ok(())
        }
        Command::Audit { command: AuditCommand::Get { id } } => {
            let event = client.audit_logs_get_directory_audits(&id, None, None).await?;
            output::audit_event(&event, out);
            Ok(())
        }
        Command::Requests { command } => crate::requests::run(&client, command, out).await,
        Command::Completions { .. } => Ok(()),
    }
}

async fn export(client: &Client, user: &str, to: &str, wait: bool, timeout: u64, out: Output) -> Result<(), Failure> {
    let body = UsersUserExportPersonalDataBody { storage_location: Some(storage_location(to)?) };
    let accepted = client.users_user_export_personal_data(user, &body).await?;
    let id = operation_id_from_location(&accepted)?;
    if !wait {
        match out {
            Output::Json => println!("{}", serde_json::json!({ "id": id, "status": "notStarted" })),
            Output::Table => println!("submitted {id}; follow it with `dpo get {id}`"),
        }
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(100);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg:>10} [{bar:40}] {pos:>3}%  {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let options = WaitOptions {
        default_interval: Duration::from_secs(2),
        max_interval: Duration::from_secs(10),
        timeout: Duration::from_secs(timeout),
    };
    let done = client
        .wait_for_operation_with_progress(&id, &options, |op| {
            bar.set_position(progress_of(op).unwrap_or(0.0) as u64);
            bar.set_message(status_of(op).map(|s| s.to_string()).unwrap_or_default());
        })
        .await;
    bar.finish_and_clear();
    let done = done?;
    output::operation(&done, out);
    match status_of(&done).map(|s| s.to_string()).as_deref() {
        Some("complete") => Ok(()),
        other => Err(Failure::Export(format!(
            "export {id} ended {}: {}",
            other.unwrap_or("unknown"),
            failure_reason(client, &id).await.unwrap_or_else(|| "no reason given".into())
        ))),
    }
}

/// The `@dpo.failureReason` annotation of an operation (not part of Graph's schema, so read raw).
pub async fn failure_reason(client: &Client, id: &str) -> Option<String> {
    use dpo_client::ClientInfo;
    let url = format!("{}/dataPolicyOperations/{id}", client.baseurl());
    let op: serde_json::Value = client.client().get(url).send().await.ok()?.json().await.ok()?;
    op.get("@dpo.failureReason").and_then(|r| r.as_str()).map(str::to_string)
}
