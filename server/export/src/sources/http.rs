//! `http` sources: the records an organisation's own HTTP API holds about a person, fetched page by page
//! (`@odata.nextLink` in the body, or a `Link: <…>; rel="next"` header) into one JSON-lines file.
//!
//! The server is only ever sent where the operator said: the URL's host, or the hosts the source lists,
//! for the first request, every next page and every redirect alike (the same host rule as storage
//! locations), and never down from https to plain http. Busy or failing servers (429, 5xx, a dropped
//! connection, a timeout) are asked again with backoff, waiting as long as their `Retry-After` says.

use super::{Identities, SourceError, values::compact};
use dpo_contract::location::host_matches;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::{StatusCode, header::HeaderMap};
use serde_json::value::RawValue;
use std::{collections::HashMap, sync::Arc, time::Duration};
use url::Url;

/// Longest `Retry-After` dpo waits for; a server asking for more fails the source at once.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// The largest page dpo reads (pages are held whole while their records are written out).
pub const MAX_PAGE_BYTES: usize = 32 << 20;

/// An HTTP API that holds records about people.
#[derive(Clone, PartialEq)]
pub struct HttpSource {
    /// The URL template as written: `https://crm.internal/api/people/{mail}/records`.
    pub template: String,
    /// Headers sent with every request, as written in the file.
    pub headers: Vec<(String, String)>,
    /// The environment variable the bearer token was read from, and the token.
    pub token: Option<(String, Secret)>,
    /// Host patterns requests may go to (by default the URL's own host and port).
    pub allowed_hosts: Vec<String>,
    /// How long one request may take, from connecting to its last byte.
    pub timeout: Duration,
    /// How many times a failed request is asked again.
    pub retries: u32,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("template", &self.template)
            .field("headers", &self.headers)
            .field("token_env", &self.token.as_ref().map(|(name, _)| name))
            .field("allowed_hosts", &self.allowed_hosts)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

/// A value that is never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Characters escaped in an identity placed in a path segment: everything that could end or climb out
/// of the segment (`/`, `?`, `#`, `%`).
const PATH_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');
/// Characters escaped in an identity placed in the query: those that would end or re-shape the pair.
const QUERY_VALUE: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'&').add(b'+').add(b'=').add(b'?').add(b'<').add(b'>');

impl HttpSource {
    /// The identities its URL template names.
    pub fn names(&self) -> Vec<&str> {
        super::file::placeholders(&self.template)
    }

