//! The one mapping from domain errors to gRPC statuses, the same in every
//! service (design brief §3). Handlers return [`ApiError`]; `?` does the rest.
//! INTERNAL is reserved for bugs and never carries SQL or a stack: the cause
//! goes to the log, the caller gets a fixed message.

use std::fmt;

use tonic::{Code, Status};

use crate::pg;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// A domain-level failure, each variant one gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// INVALID_ARGUMENT with `google.rpc.BadRequest` field violations.
    #[error("invalid argument: {0}")]
    InvalidArgument(Violations),
    /// NOT_FOUND: missing, or not the caller's (never reveal which).
    #[error("{0} not found")]
    NotFound(String),
    /// ALREADY_EXISTS: a resource with a caller-chosen id exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// PERMISSION_DENIED: the caller's role may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// FAILED_PRECONDITION: illegal in the resource's current state.
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// ABORTED: a concurrent change won; re-read and retry.
    #[error("aborted: {0}")]
    Aborted(String),
    /// UNAVAILABLE: a dependency is down or slow; nothing was written.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// INTERNAL: a bug. Logged with its cause; the caller sees no detail.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// What handlers and use cases return.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// NOT_FOUND for `what` (also when it exists but is not the caller's).
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }
    /// PERMISSION_DENIED, saying why.
    pub fn denied(why: impl Into<String>) -> Self {
        Self::PermissionDenied(why.into())
    }
    /// FAILED_PRECONDITION, saying why.
    pub fn precondition(why: impl Into<String>) -> Self {
        Self::FailedPrecondition(why.into())
    }
    /// INVALID_ARGUMENT with one field violation.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = Violations::default();
        v.add(field, description);
        Self::InvalidArgument(v)
    }
    /// INTERNAL: a bug; `cause` is logged, never sent.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }
}

/// Field violations collected while validating a request, so the caller
/// learns every problem at once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations(Vec<(String, String)>);

impl Violations {
    /// Records that `field` is invalid, and why.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push((field.into(), description.into()));
    }

    /// No violation recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records the error of a parse, returning its value when it succeeded.
    pub fn take<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(why) => {
                self.add(field, why);
                None
            }
        }
    }

    /// `Ok` when nothing was recorded.
    pub fn into_result(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self))
        }
    }

    /// The value parsed from a request once every field was checked: the
    /// violations if any were recorded, else `parsed`. Parsers record why
    /// whenever they return `None`, so `None` here is a bug: INTERNAL, not
    /// a panic.
    pub fn into_value<T>(self, parsed: Option<T>) -> ApiResult<T> {
        self.into_result()?;
        parsed.ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "a request field failed to parse without a violation"
            ))
        })
    }

    /// The fields violated, in the order recorded.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(f, _)| f.as_str())
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.write_str(&parts.join("; "))
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::InvalidArgument(v) => {
                let message = v.to_string();
                let violations: Vec<FieldViolation> =
                    v.0.into_iter()
                        .map(|(field, why)| FieldViolation::new(field, why))
                        .collect();
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            ApiError::NotFound(what) => Status::not_found(format!("{what} not found")),
            ApiError::AlreadyExists(what) => {
                Status::already_exists(format!("{what} already exists"))
            }
            ApiError::PermissionDenied(why) => Status::permission_denied(why),
            ApiError::FailedPrecondition(why) => Status::failed_precondition(why),
            ApiError::Aborted(why) => Status::aborted(why),
            ApiError::Unavailable(why) => Status::unavailable(why),
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        let unavailable = |why: &str| {
            tracing::warn!(error = %err, "database unavailable");
            ApiError::Unavailable(format!("{why}, retry later"))
        };
        match &err {
            // The connection itself failed: refused, reset, cut during the
            // handshake (seen as a protocol error), or no connection free.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => unavailable("database unavailable"),
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some(pg::SERIALIZATION_FAILURE | pg::DEADLOCK_DETECTED) => {
                    ApiError::Aborted("concurrent update, retry the request".into())
                }
                Some(code) if pg::is_unavailable(code) => unavailable("database unavailable"),
                _ => ApiError::Internal(err.into()),
            },
            _ => ApiError::Internal(err.into()),
        }
    }
}

impl From<prost::DecodeError> for ApiError {
    fn from(err: prost::DecodeError) -> Self {
        ApiError::Internal(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn into_value_reports_violations_then_the_value_then_a_silent_parser_as_internal() {
        let mut v = Violations::default();
        v.add("job", "is required");
        assert!(matches!(
            v.into_value(Some(1)),
            Err(ApiError::InvalidArgument(v)) if v.fields().eq(["job"])
        ));
        assert!(matches!(Violations::default().into_value(Some(1)), Ok(1)));
        assert!(matches!(
            Violations::default().into_value::<i32>(None),
            Err(ApiError::Internal(_))
        ));
    }
}
