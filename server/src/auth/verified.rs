//! Checking bearer tokens with a bounded memory of tokens that passed, so that a client polling with
//! the same token pays for decoding and the signature check once.
//!
//! A hit is the exact bytes of a token verified before with the same keys and rules (they are fixed
//! for the verifier's life); its time window (`nbf`, `exp`, with the same clock skew as a full check)
//! is checked again on every use, and a token outside it gets the full check, with its precise error.
//! Failures are never remembered.

use super::{
    AuthError, Caller,
    keys::VerificationKey,
    tokens::{TokenRules, Verified, authenticate_at},
};
use quick_cache::sync::Cache;

/// How many tokens a verifier remembers by default.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Checks tokens against fixed keys and rules, remembering up to a fixed number that passed.
pub struct TokenVerifier {
    keys: Vec<VerificationKey>,
    rules: TokenRules,
    passed: Cache<Box<str>, Verified>,
}

impl TokenVerifier {
    /// A verifier for `keys` and `rules` remembering up to `capacity` tokens.
    pub fn new(keys: Vec<VerificationKey>, rules: TokenRules, capacity: usize) -> Self {
        TokenVerifier { keys, rules, passed: Cache::new(capacity.max(1)) }
    }

    /// Who `token` names, if it is valid now.
    pub fn check(&self, token: &str) -> Result<Caller, AuthError> {
        self.check_at(token, jsonwebtoken::get_current_timestamp())
    }

    fn check_at(&self, token: &str, now: u64) -> Result<Caller, AuthError> {
        if let Some(known) = self.passed.get(token) {
            if known.check_window(now).is_ok() {
                return Ok(known.caller);
            }
            self.passed.remove(token);
        }
        let verified = authenticate_at(token, &self.keys, &self.rules, now)?;
        let caller = verified.caller.clone();
        self.passed.insert(token.into(), verified);
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

    #[test]
    fn a_remembered_token_still_names_its_caller() {
        let (verifier, token) = verifier_and_token(3600);
        let first = verifier.check(&token).expect("valid token");
        assert_eq!(verifier.passed.len(), 1);
        let again = verifier.check(&token).expect("remembered token");
        assert_eq!(first, again);
        assert_eq!(again.tenant, LOCAL_TENANT);
        assert!(matches!(again.identity, Identity::User { admin: true, .. }));
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() {
        let (verifier, token) = verifier_and_token(3600);
        verifier.check(&token).expect("valid token");
        let after_expiry = jsonwebtoken::get_current_timestamp() + 3600 + LEEWAY_SECONDS + 5;
        let refused = verifier.check_at(&token, after_expiry);
        assert!(matches!(&refused, Err(AuthError::Unauthenticated(m)) if m.contains("expired")), "{refused:?}");
        assert_eq!(verifier.passed.len(), 0, "the expired token left the memory");
    }

    #[test]
    fn refused_tokens_are_not_remembered() {
        let (verifier, _) = verifier_and_token(3600);
        let (_, foreign) = verifier_and_token(3600);
        assert!(matches!(verifier.check(&foreign), Err(AuthError::Unauthenticated(_))));
        assert!(matches!(verifier.check("not a token"), Err(AuthError::Unauthenticated(_))));
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
