//! Why a command failed, and the exit code each kind of failure gives scripts.

use dpo_client::ClientError;

/// Why a command failed, with the exit code scripts see.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The service refused (4xx) or failed (5xx), or could not be reached.
    #[error("{}", api_text(.0))]
    Api(#[source] ClientError),
    /// The export ended `failed`, or did not end in time.
    #[error("{0}")]
    Export(String),
    /// A downloaded file does not match the manifest.
    #[error("{0}")]
    Verification(String),
    /// Anything else.
    #[error("{0:#}")]
    Other(#[source] anyhow::Error),
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

/// An API failure as people read it: the OData code and message, the status, and the request id to quote.
fn api_text(error: &ClientError) -> String {
    match error {
        ClientError::Api { status, code, message, request_id } => match request_id {
            Some(id) => format!("{code}: {message} (HTTP {status}, request-id {id})"),
            None => format!("{code}: {message} (HTTP {status})"),
        },
        other => other.to_string(),
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
