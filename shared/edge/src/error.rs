//! The Stax `Error` schema: what a refused request answers, with its HTTP status.

use domain::ErrorName;
use serde::Serialize;

/// A refusal (or a failure inside the service) as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {error}: {cause}")]
pub struct ApiError {
    pub status: u16,
    /// A stable name clients can match on.
    pub error: ErrorName,
    /// What was wrong, for a person.
    pub cause: String,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    #[serde(rename = "Error")]
    pub error: &'a str,
    #[serde(rename = "Cause")]
    pub cause: &'a str,
}

impl ApiError {
    pub fn bad_request(cause: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            error: ErrorName::ValidationError,
            cause: cause.into(),
        }
    }
    pub fn forbidden(cause: impl Into<String>) -> Self {
        ApiError {
            status: 403,
            error: ErrorName::Forbidden,
            cause: cause.into(),
        }
    }
    pub fn not_found(cause: impl Into<String>) -> Self {
        ApiError {
            status: 404,
            error: ErrorName::NotFound,
            cause: cause.into(),
        }
    }
    pub fn conflict(error: ErrorName, cause: impl Into<String>) -> Self {
        ApiError {
            status: 409,
            error,
            cause: cause.into(),
        }
    }
    /// A failure inside the service. The cause is deliberately generic: internals go to the log.
    pub fn internal(request_id: &str) -> Self {
        ApiError {
            status: 500,
            error: ErrorName::InternalError,
            cause: format!("the request failed inside the service; quote request id {request_id}"),
        }
    }
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: self.error.as_str(),
            cause: &self.cause,
        }
    }
}
