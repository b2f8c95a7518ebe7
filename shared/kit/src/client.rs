//! Calling other services: one lazily connected HTTP/2 channel per
//! dependency with a deadline on every call, a freshly minted service token
//! on every request, and one translation of their failures: NOT_FOUND means
//! "no such thing" (`Ok(None)`), anything else that fails is UNAVAILABLE to
//! our own caller (retryable; nothing was written).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

use tonic::{
    Code, Request, Status, metadata::MetadataValue, service::Interceptor, transport::Channel,
};

use crate::{
    auth::{AuthConfig, Minter, Role},
    error::{ApiError, ApiResult},
};

/// The accounts service as our services call it: the directory of people.
pub type Accounts =
    helpdesk_proto::platform::accounts::v1::accounts_service_client::AccountsServiceClient<
        tonic::service::interceptor::InterceptedService<Channel, ServiceToken>,
    >;

/// A client of the accounts service at `addr`, calling as `identity`.
pub fn accounts(
    addr: &str,
    timeout: Duration,
    auth: &AuthConfig,
    identity: &'static str,
) -> anyhow::Result<Accounts> {
    use helpdesk_proto::platform::accounts::v1::accounts_service_client::AccountsServiceClient;
    Ok(AccountsServiceClient::with_interceptor(
        channel(addr, timeout)?,
        ServiceToken::new(auth, identity),
    ))
}

/// Every staff account the accounts service lists, active or not, every
/// page (of the largest size it serves).
pub async fn all_staff(
    accounts: &Accounts,
) -> ApiResult<Vec<helpdesk_proto::platform::accounts::v1::User>> {
    use helpdesk_proto::platform::accounts::v1::ListStaffRequest;
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = accounts
            .clone()
            .list_staff(ListStaffRequest {
                page_size: 500,
                page_token: std::mem::take(&mut page_token),
            })
            .await
            .map_err(|s| unavailable("accounts", &s))?
            .into_inner();
        out.extend(page.staff.into_iter().filter(|u| u.is_staff));
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

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
/// issued to this service, from a mounted file. It is read once when the
/// client is built and then every 30 s by a background task with async file
/// I/O, so rotation needs no restart and no call ever waits on the disk.
/// Local runs and tests: a token minted per call with the shared HS256
/// secret (an HMAC: microseconds).
#[derive(Clone)]
pub struct ServiceToken(Source);

#[derive(Clone)]
enum Source {
    Minted {
        minter: Minter,
        subject: &'static str,
    },
    File(Arc<RwLock<Option<String>>>),
}

const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(30);

impl ServiceToken {
    /// The token source `auth` configures, for a service named `subject`.
    pub fn new(auth: &AuthConfig, subject: &'static str) -> Self {
        Self::with_refresh(auth, subject, TOKEN_FILE_REFRESH)
    }

    fn with_refresh(auth: &AuthConfig, subject: &'static str, every: Duration) -> Self {
        match &auth.service_token_file {
            Some(path) => {
                // Once, at start: a missing file is reported now, not per call.
                let cached = Arc::new(RwLock::new(read_token(path)));
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(refresh_token(path.clone(), Arc::downgrade(&cached), every));
                }
                Self(Source::File(cached))
            }
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
            Source::File(cached) => cached
                .read()
                .expect("token cache lock")
                .clone()
                .ok_or_else(|| Status::unavailable("service credentials unavailable")),
        }
    }
}

fn read_token(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(token) => Some(token.trim().to_owned()),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot read SERVICE_TOKEN_FILE");
            None
        }
    }
}

/// Re-reads the token file every `every` until the last client is dropped.
async fn refresh_token(path: PathBuf, cached: Weak<RwLock<Option<String>>>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(cached) = cached.upgrade() else {
            return;
        };
        reload_token(&path, &cached).await;
    }
}

/// One re-read. A failed read keeps the previous token: a rotation in
/// progress (the file briefly missing) does not fail calls.
async fn reload_token(path: &Path, cached: &RwLock<Option<String>>) {
    match tokio::fs::read_to_string(path).await {
        Ok(token) => *cached.write().expect("token cache lock") = Some(token.trim().to_owned()),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot re-read SERVICE_TOKEN_FILE; keeping the last token");
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

    #[tokio::test]
    async fn a_mounted_token_file_is_presented_as_is_and_rotations_are_picked_up() {
        let path = std::env::temp_dir().join(format!("service-token-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "issued.by.idp\n").unwrap();
        let auth = AuthConfig {
            service_token_file: Some(path.clone()),
            ..AuthConfig::dev()
        };
        let mut token =
            ServiceToken::with_refresh(&auth, "ticket-service", Duration::from_millis(10));
        assert_eq!(authorization(&mut token).unwrap(), "Bearer issued.by.idp");

        // Rotation: the new token arrives without a restart.
        std::fs::write(&path, "rotated\n").unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while authorization(&mut token).unwrap() != "Bearer rotated" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "rotation never picked up"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // A rotation in progress (file briefly gone) keeps the last token.
        std::fs::remove_file(&path).unwrap();
        let Source::File(cached) = &token.0 else {
            panic!("a file source")
        };
        reload_token(&path, cached).await;
        assert_eq!(authorization(&mut token).unwrap(), "Bearer rotated");

        // No file at start: calls fail as UNAVAILABLE (retryable), not INTERNAL.
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
            (caller.subject().as_str(), caller.role()),
            ("ticket-service", Role::Service)
        );
    }
}
