//! A real Azurite blob service for tests (installed into `.tools/` by `cargo xtask test`), and the storage
//! client operations a test needs: account SAS URLs signed with the emulator's documented key, container
//! creation, listing and download.
#![allow(dead_code)]

use base64::{Engine, engine::general_purpose::STANDARD};
pub use dpo_test_support::azurite::ACCOUNT;
use dpo_test_support::azurite::{ACCOUNT_KEY as KEY, account_sas};
use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running Azurite blob service, stopped when dropped.
pub struct Azurite {
    child: Child,
    _data: tempfile::TempDir,
    /// `host:port` it listens on.
    pub host: String,
}

fn executable() -> PathBuf {
    if let Ok(path) = std::env::var("DPO_AZURITE") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/node_modules/.bin/azurite-blob")
}

impl Azurite {
    /// Starts Azurite on a free loopback port and waits until it accepts connections.
    pub fn start() -> Azurite {
        let exe = executable();
        assert!(
            exe.exists(),
            "Azurite is not installed at {}: run `cargo xtask test` (it installs it) or set DPO_AZURITE",
            exe.display()
        );
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let data = tempfile::tempdir().expect("Azurite data folder");
        let child = Command::new(&exe)
            .args(["--silent", "--disableTelemetry", "--skipApiVersionCheck", "--blobHost", "127.0.0.1"])
            .args(["--blobPort", &port.to_string(), "--location"])
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Azurite starts");
        let azurite = Azurite { child, _data: data, host: format!("127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(&azurite.host).is_err() {
            assert!(Instant::now() < deadline, "Azurite did not start listening on {}", azurite.host);
            std::thread::sleep(Duration::from_millis(100));
        }
        azurite
    }

    /// Base URL of the account, path style.
    pub fn account_url(&self) -> String {
        format!("http://{}/{ACCOUNT}", self.host)
    }

    /// An account SAS query string with permissions `sp`, valid until `expiry` (RFC 3339, seconds).
    pub fn sas(&self, sp: &str, expiry: &str) -> String {
        sign_account_sas(sp, expiry, KEY)
    }

    /// A SAS whose signature was made with the wrong key (as if the key had been rotated: revoked).
    pub fn revoked_sas(&self, sp: &str, expiry: &str) -> String {
        sign_account_sas(sp, expiry, &STANDARD.encode(b"not the account key, not the account key!!"))
    }

    /// Creates a container.
    pub async fn create_container(&self, name: &str) {
        let url =
            format!("{}/{name}?restype=container&{}", self.account_url(), self.sas("rwdlac", "2099-01-01T00:00:00Z"));
        // Azurite may accept connections a moment before it answers them (many start at once in tests).
        let mut attempts = 0;
        let response = loop {
            match reqwest::Client::new().put(&url).send().await {
                Ok(response) => break response,
                Err(e) if attempts < 40 => {
                    attempts += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("Azurite at {} does not answer: {e}", self.host),
            }
        };
        assert_eq!(
            response.status().as_u16(),
            201,
            "creating container {name}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Names of the blobs in a container under `prefix`.
    pub async fn list(&self, container: &str, prefix: &str) -> Vec<String> {
        let url = format!(
            "{}/{container}?restype=container&comp=list&prefix={prefix}&{}",
            self.account_url(),
            self.sas("rl", "2099-01-01T00:00:00Z")
        );
        let xml = reqwest::get(url).await.expect("Azurite answers").text().await.expect("listing");
        xml.split("<Name>").skip(1).filter_map(|s| s.split("</Name>").next()).map(xml_unescape).collect()
    }

    /// The ETag of a blob (it changes whenever the blob is written again).
    pub async fn etag(&self, container: &str, blob: &str) -> String {
        let mut url = reqwest::Url::parse(&format!("{}/{container}", self.account_url())).expect("URL");
        url.path_segments_mut().expect("base URL").extend(blob.split('/'));
        url.set_query(Some(&self.sas("r", "2099-01-01T00:00:00Z")));
        let response = reqwest::Client::new().head(url).send().await.expect("Azurite answers");
        assert_eq!(response.status().as_u16(), 200, "HEAD {blob}");
        response.headers()["etag"].to_str().expect("an ETag").to_string()
    }

    /// The content of a blob.
    pub async fn download(&self, container: &str, blob: &str) -> Vec<u8> {
        let mut url = reqwest::Url::parse(&format!("{}/{container}", self.account_url())).expect("URL");
        url.path_segments_mut().expect("base URL").extend(blob.split('/'));
        url.set_query(Some(&self.sas("r", "2099-01-01T00:00:00Z")));
        let response = reqwest::get(url).await.expect("Azurite answers");
        assert_eq!(response.status().as_u16(), 200, "downloading {blob}");
        response.bytes().await.expect("blob content").to_vec()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn xml_unescape(s: &str) -> String {
    s.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'")
}

fn sign_account_sas(sp: &str, expiry: &str, key: &str) -> String {
    account_sas(sp, expiry, key).expect("a SAS is signed")
}
