//! Calling other services: one lazily connected HTTP/2 channel per
//! dependency with a deadline on every call, a freshly minted service token
//! on every request, and one translation of their failures: NOT_FOUND means
//! "no such thing" (`Ok(None)`), anything else that fails is UNAVAILABLE to
//! our own caller (retryable; nothing was written).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tonic::{
    Code, Request, Status, metadata::MetadataValue, service::Interceptor, transport::Channel,
};

use crate::{
    auth::{AuthConfig, Minter, Role},
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

/// Adds `authorization: Bearer <service token>` (and the current W3C
/// `traceparent`/`tracestate`, when tracing is exported) to every request.
///
/// Production (`SERVICE_TOKEN_FILE` set): the token the identity provider
/// issued to this service, read from a mounted file (re-read every 30 s, so
/// rotation needs no restart). Local runs and tests: a token minted per call
/// with the shared HS256 secret (an HMAC: microseconds).
#[derive(Clone)]
pub struct ServiceToken(Source);

#[derive(Clone)]
enum Source {
    Minted {
        minter: Minter,
        subject: &'static str,
    },
    File {
        path: PathBuf,
        cached: Arc<Mutex<Option<(Instant, String)>>>,
    },
}

const TOKEN_FILE_TTL: Duration = Duration::from_secs(30);

impl ServiceToken {
    pub fn new(auth: &AuthConfig, subject: &'static str) -> Self {
        match &auth.service_token_file {
            Some(path) => Self(Source::File {
                path: path.clone(),
                cached: Arc::default(),
            }),
            None => Self(Source::Minted {
                minter: Minter::new(auth),
                subject,
            }),
        }
    }

    fn token(&self) -> Result<String, Status> {
        match &self.0 {
            Source::Minted { minter, subject } => {
                Ok(minter.mint(subject, Role::Service, chrono::Duration::minutes(5)))
            }
            Source::File { path, cached } => {
                let mut cached = cached.lock().expect("token cache lock");
                if let Some((read_at, token)) = cached.as_ref()
                    && read_at.elapsed() < TOKEN_FILE_TTL
                {
                    return Ok(token.clone());
                }
                let token = std::fs::read_to_string(path)
                    .map(|t| t.trim().to_owned())
                    .map_err(|e| {
                        tracing::error!(path = %path.display(), error = %e, "cannot read SERVICE_TOKEN_FILE");
                        Status::unavailable("service credentials unavailable")
                    })?;
                *cached = Some((Instant::now(), token.clone()));
                Ok(token)
            }
        }
    }
}

impl Interceptor for ServiceToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = MetadataValue::try_from(format!("Bearer {}", self.token()?))
            .map_err(|_| Status::unavailable("service token is not valid ASCII"))?;
        request.metadata_mut().insert("authorization", value);
        // Carry our trace to the callee.
        if let Some(trace) = crate::telemetry::current_trace() {
            if let Ok(value) = MetadataValue::try_from(trace.traceparent) {
                request.metadata_mut().insert("traceparent", value);
            }
            if let Some(Ok(value)) = trace.tracestate.map(MetadataValue::try_from) {
                request.metadata_mut().insert("tracestate", value);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(token: &mut ServiceToken) -> Result<String, Status> {
        let request = token.call(Request::new(()))?;
        Ok(request
            .metadata()
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned())
    }

    #[test]
    fn a_mounted_token_file_is_presented_as_is() {
        let path = std::env::temp_dir().join(format!("service-token-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "issued.by.idp\n").unwrap();
        let auth = AuthConfig {
            service_token_file: Some(path.clone()),
            ..AuthConfig::dev()
        };
        let mut token = ServiceToken::new(&auth, "ticket-service");
        assert_eq!(authorization(&mut token).unwrap(), "Bearer issued.by.idp");
        std::fs::remove_file(&path).unwrap();
        // Cached: a rotation in progress does not fail calls.
        assert_eq!(authorization(&mut token).unwrap(), "Bearer issued.by.idp");
        let mut missing = ServiceToken::new(&auth, "ticket-service");
        assert_eq!(
            authorization(&mut missing).unwrap_err().code(),
            Code::Unavailable
        );
    }

    #[test]
    fn without_a_file_a_verifiable_service_token_is_minted() {
        let auth = AuthConfig::dev();
        let mut token = ServiceToken::new(&auth, "ticket-service");
        let header = authorization(&mut token).unwrap();
        let caller = crate::auth::Verifier::new(&auth)
            .unwrap()
            .verify(header.strip_prefix("Bearer ").unwrap())
            .unwrap();
        assert_eq!(
            (caller.id.as_str(), caller.role),
            ("ticket-service", Role::Service)
        );
    }
}
