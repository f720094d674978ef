//! `dpo download`: fetch a finished export from its storage location and check it against its manifest.

use crate::{Output, commands::Failure};
use dpo_client::{Client, ClientInfo, manifest::Manifest};
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

/// A storage location as a store plus the folder inside it that holds the location's objects.
fn open(location: &str) -> Result<(Arc<dyn ObjectStore>, String), Failure> {
    let url = url::Url::parse(location).map_err(|e| other(format!("{location}: {e}")))?;
    if url.scheme() == "file" {
        let dir = url.to_file_path().map_err(|_| other(format!("{location} is not a local folder")))?;
        let store = LocalFileSystem::new_with_prefix(&dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
        return Ok((Arc::new(store), String::new()));
    }
    let host = url.host_str().ok_or_else(|| other(format!("{location} has no host")))?.to_string();
    let mut segments: Vec<String> =
        url.path_segments().map(|s| s.filter(|p| !p.is_empty()).map(str::to_string).collect()).unwrap_or_default();
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    // Azure names the account in the host; emulators and other path-style endpoints in the first segment.
    let (endpoint, account) = if host.ends_with(".blob.core.windows.net") {
        (format!("{}://{authority}", url.scheme()), host.split('.').next().unwrap_or_default().to_string())
    } else {
        if segments.is_empty() {
            return Err(other(format!("{location}: a path-style URL starts with the account")));
        }
        let account = segments.remove(0);
        (format!("{}://{authority}/{account}", url.scheme()), account)
    };
    if segments.is_empty() {
        return Err(other(format!("{location} names no container")));
    }
    let container = segments.remove(0);
    let store = MicrosoftAzureBuilder::new()
        .with_account(account)
        .with_container_name(container)
        .with_endpoint(endpoint)
        .with_allow_http(url.scheme() == "http")
        .with_config(AzureConfigKey::SasKey, url.query().unwrap_or_default())
        .build()
        .map_err(|e| other(e.to_string()))?;
    Ok((Arc::new(store), segments.join("/")))
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
