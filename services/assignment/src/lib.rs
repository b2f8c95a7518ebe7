//! The assignment service: gives every ticket to the least-loaded available
//! agent, fairly and race-free across replicas, with skills, capacity,
//! availability and escalation routing. It owns its own database (the
//! roster and its projection of who holds what); the ticket service stays
//! the source of truth, told of each decision through AssignTicket.
//!
//! The crate has the shape every service has (docs/architecture.md), so a
//! reader who knows one service finds their way in this one:
//!
//! - [`api`]: `support.v1.AssignmentService`: protobuf in and out, who may
//!   call what. Nothing else sees protobuf.
//! - [`app`]: the use cases and the work behind them: the decision engine,
//!   the drainer, the event consumer, roster sync and reconciliation.
//! - [`domain`]: agents, assignments, priorities and the pure rules; no
//!   gRPC, SQL or protobuf types, so the rules are testable on their own.
//! - [`storage`]: every query.
//! - [`clients`]: the services we call (tickets, accounts), translated into
//!   domain terms at the edge.
//! - [`config`], [`startup`]: settings and wiring, shared by `main` and the
//!   tests.

pub mod api;
pub mod app;
pub mod clients;
pub mod config;
pub mod domain;
pub mod startup;
pub mod storage;

/// The service's own migrations (the kit's run first; see `kit::db`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