    /// Checks a source as the file writes it: the template's placeholders (each one of `names`), its host
    /// and the headers.
    pub fn new(
        names: &[String],
        template: String,
        headers: Vec<(String, String)>,
        token: Option<(String, Secret)>,
        allowed_hosts: Option<Vec<String>>,
        timeout: Duration,
        retries: u32,
    ) -> Result<HttpSource, String> {
        let (before_path, _) = template
            .split_once("://")
            .map(|(scheme, rest)| (scheme, rest.split(['/', '?']).next().unwrap_or_default()))
            .ok_or("the URL must look like https://crm.internal/api/people/{mail}/records")?;
        if ["http", "https"].iter().all(|s| !before_path.eq_ignore_ascii_case(s)) {
            return Err("the URL must start with https:// (or http:// for a server on this network)".into());
        }
        let authority = template.split_once("://").map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
        if authority.is_some_and(|a| a.contains('{')) {
            return Err("identities may only be in the URL's path and query, not in its host".into());
        }
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').ok_or("an unclosed { in the URL")? + open;
            let name = &rest[open + 1..close];
            if !names.iter().any(|n| n == name) {
                return Err(format!(
                    "{{{name}}} is not an identity of the person (they are {{{}}})",
                    names.join("}, {")
                ));
            }
            rest = &rest[close + 1..];
        }
        if !template.contains('{') {
            return Err(
                "the URL names no identity ({id}, {user_principal_name}, {mail}, {first_name}, {last_name} or \
                 {residency}): every export would fetch the same records"
                    .into(),
            );
        }
        let example = Url::parse(&template.replace(['{', '}'], "")).map_err(|e| format!("the URL: {e}"))?;
        if !example.username().is_empty() || example.password().is_some() {
            return Err("the URL may not carry a user name or password: use token_env".into());
        }
        let own = match example.port() {
            Some(port) => format!("{}:{port}", example.host_str().unwrap_or_default()),
            None => example.host_str().unwrap_or_default().to_string(),
        };
        let allowed_hosts = allowed_hosts.unwrap_or_else(|| vec![own.clone()]);
        if !listed(&allowed_hosts, &example) {
            return Err(format!("the URL's host {own} is not in allowed_hosts ({})", allowed_hosts.join(", ")));
        }
        for (name, value) in &headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a header name"))?;
            reqwest::header::HeaderValue::from_str(value).map_err(|_| format!("the header {name} has a bad value"))?;
            if name.eq_ignore_ascii_case("authorization") {
                return Err("the Authorization header comes from token_env, never from the file itself".into());
            }
        }
        if let Some((name, Secret(token))) = &token {
            reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| format!("the token in {name} cannot be sent in a header"))?;
        }
        if timeout.is_zero() {
            return Err("timeout_seconds must be at least 1".into());
        }
        Ok(HttpSource { template, headers, token, allowed_hosts, timeout, retries })
    }

    /// The first URL for `who`, each identity percent-encoded where it stands (`None`: an identity the
    /// template names is unknown for this person, who then has no records there).
    pub fn url_for(&self, who: &Identities) -> Result<Option<Url>, SourceError> {
        let template = self.template.as_str();
        let query_at = template.find('?').unwrap_or(template.len());
        let (mut url, mut last) = (String::new(), 0);
        while let Some(found) = template[last..].find('{') {
            let open = last + found;
            let close = template[open..].find('}').map_or(template.len(), |c| c + open);
            url.push_str(&template[last..open]);
            let name = &template[(open + 1).min(close)..close];
            let Some(value) = who.get(name).filter(|v| !v.is_empty()) else { return Ok(None) };
            url.extend(utf8_percent_encode(value, if open < query_at { PATH_VALUE } else { QUERY_VALUE }));
            last = (close + 1).min(template.len());
        }
        url.push_str(&template[last..]);
        let refused = |reason: String| SourceError::HttpUrl { url: self.template.clone(), reason };
        let url = Url::parse(&url).map_err(|e| refused(e.to_string()))?;
        // A value of "." or ".." alone would still be read as a step up the path: never sent.
        let segments = |path: &str| path.split('/').count();
        let written = template[..query_at].split_once("://").map_or("", |(_, rest)| rest);
        let path = &written[written.find('/').unwrap_or(written.len())..];
        if segments(url.path()) != segments(if path.is_empty() { "/" } else { path }) {
            return Err(refused(format!(
                "the person's identities cannot be placed in it as one path segment each ({})",
                shown(&url)
            )));
        }
        self.allowed(&url, &url)?;
        Ok(Some(url))
    }

    /// Refuses `url` unless its host is allowed and it keeps to https when `from` did.
    fn allowed(&self, url: &Url, from: &Url) -> Result<(), SourceError> {
        let downgrade = url.scheme() != "https" && (from.scheme() == "https" || url.scheme() != "http");
        if downgrade || !listed(&self.allowed_hosts, url) {
            return Err(SourceError::HttpNotAllowed { url: shown(url), allowed: self.allowed_hosts.join(", ") });
        }
        Ok(())
    }

    /// A client for this source: its timeout, and redirects followed only to allowed hosts.
    fn client(self: &Arc<Self>) -> Result<reqwest::Client, SourceError> {
        let source = self.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let from = attempt.previous().last().cloned();
            if attempt.previous().len() > 5 {
                attempt.error("more than 5 redirects")
            } else if from.is_some_and(|from| source.allowed(attempt.url(), &from).is_err()) {
                let refused =
                    SourceError::HttpNotAllowed { url: shown(attempt.url()), allowed: source.allowed_hosts.join(", ") };
                attempt.error(refused)
            } else {
                attempt.follow()
            }
        });
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        if !headers.contains_key(reqwest::header::ACCEPT) {
            headers.insert(reqwest::header::ACCEPT, reqwest::header::HeaderValue::from_static("application/json"));
        }
        if let Some((_, Secret(token))) = &self.token
            && let Ok(mut value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        {
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .redirect(redirects)
            .default_headers(headers)
            .user_agent(concat!("dpo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|cause| SourceError::HttpClient { cause })
    }
}

impl HttpSource {
    /// Asks the server for the template's fixed part (the URL up to the first identity, `HEAD`): any
    /// answer but 401 and 403 shows that it is reachable and takes the token. Returns the status.
    pub async fn probe(&self) -> Result<u16, SourceError> {
        let fixed = &self.template[..self.template.find('{').unwrap_or(self.template.len())];
        let fixed = &fixed[..fixed.rfind('/').map_or(fixed.len(), |slash| slash + 1)];
        let url = Url::parse(fixed)
            .map_err(|e| SourceError::HttpUrl { url: self.template.clone(), reason: e.to_string() })?;
        let client = Arc::new(self.clone()).client()?;
        let response = client
            .head(url.clone())
            .send()
            .await
            .map_err(|cause| SourceError::HttpRequest { url: shown(&url), cause })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(SourceError::HttpStatus {
                url: shown(&url),
                status: status.as_u16(),
                body: "the server refused the credentials (token_env)".into(),
            });
        }
        Ok(status.as_u16())
    }
}

impl HttpSource {
    /// Sends the erase request for `who` (`method` to this template's URL, with the source's headers and
    /// token, redirects only to allowed hosts, asked again on a 429 or a 5xx as reads are): the status it
    /// answered, a 404 included (the API no longer knows the person: nothing left to erase); `None` when an
    /// identity the URL names is unknown.
    pub async fn send_erase(&self, method: &str, who: &Identities) -> Result<Option<u16>, SourceError> {
        let Some(url) = self.url_for(who)? else { return Ok(None) };
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| SourceError::HttpUrl { url: shown(&url), reason: e.to_string() })?;
        let client = Arc::new(self.clone()).client()?;
        // Asked again on a 429 or a 5xx as a read is: an erase request must be idempotent anyway.
        let response = answered(&url, self.retries, || client.request(method.clone(), url.clone())).await?;
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(Some(status.as_u16()));
        }
        let body = response.text().await.unwrap_or_default();
        Err(SourceError::HttpStatus { url: shown(&url), status: status.as_u16(), body: excerpt(&body) })
    }
}

