//! Secrets taken out of text that is shown or logged: the values of secret-like parameters (a SAS
//! signature, a password, a token, an API key) wherever a URL, a query string or a `name=value` list
//! appears in it, and the password of a URL's user information. One set of rules for the server's log,
//! failure reasons, manifests and `config check`.

/// What a secret is replaced with wherever it would be shown.
pub const REDACTED: &str = "REDACTED";

/// Whether a parameter named `name` (already decoded) carries a secret.
pub fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    const EXACT: [&str; 8] = ["sig", "signature", "key", "pass", "pwd", "auth", "authorization", "code_verifier"];
    const PART: [&str; 7] = ["password", "passwd", "secret", "token", "apikey", "api_key", "credential"];
    EXACT.contains(&name.as_str())
        || PART.iter().any(|part| name.contains(part))
        || name.ends_with("_key")
        || name.ends_with("-key")
}

/// Characters that may make up a parameter's name.
fn name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'%')
}

/// Where a value that starts at `text[0]` ends: a quoted value at its closing quote, another at the
/// first separator of a query string, a keyword list or a sentence.
fn value_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    if let Some(&quote @ (b'\'' | b'"')) = bytes.first() {
        return text[1..].find(quote as char).map_or(text.len(), |end| end + 2);
    }
    text.find(|c: char| {
        c == '&' || c == ';' || c == ',' || c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | '#')
    })
    .unwrap_or(text.len())
}

/// Whether `text` may hold a secret [`redact_secrets`] would take out: it has a `name=value` pair or a
/// URL. A quick test, so that text without either (most log lines) is not copied.
pub fn may_hold_secrets(text: &[u8]) -> bool {
    // The searcher is built once: `memmem::find` builds one on every call, which cost more than the search.
    static URL: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"://"));
    memchr::memchr(b'=', text).is_some() || URL.find(text).is_some()
}

/// `text` with every secret-like parameter's value, and every URL's password, replaced by [`REDACTED`].
pub fn redact_secrets(text: &str) -> String {
    let without_passwords = redact_userinfo(text);
    let text = without_passwords.as_str();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = text[at..].find('=') {
        let equals = at + found;
        let mut start = equals;
        while start > 0 && name_char(bytes[start - 1]) {
            start -= 1;
        }
        let boundary = start == 0
            || matches!(bytes[start - 1], b'?' | b'&' | b';' | b',' | b'"' | b'\'' | b'(' | b'{')
            || bytes[start - 1].is_ascii_whitespace();
        let name = percent_encoding::percent_decode_str(&text[start..equals]).decode_utf8_lossy();
        if start < equals && boundary && secret_name(&name) {
            let end = equals + 1 + value_end(&text[equals + 1..]);
            out.push_str(&text[copied..=equals]);
            if end > equals + 1 {
                out.push_str(REDACTED);
            }
            copied = end;
            at = end.max(equals + 1);
        } else {
            at = equals + 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// `text` with the password of every `scheme://user:password@host` replaced.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let authority_start = found + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let authority_end =
            after.find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'') || c.is_whitespace()).unwrap_or(after.len());
        let authority = &after[..authority_end];
        match authority.rfind('@').and_then(|at| authority[..at].find(':').map(|colon| (colon, at))) {
            Some((colon, at)) => {
                out.push_str(&authority[..=colon]);
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_like_value_is_replaced_and_nothing_else() {
        let cases = [
            (
                "https://a.blob.core.windows.net/c?sv=1&sig=secret%2Bx&sp=w",
                "https://a.blob.core.windows.net/c?sv=1&sig=REDACTED&sp=w",
            ),
            (
                "error for url (http://h/c/x?sv=1&sig=abc%2B&sp=w): 403",
                "error for url (http://h/c/x?sv=1&sig=REDACTED&sp=w): 403",
            ),
            ("postgres://dpo:s3cret@db/dpo", "postgres://dpo:REDACTED@db/dpo"),
            ("postgres://dpo@db/dpo?sslmode=require", "postgres://dpo@db/dpo?sslmode=require"),
            ("postgres://db/dpo?user=dpo&password=s3cret", "postgres://db/dpo?user=dpo&password=REDACTED"),
            ("postgres://db/dpo?sslpassword=s3cret&x=1", "postgres://db/dpo?sslpassword=REDACTED&x=1"),
            ("host=db user=dpo password=s3cret dbname=dpo", "host=db user=dpo password=REDACTED dbname=dpo"),
            ("host=db password='s3 cret' dbname=dpo", "host=db password=REDACTED dbname=dpo"),
            ("https://login.example/keys?client_secret=s3cret", "https://login.example/keys?client_secret=REDACTED"),
            ("s3://bucket/p?token=s3cret", "s3://bucket/p?token=REDACTED"),
            ("GET /v1.0/me?access_token=eyJhbGciOi.x.y HTTP/1.1", "GET /v1.0/me?access_token=REDACTED HTTP/1.1"),
            ("https://api.example/v1?api_key=s3cret&page=2", "https://api.example/v1?api_key=REDACTED&page=2"),
            ("https://api.example/v1?%73ig=s3cret", "https://api.example/v1?%73ig=REDACTED"),
            ("https://api.example/v1?X-Api-Key=s3cret", "https://api.example/v1?X-Api-Key=REDACTED"),
            ("a=b, sort=key&design=1", "a=b, sort=key&design=1"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
        ];
        for (text, expected) in cases {
            assert_eq!(redact_secrets(text), expected, "{text}");
            assert!(text == expected || may_hold_secrets(text.as_bytes()), "{text}");
        }
        assert!(!may_hold_secrets(br#"{"msg":"request answered","status":200}"#));
    }
}
