//! Why a command failed, and the exit code each kind of failure gives scripts.

use dpo_client::ClientError;
use std::fmt;

/// Why a command failed, with the exit code scripts see.
pub enum Failure {
    /// The service refused (4xx) or failed (5xx), or could not be reached.
    Api(ClientError),
    /// The export ended `failed`, or did not end in time.
    Export(String),
    /// A downloaded file does not match the manifest.
    Verification(String),
    /// Anything else.
    Other(anyhow::Error),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Api(ClientError::Api { status, .. }) if *status < 500 => 3,
            Failure::Api(ClientError::Timeout { .. }) => 5,
            Failure::Api(_) => 4,
            Failure::Export(_) => 5,
            Failure::Verification(_) => 6,
            Failure::Other(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Api(ClientError::Api { status, code, message, request_id }) => {
                write!(f, "{code}: {message} (HTTP {status}")?;
                if let Some(id) = request_id {
                    write!(f, ", request-id {id}")?;
                }
                write!(f, ")")
            }
            Failure::Api(e) => write!(f, "{e}"),
            Failure::Export(m) | Failure::Verification(m) => write!(f, "{m}"),
            Failure::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Api(e)
    }
}

impl From<dpo_client::Error<dpo_client::types::MicrosoftGraphODataErrorsODataError>> for Failure {
    fn from(e: dpo_client::Error<dpo_client::types::MicrosoftGraphODataErrorsODataError>) -> Self {
        Failure::Api(e.into())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}