/// Whether `url`'s host is one of `patterns`: a pattern names a port exactly when the URL does (another
/// port of an allowed host may be another service).
fn listed(patterns: &[String], url: &Url) -> bool {
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else { return false };
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    patterns.iter().any(|pattern| host_matches(pattern, &host))
}

/// A URL as errors and logs show it: without its query, which may hold a person's identity or a key.
fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// A source's records for one person as the bytes of its JSON-lines file, a page at a time.
pub struct HttpRecords {
    source: Arc<HttpSource>,
    client: reqwest::Client,
    /// The next page to read, or why the next link cannot be followed (said after this page's records).
    next: Option<Result<Url, SourceError>>,
    first: bool,
    seen: std::collections::HashSet<Url>,
    /// The page being handed out, a piece at a time.
    page: Option<Page>,
    /// Pages fetched so far.
    pages: u64,
}

/// A page read: its body, where each record lies in it, and how many were handed out.
struct Page {
    body: Vec<u8>,
    records: Vec<std::ops::Range<usize>>,
    at: usize,
}

/// Bytes of JSON lines handed out at a time: a page of many MiB is not copied whole beside its body.
const PIECE_BYTES: usize = 1 << 20;

impl HttpRecords {
    /// Prepares to fetch `source`'s records of `who` (nothing is sent before [`HttpRecords::next`]).
    pub fn start(source: &HttpSource, who: &Identities) -> Result<HttpRecords, SourceError> {
        let source = Arc::new(source.clone());
        let next = source.url_for(who)?.map(Ok);
        let client = source.client()?;
        Ok(HttpRecords { source, client, next, first: true, seen: Default::default(), page: None, pages: 0 })
    }

    /// Pages fetched so far.
    pub fn pages_read(&self) -> u64 {
        self.pages
    }

    /// Whether the next call to [`HttpRecords::next`] would fetch a page (or report a refused next link)
    /// rather than hand out more of the page read.
    pub fn would_fetch(&self) -> bool {
        self.page.is_none() && self.next.is_some()
    }

