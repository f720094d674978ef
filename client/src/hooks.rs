//! Request fix-ups for what progenitor gets wrong against an OData service.
//!
//! - progenitor ignores `explode: false` and sends `$select=a&$select=b`; OData (and dpo) want `$select=a,b`.
//!   The same holds for `$orderby` and `$expand`.
//! - progenitor 0.15 adds an `api-version: <info.version>` header to every request; Graph has no such header.
//! - Throttled (`429`) and busy (`503`) answers are retried after their `Retry-After`, as Microsoft's Graph
//!   SDKs do by default ([`exec`](ClientHooks::exec), see [`retry_wait`]), so that every call of the client
//!   and of the `dpo` CLI rides out throttling.
//!
//! Implementing `ClientHooks` for `Client` (the generated code implements it for `&Client`) makes method
//! resolution pick these hooks for every generated call.

use crate::generated::Client;
use progenitor_client::{ClientHooks, Error, OperationInfo};

/// Query options that OData sends as one comma-separated value.
const COMMA_SEPARATED: [&str; 3] = ["$select", "$orderby", "$expand"];

/// Times a throttled or busy call is tried again.
pub const RETRIES: u32 = 4;
/// The longest wait before a retry, whatever `Retry-After` says: a longer one is the caller's to decide.
pub const MAX_RETRY_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl ClientHooks<()> for Client {
    async fn pre<E>(&self, request: &mut reqwest::Request, _info: &OperationInfo) -> Result<(), Error<E>> {
        request.headers_mut().remove("api-version");
        fold_repeated_options(request.url_mut());
        Ok(())
    }

    async fn exec(&self, request: reqwest::Request, _info: &OperationInfo) -> reqwest::Result<reqwest::Response> {
        use crate::generated::ClientInfo;
        let repeatable = [reqwest::Method::GET, reqwest::Method::HEAD, reqwest::Method::PUT, reqwest::Method::DELETE]
            .contains(request.method());
        let mut attempt = 0;
        let mut request = request;
        loop {
            let again = request.try_clone();
            let response = self.client().execute(request).await?;
            let wait = retry_wait(response.status(), response.headers(), attempt, repeatable);
            match (wait, again) {
                (Some(wait), Some(next)) => {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    request = next;
                }
                _ => return Ok(response),
            }
        }
    }
}

/// How long to wait before trying a request again after an answer of `status` with `headers`, if it
/// should be (`attempt` retries so far): a `429` (the service did nothing, so any method may be retried)
/// or a `503` to a `repeatable` (idempotent) method, after its `Retry-After` (or 1, 2, 4… seconds without
/// one), at most [`RETRIES`] times and never longer than [`MAX_RETRY_WAIT`].
pub fn retry_wait(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    attempt: u32,
    repeatable: bool,
) -> Option<std::time::Duration> {
    let retry = status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || (status == reqwest::StatusCode::SERVICE_UNAVAILABLE && repeatable);
    if !retry || attempt >= RETRIES {
        return None;
    }
    let said = crate::waiting::retry_after_header(headers);
    let wait = said.unwrap_or(std::time::Duration::from_secs(1 << attempt.min(5)));
    (wait <= MAX_RETRY_WAIT).then_some(wait)
}

/// Rewrites `?$select=a&$select=b` into `?$select=a,b`, keeping `$` and `,` literal as OData expects.
pub fn fold_repeated_options(url: &mut reqwest::Url) {
    let Some(query) = url.query() else { return };
    let mut order: Vec<String> = Vec::new();
    let mut values: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let key = key.into_owned();
        if !values.contains_key(&key) {
            order.push(key.clone());
        }
        values.entry(key).or_default().push(value.into_owned());
    }
    if !order.iter().any(|k| COMMA_SEPARATED.contains(&k.as_str()) && values[k].len() > 1) {
        return;
    }
    let encode = |s: &str| -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace("%24", "$").replace("%2C", ",")
    };
    let rebuilt: Vec<String> = order
        .iter()
        .flat_map(|key| {
            let vals = &values[key];
            if COMMA_SEPARATED.contains(&key.as_str()) {
                vec![format!("{}={}", encode(key), vals.iter().map(|v| encode(v)).collect::<Vec<_>>().join(","))]
            } else {
                vals.iter().map(|v| format!("{}={}", encode(key), encode(v))).collect()
            }
        })
        .collect();
    url.set_query(Some(&rebuilt.join("&")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_select_becomes_one_comma_separated_value() {
        let mut url =
            reqwest::Url::parse("http://h/x?%24select=id&%24select=status&%24top=2&%24filter=a%20eq%20%27b%27")
                .unwrap();
        fold_repeated_options(&mut url);
        assert_eq!(url.query(), Some("$select=id,status&$top=2&$filter=a+eq+%27b%27"));
    }

    #[test]
    fn throttled_and_busy_answers_are_retried_as_retry_after_says() {
        use reqwest::{StatusCode, header::HeaderMap};
        let after = |seconds: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(reqwest::header::RETRY_AFTER, seconds.parse().unwrap());
            headers
        };
        let secs = std::time::Duration::from_secs;
        assert_eq!(retry_wait(StatusCode::TOO_MANY_REQUESTS, &after("3"), 0, false), Some(secs(3)), "a POST too");
        assert_eq!(retry_wait(StatusCode::SERVICE_UNAVAILABLE, &after("2"), 0, true), Some(secs(2)));
        assert_eq!(
            retry_wait(StatusCode::SERVICE_UNAVAILABLE, &after("2"), 0, false),
            None,
            "a 503 POST may have acted"
        );
        assert_eq!(retry_wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), 2, true), Some(secs(4)), "backoff");
        assert_eq!(retry_wait(StatusCode::TOO_MANY_REQUESTS, &after("3"), RETRIES, true), None, "attempts run out");
        assert_eq!(retry_wait(StatusCode::TOO_MANY_REQUESTS, &after("3600"), 0, true), None, "too long to wait");
        assert_eq!(retry_wait(StatusCode::BAD_REQUEST, &after("1"), 0, true), None);
    }

    #[test]
    fn a_query_without_repeats_is_left_alone() {
        let mut url = reqwest::Url::parse("http://h/x?%24select=id&%24top=2").unwrap();
        fold_repeated_options(&mut url);
        assert_eq!(url.query(), Some("%24select=id&%24top=2"));
    }
}
