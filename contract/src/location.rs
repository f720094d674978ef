//! Where an export goes: the `storageLocation` of a request, parsed and checked by one set of rules for
//! everyone who reads it: the server before the `202` (and again when the export starts), `dpo download`
//! when it fetches an export, and the tests.
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
//! A reader ([`LocationPolicy::reader`]) is the person who holds the SAS URL: any host, no write grant.

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use std::path::{Component, PathBuf};
use url::Url;

/// The operator's rules for storage locations.
#[derive(Debug, Clone)]
pub struct LocationPolicy {
    /// Host patterns exports may go to: `*.suffix` or an exact host (with `:port` if not the default).
    pub allowed_hosts: Vec<String>,
    /// Hosts (same patterns) that may be reached over plain http and use path-style URLs: the emulator.
    pub http_hosts: Vec<String>,
    /// Folder under which `file://` targets may lie; `None` disables them.
    pub local_root: Option<PathBuf>,
    /// Whether the SAS must grant write (`sp` has `w`): for the server, which writes there.
    pub require_write: bool,
}

/// Azure Blob Storage's hosts: where exports may go unless the operator says otherwise.
pub const DEFAULT_STORAGE_HOST: &str = "*.blob.core.windows.net";

impl Default for LocationPolicy {
    fn default() -> Self {
        LocationPolicy {
            allowed_hosts: vec![DEFAULT_STORAGE_HOST.into()],
            http_hosts: Vec::new(),
            local_root: None,
            require_write: true,
        }
    }
}

impl LocationPolicy {
    /// The rules for someone reading an export with a SAS URL they were given (`dpo download`): Azure's
    /// hosts over https, any other host in path style (an emulator, a private endpoint), any local
    /// folder, and no write grant needed. The URL is theirs, so there is no server to protect.
    pub fn reader() -> LocationPolicy {
        LocationPolicy {
            allowed_hosts: vec![DEFAULT_STORAGE_HOST.into()],
            http_hosts: vec!["*".into()],
            local_root: Some(PathBuf::from("/")),
            require_write: false,
        }
    }
}

/// A checked storage location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
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

/// A storage location as dpo keeps it, in canonical form (query names decoded and lower-case, each once).
///
/// `shown` has the SAS signature replaced and is the only form answers, logs and query options ever see;
/// `secret` is what the export writes with, kept apart so that no `$filter` or `$search` can reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLocation {
    /// The location with `sig=REDACTED`: shown, logged and matched by queries.
    pub shown: String,
    /// The whole location with its signature, when it has one.
    pub secret: Option<String>,
}

/// Why a storage location was refused. The text is the answer's message: it says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// Control characters in the location.
    #[error("storageLocation may not contain control characters")]
    ControlCharacters,
    /// Not an absolute URL.
    #[error("storageLocation must be an absolute URL: a SAS URL of an Azure Storage container")]
    NotAUrl,
    /// A scheme other than https, http or file.
    #[error("storageLocation must be an https SAS URL, not a {0}: URL")]
    Scheme(String),
    /// A SAS parameter given twice (in any spelling).
    #[error("the SAS names the parameter '{0}' more than once")]
    RepeatedParameter(String),
    /// `file:` locations are off on this server.
    #[error("file: storage locations are not enabled on this server")]
    LocalDisabled,
    /// A `file:` URL that is no local path.
    #[error("the file: URL does not name a local folder")]
    NotALocalFolder,
    /// Control characters in a `file:` URL's path.
    #[error("the file: URL may not contain control characters")]
    LocalControlCharacters,
    /// `..` in a `file:` URL's path.
    #[error("the file: URL may not contain '..'")]
    LocalParentDir,
    /// A `file:` location outside the server's export root (also through a link).
    #[error("file: storage locations must lie inside {}", .0.display())]
    OutsideRoot(std::path::PathBuf),
    /// A URL without a host.
    #[error("the storage URL has no host")]
    NoHost,
    /// A host not on the server's list.
    #[error("exports may not go to {host}: the host is not on this server's list of storage hosts ({allowed})")]
    HostNotListed {
        /// The host (with its port).
        host: String,
        /// The list, as the operator wrote it.
        allowed: String,
    },
    /// Plain http to a host that is not an emulator's.
    #[error("storageLocation must use https")]
    NotHttps,
    /// An internal address matched only by a wildcard.
    #[error("exports may not go to {0}: an internal address is a storage host only where it is named exactly")]
    InternalAddress(String),
    /// A user name or password in the URL.
    #[error("storageLocation may not carry a user name or password")]
    Credentials,
    /// A path-style URL without the account.
    #[error("a path-style storage URL starts with the account: /<account>/<container>")]
    NoAccount,
    /// No container in the path.
    #[error("the storage URL names no container: https://<account>.blob.core.windows.net/<container>?<sas>")]
    NoContainer,
    /// A path segment that could climb out once decoded.
    #[error("the storage URL's path may not contain '.', '..', or an encoded '/' or '\\' (%2F, %5C)")]
    OddSegment,
    /// No signature in the query.
    #[error("storageLocation must be a SAS URL: its query has no signature (sig)")]
    NoSignature,
    /// A SAS without write permission.
    #[error("the SAS token does not grant write permission (sp must include w)")]
    NotWritable,
    /// A SAS without an expiry.
    #[error("the SAS token has no expiry (se)")]
    NoExpiry,
    /// An expiry that is not a time.
    #[error("the SAS expiry se={0} is not a UTC time such as 2030-01-01T00:00:00Z")]
    BadExpiry(String),
    /// A SAS that expired.
    #[error("the SAS token expired at {}", .0.to_rfc3339())]
    Expired(DateTime<Utc>),
    /// A SAS that expired while its export ran.
    #[error("the SAS token expired at {} before the export finished", .0.to_rfc3339())]
    ExpiredDuringExport(DateTime<Utc>),
}

