//! The ticket service: support tickets, their conversation, ratings and
//! categories over gRPC, on its own PostgreSQL database. It is the source of
//! truth; every change is committed together with its event (kit outbox).
//!
//! - [`api`]: protobuf in, authorization, domain calls, protobuf out.
//! - [`domain`]: tickets, categories and their rules; no gRPC, no SQL.
//! - [`storage`]: every query.
//! - [`clients`]: the accounts and rides services we validate ids against.
//! - [`startup`]: wiring, shared by `main` and the tests.
//!
//! There is no `app/` layer: every use case is one RPC, so its handler in
//! `api/` is the use case (parse, check, one transaction).

pub mod api;
pub mod clients;
pub mod config;
pub mod domain;
pub mod seed;
pub mod startup;
pub mod storage;

/// The service's own migrations (the kit's run first; see `kit::db`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
