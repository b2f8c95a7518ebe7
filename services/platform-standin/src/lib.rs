//! A stand-in for two other teams' services, accounts and rides, serving both
//! gRPC contracts from one process, seeded from a JSON file.
//!
//! Helpdesk calls those services but does not own them; local runs and tests
//! need something real to call, with ids that docs and tests can name. This
//! crate is a library so other crates' tests start it in-process with [`run`]
//! (on port 0) instead of spawning a binary. It uses the kit's server
//! bootstrap, so auth, health and reflection behave as in every service, and
//! an optional per-call delay ([`Options::delay`]) simulates a slow dependency.
//!
//! It also stands in for the platform's push gateway ([`push`]), on a port of
//! its own: plain HTTP/1.1 with JSON, as the real gateway speaks.

pub mod accounts;
pub mod data;
pub mod ids;
pub mod push;
pub mod rides;

use std::{future::Future, sync::Arc, time::Duration};

use helpdesk_kit::{
    auth::{AuthConfig, Verifier},
    error::{ApiError, ApiResult},
    service::Service,
};
use helpdesk_proto::platform::{
    accounts::v1::accounts_service_server::AccountsServiceServer,
    rides::v1::rides_service_server::RidesServiceServer,
};
use tokio::{net::TcpListener, sync::Notify};
use uuid::Uuid;

pub use crate::{
    accounts::Accounts,
    data::{DEMO_JSON, DemoData, SeedRide, SeedUser},
    push::{PushGateway, PushOptions},
    rides::Rides,
};

/// How the stand-in behaves beyond its data.
#[derive(Clone, Debug)]
pub struct Options {
    /// Added to every call before it answers (`STANDIN_DELAY_MS`, default 0),
    /// so tests can make a dependency slow and exercise callers' deadlines.
    pub delay: Duration,
    /// Notified as each call arrives (before its delay), so a test can wait
    /// for a call to be in flight instead of sleeping and hoping it is.
    pub arrivals: Arc<Notify>,
    /// How callers' tokens are verified (`JWT_*`); any valid role is accepted.
    pub auth: AuthConfig,
}

impl Default for Options {
    /// No delay; the dev JWT settings every test token is minted with.
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            arrivals: Arc::default(),
            auth: AuthConfig::dev(),
        }
    }
}

impl Options {
    /// Reads `STANDIN_DELAY_MS` and the `JWT_*` settings.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            delay: helpdesk_kit::config::millis_or("STANDIN_DELAY_MS", Duration::ZERO)?,
            arrivals: Arc::default(),
            auth: AuthConfig::from_env()?,
        })
    }

    /// The defaults with `delay` per call.
    pub fn with_delay(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }
}

/// Serves both services on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    data: DemoData,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let verifier = Verifier::new(&options.auth)?;
    tracing::info!(
        users = data.users.len(),
        rides = data.rides.len(),
        delay_ms = u64::try_from(options.delay.as_millis()).unwrap_or(u64::MAX),
        "platform stand-in seeded"
    );
    let pace = Pace {
        delay: options.delay,
        arrivals: options.arrivals,
    };
    Service::new()
        .grpc(AccountsServiceServer::new(Accounts::new(
            &data,
            pace.clone(),
        )))
        .grpc(RidesServiceServer::new(Rides::new(&data, pace)))
        .run(listener, verifier, shutdown)
        .await
}

/// How each call starts: announced, then delayed before any work (errors
/// are slow too).
#[derive(Clone, Debug, Default)]
pub struct Pace {
    delay: Duration,
    arrivals: Arc<Notify>,
}

impl Pace {
    async fn arrive(&self) {
        self.arrivals.notify_one();
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }
}

/// Parses a request's id field; INVALID_ARGUMENT names the field when it is not a UUID.
fn parse_id(field: &str, raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid(field, "must be a UUID"))
}