/// Whether `url`'s host (with its port, or without one for patterns that name none) matches one of
/// `patterns`: the one host rule targets and HTTP data sources share.
pub fn host_listed(patterns: &[String], url: &Url) -> bool {
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else { return false };
    let host_port = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    patterns.iter().any(|p| host_matches(p, &host_port) || host_matches(p, &host))
}

/// Why a host pattern of the operator's is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPatternError {
    /// The pattern would match every host (`*`), or is empty.
    #[error("the host pattern {0:?} would match every host: name the hosts, or `*.suffix` for a domain")]
    Everything(String),
    /// A `*` anywhere but in a leading `*.` followed by a domain.
    #[error("the host pattern {0:?} is not a host, a host:port, or `*.suffix`")]
    Malformed(String),
}

/// Checks a host pattern the operator gives (storage hosts, emulator hosts): an exact host (with `:port`
/// where it is not the default) or `*.suffix`; never one that matches every host.
pub fn check_host_pattern(pattern: &str) -> Result<String, HostPatternError> {
    let trimmed = pattern.trim();
    if trimmed.is_empty() || trimmed == "*" || trimmed == "*." {
        return Err(HostPatternError::Everything(pattern.into()));
    }
    let name = trimmed.strip_prefix("*.").unwrap_or(trimmed);
    if name.contains('*') || name.starts_with('.') || name.contains(char::is_whitespace) {
        return Err(HostPatternError::Malformed(pattern.into()));
    }
    Ok(trimmed.to_string())
}

/// Whether `url`'s host is an IP address inside the network rather than on the internet: loopback,
/// private, link-local (the cloud metadata service, 169.254.169.254), unspecified, unique-local.
fn internal_address(url: &Url) -> bool {
    use std::net::IpAddr;
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        _ => return false,
    };
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || v6.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Whether one of `patterns` names `url`'s host exactly (with its port, or without one), not by a wildcard.
fn host_named(patterns: &[String], url: &Url) -> bool {
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else { return false };
    let host_port = url.port().map(|p| format!("{host}:{p}"));
    patterns
        .iter()
        .any(|p| p.eq_ignore_ascii_case(&host) || host_port.as_deref().is_some_and(|h| p.eq_ignore_ascii_case(h)))
}

/// Whether `host` (`name` or `name:port`) matches `pattern` (`*.suffix` or an exact host).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

impl StorageLocation {
    /// Parses and checks `location` under `policy`, at time `now`.
    pub fn parse(
        location: &str,
        policy: &LocationPolicy,
        now: DateTime<Utc>,
    ) -> Result<StorageLocation, LocationError> {
        accept(location, policy, now).map(|(target, _)| target)
    }