    /// The next piece of records as JSON lines (at most about [`PIECE_BYTES`], all of a page's records
    /// before the next page is fetched), and how many; `None` after the last page.
    pub async fn next(&mut self) -> Option<Result<(Vec<u8>, u64), SourceError>> {
        if self.page.is_none() {
            let url = match self.next.take()? {
                Ok(url) => url,
                Err(refused) => return Some(Err(refused)),
            };
            if !self.seen.insert(url.clone()) {
                return Some(Err(SourceError::HttpPaging { url: shown(&url) }));
            }
            let first = std::mem::replace(&mut self.first, false);
            match self.page(url, first).await {
                Ok(Some(page)) => self.page = Some(page),
                Ok(None) => return Some(Ok((Vec::new(), 0))),
                Err(failed) => return Some(Err(failed)),
            }
            self.pages += 1;
        }
        let page = self.page.as_mut()?;
        let start = page.at;
        let mut lines = Vec::new();
        while let Some(record) = page.records.get(page.at) {
            if !lines.is_empty() && lines.len() + record.len() > PIECE_BYTES {
                break;
            }
            compact(&page.body[record.clone()], &mut lines);
            lines.push(b'\n');
            page.at += 1;
        }
        let count = (page.at - start) as u64;
        if page.at == page.records.len() {
            self.page = None;
        }
        Some(Ok((lines, count)))
    }

    /// Fetches the page at `url`: its records (where each lies in the body), with the next link noted;
    /// `None` when the first page is a 404.
    async fn page(&mut self, url: Url, first: bool) -> Result<Option<Page>, SourceError> {
        let Some((body, link)) = self.fetch(&url, first).await? else { return Ok(None) };
        let (records, next) = records(&body).map_err(|reason| SourceError::HttpBody { url: shown(&url), reason })?;
        let next = next.or(link);
        if let Some(next) = next {
            let next = url.join(&next).map_err(|e| SourceError::HttpUrl { url: shown(&url), reason: e.to_string() });
            self.next = Some(next.and_then(|next| self.source.allowed(&next, &url).map(|()| next)));
        }
        // Each record borrows from the body: where it lies, so that the body can move into the page.
        let base = body.as_ptr() as usize;
        let records = records
            .iter()
            .map(|record| {
                let start = record.get().as_ptr() as usize - base;
                start..start + record.get().len()
            })
            .collect();
        Ok(Some(Page { body, records, at: 0 }))
    }

    /// The body of a successful answer to `url` and its `Link: rel="next"`, asking again on 429, 5xx and
    /// failed connections; `None` when the first page is a 404 (the API does not know the person).
    async fn fetch(&self, url: &Url, first: bool) -> Result<Option<(Vec<u8>, Option<String>)>, SourceError> {
        let response = answered(url, self.source.retries, || self.client.get(url.clone())).await?;
        match response.status() {
            status if status.is_success() => {
                let link = next_link(response.headers());
                read_body(response, url).await.map(|body| Some((body, link)))
            }
            StatusCode::NOT_FOUND if first => Ok(None),
            status => {
                let body = response.text().await.unwrap_or_default();
                Err(SourceError::HttpStatus { url: shown(url), status: status.as_u16(), body: excerpt(&body) })
            }
        }
    }
}

/// The answer to the request `build` makes for `url`, asked again (at most `retries` more times) while it
/// is a 429 or a 5xx or the connection fails, waiting as the service says (`Retry-After`, up to
/// [`MAX_RETRY_AFTER`]) or exponentially: a page read and an erase request alike.
async fn answered(
    url: &Url,
    retries: u32,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, SourceError> {
    let mut attempt = 0;
    let mut waits = crate::retry::source_delays();
    loop {
        let failure = match build().send().await {
            Ok(response) if retryable(response.status()) && attempt < retries => {
                match retry_after(response.headers()) {
                    Some(wait) if wait > MAX_RETRY_AFTER => {
                        return Err(SourceError::HttpStatus {
                            url: shown(url),
                            status: response.status().as_u16(),
                            body: format!("it asked to wait {} s, longer than dpo waits", wait.as_secs()),
                        });
                    }
                    wait => wait,
                }
            }
            Ok(response) => return Ok(response),
            Err(cause) if attempt < retries && !cause.is_redirect() && !cause.is_builder() => None,
            Err(cause) => return Err(SourceError::HttpRequest { url: shown(url), cause }),
        };
        // The exponential wait moves on even when the service said how long to wait.
        let next = waits.next().unwrap_or(crate::retry::SOURCE_MOST);
        let wait = failure.unwrap_or(next);
        attempt += 1;
        tokio::time::sleep(wait).await;
    }
}

/// Statuses worth asking again: too many requests, and the server's own failures but 501 (it will never
/// implement the call).
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}

