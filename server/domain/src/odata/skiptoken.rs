//! `$skiptoken`: the opaque continuation in `@odata.nextLink`.
//!
//! It holds the sort-key values and id of the last operation served (keyset paging), so a page continues
//! right after that operation whatever was inserted or deleted meanwhile, and a fingerprint of the query
//! so a token cannot be replayed against another query. The page size is not in it: the next link
//! repeats `$top`.

use super::QueryError;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipToken {
    /// Values of the sort keys of the last operation served, as stored.
    #[serde(rename = "k")]
    pub keys: Vec<serde_json::Value>,
    /// Id of the last operation served.
    #[serde(rename = "i")]
    pub last_id: String,
    /// Fingerprint of `$filter`, `$search` and `$orderby`.
    #[serde(rename = "q")]
    pub query: String,
}

impl SkipToken {
    /// The token as it goes into a URL.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a token from a URL; `fingerprint` is that of the current query.
    pub fn decode(text: &str, fingerprint: &str) -> Result<SkipToken, QueryError> {
        let invalid = || {
            QueryError::new("$skiptoken", "Invalid $skiptoken: use the @odata.nextLink of the previous page as it is")
        };
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| invalid())?;
        let token: SkipToken = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if token.query != fingerprint {
            return Err(QueryError::new(
                "$skiptoken",
                "Invalid $skiptoken: it belongs to a different $filter, $search or $orderby",
            ));
        }
        Ok(token)
    }
}

/// A short, stable fingerprint of the tenant and the options that decide which operations a list holds and
/// their order.
pub fn fingerprint(tenant: &str, filter: Option<&str>, search: Option<&str>, orderby: &[String]) -> String {
    // FNV-1a: stable across builds and platforms, which std's hasher is not.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let text = format!("{tenant}\u{1}{}\u{1}{}\u{1}{}", filter.unwrap_or(""), search.unwrap_or(""), orderby.join(","));
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_is_bound_to_its_query() {
        let q = fingerprint("t", Some("status eq 'running'"), None, &[]);
        let token = SkipToken { keys: vec![serde_json::json!("2024")], last_id: "x".into(), query: q.clone() };
        assert_eq!(SkipToken::decode(&token.encode(), &q).unwrap(), token);
        assert!(SkipToken::decode(&token.encode(), &fingerprint("t", None, None, &[])).is_err());
        assert!(SkipToken::decode("not-a-token", &q).is_err());
    }
}
