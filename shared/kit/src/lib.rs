//! The shared kit: everything every Helpdesk service needs, written once.
//!
//! A service crate holds only its domain, its storage and its handlers; this
//! crate holds the plumbing they all share, one module each:
//!
//! - [`config`]: typed settings from environment variables with defaults.
//! - [`telemetry`]: JSON logs, and OpenTelemetry export when configured.
//! - [`server`]: the gRPC bootstrap (health, reflection, auth, graceful stop).
//! - [`auth`]: JWT verification and the typed [`auth::Caller`].
//! - [`client`]: calling other services: deadlines, service tokens, errors.
//! - [`error`]: the one mapping from domain errors to gRPC statuses.
//! - [`db`]: the PostgreSQL pool and migrations (the kit's tables + the service's).
//! - [`clock`]: injected time, so tests move the clock instead of sleeping.
//! - [`idempotency`]: `request_id` replay for mutating RPCs.
//! - [`outbox`]: events written in the same transaction as the change.
//! - [`relay`]: publishes the outbox to RabbitMQ, in order, at least once.
//! - [`consumer`]: the consumer loop: dedup, retries, dead letters.
//! - [`amqp`]: connection, exchange, headers and backoff shared by both.
//! - [`ops`]: the outbox backlog over gRPC for operators.
//! - [`page_token`]: opaque keyset page tokens.
//! - [`shutdown`]: SIGTERM/SIGINT as a future.
//! - [`testing`]: fresh databases and tokens for tests.

pub mod amqp;
pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod db;
pub mod error;
pub mod idempotency;
pub mod ops;
pub mod outbox;
pub mod page_token;
pub mod relay;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod testing;
