//! Calling other services: one lazily connected HTTP/2 channel per
//! dependency with a deadline on every call, a freshly minted service token
//! on every request, and one translation of their failures: NOT_FOUND means
//! "no such thing" (`Ok(None)`), anything else that fails is UNAVAILABLE to
//! our own caller (retryable; nothing was written).

use std::time::Duration;

use tonic::{Code, Request, Status, service::Interceptor, transport::Channel};

use crate::{
    auth::{Minter, Role},
    error::{ApiError, ApiResult},
};

/// A channel to `addr` whose calls time out after `timeout`.
pub fn channel(addr: &str, timeout: Duration) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(addr.to_owned())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Adds `authorization: Bearer <service token>` to every request. Tokens
/// are short-lived, so one is minted per call (an HMAC: microseconds).
#[derive(Clone)]
pub struct ServiceToken {
    minter: Minter,
    subject: &'static str,
}

impl ServiceToken {
    pub fn new(minter: Minter, subject: &'static str) -> Self {
        Self { minter, subject }
    }
}

impl Interceptor for ServiceToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert(
            "authorization",
            self.minter.bearer(self.subject, Role::Service),
        );
        Ok(request)
    }
}

/// `Ok(None)` for NOT_FOUND (and INVALID_ARGUMENT: an id they cannot parse
/// names nothing); UNAVAILABLE for every other failure.
pub fn absent_on_not_found<T>(
    result: Result<tonic::Response<T>, Status>,
    service: &str,
) -> ApiResult<Option<T>> {
    match result {
        Ok(response) => Ok(Some(response.into_inner())),
        Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => Ok(None),
        Err(status) => Err(unavailable(service, &status)),
    }
}

/// The UNAVAILABLE we report when `service` failed us.
pub fn unavailable(service: &str, status: &Status) -> ApiError {
    tracing::warn!(service, code = ?status.code(), message = status.message(), "dependency call failed");
    ApiError::Unavailable(format!(
        "{service} service unavailable ({:?}), retry later",
        status.code()
    ))
}
