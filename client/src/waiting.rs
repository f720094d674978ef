//! Waiting for an operation to finish, polling as the service asks (`Retry-After`).

use crate::{
    ClientError,
    generated::{
        Client, ResponseValue,
        types::{
            DataPolicyOperationStatusValue, MicrosoftGraphDataPolicyOperation as Operation,
            MicrosoftGraphDataPolicyOperationStatus as Status,
        },
    },
};
use std::time::Duration;

/// How [`Client::wait_for_operation`] polls.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// Wait between polls when the service gives no `Retry-After`.
    pub default_interval: Duration,
    /// Longest wait between polls, whatever `Retry-After` says.
    pub max_interval: Duration,
    /// Give up after this long in all.
    pub timeout: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            default_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(60 * 60),
        }
    }
}

/// The progress of an operation in percent, if it reports one as a number.
pub fn progress_of(op: &Operation) -> Option<f64> {
    use crate::generated::types::MicrosoftGraphDataPolicyOperationProgress as Progress;
    match &op.progress {
        Some(Progress::Variant0(Some(p))) => Some(*p),
        Some(Progress::Variant1(Some(text))) => text.parse().ok(),
        _ => None,
    }
}

/// The status of an operation, if it has a known one.
pub fn status_of(op: &Operation) -> Option<Status> {
    match &op.status {
        Some(DataPolicyOperationStatusValue::Variant0(s)) => Some(*s),
        _ => None,
    }
}

/// The operation id at the end of the `Location` header of an `exportPersonalData` answer.
pub fn operation_id_from_location(accepted: &ResponseValue<()>) -> Result<String, ClientError> {
    let location = accepted
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ClientError::Decode("the 202 answer has no Location header".into()))?;
    location
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ClientError::Decode(format!("Location {location:?} names no operation")))
}

/// The `Retry-After` of an answer in seconds, if it has one.
pub fn retry_after<T>(response: &ResponseValue<T>) -> Option<Duration> {
    retry_after_header(response.headers())
}

/// The `Retry-After` (seconds or an HTTP date) among `headers`, if there is one.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    dpo_contract::retry_after::wait(value, chrono::Utc::now())
}

/// For an answer saying the service is throttling (429) or busy (503): the `Retry-After` it gave, if any
/// (`Some(None)`: none given). `None` for any other failure.
fn busy<E>(error: &crate::generated::Error<E>) -> Option<Option<Duration>> {
    use crate::generated::Error;
    let (status, headers) = match error {
        Error::ErrorResponse(response) => (response.status(), response.headers()),
        Error::UnexpectedResponse(response) => (response.status(), response.headers()),
        _ => return None,
    };
    let busy = status == reqwest::StatusCode::TOO_MANY_REQUESTS || status == reqwest::StatusCode::SERVICE_UNAVAILABLE;
    busy.then(|| retry_after_header(headers))
}

impl Client {
    /// Polls operation `id` until it is `complete` or `failed`, waiting between polls as long as the
    /// service's `Retry-After` says (capped by `options.max_interval`), and returns its final state. A
    /// poll answered 429 (throttled) or 503 (busy) is asked again after its `Retry-After`.
    pub async fn wait_for_operation(&self, id: &str, options: &WaitOptions) -> Result<Operation, ClientError> {
        self.wait_for_operation_with_progress(id, options, |_| {}).await
    }

    /// Like [`Client::wait_for_operation`], calling `on_poll` with the operation after every poll (to show
    /// its `progress`).
    pub async fn wait_for_operation_with_progress(
        &self,
        id: &str,
        options: &WaitOptions,
        mut on_poll: impl FnMut(&Operation),
    ) -> Result<Operation, ClientError> {
        let started = tokio::time::Instant::now();
        loop {
            let response =
                match self.data_policy_operations_data_policy_operation_get_data_policy_operation(id, None, None).await
                {
                    Ok(response) => response,
                    // Throttled (429) or busy (503): wait as the service says, then ask again.
                    Err(error) => match busy(&error)
                        .map(|wait| wait.unwrap_or(options.default_interval).min(options.max_interval))
                    {
                        Some(wait) if started.elapsed() + wait <= options.timeout => {
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        _ => return Err(error.into()),
                    },
                };
            let pause = retry_after(&response).unwrap_or(options.default_interval).min(options.max_interval);
            let op = response.into_inner();
            on_poll(&op);
            let status = status_of(&op);
            if matches!(status, Some(Status::Complete | Status::Failed)) {
                return Ok(op);
            }
            if started.elapsed() + pause > options.timeout {
                return Err(ClientError::Timeout {
                    id: id.to_string(),
                    waited_seconds: started.elapsed().as_secs(),
                    last_status: status.map_or_else(|| "unknown".to_string(), |s| s.to_string()),
                });
            }
            tokio::time::sleep(pause).await;
        }
    }
}
