//! Checking bearer tokens, and minting them with the local key (`dpo-server token`, tests).

use super::{
    AuthError, Caller, GLOBAL_ADMINISTRATOR, Identity, TokenFailure,
    keys::{LOCAL_KEY_ID, VerificationKey},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 60;

/// Azure AD's v2.0 issuer; `{tid}` stands for the token's tenant.
pub const DEFAULT_ISSUER: &str = "https://login.microsoftonline.com/{tid}/v2.0";
/// Microsoft Graph's audiences: its URL and its application id.
pub const DEFAULT_AUDIENCES: [&str; 2] = ["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"];

/// What tokens must say to be accepted.
#[derive(Debug, Clone)]
pub struct TokenRules {
    /// Expected `iss`; `{tid}` stands for the token's tenant (Azure AD puts it there).
    pub issuer: String,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
}

impl Default for TokenRules {
    fn default() -> Self {
        TokenRules { issuer: DEFAULT_ISSUER.into(), audiences: DEFAULT_AUDIENCES.map(String::from).to_vec() }
    }
}

/// The claims dpo reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience: one, or several (RFC 7519 §4.1.3); the validation checks that one is accepted.
    pub aud: Audience,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Tenant.
    #[serde(default)]
    pub tid: String,
    /// Object id of the user (delegated) or service principal (application).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// Application id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// Application id (v2 tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Delegated permissions, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// Application permissions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Directory role template ids of the signed-in user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wids: Vec<String>,
}

/// The `aud` claim: a string or an array of strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Default for Audience {
    fn default() -> Self {
        Audience::One(String::new())
    }
}

/// A token that passed every check: who is calling, and when the token is valid.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The caller the token names.
    pub caller: Caller,
    /// `nbf` (seconds since the epoch), if the token has one.
    pub not_before: Option<u64>,
    /// `exp` (seconds since the epoch).
    pub expires: u64,
}

/// The kind of a failure jsonwebtoken reports.
fn failure_of(error: &jsonwebtoken::errors::Error) -> TokenFailure {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => TokenFailure::Signature,
        ErrorKind::InvalidAudience => TokenFailure::Audience,
        ErrorKind::InvalidIssuer => TokenFailure::Issuer,
        ErrorKind::MissingRequiredClaim(_) => TokenFailure::MissingClaim,
        ErrorKind::ExpiredSignature => TokenFailure::Expired,
        ErrorKind::ImmatureSignature => TokenFailure::NotYetValid,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenFailure::UnknownKey,
        _ => TokenFailure::Malformed,
    }
}

impl Verified {
    /// Whether the token is valid at `now` (seconds since the epoch), allowing [`LEEWAY_SECONDS`] of
    /// clock skew either way.
    pub fn check_window(&self, now: u64) -> Result<(), AuthError> {
        if let Some(nbf) = self.not_before.filter(|nbf| now.saturating_add(LEEWAY_SECONDS) < *nbf) {
            return Err(AuthError::invalid(
                TokenFailure::NotYetValid,
                format!("the token is not valid before {nbf} (nbf)"),
            ));
        }
        if now > self.expires.saturating_add(LEEWAY_SECONDS) {
            return Err(AuthError::invalid(
                TokenFailure::Expired,
                format!("the token expired at {} (exp)", self.expires),
            ));
        }
        Ok(())
    }
}

/// Checks `token` against `keys` and `rules` and says who is calling.
pub fn authenticate(token: &str, keys: &[VerificationKey], rules: &TokenRules) -> Result<Verified, AuthError> {
    authenticate_at(token, keys, rules, jsonwebtoken::get_current_timestamp())
}

/// [`authenticate`] at `now` (seconds since the epoch).
pub fn authenticate_at(
    token: &str,
    keys: &[VerificationKey],
    rules: &TokenRules,
    now: u64,
) -> Result<Verified, AuthError> {
    let header =
        decode_header(token).map_err(|_| AuthError::invalid(TokenFailure::Malformed, "the token is not a JWT"))?;
    // RFC 7515 §4.1.11: extensions named critical must be understood, and dpo understands none.
    if let Some(critical) = &header.crit {
        return Err(AuthError::invalid(
            TokenFailure::Unsupported,
            format!("the token's header names critical extensions dpo does not support: {critical:?}"),
        ));
    }
    let key = keys.iter().find(|k| k.algorithm == header.alg && (k.kid.is_none() || k.kid == header.kid)).ok_or_else(
        || {
            AuthError::invalid(
                TokenFailure::UnknownKey,
                format!("no key for kid {:?} and alg {:?}", header.kid, header.alg),
            )
        },
    )?;
    let mut validation = Validation::new(key.algorithm);
    // The time window is checked below, against `now`, by the same code that checks remembered tokens.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_audience(&rules.audiences);
    validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    let data = decode::<Claims>(token, &key.key, &validation)
        .map_err(|e| AuthError::invalid(failure_of(&e), e.to_string()))?;
    let claims = data.claims;
    if claims.tid.trim().is_empty() {
        return Err(AuthError::invalid(TokenFailure::MissingClaim, "the token has no tenant (tid)"));
    }
    let expected_issuer = rules.issuer.replace("{tid}", &claims.tid);
    if claims.iss != expected_issuer {
        return Err(AuthError::invalid(TokenFailure::Issuer, format!("unexpected issuer {}", claims.iss)));
    }
    let identity = match &claims.scp {
        Some(scp) => Identity::User {
            id: claims.oid.clone().unwrap_or_default(),
            scopes: scp.split_whitespace().map(str::to_string).collect(),
            admin: claims.wids.iter().any(|w| w == GLOBAL_ADMINISTRATOR),
            roles: claims.wids.clone(),
            app: claims.appid.clone().or(claims.azp.clone()),
        },
        None => Identity::App {
            id: claims.appid.clone().or(claims.azp.clone()).unwrap_or_default(),
            roles: claims.roles.clone(),
        },
    };
    let verified =
        Verified { caller: Caller { tenant: claims.tid, identity }, not_before: claims.nbf, expires: claims.exp };
    verified.check_window(now)?;
    Ok(verified)
}

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct MintRequest {
    /// Tenant.
    pub tenant: String,
    /// `Some(user id)` for a delegated token, `None` for an application token.
    pub user: Option<String>,
    /// Whether the user is a company administrator.
    pub admin: bool,
    /// Permissions: `scp` for a user, `roles` for an application.
    pub permissions: Vec<String>,
    /// Lifetime in seconds (negative: already expired).
    pub lifetime_seconds: i64,
    /// `aud`.
    pub audience: String,
    /// Expected `iss` template (as in [`TokenRules`]).
    pub issuer: String,
}

/// Signs a token with the local key.
pub fn mint(key: &EncodingKey, request: &MintRequest) -> Result<String, jsonwebtoken::errors::Error> {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = Claims {
        iss: request.issuer.replace("{tid}", &request.tenant),
        aud: Audience::One(request.audience.clone()),
        exp: (now + request.lifetime_seconds).max(0) as u64,
        nbf: Some((now - 5).max(0) as u64),
        iat: Some(now as u64),
        tid: request.tenant.clone(),
        oid: request.user.clone(),
        appid: Some("dpo-local-client".into()),
        azp: None,
        scp: request.user.as_ref().map(|_| request.permissions.join(" ")),
        roles: if request.user.is_some() { Vec::new() } else { request.permissions.clone() },
        wids: if request.admin { vec![GLOBAL_ADMINISTRATOR.into()] } else { Vec::new() },
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(LOCAL_KEY_ID.into());
    encode(&header, &claims, key)
}