    /// Parses and checks `location` under `policy`, at time `now`, and gives the form to store it in.
    pub fn accept(
        location: &str,
        policy: &LocationPolicy,
        now: DateTime<Utc>,
    ) -> Result<(StorageLocation, StoredLocation), LocationError> {
        accept(location, policy, now)
    }
}

fn accept(
    location: &str,
    policy: &LocationPolicy,
    now: DateTime<Utc>,
) -> Result<(StorageLocation, StoredLocation), LocationError> {
    if location.chars().any(char::is_control) {
        return Err(LocationError::ControlCharacters);
    }
    let url = Url::parse(location.trim()).map_err(|_| LocationError::NotAUrl)?;
    match url.scheme() {
        "file" => {
            let target = local(&url, policy)?;
            Ok((target, StoredLocation { shown: url.to_string(), secret: None }))
        }
        "https" | "http" => azure(url, policy, now),
        other => Err(LocationError::Scheme(other.to_string())),
    }
}

/// Characters escaped in a canonical query value: those that would end or re-shape the pair.
const QUERY_VALUE: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'&').add(b'+').add(b'/').add(b'=').add(b'?');

/// The query of a SAS URL as pairs with decoded, lower-case names (SAS names are all lower-case, and the
/// storage service decodes them), each name at most once: `%73ig`, `SIG` and `sig` are one parameter.
fn sas_pairs(url: &Url) -> Result<Vec<(String, String)>, LocationError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, value) in url.query_pairs() {
        let name = name.to_ascii_lowercase();
        if pairs.iter().any(|(seen, _)| *seen == name) {
            return Err(LocationError::RepeatedParameter(name));
        }
        pairs.push((name, value.into_owned()));
    }
    Ok(pairs)
}

/// The pairs as a query string, with the signature's value replaced when `redacted`.
fn sas_query(pairs: &[(String, String)], redacted: bool) -> String {
    let mut query = String::new();
    for (name, value) in pairs {
        if !query.is_empty() {
            query.push('&');
        }
        let value = if redacted && name == "sig" { REDACTED } else { value.as_str() };
        query.push_str(&utf8_percent_encode(name, QUERY_VALUE).to_string());
        query.push('=');
        query.push_str(&utf8_percent_encode(value, QUERY_VALUE).to_string());
    }
    query
}

fn local(url: &Url, policy: &LocationPolicy) -> Result<StorageLocation, LocationError> {
    let root = policy.local_root.as_ref().ok_or(LocationError::LocalDisabled)?;
    let path = url.to_file_path().map_err(|_| LocationError::NotALocalFolder)?;
    if path.as_os_str().as_encoded_bytes().iter().any(u8::is_ascii_control) {
        return Err(LocationError::LocalControlCharacters);
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(LocationError::LocalParentDir);
    }
    if !path.starts_with(root) {
        return Err(LocationError::OutsideRoot(root.to_path_buf()));
    }
    inside_after_links(&path, root)?;
    Ok(StorageLocation::Local { dir: path })
}

/// Checks that `path`, with every symbolic link on its way resolved, still lies inside `root` (also
/// resolved): a link inside the export root must not carry an export out of it. Parts of `path` that
/// do not exist yet are created later as plain folders, so the deepest existing ancestor decides.
pub fn inside_after_links(path: &std::path::Path, root: &std::path::Path) -> Result<(), LocationError> {
    let outside = || LocationError::OutsideRoot(root.to_path_buf());
    let root = match std::fs::canonicalize(root) {
        Ok(root) => root,
        // No root yet: nothing inside it can be a link.
        Err(_) => return Ok(()),
    };
    let mut existing = path;
    let resolved = loop {
        match std::fs::canonicalize(existing) {
            Ok(resolved) => break resolved,
            Err(_) => match existing.parent() {
                Some(parent) => existing = parent,
                None => return Err(outside()),
            },
        }
    };
    if resolved.starts_with(&root) { Ok(()) } else { Err(outside()) }
}

