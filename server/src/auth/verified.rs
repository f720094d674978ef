//! Checking bearer tokens with a bounded memory of tokens that passed, so that a client polling with
//! the same token pays for decoding and the signature check once.
//!
//! A hit is the exact bytes of a token verified before with the same keys and rules (they are fixed
//! for the verifier's life); its time window (`nbf`, `exp`, with the same clock skew as a full check)
//! is checked again on every use, and a token outside it gets the full check, with its precise error.
//! Failures are never remembered.

use super::{
    AuthError, Caller, TokenFailure,
    jwks::{JwksRefresher, KeySet},
    keys::VerificationKey,
    tokens::{TokenRules, Verified, authenticate_at},
};
use quick_cache::sync::Cache;
use std::sync::Arc;

/// How many tokens a verifier remembers by default.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Checks tokens against a key set and fixed rules, remembering up to a fixed number that passed.
pub struct TokenVerifier {
    keys: Arc<KeySet>,
    /// Fetches the identity provider's keys again when a token names an unknown `kid`.
    refresher: Option<Arc<JwksRefresher>>,
    rules: TokenRules,
    /// Tokens that passed, with the generation of the key set that checked them.
    passed: Cache<Box<str>, (u64, Verified)>,
}

impl TokenVerifier {
    /// A verifier for fixed `keys` and `rules` remembering up to `capacity` tokens.
    pub fn new(keys: Vec<VerificationKey>, rules: TokenRules, capacity: usize) -> Self {
        Self::over(Arc::new(KeySet::new(keys)), None, rules, capacity)
    }

    /// A verifier for the keys of `keys`, kept current by `refresher` if there is one.
    pub fn over(keys: Arc<KeySet>, refresher: Option<Arc<JwksRefresher>>, rules: TokenRules, capacity: usize) -> Self {
        TokenVerifier { keys, refresher, rules, passed: Cache::new(capacity.max(1)) }
    }

    /// Who `token` names, if it is valid now.
    pub async fn check(&self, token: &str) -> Result<Caller, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        let keys = self.keys.current();
        let outcome = self.check_at(token, now, &keys);
        let unknown_key = matches!(outcome, Err(AuthError::Unauthenticated { reason: TokenFailure::UnknownKey, .. }));
        match &self.refresher {
            // Its key may have just been published: check again only if the set changed.
            Some(refresher) if unknown_key && refresher.refresh_for_unknown_key(keys.generation).await => {
                self.check_at(token, now, &self.keys.current())
            }
            _ => outcome,
        }
    }

    fn check_at(&self, token: &str, now: u64, keys: &super::jwks::Keys) -> Result<Caller, AuthError> {
        if let Some((generation, known)) = self.passed.get(token) {
            if generation == keys.generation && known.check_window(now).is_ok() {
                return Ok(known.caller);
            }
            self.passed.remove(token);
        }
        let verified = authenticate_at(token, &keys.keys, &self.rules, now)?;
        let caller = verified.caller.clone();
        self.passed.insert(token.into(), (keys.generation, verified));
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{
        Identity, LOCAL_TENANT,
        keys::LocalKey,
        tokens::{LEEWAY_SECONDS, MintRequest, mint},
    };

    fn verifier_and_token(lifetime_seconds: i64) -> (TokenVerifier, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = LocalKey::open(dir.path()).expect("local key");
        let request = MintRequest { lifetime_seconds, ..MintRequest::admin(LOCAL_TENANT) };
        let token = mint(&key.signing(), &request).expect("mint");
        (TokenVerifier::new(vec![key.verification()], TokenRules::default(), 8), token)
    }

    #[tokio::test]
    async fn a_remembered_token_still_names_its_caller() {
        let (verifier, token) = verifier_and_token(3600);
        let first = verifier.check(&token).await.expect("valid token");
        assert_eq!(verifier.passed.len(), 1);
        let again = verifier.check(&token).await.expect("remembered token");
        assert_eq!(first, again);
        assert_eq!(again.tenant, LOCAL_TENANT);
        assert!(matches!(again.identity, Identity::User { admin: true, .. }));
    }

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_it_expires() {
        let (verifier, token) = verifier_and_token(3600);
        verifier.check(&token).await.expect("valid token");
        let after_expiry = jsonwebtoken::get_current_timestamp() + 3600 + LEEWAY_SECONDS + 5;
        let refused = verifier.check_at(&token, after_expiry, &verifier.keys.current());
        let expired = matches!(&refused, Err(AuthError::Unauthenticated { reason: TokenFailure::Expired, .. }));
        assert!(expired, "{refused:?}");
        assert_eq!(verifier.passed.len(), 0, "the expired token left the memory");
    }

    #[tokio::test]
    async fn refused_tokens_are_not_remembered() {
        let (verifier, _) = verifier_and_token(3600);
        let (_, foreign) = verifier_and_token(3600);
        let foreign = verifier.check(&foreign).await;
        assert!(matches!(foreign, Err(AuthError::Unauthenticated { reason: TokenFailure::Signature, .. })));
        let malformed = verifier.check("not a token").await;
        assert!(matches!(malformed, Err(AuthError::Unauthenticated { reason: TokenFailure::Malformed, .. })));
        assert_eq!(verifier.passed.len(), 0);
    }

    #[test]
    fn the_time_window_allows_the_clock_skew_and_no_more() {
        let caller = Caller { tenant: "t".into(), identity: Identity::App { id: "a".into(), roles: vec![] } };
        let token = Verified { caller, not_before: Some(1_000), expires: 2_000 };
        assert!(token.check_window(1_500).is_ok());
        assert!(token.check_window(2_000 + LEEWAY_SECONDS).is_ok());
        assert!(token.check_window(2_001 + LEEWAY_SECONDS).is_err());
        assert!(token.check_window(1_000 - LEEWAY_SECONDS).is_ok());
        assert!(token.check_window(1_000 - LEEWAY_SECONDS - 1).is_err());
    }
}
