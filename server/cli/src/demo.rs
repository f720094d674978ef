//! `demo`: demo users and a demo shop database, one of them exported to a local folder through the
//! generated client, the export verified against its manifest; then a subject rights request for a
//! customer of the shop who is in no directory, run to its report, its zip written beside the state.

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
    let mut admin = MintRequest::admin(dpo_server::auth::LOCAL_TENANT);
    admin.user = Some("demo-admin".into());
    admin.permissions.push("SubjectRightsRequest.ReadWrite.All".into());
    let token = dpo_server::auth::mint_local(&state_dir, &admin)?;
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
    let request = customer_request(&client, &state_dir).await;
    server.close().await?;
    let request = request?;
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
    println!(
        "subject rights request {} for {} {} <{}>, a customer in no directory: report done",
        request.id,
        demo::CUSTOMER.1,
        demo::CUSTOMER.2,
        demo::CUSTOMER.0
    );
    for line in request.report.lines().filter(|l| l.starts_with("  ")) {
        println!("  {}", line.trim());
    }
    println!("report:   {}", request.report_path.display());
    println!("zip:      {}", request.zip.display());
    Ok(())
}

/// The demo's subject rights request, done.
struct DemoRequest {
    id: String,
    report: String,
    report_path: PathBuf,
    zip: PathBuf,
}

/// Creates a request for the demo shop's customer, waits for its report, and writes the report and the
/// zip into `state_dir`.
async fn customer_request(client: &dpo_client::Client, state_dir: &std::path::Path) -> anyhow::Result<DemoRequest> {
    let (email, first, last) = demo::CUSTOMER;
    let body = serde_json::json!({
        "dataSubject": {"email": email, "firstName": first, "lastName": last},
        "dataSubjectType": "customer",
        "type": "access",
        "regulations": ["GDPR"],
        "displayName": format!("Access request of {first} {last}"),
        "description": "a copy of everything the shop holds about them",
        "pauseAfterEstimate": false,
    });
    let body: dpo_client::types::MicrosoftGraphSubjectRightsRequest = serde_json::from_value(body)?;
    let created = client.security_create_subject_rights_requests(&body).await?.into_inner();
    let id = created.id.clone().context("the created request has an id")?;
    println!("subject rights request {id} created for {first} {last} <{email}>");
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let request = client.security_get_subject_rights_requests(&id, None, None).await?.into_inner();
        let request = serde_json::to_value(&request)?;
        let stages = request["stages"].as_array().cloned().unwrap_or_default();
        let status = |name: &str| stages.iter().find(|s| s["stage"] == name).map(|s| s["status"].clone());
        if status("generateReport") == Some("completed".into()) {
            break;
        }
        if let Some(failed) = stages.iter().find(|s| s["status"] == "failed") {
            bail!("the demo request's stage {} failed: {}", failed["stage"], failed["error"]["message"]);
        }
        if std::time::Instant::now() > deadline {
            bail!("the demo request did not finish in time");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report =
        collect(client.security_subject_rights_requests_subject_rights_request_get_final_report(&id).await?).await?;
    let zip = collect(client.security_subject_rights_requests_subject_rights_request_get_final_attachment(&id).await?)
        .await?;
    let (report_path, zip_path) = (state_dir.join("demo-request-report.txt"), state_dir.join("demo-request.zip"));
    std::fs::write(&report_path, &report).with_context(|| format!("writing {}", report_path.display()))?;
    std::fs::write(&zip_path, &zip).with_context(|| format!("writing {}", zip_path.display()))?;
    Ok(DemoRequest { id, report: String::from_utf8_lossy(&report).into_owned(), report_path, zip: zip_path })
}

/// A download, whole (the demo's are small).
async fn collect(download: dpo_client::ResponseValue<dpo_client::ByteStream>) -> anyhow::Result<Vec<u8>> {
    use futures::TryStreamExt;
    let chunks: Vec<_> = download.into_inner().into_inner().try_collect().await?;
    Ok(chunks.concat())
}
