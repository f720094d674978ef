//! Who is calling, and what they may do, as Microsoft Graph defines it for data policy operations.
//!
//! Every request carries `Authorization: Bearer <JWT>`. [`tokens`] checks the token (signature, `exp`/`nbf`
//! with a minute of clock skew, `aud`, `iss`) with the keys of [`keys`]; [`permissions`] decides from its
//! claims whether the call is allowed. The token's `tid` is the caller's tenant: it scopes everything.

pub mod jwks;
pub mod keys;
pub mod permissions;
pub mod tokens;
pub mod verified;

/// Tenant of the embedded default: what `dpo-server token` and imports use when no tenant is given.
pub const LOCAL_TENANT: &str = "00000000-0000-0000-0000-000000000001";

/// The role template id of Global Administrator ("company administrator") in `wids`.
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
/// The permission to export users' data.
pub const USER_EXPORT_ALL: &str = "User.Export.All";
/// The permission to read all users' full profiles.
pub const USER_READ_ALL: &str = "User.Read.All";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant (`tid`).
    pub tenant: String,
    /// Who, and with which permissions.
    pub identity: Identity,
}

/// The two kinds of Graph callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A user signed in to an application (delegated permissions, `scp`).
    User {
        /// The user's object id (`oid`).
        id: String,
        /// Delegated permissions granted (`scp`).
        scopes: Vec<String>,
        /// Whether the user is a company administrator (Global Administrator in `wids`).
        admin: bool,
        /// The directory role template ids the user holds (`wids`).
        roles: Vec<String>,
        /// The application the user signed in to (`appid` or `azp`), if the token names it.
        app: Option<String>,
    },
    /// An application acting as itself (application permissions, `roles`).
    App {
        /// The application's id (`appid` or `azp`).
        id: String,
        /// Application permissions granted (`roles`).
        roles: Vec<String>,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No usable token: answered 401 `InvalidAuthenticationToken` with `WWW-Authenticate: Bearer`.
    #[error("{message}")]
    Unauthenticated {
        /// What was wrong with the token (the label of the token-failure metric).
        reason: TokenFailure,
        /// What the client is told.
        message: String,
    },
    /// A valid token without the permission: answered 403 `Authorization_RequestDenied`.
    #[error("{0}")]
    Forbidden(String),
}

impl AuthError {
    /// A token refused for `reason`; the message starts as Azure AD's do.
    pub fn invalid(reason: TokenFailure, why: impl std::fmt::Display) -> Self {
        AuthError::Unauthenticated { reason, message: format!("Access token validation failure: {why}") }
    }
}

/// What was wrong with a refused token, as few kinds as an operator needs to tell apart on a dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    /// No bearer token was sent.
    Missing,
    /// Not a JWT, or its header or claims cannot be read.
    Malformed,
    /// No key of the key set has the token's `kid` and `alg` (also: a key rotated away).
    UnknownKey,
    /// The signature does not match the key.
    Signature,
    /// Past `exp` (beyond the clock skew).
    Expired,
    /// Before `nbf` (beyond the clock skew).
    NotYetValid,
    /// `aud` names no accepted audience.
    Audience,
    /// `iss` is not the expected issuer.
    Issuer,
    /// A required claim (`exp`, `aud`, `iss`, `tid`) is missing.
    MissingClaim,
    /// The header asks for something dpo does not do (critical extensions).
    Unsupported,
}

impl TokenFailure {
    /// The failure's name, as the metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFailure::Missing => "missing",
            TokenFailure::Malformed => "malformed",
            TokenFailure::UnknownKey => "unknown_key",
            TokenFailure::Signature => "signature",
            TokenFailure::Expired => "expired",
            TokenFailure::NotYetValid => "not_yet_valid",
            TokenFailure::Audience => "audience",
            TokenFailure::Issuer => "issuer",
            TokenFailure::MissingClaim => "missing_claim",
            TokenFailure::Unsupported => "unsupported",
        }
    }
}

/// Mints a token with the local key of `state_dir` (created if needed) under the default token rules.
pub fn mint_local(state_dir: &std::path::Path, request: &tokens::MintRequest) -> Result<String, keys::KeyError> {
    let key = keys::LocalKey::open(state_dir)?;
    tokens::mint(&key.signing(), request).map_err(|e| keys::KeyError(e.to_string()))
}

impl tokens::MintRequest {
    /// A token of a company administrator of `tenant` with `User.Export.All`, valid for an hour.
    pub fn admin(tenant: &str) -> Self {
        let rules = tokens::TokenRules::default();
        tokens::MintRequest {
            tenant: tenant.to_string(),
            user: Some("local-admin".into()),
            admin: true,
            permissions: vec![USER_EXPORT_ALL.into()],
            lifetime_seconds: 3600,
            audience: rules.audiences[0].clone(),
            issuer: rules.issuer,
        }
    }
}