/// `Retry-After` as a wait: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    dpo_contract::retry_after::wait(value, chrono::Utc::now())
}

/// The `rel="next"` target of a `Link` header (RFC 8288), as written (it may be relative).
fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let mut rest = value.to_str().ok()?;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>')? + open;
            let target = &rest[open + 1..close];
            let params = &rest[close + 1..];
            let params = &params[..params.find('<').unwrap_or(params.len())];
            let next = params.split(';').any(|p| {
                let p = p.trim().trim_end_matches(',');
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("rel")
                        && v.trim().trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
                })
            });
            if next {
                return Some(target.to_string());
            }
            rest = &rest[close + 1..];
        }
    }
    None
}

/// The body of a successful answer, at most [`MAX_PAGE_BYTES`].
async fn read_body(mut response: reqwest::Response, url: &Url) -> Result<Vec<u8>, SourceError> {
    let too_large = || SourceError::HttpBody {
        url: shown(url),
        reason: format!("the page is larger than {} MiB", MAX_PAGE_BYTES >> 20),
    };
    if response.content_length().is_some_and(|n| n > MAX_PAGE_BYTES as u64) {
        return Err(too_large());
    }
    // Sized at once when the length is known: grown by doubling, a page briefly took twice its size.
    let mut body = Vec::with_capacity(response.content_length().map_or(0, |n| n as usize));
    while let Some(chunk) =
        response.chunk().await.map_err(|cause| SourceError::HttpRequest { url: shown(url), cause })?
    {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The records of a page and its `@odata.nextLink`: the `value` array of an OData collection, the
/// elements of a bare array, or a single object as one record. Records keep their keys' order.
fn records(body: &[u8]) -> Result<(Vec<&RawValue>, Option<String>), String> {
    let text = std::str::from_utf8(body).map_err(|_| "the page is not UTF-8 text".to_string())?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Ok((Vec::new(), None));
    }
    let not_json = |e: serde_json::Error| format!("the page is not JSON: {e}");
    if trimmed.starts_with('[') {
        return Ok((serde_json::from_str(text).map_err(not_json)?, None));
    }
    if trimmed.starts_with('{') {
        let fields: HashMap<String, &RawValue> = serde_json::from_str(text).map_err(not_json)?;
        if let Some(value) = fields.get("value")
            && let Ok(records) = serde_json::from_str::<Vec<&RawValue>>(value.get())
        {
            let next = match fields.get("@odata.nextLink") {
                Some(link) => Some(
                    serde_json::from_str::<Option<String>>(link.get())
                        .map_err(|_| "@odata.nextLink is not a string".to_string())?,
                )
                .flatten(),
                None => None,
            };
            return Ok((records, next));
        }
        return Ok((vec![serde_json::from_str(text).map_err(not_json)?], None));
    }
    Err("the page is neither a JSON object nor an array".into())
}

/// At most 300 characters of an error page, secrets taken out (an upstream may echo the request's key).
fn excerpt(body: &str) -> String {
    let body = dpo_contract::redact::redact_secrets(body.trim());
    let body = body.as_str();
    match body.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &body[..at]),
        None => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identities {
        Identities {
            id: Some("a/../b".into()),
            user_principal_name: Some("alice@contoso.com".into()),
            mail: Some("alice+x@contoso.com".into()),
            ..Default::default()
        }
    }

    fn names() -> Vec<String> {
        crate::sources::file::IDENTITIES.map(String::from).to_vec()
    }

    fn source(template: &str) -> HttpSource {
        HttpSource::new(&names(), template.into(), Vec::new(), None, None, Duration::from_secs(5), 2).unwrap()
    }

    #[test]
    fn identities_are_encoded_where_they_stand_and_cannot_climb_out() {
        let s = source("https://crm.internal/api/people/{id}/records?mail={mail}&x=1");
        let url = s.url_for(&alice()).unwrap().unwrap();
        assert_eq!(url.path(), "/api/people/a%2F..%2Fb/records");
        let mut dots = alice();
        dots.id = Some("..".into());
        assert!(s.url_for(&dots).is_err(), "a bare .. is never sent");
        assert_eq!(url.query(), Some("mail=alice%2Bx@contoso.com&x=1"));
        let mut nobody = alice();
        nobody.mail = None;
        assert!(s.url_for(&nobody).unwrap().is_none(), "no mail: no records there");
    }

    #[test]
    fn templates_are_checked() {
        let new = |t: &str| HttpSource::new(&names(), t.into(), Vec::new(), None, None, Duration::from_secs(5), 2);
        assert!(new("https://{id}.crm.internal/x").unwrap_err().contains("host"));
        assert!(new("https://crm.internal/x/{phone}").unwrap_err().contains("{phone}"));
        assert!(new("https://crm.internal/x").unwrap_err().contains("no identity"));
        assert!(new("ftp://crm.internal/{id}").unwrap_err().contains("https://"));
        assert!(new("https://u:p@crm.internal/{id}").unwrap_err().contains("password"));
        let auth = HttpSource::new(
            &names(),
            "https://crm.internal/{id}".into(),
            vec![("Authorization".into(), "Bearer x".into())],
            None,
            None,
            Duration::from_secs(5),
            2,
        );
        assert!(auth.unwrap_err().contains("token_env"));
        let elsewhere = HttpSource::new(
            &names(),
            "https://crm.internal/{id}".into(),
            Vec::new(),
            None,
            Some(vec!["*.api.contoso.com".into()]),
            Duration::from_secs(5),
            2,
        );
        assert!(elsewhere.unwrap_err().contains("allowed_hosts"));
    }

    #[test]
    fn next_pages_stay_on_allowed_hosts_and_on_https() {
        let s = source("https://crm.internal/people/{id}");
        let from = Url::parse("https://crm.internal/people/a").unwrap();
        assert!(s.allowed(&Url::parse("https://crm.internal/people/a?page=2").unwrap(), &from).is_ok());
        assert!(s.allowed(&Url::parse("https://169.254.169.254/latest").unwrap(), &from).is_err());
        assert!(s.allowed(&Url::parse("http://crm.internal/people/a?page=2").unwrap(), &from).is_err());
        assert!(s.allowed(&Url::parse("https://crm.internal:8443/people").unwrap(), &from).is_err());
    }

    #[test]
    fn pages_of_every_shape_give_their_records_in_order() {
        let (records, next) =
            records(br#"{"@odata.context":"x","value":[{"b":1,"a":2},{"z":"x y"}],"@odata.nextLink":"/p2"}"#).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(next.as_deref(), Some("/p2"));
        let mut out = Vec::new();
        compact(records[0].get().as_bytes(), &mut out);
        assert_eq!(out, br#"{"b":1,"a":2}"#);
        let (records, next) = records_of(b"[\n {\"a\": \"line\\nbreak \\\" q\"},\n 2\n]");
        let mut out = Vec::new();
        compact(records[0].get().as_bytes(), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":"line\nbreak \" q"}"#);
        assert_eq!((records.len(), next), (2, None));
        assert_eq!(records_of(br#"{"id": 7}"#).0.len(), 1, "a single object is one record");
        assert_eq!(records_of(b"  ").0.len(), 0);
        assert!(super::records(b"<html>").is_err());
    }

    fn records_of(body: &[u8]) -> (Vec<&RawValue>, Option<String>) {
        records(body).unwrap()
    }

    #[test]
    fn link_headers_and_retry_after_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            r#"<https://x/p1>; rel="prev", </people/a?page=3>; rel="next""#.parse().unwrap(),
        );
        assert_eq!(next_link(&headers).as_deref(), Some("/people/a?page=3"));
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        headers.insert(reqwest::header::RETRY_AFTER, later.parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30), "{wait:?}");
    }
}
