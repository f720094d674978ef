//! Where an export goes: the `storageLocation` of a request, parsed and checked before the `202`.
//!
//! Accepted forms:
//! - an Azure Storage SAS URL of a container, optionally with a virtual directory:
//!   `https://<account>.blob.core.windows.net/<container>[/<dir>...]?sv=...&sp=...w...&se=...&sig=...`;
//! - the same in path style (`http://127.0.0.1:10000/<account>/<container>[/<dir>]?<sas>`), for hosts the
//!   operator lists as path-style (the local emulator);
//! - `file:///<folder>` inside the operator's local export root (the embedded default).
//!
//! The checks keep the server from being turned against arbitrary or internal addresses (SSRF): the host
//! must match the configured allow-list (by default only `*.blob.core.windows.net`), plain `http` only for
//! hosts the operator allows it for, and the SAS must grant write (`sp` has `w`) and not have expired (`se`).

use chrono::{DateTime, Utc};
use std::path::{Component, PathBuf};
use url::Url;

/// The operator's rules for storage locations.
#[derive(Debug, Clone)]
pub struct TargetPolicy {
    /// Host patterns exports may go to: `*.suffix` or an exact host (with `:port` if not the default).
    pub allowed_hosts: Vec<String>,
    /// Hosts (same patterns) that may be reached over plain http and use path-style URLs: the emulator.
    pub http_hosts: Vec<String>,
    /// Folder under which `file://` targets may lie; `None` disables them.
    pub local_root: Option<PathBuf>,
}

/// Azure Blob Storage's hosts: where exports may go unless the operator says otherwise.
pub const DEFAULT_STORAGE_HOST: &str = "*.blob.core.windows.net";

impl Default for TargetPolicy {
    fn default() -> Self {
        TargetPolicy { allowed_hosts: vec![DEFAULT_STORAGE_HOST.into()], http_hosts: Vec::new(), local_root: None }
    }
}

/// A checked storage location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An Azure Blob Storage container reached with a SAS token.
    AzureBlob {
        /// `scheme://host[:port]` plus `/<account>` for path-style hosts.
        endpoint: String,
        /// The storage account.
        account: String,
        /// The container.
        container: String,
        /// Virtual directory inside the container ("" for the root).
        prefix: String,
        /// The SAS query string (secret: never log it whole, see [`redact`]).
        sas: String,
        /// When the SAS expires.
        expires: DateTime<Utc>,
    },
    /// A folder on the server's disk.
    Local {
        /// The folder.
        dir: PathBuf,
    },
}

/// Why a storage location was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// Parses and checks `location` under `policy`, at time `now`.
pub fn parse(location: &str, policy: &TargetPolicy, now: DateTime<Utc>) -> Result<Target, TargetError> {
    let url = Url::parse(location.trim()).map_err(|_| {
        TargetError("storageLocation must be an absolute URL: a SAS URL of an Azure Storage container".into())
    })?;
    match url.scheme() {
        "file" => local(&url, policy),
        "https" | "http" => azure(&url, policy, now),
        other => Err(TargetError(format!("storageLocation must be an https SAS URL, not a {other}: URL"))),
    }
}

fn local(url: &Url, policy: &TargetPolicy) -> Result<Target, TargetError> {
    let root = policy
        .local_root
        .as_ref()
        .ok_or_else(|| TargetError("file: storage locations are not enabled on this server".into()))?;
    let path = url.to_file_path().map_err(|_| TargetError("the file: URL does not name a local folder".into()))?;
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(TargetError("the file: URL may not contain '..'".into()));
    }
    if !path.starts_with(root) {
        return Err(TargetError(format!("file: storage locations must lie inside {}", root.display())));
    }
    Ok(Target::Local { dir: path })
}

