//! The keys tokens are checked with: the server's own key for the embedded default (generated once per
//! state directory, HS256), and keys published as a JWKS (a file, or fetched once from a URL at start) for
//! tokens of a real identity provider (RS256, ES256).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, jwk::JwkSet};
use std::path::Path;

/// File of the local signing key inside the state directory.
pub const LOCAL_KEY_FILE: &str = "token-signing.key";
/// `kid` of tokens signed with the local key.
pub const LOCAL_KEY_ID: &str = "dpo-local";

/// One key a token may be signed with.
#[derive(Clone)]
pub struct VerificationKey {
    /// The `kid` it answers to (`None`: any).
    pub kid: Option<String>,
    /// The algorithm it is used with.
    pub algorithm: Algorithm,
    /// The key.
    pub key: DecodingKey,
}

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// The server's own HS256 key, created (mode 0600) the first time the state directory is used.
pub struct LocalKey {
    secret: Vec<u8>,
}

impl LocalKey {
    /// Reads the key of `state_dir`, creating it if there is none.
    pub fn open(state_dir: &Path) -> Result<LocalKey, KeyError> {
        let path = state_dir.join(LOCAL_KEY_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let secret = hex::decode(text.trim()).map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
            if secret.len() < 32 {
                return Err(KeyError(format!("{}: the key is shorter than 32 bytes", path.display())));
            }
            return Ok(LocalKey { secret });
        }
        std::fs::create_dir_all(state_dir).map_err(|e| KeyError(format!("{}: {e}", state_dir.display())))?;
        let mut secret = vec![0u8; 32];
        rand::fill(&mut secret[..]);
        write_private(&path, &hex::encode(&secret)).map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
        Ok(LocalKey { secret })
    }

    /// The key for checking tokens.
    pub fn verification(&self) -> VerificationKey {
        VerificationKey {
            kid: Some(LOCAL_KEY_ID.into()),
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(&self.secret),
        }
    }

    /// The key for minting tokens.
    pub fn signing(&self) -> EncodingKey {
        EncodingKey::from_secret(&self.secret)
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// The keys of a JWKS document (RS256/ES256 keys with a `kid`).
pub fn from_jwks(text: &str) -> Result<Vec<VerificationKey>, KeyError> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| KeyError(format!("not a JWKS document: {e}")))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let algorithm = match jwk.common.key_algorithm.map(|a| a.to_string()).as_deref() {
            Some("RS256") | None if matches!(jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)) => {
                Algorithm::RS256
            }
            Some("ES256") | None
                if matches!(jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)) =>
            {
                Algorithm::ES256
            }
            Some("RS384") => Algorithm::RS384,
            Some("RS512") => Algorithm::RS512,
            Some("ES384") => Algorithm::ES384,
            other => return Err(KeyError(format!("key {:?}: unsupported algorithm {other:?}", jwk.common.key_id))),
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyError(format!("key {:?}: {e}", jwk.common.key_id)))?;
        keys.push(VerificationKey { kid: jwk.common.key_id.clone(), algorithm, key });
    }
    if keys.is_empty() {
        return Err(KeyError("the JWKS document has no keys".into()));
    }
    Ok(keys)
}
