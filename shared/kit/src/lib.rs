//! The shared kit: everything every Helpdesk service needs, written once.
//!
//! A service crate holds only its domain, its storage and its handlers; this
//! crate holds the plumbing they all share, one module each:
//!
//! - [`config`]: typed settings from environment variables with defaults.
//! - [`telemetry`]: JSON logs, and OpenTelemetry export when configured.
//! - [`service`]: the one service skeleton: subcommands, connect and migrate,
//!   supervised tasks, serve, and the ordered teardown.
//! - [`tasks`]: background tasks restarted with backoff when they fail.
//! - [`health`]: what readiness, liveness and dependency health mean.
//! - [`metrics`]: the Prometheus registry and its endpoint on a port of its own.
//! - [`server`]: the gRPC server (reflection, auth, draining in-flight calls).
//! - [`auth`]: JWT verification and the typed [`auth::Caller`].
//! - [`client`]: calling other services: deadlines, service tokens, errors.
//! - [`error`]: the one mapping from domain errors to gRPC statuses.
//! - [`db`]: the PostgreSQL pool and migrations (the kit's tables + the service's).
//! - [`clock`]: injected time, so tests move the clock instead of sleeping.
//! - [`idempotency`]: `request_id` replay for mutating RPCs.
//! - [`page_token`]: opaque keyset page tokens and the page-size policy.
//! - [`pg`]: the PostgreSQL error codes we act on, by name.
//! - [`sla`]: the per-priority response and resolution targets (`SLA_TARGETS`).
//! - [`shutdown`]: SIGTERM/SIGINT as a future.

#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod metrics;
pub mod page_token;
pub mod pg;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod sla;
pub mod tasks;
pub mod telemetry;
pub mod ticket_ref;
