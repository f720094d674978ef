//! `demo`: demo users and a demo shop database, one of them exported to a local folder through the
//! generated client, the export verified against its manifest.

use crate::stores::open;
use anyhow::{Context, bail};
use dpo_server::{ServerConfig, auth::tokens::MintRequest, demo};
use std::{path::PathBuf, time::Duration};

pub(crate) async fn run(state_dir: PathBuf) -> anyhow::Result<()> {
    let store = open(&state_dir)?;
    let mut config = ServerConfig {
        state_dir: state_dir.clone(),
        log_level: "warn".into(),
        retry_after_seconds: 1,
        ..ServerConfig::default()
    };
    let data = demo::generate(&store, &config.drives_root(), dpo_server::auth::LOCAL_TENANT, 2026)?;
    let shop = demo::write_shop(&state_dir, &data.users, 2026)?;
    config.sources_file = Some(shop.sources_file.clone());
    println!(
        "demo directory: {} users, {} drive files ({:.1} MiB), {} activity records, in {}",
        data.users.len(),
        data.files,
        data.bytes as f64 / (1024.0 * 1024.0),
        data.activities,
        state_dir.display()
    );
    println!(
        "demo data source: a SQLite shop database of {} orders, named in {}",
        shop.orders,
        shop.sources_file.display()
    );
    let exports = config.storage_policy().local_root.context("local exports are enabled")?;
    let server = dpo_server::start(config).await.context("starting dpo-server")?;
    let token = dpo_server::auth::mint_local(&state_dir, &MintRequest::admin(dpo_server::auth::LOCAL_TENANT))?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    let http = reqwest::Client::builder().default_headers(headers).build()?;
    let client = dpo_client::Client::new_with_client(&format!("{}/v1.0", server.base_url()), http);
    let user = &data.users[0];
    let destination = exports.join(&user.id);
    let location = url::Url::from_directory_path(&destination)
        .map_err(|_| anyhow::anyhow!("{} is not an absolute folder", destination.display()))?;
    println!("exporting {} ({}) to {location}", user.display_name.as_deref().unwrap_or(&user.id), user.id);
    let accepted = client
        .users_user_export_personal_data(
            &user.id,
            &dpo_client::types::UsersUserExportPersonalDataBody { storage_location: Some(location.to_string()) },
        )
        .await?;
    let id = dpo_client::operation_id_from_location(&accepted)?;
    let options = dpo_client::WaitOptions {
        default_interval: Duration::from_millis(250),
        max_interval: Duration::from_millis(500),
        timeout: Duration::from_secs(600),
    };
    let done = client.wait_for_operation(&id, &options).await?;
    server.close().await?;
    let status = dpo_client::waiting::status_of(&done).map(|s| s.to_string()).unwrap_or_default();
    if status != "complete" {
        bail!("the export ended {status}");
    }
    let folder = destination.join(&id);
    let manifest_path = folder.join("manifest.json");
    let manifest = dpo_contract::manifest::Manifest::parse(&std::fs::read(&manifest_path)?)?;
    let checked = folder.clone();
    let verified = manifest.clone();
    tokio::task::spawn_blocking(move || verified.verify_folder(&checked)).await??;
    println!("operation {id}: {status}, {} objects verified against their SHA-256", manifest.objects.len());
    for source in &manifest.sources {
        let rows = source.rows.map(|rows| format!(", {rows} rows")).unwrap_or_default();
        println!("  {}: {} objects, {} bytes{rows}", source.name, source.objects, source.bytes);
    }
    println!("files:    {}", folder.display());
    println!("manifest: {}", manifest_path.display());
    Ok(())
}
