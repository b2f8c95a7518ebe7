//! The notification service: turns ticket events into notifications for the
//! people concerned, kept in-app (listed, counted, marked and streamed live
//! with a resume cursor) and sent by email and push with preferences,
//! templates, retries and a delivery record each (docs/notifications.md).
//!
//! The crate has the shape every service has (docs/architecture.md):
//!
//! - [`api`]: `support.v1.NotificationService`: protobuf in and out, who may
//!   call what.
//! - [`app`]: the event consumer (who hears what, written set-based), the
//!   sender (claims and sends due deliveries), the live feed.
//! - [`domain`]: kinds, channels, audiences, preferences, retry timing; no
//!   gRPC, SQL or protobuf.
//! - [`storage`]: every query.
//! - [`clients`], [`channels`]: the accounts service; SMTP and the push
//!   gateway.
//! - [`templates`]: the texts, per kind, channel and locale.
//! - [`config`], [`startup`]: settings and wiring, shared by `main` and the
//!   tests.

pub mod api;
pub mod app;
pub mod channels;
pub mod clients;
pub mod config;
pub mod domain;
pub mod startup;
pub mod storage;
pub mod templates;

/// The service's own migrations (the kit's run first; see `kit::db`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
