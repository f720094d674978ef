//! Keys that rotate: the key set tokens are checked with, and the task that keeps an identity
//! provider's published JWKS in it current.
//!
//! Identity providers rotate signing keys by publishing the next key beside the current one, signing
//! with it some time later, and removing the old one after that. So the set is fetched again when the
//! provider's cache headers say it is stale (bounded by a floor and a ceiling), and at once when a token
//! names a `kid` the set lacks (at most once per floor, so that forged `kid`s cannot make dpo hammer the
//! provider). A failed fetch keeps the last good set: an unreachable provider must not lock every caller
//! out.

use super::keys::{KeyError, VerificationKey, from_jwks};
use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

/// The keys tokens are checked with now: fixed ones (the local key, a JWKS file) and the last good set
/// fetched from the identity provider. Each change bumps its generation, which invalidates what the
/// verifier remembers of tokens checked with an older set.
pub struct KeySet {
    fixed: Vec<VerificationKey>,
    current: RwLock<Keys>,
}

/// One version of a [`KeySet`].
#[derive(Clone)]
pub struct Keys {
    /// Counts the changes.
    pub generation: u64,
    /// The fixed keys, then the fetched ones.
    pub keys: Arc<Vec<VerificationKey>>,
}

impl KeySet {
    /// A set of `fixed` keys, to which fetched ones may be added.
    pub fn new(fixed: Vec<VerificationKey>) -> Self {
        let keys = Keys { generation: 0, keys: Arc::new(fixed.clone()) };
        KeySet { fixed, current: RwLock::new(keys) }
    }

    /// The keys now.
    pub fn current(&self) -> Keys {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the fetched keys with `fetched`.
    fn replace_fetched(&self, fetched: Vec<VerificationKey>) {
        let keys: Vec<VerificationKey> = self.fixed.iter().cloned().chain(fetched).collect();
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Keys { generation: current.generation + 1, keys: Arc::new(keys) };
    }
}

/// How often a JWKS URL is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// The longest a fetched set is used without asking again (also when the provider's cache headers
    /// allow longer, so that a removed key stops being accepted within it).
    pub max_age: Duration,
    /// The least time between two fetches, whatever the cache headers say or tokens ask for.
    pub min_interval: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy { max_age: Duration::from_secs(3600), min_interval: Duration::from_secs(10) }
    }
}

/// Why a JWKS could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The request failed or was answered with an error status.
    #[error("fetching the JWKS at {url}: {source}")]
    Fetch {
        /// The URL.
        url: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// The document is not a usable JWKS.
    #[error("the JWKS at {url}: {source}")]
    Document {
        /// The URL.
        url: String,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
}

/// What a fetch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// A different key set, now in use.
    Changed,
    /// The same keys as before (or `304 Not Modified`).
    Unchanged,
}

/// What the last fetch left to remember.
struct FetchState {
    /// When it was sent (`None`: never).
    at: Option<Instant>,
    /// The provider's `ETag`, sent back as `If-None-Match`.
    etag: Option<String>,
    /// The document's text, to tell whether the keys changed.
    text: String,
    /// How long the provider said the set stays fresh.
    fresh_for: Duration,
}

/// Keeps a [`KeySet`] in step with the JWKS at a URL.
pub struct JwksRefresher {
    url: String,
    http: reqwest::Client,
    policy: RefreshPolicy,
    keys: Arc<KeySet>,
    log: slog::Logger,
    /// Held while fetching: one fetch at a time, and callers that waited see its result.
    state: tokio::sync::Mutex<FetchState>,
}