fn azure(
    url: Url,
    policy: &LocationPolicy,
    now: DateTime<Utc>,
) -> Result<(StorageLocation, StoredLocation), LocationError> {
    let host = url.host_str().ok_or(LocationError::NoHost)?.to_ascii_lowercase();
    let host_port = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let listed = |patterns: &[String]| host_listed(patterns, &url);
    // A host on both lists is Azure's own (a reader allows every other host in path style).
    let path_style = listed(&policy.http_hosts) && !listed(&policy.allowed_hosts);
    if !path_style && !listed(&policy.allowed_hosts) {
        return Err(LocationError::HostNotListed { host: host_port, allowed: policy.allowed_hosts.join(", ") });
    }
    if url.scheme() == "http" && !path_style {
        return Err(LocationError::NotHttps);
    }
    // A wildcard must not reach into the network (the metadata service, private hosts): such an address is
    // a target only where the operator named it. `*` alone is the reader's policy (no server to protect).
    let lists = [&policy.allowed_hosts, &policy.http_hosts];
    let anything = lists.iter().any(|l| l.iter().any(|p| p == "*"));
    if internal_address(&url) && !anything && !lists.iter().any(|l| host_named(l, &url)) {
        return Err(LocationError::InternalAddress(host_port));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LocationError::Credentials);
    }
    let mut segments: Vec<String> =
        url.path_segments().map(|s| s.filter(|p| !p.is_empty()).map(percent_decode).collect()).unwrap_or_default();
    let (endpoint, account) = if path_style {
        if segments.is_empty() {
            return Err(LocationError::NoAccount);
        }
        let account = segments.remove(0);
        (format!("{}://{host_port}/{account}", url.scheme()), account)
    } else {
        let account = host.split('.').next().unwrap_or_default().to_string();
        (format!("https://{host_port}"), account)
    };
    if segments.is_empty() {
        return Err(LocationError::NoContainer);
    }
    // Decoded segments are names of one level each: an encoded `/`, `\` or `..` could climb out of the
    // container or the virtual directory once the storage service decodes them.
    let odd = |s: &String| s == "." || s == ".." || s.contains(['/', '\\']) || s.chars().any(char::is_control);
    if segments.iter().any(odd) {
        return Err(LocationError::OddSegment);
    }
    let container = segments.remove(0);
    let prefix = segments.join("/");
    let pairs = sas_pairs(&url)?;
    let sas = sas_query(&pairs, false);
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if param("sig").is_none_or(|s| s.is_empty()) {
        return Err(LocationError::NoSignature);
    }
    if policy.require_write && !param("sp").is_some_and(|p| p.contains('w')) {
        return Err(LocationError::NotWritable);
    }
    let expires = param("se").ok_or(LocationError::NoExpiry).and_then(|se| parse_sas_time(&se))?;
    if expires <= now {
        return Err(LocationError::Expired(expires));
    }
    let stored = canonical(url, &pairs);
    Ok((StorageLocation::AzureBlob { endpoint, account, container, prefix, sas, expires }, stored))
}

/// `url` with its query written anew from `pairs`: whole, and with the signature redacted.
fn canonical(mut url: Url, pairs: &[(String, String)]) -> StoredLocation {
    url.set_fragment(None);
    url.set_query(Some(&sas_query(pairs, false)));
    let secret = url.to_string();
    url.set_query(Some(&sas_query(pairs, true)));
    StoredLocation { shown: url.to_string(), secret: Some(secret) }
}