fn azure(url: &Url, policy: &TargetPolicy, now: DateTime<Utc>) -> Result<Target, TargetError> {
    let host = url.host_str().ok_or_else(|| TargetError("the storage URL has no host".into()))?.to_ascii_lowercase();
    let host_port = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let listed = |patterns: &[String]| patterns.iter().any(|p| host_matches(p, &host_port) || host_matches(p, &host));
    let path_style = listed(&policy.http_hosts);
    if !path_style && !listed(&policy.allowed_hosts) {
        return Err(TargetError(format!(
            "exports may not go to {host_port}: the host is not on this server's list of storage hosts ({})",
            policy.allowed_hosts.join(", ")
        )));
    }
    if url.scheme() == "http" && !path_style {
        return Err(TargetError("storageLocation must use https".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError("storageLocation may not carry a user name or password".into()));
    }
    let mut segments: Vec<String> =
        url.path_segments().map(|s| s.filter(|p| !p.is_empty()).map(percent_decode).collect()).unwrap_or_default();
    let (endpoint, account) = if path_style {
        if segments.is_empty() {
            return Err(TargetError("a path-style storage URL starts with the account: /<account>/<container>".into()));
        }
        let account = segments.remove(0);
        (format!("{}://{host_port}/{account}", url.scheme()), account)
    } else {
        let account = host.split('.').next().unwrap_or_default().to_string();
        (format!("https://{host_port}"), account)
    };
    if segments.is_empty() {
        return Err(TargetError(
            "the storage URL names no container: https://<account>.blob.core.windows.net/<container>?<sas>".into(),
        ));
    }
    let container = segments.remove(0);
    if segments.iter().any(|s| s == "..") {
        return Err(TargetError("the storage URL may not contain '..'".into()));
    }
    let prefix = segments.join("/");
    let sas = url.query().unwrap_or_default().to_string();
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    if param("sig").is_none_or(|s| s.is_empty()) {
        return Err(TargetError("storageLocation must be a SAS URL: its query has no signature (sig)".into()));
    }
    if !param("sp").is_some_and(|p| p.contains('w')) {
        return Err(TargetError("the SAS token does not grant write permission (sp must include w)".into()));
    }
    let expires = param("se")
        .ok_or_else(|| TargetError("the SAS token has no expiry (se)".into()))
        .and_then(|se| parse_sas_time(&se))?;
    if expires <= now {
        return Err(TargetError(format!("the SAS token expired at {}", expires.to_rfc3339())));
    }
    Ok(Target::AzureBlob { endpoint, account, container, prefix, sas, expires })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// SAS times are ISO 8601 UTC, with or without seconds.
fn parse_sas_time(text: &str) -> Result<DateTime<Utc>, TargetError> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%MZ").map(|n| n.and_utc()))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| TargetError(format!("the SAS expiry se={text} is not a UTC time such as 2030-01-01T00:00:00Z")))
}

/// The location with its SAS signature replaced, for logs and answers; everything else stays as written.
pub fn redact(location: &str) -> String {
    redact_text(location)
}

/// `text` with the value of every `sig=` parameter replaced, wherever a URL appears in it.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("sig=") {
        // Only a query parameter named exactly `sig` (after `?` or `&`).
        if i == 0 || !matches!(rest.as_bytes()[i - 1], b'?' | b'&') {
            out.push_str(&rest[..i + 4]);
            rest = &rest[i + 4..];
            continue;
        }
        out.push_str(&rest[..i + 4]);
        out.push_str("REDACTED");
        let tail = &rest[i + 4..];
        let end = tail
            .find(|c: char| c == '&' || c.is_whitespace() || c == '"' || c == '\'' || c == ')')
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl Target {
    /// Where in the target an operation's export goes: `<prefix>/<operation id>`.
    pub fn folder_for(&self, operation: &str) -> String {
        match self {
            Target::AzureBlob { prefix, .. } if !prefix.is_empty() => format!("{prefix}/{operation}"),
            _ => operation.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> TargetPolicy {
        TargetPolicy {
            allowed_hosts: vec!["*.blob.core.windows.net".into()],
            http_hosts: vec!["127.0.0.1:10000".into()],
            local_root: Some(PathBuf::from("/srv/exports")),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_azure_sas_url_with_a_virtual_directory() {
        let t = parse("https://acct.blob.core.windows.net/exports/gdpr/2026?sv=2022-11-02&sp=cw&se=2030-01-01T00:00:00Z&sr=c&sig=abc%2B", &policy(), now()).unwrap();
        let Target::AzureBlob { endpoint, account, container, prefix, expires, .. } = &t else { panic!("{t:?}") };
        assert_eq!(
            (endpoint.as_str(), account.as_str(), container.as_str(), prefix.as_str()),
            ("https://acct.blob.core.windows.net", "acct", "exports", "gdpr/2026")
        );
        assert_eq!(expires.to_rfc3339(), "2030-01-01T00:00:00+00:00");
        assert_eq!(t.folder_for("op"), "gdpr/2026/op");
    }

    #[test]
    fn the_emulator_in_path_style() {
        let t = parse(
            "http://127.0.0.1:10000/devstoreaccount1/c1?sv=2018-11-09&sp=rcwl&se=2030-01-01T00:00:00Z&sr=c&sig=x",
            &policy(),
            now(),
        )
        .unwrap();
        assert!(
            matches!(t, Target::AzureBlob { ref endpoint, ref container, .. } if endpoint == "http://127.0.0.1:10000/devstoreaccount1" && container == "c1"),
            "{t:?}"
        );
    }

    #[test]
    fn unsafe_or_useless_locations_are_refused() {
        let sas = "?sv=1&sp=cw&se=2030-01-01T00:00:00Z&sig=x";
        for (bad, why) in [
            (format!("https://evil.example.com/c{sas}"), "not on this server's list"),
            (format!("https://169.254.169.254/c{sas}"), "not on this server's list"),
            (format!("http://acct.blob.core.windows.net/c{sas}"), "https"),
            (format!("http://127.0.0.1:10001/devstoreaccount1/c{sas}"), "not on this server's list"),
            ("https://acct.blob.core.windows.net/c?sv=1&sp=cw&se=2030-01-01T00:00:00Z".to_string(), "sig"),
            ("https://acct.blob.core.windows.net/c?sv=1&sp=r&se=2030-01-01T00:00:00Z&sig=x".to_string(), "write"),
            ("https://acct.blob.core.windows.net/c?sv=1&sp=w&se=2020-01-01T00:00:00Z&sig=x".to_string(), "expired"),
            (format!("https://acct.blob.core.windows.net/{sas}"), "no container"),
            ("file:///etc".to_string(), "inside /srv/exports"),
            ("ftp://x/y".to_string(), "ftp"),
            ("not a url".to_string(), "absolute URL"),
        ] {
            let err = parse(&bad, &policy(), now()).expect_err(&bad).0;
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(parse("file:///srv/exports/alice", &policy(), now()).is_ok());
    }

    #[test]
    fn redaction_hides_the_signature_only() {
        let r = redact("https://a.blob.core.windows.net/c?sv=1&sig=secret%2Bx&sp=w");
        assert!(!r.contains("secret") && r.contains("sig=REDACTED") && r.contains("sp=w"), "{r}");
        let t = redact_text("error sending request for url (http://h/c/x?sv=1&sig=abc%2B&sp=w): 403");
        assert_eq!(t, "error sending request for url (http://h/c/x?sv=1&sig=REDACTED&sp=w): 403");
    }
}