impl JwksRefresher {
    /// Fetches the JWKS at `url` once (a server cannot start without its keys) and returns the
    /// refresher that keeps `keys` current with it.
    pub async fn start(
        url: &str,
        policy: RefreshPolicy,
        keys: Arc<KeySet>,
        log: slog::Logger,
    ) -> Result<Arc<Self>, JwksError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| JwksError::Fetch { url: url.to_string(), source })?;
        let state = FetchState { at: None, etag: None, text: String::new(), fresh_for: policy.max_age };
        let state = tokio::sync::Mutex::new(state);
        let refresher = Arc::new(JwksRefresher { url: url.to_string(), http, policy, keys, log, state });
        refresher.fetch(&mut *refresher.state.lock().await).await?;
        Ok(refresher)
    }

    /// Fetches the set again, as soon as the floor allows (waiting for it at most once), and says whether
    /// the keys changed since generation `seen`. For a token whose `kid` is unknown: its key may have just
    /// been published. Callers that come together share one fetch.
    pub async fn refresh_for_unknown_key(&self, seen: u64) -> bool {
        let mut waited = false;
        loop {
            let mut state = self.state.lock().await;
            if self.keys.current().generation != seen {
                return true;
            }
            let since = state.at.map(|at| at.elapsed());
            match since {
                Some(since) if since < self.policy.min_interval && waited => return false,
                Some(since) if since < self.policy.min_interval => {
                    drop(state);
                    tokio::time::sleep(self.policy.min_interval - since).await;
                    waited = true;
                }
                _ => return matches!(self.fetch(&mut state).await, Ok(Fetched::Changed)),
            }
        }
    }

    /// Fetches the set (conditionally, with the last `ETag`) and puts it in use if it changed; a change or a
    /// failure is logged.
    async fn fetch(&self, state: &mut FetchState) -> Result<Fetched, JwksError> {
        let outcome = self.fetch_once(state).await;
        let label = match &outcome {
            Ok(Fetched::Changed) => {
                slog::info!(self.log, "token signing keys changed"; "url" => &self.url,
                    "keys" => self.keys.current().keys.len());
                "changed"
            }
            Ok(Fetched::Unchanged) => "unchanged",
            Err(e) => {
                slog::warn!(self.log, "fetching the token signing keys failed; the last good set stays in use";
                    "error" => %e);
                "failed"
            }
        };
        metrics::counter!(dpo_domain::metric_names::JWKS_FETCHES, "outcome" => label).increment(1);
        outcome
    }

    async fn fetch_once(&self, state: &mut FetchState) -> Result<Fetched, JwksError> {
        let fetch_error = |source| JwksError::Fetch { url: self.url.clone(), source };
        state.at = Some(Instant::now());
        let mut request = self.http.get(&self.url);
        if let Some(etag) = &state.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request.send().await.map_err(fetch_error)?;
        let fresh = fresh_for(response.headers());
        let limits = (self.policy.min_interval, self.policy.max_age.max(self.policy.min_interval));
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            // Without cache headers, the stored answer's freshness stays as it was (RFC 9111 §4.3.4).
            if let Some(fresh) = fresh {
                state.fresh_for = fresh.clamp(limits.0, limits.1);
            }
            return Ok(Fetched::Unchanged);
        }
        let response = response.error_for_status().map_err(fetch_error)?;
        let etag = response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = response.text().await.map_err(fetch_error)?;
        let outcome = if text == state.text {
            Fetched::Unchanged
        } else {
            let fetched = from_jwks(&text).map_err(|source| JwksError::Document { url: self.url.clone(), source })?;
            self.keys.replace_fetched(fetched);
            state.text = text;
            Fetched::Changed
        };
        state.etag = etag;
        state.fresh_for = fresh.unwrap_or(self.policy.max_age).clamp(limits.0, limits.1);
        Ok(outcome)
    }

    /// Refetches the set whenever it goes stale, for as long as anything else holds the refresher.
    /// A failed fetch keeps the set in use and is tried again after the floor, then less and less often.
    pub fn keep_current(self: &Arc<Self>) {
        let refresher = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                let (wait, last) = match refresher.upgrade() {
                    Some(refresher) => refresher.next_wait(failures).await,
                    None => return,
                };
                tokio::time::sleep(wait).await;
                let Some(refresher) = refresher.upgrade() else { return };
                let mut state = refresher.state.lock().await;
                if state.at != last {
                    continue; // fetched meanwhile, for a token naming an unknown key: wait from then
                }
                failures = match refresher.fetch(&mut state).await {
                    Ok(_) => 0,
                    Err(_) => failures.saturating_add(1),
                };
            }
        });
    }

    /// How long until the next scheduled fetch, and when the last fetch was: until the set goes stale, or
    /// after `failures` failures, the floor doubled per failure (up to the set's freshness).
    async fn next_wait(&self, failures: u32) -> (Duration, Option<Instant>) {
        let state = self.state.lock().await;
        let since = state.at.map(|at| at.elapsed()).unwrap_or_default();
        let wait = if failures > 0 {
            let backoff = self.policy.min_interval.saturating_mul(1 << failures.min(10));
            backoff.min(state.fresh_for.max(self.policy.min_interval))
        } else {
            state.fresh_for
        };
        (wait.saturating_sub(since), state.at)
    }
}

/// How long an answer stays fresh, from `Cache-Control` (`max-age`; `no-cache`/`no-store`: not at
/// all) or else `Expires`.
fn fresh_for(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    use headers::HeaderMapExt;
    if let Some(control) = headers.typed_get::<headers::CacheControl>() {
        if control.no_cache() || control.no_store() {
            return Some(Duration::ZERO);
        }
        if let Some(max_age) = control.max_age() {
            return Some(max_age);
        }
    }
    let expires = std::time::SystemTime::from(headers.typed_get::<headers::Expires>()?);
    Some(expires.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{CACHE_CONTROL, EXPIRES, HeaderMap, HeaderValue};

    fn headers(pairs: &[(reqwest::header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| (n.clone(), HeaderValue::from_str(v).expect("a header value"))).collect()
    }

    #[test]
    fn freshness_comes_from_cache_control_then_expires() {
        assert_eq!(fresh_for(&headers(&[(CACHE_CONTROL, "public, max-age=86400")])), Some(Duration::from_secs(86400)));
        assert_eq!(fresh_for(&headers(&[(CACHE_CONTROL, "no-cache")])), Some(Duration::ZERO));
        assert_eq!(fresh_for(&headers(&[(CACHE_CONTROL, "max-age=oops")])), None);
        assert_eq!(fresh_for(&headers(&[(EXPIRES, "Thu, 01 Jan 1970 00:00:00 GMT")])), Some(Duration::ZERO));
        let later = (chrono::Utc::now() + chrono::Duration::hours(2)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let left = fresh_for(&headers(&[(EXPIRES, &later)])).expect("a freshness");
        assert!(left > Duration::from_secs(7000) && left <= Duration::from_secs(7200), "{left:?}");
        assert_eq!(fresh_for(&HeaderMap::new()), None);
    }

    #[test]
    fn a_replaced_set_keeps_the_fixed_keys_and_counts_the_change() {
        let dir = tempfile::tempdir().expect("temp dir");
        let local = super::super::keys::LocalKey::open(dir.path()).expect("local key").verification();
        let set = KeySet::new(vec![local]);
        assert_eq!(set.current().generation, 0);
        set.replace_fetched(Vec::new());
        let now = set.current();
        assert_eq!((now.generation, now.keys.len()), (1, 1));
        assert_eq!(now.keys[0].kid.as_deref(), Some(super::super::keys::LOCAL_KEY_ID));
    }
}
