//! What must never appear in a server's log: a storage signature (`sig=` with anything but the redaction
//! marker), a bearer token (a JWT, `eyJ….eyJ….`), or the storage emulator's account key.

/// The marker a redacted signature carries (as `dpo_client::location::REDACTED` writes it).
pub const REDACTED: &str = "REDACTED";

/// The lines of `log` that hold a secret, each with what was found.
pub fn secrets_in(log: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in log.lines() {
        if let Some(what) = secret_in_line(line) {
            found.push(format!("{what}: {line}"));
        }
    }
    found
}

fn secret_in_line(line: &str) -> Option<&'static str> {
    if line.contains(crate::azurite::ACCOUNT_KEY) {
        return Some("the storage account key");
    }
    for (i, _) in line.match_indices("sig=") {
        let before = line[..i].chars().last();
        let after = &line[i + 4..];
        let value: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || "%+/=".contains(*c)).collect();
        if matches!(before, Some('?' | '&')) && !value.is_empty() && !value.starts_with(REDACTED) {
            return Some("a SAS signature");
        }
    }
    // A JWT: a base64url header and payload of JSON objects (both start `{"` → `eyJ`), then a signature.
    let jwt = line.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).any(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        parts.len() == 3 && parts[0].starts_with("eyJ") && parts[1].starts_with("eyJ") && parts[2].len() >= 16
    });
    jwt.then_some("a bearer token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_secret_is_found_and_redactions_are_not() {
        assert!(secrets_in("url: https://a.blob.core.windows.net/c?sv=1&sig=abc%2Bdef&se=2").len() == 1);
        assert!(secrets_in("url: https://a.blob.core.windows.net/c?sv=1&sig=REDACTED&se=2").is_empty());
        assert!(secrets_in("the word design=1 or xsig=2 is fine").is_empty());
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
        assert_eq!(secrets_in(&format!("{{\"msg\":\"x\",\"auth\":\"Bearer {token}\"}}")).len(), 1);
        assert_eq!(secrets_in(&format!("key {}", crate::azurite::ACCOUNT_KEY)).len(), 1);
        assert!(secrets_in("request completed, uri: /v1.0/dataPolicyOperations?$top=2").is_empty());
    }
}
