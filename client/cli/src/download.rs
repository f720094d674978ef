//! `dpo download`: fetch a finished export from its storage location and check it against its manifest.

use crate::{Output, failure::Failure};
use dpo_client::{
    Client, ClientInfo,
    location::{LocationPolicy, StorageLocation},
    manifest::Manifest,
    redact::redact_secrets,
};
use futures::StreamExt;
use object_store::{
    ObjectStore, ObjectStoreExt,
    azure::{AzureConfigKey, MicrosoftAzureBuilder},
    local::LocalFileSystem,
    path::Path as ObjectPath,
};
use sha2::{Digest, Sha256};
use std::{path::Path, sync::Arc};
use tokio::io::AsyncWriteExt;

fn other(message: impl Into<String>) -> Failure {
    Failure::Other(anyhow::anyhow!(message.into()))
}

/// A storage location as a store plus the folder inside it that holds the location's objects, read by
/// the same rules as the server's (as a reader: any host, no write grant needed).
fn open(location: &str) -> Result<(Arc<dyn ObjectStore>, String), Failure> {
    let parsed = StorageLocation::parse(location, &LocationPolicy::reader(), chrono::Utc::now())
        .map_err(|e| other(format!("{}: {e}", redact_secrets(location))))?;
    match parsed {
        StorageLocation::Local { dir } => {
            let store = LocalFileSystem::new_with_prefix(&dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
            Ok((Arc::new(store), String::new()))
        }
        StorageLocation::AzureBlob { endpoint, account, container, prefix, sas, .. } => {
            let store = MicrosoftAzureBuilder::new()
                .with_account(account)
                .with_container_name(container)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint)
                .with_config(AzureConfigKey::SasKey, sas)
                .build()
                .map_err(|e| other(redact_secrets(&e.to_string())))?;
            Ok((Arc::new(store), prefix))
        }
    }
}

fn join(prefix: &str, rest: &str) -> Result<ObjectPath, Failure> {
    let full = if prefix.is_empty() { rest.to_string() } else { format!("{prefix}/{rest}") };
    ObjectPath::parse(&full).map_err(|e| other(format!("{full}: {e}")))
}

/// Downloads export `id` into `to` and verifies it.
pub async fn run(client: &Client, id: &str, to: &Path, from: Option<&str>, out: Output) -> Result<(), Failure> {
    let op: serde_json::Value = {
        let url = format!("{}/dataPolicyOperations/{id}", client.baseurl());
        let response = client.client().get(url).send().await.map_err(|e| Failure::Api(e.into()))?;
        if !response.status().is_success() {
            // Let the typed call report the OData error.
            client.data_policy_operations_data_policy_operation_get_data_policy_operation(id, None, None).await?;
        }
        response.json().await.map_err(|e| Failure::Api(e.into()))?
    };
    if op["status"] != "complete" {
        return Err(Failure::Export(format!("export {id} is {}, not complete: nothing to download", op["status"])));
    }
    let location = match from {
        Some(from) => from.to_string(),
        None => {
            let shown = op["storageLocation"].as_str().unwrap_or_default();
            if !shown.starts_with("file://") {
                return Err(other(
                    "the service shows the storage location with its SAS signature redacted: pass it whole with --from",
                ));
            }
            shown.to_string()
        }
    };
    let (store, prefix) = open(&location)?;
    let folder = if prefix.is_empty() { id.to_string() } else { format!("{prefix}/{id}") };
    let manifest_bytes = store
        .get(&join(&folder, "manifest.json")?)
        .await
        .map_err(|e| other(format!("reading the manifest: {e}")))?
        .bytes()
        .await
        .map_err(|e| other(format!("reading the manifest: {e}")))?;
    let manifest = Manifest::parse(&manifest_bytes).map_err(|e| Failure::Verification(e.to_string()))?;
    tokio::fs::create_dir_all(to).await.map_err(|e| other(format!("{}: {e}", to.display())))?;
    let mut total = 0u64;
    for object in &manifest.objects {
        let name = object.path.as_str();
        let relative = object.relative_path().map_err(|e| Failure::Verification(e.to_string()))?;
        let target = to.join(relative);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| other(format!("{}: {e}", parent.display())))?;
        }
        let mut file =
            tokio::fs::File::create(&target).await.map_err(|e| other(format!("{}: {e}", target.display())))?;
        let mut stream =
            store.get(&join(&folder, name)?).await.map_err(|e| other(format!("{name}: {e}")))?.into_stream();
        let (mut hasher, mut size) = (Sha256::new(), 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| other(format!("{name}: {e}")))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(|e| other(format!("{}: {e}", target.display())))?;
        }
        file.flush().await.map_err(|e| other(format!("{}: {e}", target.display())))?;
        object.check(size, &hex::encode(hasher.finalize())).map_err(|e| Failure::Verification(e.to_string()))?;
        total += size;
    }
    tokio::fs::write(to.join("manifest.json"), &manifest_bytes).await.map_err(|e| other(e.to_string()))?;
    match out {
        Output::Json => {
            let objects = manifest.objects.len();
            println!("{}", serde_json::json!({ "id": id, "objects": objects, "bytes": total, "folder": to }))
        }
        Output::Table => println!(
            "downloaded {} objects ({total} bytes) of {id} into {}; all match the manifest",
            manifest.objects.len(),
            to.display()
        ),
    }
    Ok(())
}
