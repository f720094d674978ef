//! Request fix-ups for what progenitor gets wrong against an OData service.
//!
//! - progenitor ignores `explode: false` and sends `$select=a&$select=b`; OData (and dpo) want `$select=a,b`.
//!   The same holds for `$orderby` and `$expand`.
//! - progenitor 0.15 adds an `api-version: <info.version>` header to every request; Graph has no such header.
//!
//! Implementing `ClientHooks` for `Client` (the generated code implements it for `&Client`) makes method
//! resolution pick these hooks for every generated call.

use crate::generated::Client;
use progenitor_client::{ClientHooks, Error, OperationInfo};

/// Query options that OData sends as one comma-separated value.
const COMMA_SEPARATED: [&str; 3] = ["$select", "$orderby", "$expand"];

impl ClientHooks<()> for Client {
    async fn pre<E>(&self, request: &mut reqwest::Request, _info: &OperationInfo) -> Result<(), Error<E>> {
        request.headers_mut().remove("api-version");
        fold_repeated_options(request.url_mut());
        Ok(())
    }
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
    fn a_query_without_repeats_is_left_alone() {
        let mut url = reqwest::Url::parse("http://h/x?%24select=id&%24top=2").unwrap();
        fold_repeated_options(&mut url);
        assert_eq!(url.query(), Some("%24select=id&%24top=2"));
    }
}
