//! The assignment service: gives every ticket to the least-loaded available
//! agent, fairly and race-free across replicas, with skills, capacity,
//! availability and escalation routing. It owns its own database (the
//! roster and its projection of who holds what); the ticket service stays
//! the source of truth, told of each decision through AssignTicket.
//!
//! - [`domain`]: agents, assignments and pure rules; no gRPC, no SQL.
//! - [`storage`]: every query.
//! - [`engine`]: the decisions, each under one cross-replica lock.
//! - [`consumer`]: ticket events in, decisions out.
//! - [`roster`]: the staff directory, synced periodically.
//! - [`reconcile`]: periodic correction of drift against the ticket service.
//! - [`api`]: `support.v1.AssignmentService` over gRPC.
//! - [`tickets`], [`accounts`]: clients of the services we call.
//! - [`startup`]: wiring, shared by `main` and the tests.

pub mod accounts;
pub mod api;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod engine;
pub mod reconcile;
pub mod roster;
pub mod startup;
pub mod storage;
pub mod tickets;

/// The service's own migrations (the kit's run first; see `kit::db`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
