//! The ticket service: support tickets, their conversation, ratings and
//! categories over gRPC, on its own PostgreSQL database. It is the source of
//! truth; every change is committed together with its event (kit outbox).
//!
//! - [`domain`]: tickets and their rules; no gRPC, no SQL.
//! - [`storage`]: every query.
//! - [`api`]: protobuf in, domain calls, protobuf out.
//! - [`platform`]: the accounts and rides services we validate ids against.
//! - [`startup`]: wiring, shared by `main` and the tests.

pub mod api;
pub mod config;
pub mod domain;
pub mod platform;
pub mod seed;
pub mod startup;
pub mod storage;

/// The service's own migrations (the kit's run first; see `kit::db`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