/// The stored form of a location accepted earlier, without checking it against today's policy or clock
/// (for data written before locations were kept apart); `None` if it no longer parses.
pub fn stored_form(location: &str) -> Option<StoredLocation> {
    let url = Url::parse(location.trim()).ok()?;
    match url.scheme() {
        "file" => Some(StoredLocation { shown: url.to_string(), secret: None }),
        _ => sas_pairs(&url).ok().map(|pairs| canonical(url, &pairs)),
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// SAS times are ISO 8601 UTC, with or without seconds.
fn parse_sas_time(text: &str) -> Result<DateTime<Utc>, LocationError> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%MZ").map(|n| n.and_utc()))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| LocationError::BadExpiry(text.to_string()))
}

pub use crate::redact::REDACTED;

impl StorageLocation {
    /// Where in the target an operation's export goes: `<prefix>/<operation id>`.
    pub fn folder_for(&self, operation: &str) -> String {
        match self {
            StorageLocation::AzureBlob { prefix, .. } if !prefix.is_empty() => format!("{prefix}/{operation}"),
            _ => operation.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LocationPolicy {
        LocationPolicy {
            allowed_hosts: vec!["*.blob.core.windows.net".into()],
            http_hosts: vec!["127.0.0.1:10000".into()],
            local_root: Some(PathBuf::from("/srv/exports")),
            require_write: true,
        }
    }

    #[test]
    fn no_pattern_matches_every_host_and_wildcards_do_not_reach_internal_addresses() {
        for everything in ["*", " * ", "", "*."] {
            assert!(matches!(check_host_pattern(everything), Err(HostPatternError::Everything(_))), "{everything:?}");
        }
        for malformed in ["*.*", "a.*.example", "**.example", "*..example", "bad host"] {
            assert!(matches!(check_host_pattern(malformed), Err(HostPatternError::Malformed(_))), "{malformed:?}");
        }
        for fine in ["*.blob.core.windows.net", "127.0.0.1:10000", "storage.internal", "[::1]:10000"] {
            assert_eq!(check_host_pattern(fine).as_deref(), Ok(fine));
        }
        let sas = "/acct/exports?sp=rw&se=2030-01-01T00:00:00Z&sig=abc";
        let wildcards = LocationPolicy {
            allowed_hosts: vec!["*.254".into(), "*.azure.example".into()],
            http_hosts: vec!["*.1".into()],
            ..policy()
        };
        for internal in [
            "https://169.254.169.254/exports",
            "http://10.0.0.1/acct",
            "http://192.168.1.1/acct",
            "http://127.0.0.1/acct",
        ] {
            let refused = StorageLocation::parse(&format!("{internal}{sas}"), &wildcards, now()).unwrap_err();
            assert!(matches!(refused, LocationError::InternalAddress(_)), "{internal}: {refused}");
        }
        let named = LocationPolicy {
            allowed_hosts: vec!["*.blob.core.windows.net".into(), "10.0.0.7".into()],
            http_hosts: vec!["127.0.0.1:10000".into()],
            ..policy()
        };
        StorageLocation::parse(&format!("https://10.0.0.7/acct{}", &sas[5..]), &named, now()).expect("named exactly");
        StorageLocation::parse(&format!("http://127.0.0.1:10000{sas}"), &named, now()).expect("named exactly");
    }

    #[test]
    fn a_reader_takes_any_host_in_path_style_and_needs_no_write_grant() {
        let reader = LocationPolicy::reader();
        let azure = StorageLocation::parse(
            "https://acct.blob.core.windows.net/exports/gdpr?sp=r&se=2030-01-01T00:00:00Z&sig=abc",
            &reader,
            now(),
        )
        .unwrap();
        assert!(
            matches!(azure, StorageLocation::AzureBlob { ref endpoint, .. } if endpoint == "https://acct.blob.core.windows.net")
        );
        let emulator = StorageLocation::parse(
            "http://127.0.0.1:10000/devstoreaccount1/exports?sp=r&se=2030-01-01T00:00:00Z&sig=abc",
            &reader,
            now(),
        )
        .unwrap();
        assert!(
            matches!(emulator, StorageLocation::AzureBlob { ref endpoint, ref account, .. } if endpoint == "http://127.0.0.1:10000/devstoreaccount1" && account == "devstoreaccount1")
        );
        let expired = "https://acct.blob.core.windows.net/exports?sp=r&se=2025-01-01T00:00:00Z&sig=abc";
        assert!(matches!(StorageLocation::parse(expired, &reader, now()), Err(LocationError::Expired(_))));
        assert!(StorageLocation::parse("file:///home/me/export", &reader, now()).is_ok());
        let writer = "https://acct.blob.core.windows.net/exports?sp=r&se=2030-01-01T00:00:00Z&sig=abc";
        assert!(matches!(StorageLocation::parse(writer, &policy(), now()), Err(LocationError::NotWritable)));
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_azure_sas_url_with_a_virtual_directory() {
        let t = StorageLocation::parse("https://acct.blob.core.windows.net/exports/gdpr/2026?sv=2022-11-02&sp=cw&se=2030-01-01T00:00:00Z&sr=c&sig=abc%2B", &policy(), now()).unwrap();
        let StorageLocation::AzureBlob { endpoint, account, container, prefix, expires, .. } = &t else {
            panic!("{t:?}")
        };
        assert_eq!(
            (endpoint.as_str(), account.as_str(), container.as_str(), prefix.as_str()),
            ("https://acct.blob.core.windows.net", "acct", "exports", "gdpr/2026")
        );
        assert_eq!(expires.to_rfc3339(), "2030-01-01T00:00:00+00:00");
        assert_eq!(t.folder_for("op"), "gdpr/2026/op");
    }

    #[test]
    fn the_emulator_in_path_style() {
        let t = StorageLocation::parse(
            "http://127.0.0.1:10000/devstoreaccount1/c1?sv=2018-11-09&sp=rcwl&se=2030-01-01T00:00:00Z&sr=c&sig=x",
            &policy(),
            now(),
        )
        .unwrap();
        assert!(
            matches!(t, StorageLocation::AzureBlob { ref endpoint, ref container, .. } if endpoint == "http://127.0.0.1:10000/devstoreaccount1" && container == "c1"),
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
            (format!("https://acct.blob.core.windows.net/c/%2F..%2Fother{sas}"), "encoded '/'"),
            (format!("https://acct.blob.core.windows.net/c/a%5C..{sas}"), "encoded '/'"),
            ("file:///srv/exports/a%00b".to_string(), "control characters"),
            (format!("https://acct.blob.core.windows.net/c{sas}&SIG=y"), "more than once"),
            (format!("https://acct.blob.core.windows.net/c{sas}&%73ig=y"), "more than once"),
            (format!("https://acct.blob.core.windows.net/c{sas}&sig=y"), "more than once"),
            ("not a url".to_string(), "absolute URL"),
        ] {
            let err = StorageLocation::parse(&bad, &policy(), now()).expect_err(&bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(StorageLocation::parse("file:///srv/exports/alice", &policy(), now()).is_ok());
    }

    #[test]
    fn redaction_hides_the_signature_only() {
        let r = crate::redact::redact_secrets("https://a.blob.core.windows.net/c?sv=1&sig=secret%2Bx&sp=w");
        assert!(!r.contains("secret") && r.contains("sig=REDACTED") && r.contains("sp=w"), "{r}");
        let t = crate::redact::redact_secrets("error sending request for url (http://h/c/x?sv=1&sig=abc%2B&sp=w): 403");
        assert_eq!(t, "error sending request for url (http://h/c/x?sv=1&sig=REDACTED&sp=w): 403");
    }

    #[test]
    fn encoded_or_upper_case_names_are_the_signature_and_are_kept_apart() {
        for spelled in ["%73ig", "SIG", "Sig", "%53%49%47"] {
            let location =
                format!("https://acct.blob.core.windows.net/c?sv=1&sp=cw&se=2030-01-01T00:00:00Z&{spelled}=SECRET");
            let (target, stored) = accept(&location, &policy(), now()).expect(&location);
            assert!(
                !stored.shown.contains("SECRET") && stored.shown.ends_with("&sig=REDACTED"),
                "{spelled}: {stored:?}"
            );
            assert!(stored.secret.as_deref().is_some_and(|s| s.ends_with("&sig=SECRET")), "{spelled}: {stored:?}");
            let StorageLocation::AzureBlob { sas, .. } = target else { panic!("{target:?}") };
            assert!(sas.ends_with("&sig=SECRET"), "the SAS handed to the storage client names sig plainly: {sas}");
        }
    }

    #[test]
    fn the_stored_form_keeps_what_the_values_mean() {
        let location =
            "https://acct.blob.core.windows.net/c/d?sv=2022-11-02&se=2030-01-01T00:00:00Z&sp=cw&sig=a%2Bb%2F%3D";
        let (_, stored) = accept(location, &policy(), now()).unwrap();
        assert_eq!(stored.secret.as_deref(), Some(location), "a plainly written SAS is stored as written");
        assert_eq!(stored.shown, location.replace("a%2Bb%2F%3D", "REDACTED"));
        assert_eq!(stored_form(location), Some(stored));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_inside_the_local_root_cannot_carry_an_export_out() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let policy = LocationPolicy { local_root: Some(root.path().to_path_buf()), ..LocationPolicy::default() };
        let through_link = url::Url::from_directory_path(root.path().join("link/alice")).unwrap();
        let err = StorageLocation::parse(through_link.as_str(), &policy, now()).unwrap_err();
        assert!(matches!(err, LocationError::OutsideRoot(_)), "{err}");
        let plain = url::Url::from_directory_path(root.path().join("plain/alice")).unwrap();
        assert!(StorageLocation::parse(plain.as_str(), &policy, now()).is_ok());
    }
}
