//! Azurite, the Azure Storage emulator: starting it, its documented development account, account SAS
//! URLs signed with that account's public key, and the storage calls a test makes (the server reaches
//! Azurite through `--emulator-host`; it never signs anything itself).

use crate::process::{Listening, StartError, start_listening};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

/// The emulator's documented development account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Its documented, public key (not a secret: every Azurite installation has it).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Why a SAS could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("signing a SAS: {0}")]
pub struct SignError(String);

/// Account SAS query string (service version 2018-11-09) for blobs with permissions `sp`, valid until
/// `expiry` (RFC 3339, whole seconds), signed with the base64 account `key`.
pub fn account_sas(sp: &str, expiry: &str, key: &str) -> Result<String, SignError> {
    let (ss, srt, sv) = ("b", "sco", "2018-11-09");
    let to_sign = format!("{ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{expiry}\n\n\n{sv}\n");
    let key = STANDARD.decode(key).map_err(|e| SignError(format!("the key is not base64: {e}")))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| SignError(e.to_string()))?;
    mac.update(to_sign.as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    Ok(format!("sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&sig={}", encode(expiry), encode(&sig)))
}

/// A running Azurite blob service on a free loopback port, its blobs in a folder of its own (removed
/// with it); stopped when dropped.
pub struct Azurite {
    /// The process and its port.
    pub listening: Listening,
    /// `127.0.0.1:<port>`.
    pub host: String,
    _data: tempfile::TempDir,
}

/// Where Azurite is: `DPO_AZURITE`, else where `cargo xtask test` installs it.
pub fn program() -> PathBuf {
    crate::tool("DPO_AZURITE", ".tools/node_modules/.bin/azurite-blob")
}

/// Never expires, for tests.
const FAR: &str = "2099-01-01T00:00:00Z";

impl Azurite {
    /// Starts `program` (see [`program`]) and waits until it listens.
    pub fn start_from(program: &Path) -> Result<Azurite, StartError> {
        let data = tempfile::tempdir().map_err(|source| StartError::Io { what: "Azurite".into(), source })?;
        let location = data.path().to_string_lossy().into_owned();
        let args = ["--silent", "--disableTelemetry", "--skipApiVersionCheck", "--blobHost", "127.0.0.1"];
        let args = [&args[..], &["--blobPort", "{port}", "--location", &location]].concat();
        let listening = start_listening("Azurite", program, &args, "run `cargo xtask test` (it installs it)")?;
        let host = format!("127.0.0.1:{}", listening.port);
        Ok(Azurite { listening, host, _data: data })
    }

    /// Starts the installed Azurite; panics (a test's failure) when it cannot.
    pub fn start() -> Azurite {
        Azurite::start_from(&program()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Base URL of the development account, path style.
    pub fn account_url(&self) -> String {
        format!("http://{}/{ACCOUNT}", self.host)
    }

    /// An account SAS query string with permissions `sp`, valid until `expiry` (RFC 3339, seconds).
    pub fn sas(&self, sp: &str, expiry: &str) -> String {
        account_sas(sp, expiry, ACCOUNT_KEY).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A SAS whose signature was made with the wrong key (as if the key had been rotated: revoked).
    pub fn revoked_sas(&self, sp: &str, expiry: &str) -> String {
        account_sas(sp, expiry, &STANDARD.encode(b"not the account key, not the account key!!"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// What `dpo-server` needs to reach it with the development account.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", format!("http://{}", self.host)),
        ]
    }

    /// Creates a container.
    pub async fn create_container(&self, name: &str) {
        let url = format!("{}/{name}?restype=container&{}", self.account_url(), self.sas("rwdlac", FAR));
        // Azurite may accept connections a moment before it answers them (many start at once in tests).
        let mut attempts = 0;
        let response = loop {
            match reqwest::Client::new().put(&url).send().await {
                Ok(response) => break response,
                Err(_) if attempts < 40 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("Azurite at {} does not answer: {e}", self.host),
            }
        };
        let status = response.status().as_u16();
        assert_eq!(status, 201, "creating container {name}: {}", response.text().await.unwrap_or_default());
    }

    /// Creates `container` and returns an object_store client of it.
    pub async fn container(&self, container: &str) -> object_store::azure::MicrosoftAzure {
        self.create_container(container).await;
        object_store::azure::MicrosoftAzureBuilder::new()
            .with_account(ACCOUNT)
            .with_access_key(ACCOUNT_KEY)
            .with_endpoint(self.account_url())
            .with_allow_http(true)
            .with_container_name(container)
            .build()
            .expect("a client of the container")
    }

    /// Names of the blobs in a container under `prefix`.
    pub async fn list(&self, container: &str, prefix: &str) -> Vec<String> {
        let url = format!(
            "{}/{container}?restype=container&comp=list&prefix={prefix}&{}",
            self.account_url(),
            self.sas("rl", FAR)
        );
        let xml = reqwest::get(url).await.expect("Azurite answers").text().await.expect("listing");
        xml.split("<Name>").skip(1).filter_map(|s| s.split("</Name>").next()).map(xml_unescape).collect()
    }

    /// The ETag of a blob (it changes whenever the blob is written again).
    pub async fn etag(&self, container: &str, blob: &str) -> String {
        let response =
            reqwest::Client::new().head(self.blob_url(container, blob)).send().await.expect("Azurite answers");
        assert_eq!(response.status().as_u16(), 200, "HEAD {blob}");
        response.headers()["etag"].to_str().expect("an ETag").to_string()
    }

    /// The content of a blob.
    pub async fn download(&self, container: &str, blob: &str) -> Vec<u8> {
        let response = reqwest::get(self.blob_url(container, blob)).await.expect("Azurite answers");
        assert_eq!(response.status().as_u16(), 200, "downloading {blob}");
        response.bytes().await.expect("blob content").to_vec()
    }

    fn blob_url(&self, container: &str, blob: &str) -> url::Url {
        let mut url = url::Url::parse(&format!("{}/{container}", self.account_url())).expect("URL");
        url.path_segments_mut().expect("base URL").extend(blob.split('/'));
        url.set_query(Some(&self.sas("r", FAR)));
        url
    }
}

fn xml_unescape(s: &str) -> String {
    s.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sas_names_its_permissions_and_expiry_and_is_signed() {
        let sas = account_sas("cw", "2099-01-01T00:00:00Z", ACCOUNT_KEY).unwrap();
        assert!(sas.starts_with("sv=2018-11-09&ss=b&srt=sco&sp=cw&se=2099-01-01T00%3A00%3A00Z&sig="), "{sas}");
        assert_ne!(sas, account_sas("cw", "2099-01-01T00:00:00Z", &STANDARD.encode(b"another key")).unwrap());
        assert!(account_sas("cw", "2099-01-01T00:00:00Z", "not base64!").is_err());
    }
}
