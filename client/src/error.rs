//! The client's error type: OData errors with their code, message and request id, or transport failures.

use crate::generated::{Error, types::MicrosoftGraphODataErrorsODataError as ODataError};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an OData error.
    #[error("{code} ({status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// OData error code, e.g. `Request_ResourceNotFound`.
        code: String,
        /// The service's message.
        message: String,
        /// The service's id for the request, for support.
        request_id: Option<String>,
    },
    /// The request could not be sent or the answer not received.
    #[error("communication with the service failed: {0}")]
    Transport(String),
    /// The answer could not be understood.
    #[error("the service's answer could not be understood: {0}")]
    Decode(String),
    /// An export ended `failed`.
    #[error("export {id} failed")]
    ExportFailed {
        /// The operation.
        id: String,
    },
    /// An operation did not finish in the time allowed.
    #[error("operation {id} did not finish within {waited_seconds} s (last status: {last_status})")]
    Timeout {
        /// The operation.
        id: String,
        /// How long was waited.
        waited_seconds: u64,
        /// The last status seen.
        last_status: String,
    },
}

impl ClientError {
    /// The OData error code, if the service answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, if the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn from_odata(status: u16, body: &ODataError, request_id: Option<String>) -> Self {
        let request_id = request_id.or_else(|| body.error.inner_error.as_ref().and_then(|i| i.request_id.clone()));
        ClientError::Api { status, code: body.error.code.clone(), message: body.error.message.clone(), request_id }
    }
}

impl From<Error<ODataError>> for ClientError {
    fn from(error: Error<ODataError>) -> Self {
        match error {
            Error::ErrorResponse(response) => {
                let request_id = response.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
                ClientError::from_odata(response.status().as_u16(), &response, request_id)
            }
            Error::CommunicationError(e) => ClientError::Transport(e.to_string()),
            Error::InvalidResponsePayload(_, e) => ClientError::Decode(e.to_string()),
            Error::UnexpectedResponse(r) => ClientError::Decode(format!("unexpected status {}", r.status())),
            other => ClientError::Decode(other.to_string()),
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(error: reqwest::Error) -> Self {
        if error.is_decode() {
            ClientError::Decode(error.to_string())
        } else {
            ClientError::Transport(error.to_string())
        }
    }
}

/// Reads an error answer that was fetched outside the generated methods (e.g. a nextLink page).
pub(crate) async fn from_response(response: reqwest::Response) -> ClientError {
    let status = response.status().as_u16();
    let request_id = response.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    match response.json::<ODataError>().await {
        Ok(body) => ClientError::from_odata(status, &body, request_id),
        Err(e) => ClientError::Decode(format!("status {status} without an OData error body: {e}")),
    }
}
