//! The scheduler service: runs the periodic jobs (auto-close, SLA alerts,
//! escalation, rating requests and reminders, statistics, FAQ analytics) on
//! cron schedules in IANA time zones, each window exactly once however many
//! replicas run, catching up after downtime by policy, resumable mid-batch
//! after a crash, with every run and skipped window recorded
//! (docs/scheduler.md).
//!
//! The crate has the shape every service has (docs/architecture.md):
//!
//! - [`api`]: `support.v1.SchedulerService`: jobs, runs, manual runs,
//!   pause/resume, daily statistics; who may call what.
//! - [`app`]: the tick loop (plan, claim, execute under lease and fencing
//!   token) and what each job asks of the ticket service.
//! - [`domain`]: schedules (DST), jobs, overlap and catch-up policies, run
//!   states, statistics days; no gRPC, SQL or protobuf.
//! - [`storage`]: every query.
//! - [`clients`]: the ticket-service work behind the [`clients::tickets::TicketWork`] trait.
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
