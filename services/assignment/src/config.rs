//! The assignment service's settings, from environment variables with
//! defaults that run locally with no configuration. Each field documents its
//! variable and default.

use std::time::Duration;

use helpdesk_events::consumer::ConsumerConfig;
use helpdesk_kit::config::{CommonConfig, millis_or, string_or, var_or};

use crate::{app::consumer::BINDINGS, clients::tickets::SERVICE_SUBJECT, domain::Tier};

/// The local database when `DATABASE_URL` is unset.
pub const DATABASE: &str = "helpdesk_assignment";

#[derive(Clone, Debug)]
pub struct Config {
    /// `LISTEN_ADDR` (default `0.0.0.0:50052`), `DATABASE_URL` (default
    /// `postgres://postgres@127.0.0.1:5432/helpdesk_assignment`),
    /// `DATABASE_MAX_CONNECTIONS`, `JWT_*`, `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub common: CommonConfig,
    /// `ACCOUNTS_ADDR`: the accounts service, for the staff directory
    /// (default `http://127.0.0.1:50060`, the local stand-in).
    pub accounts_addr: String,
    /// `TICKET_ADDR`: the ticket service (default `http://127.0.0.1:50051`).
    pub ticket_addr: String,
    /// `CALL_TIMEOUT_MS`: deadline of each call to those two (default 2000).
    pub call_timeout: Duration,
    /// The event consumer (`ConsumerConfig::from_env`; `CONSUMER_QUEUE`
    /// default `assignment.ticket-events`). With the defaults an event is
    /// retried after 1, 2, 4, ..., 64 s: about two minutes of a dependency
    /// outage (only escalation calls the ticket service from a handler) pass
    /// without a dead letter.
    pub consumer: ConsumerConfig,
    /// `CONSUMER_CONCURRENCY`: lanes consuming side by side from the one
    /// queue (default 4) on one broker connection; each applies what it
    /// holds (up to `CONSUMER_BATCH`, default 32) in one transaction, so a
    /// burst of new tickets costs one commit, not one each.
    pub consumer_concurrency: usize,
    /// `DEFAULT_CAPACITY`: open tickets a new agent may hold (default 10).
    pub default_capacity: i32,
    /// `ROSTER_SYNC_SECS`: how often the roster is read from the accounts
    /// service (default 60; also once at start).
    pub roster_interval: Duration,
    /// `RECONCILE_SECS`: how often workloads are checked against the ticket
    /// service (default 300).
    pub reconcile_interval: Duration,
    /// `REDISTRIBUTE_ON_UNAVAILABLE`: an agent going off shift or leaving
    /// hands their open tickets to others (`true`, default) or keeps them.
    pub redistribute_on_unavailable: bool,
    /// `ESCALATION_TIER`: where escalated tickets go (`l1` or `l2`; default `l2`).
    pub escalation_tier: Tier,
    /// `DRAIN_SECS`: how often the drainer serves the waiting queue even if
    /// nothing woke it (default 5): it retries after a ticket-service outage.
    pub drain_interval: Duration,
    /// `SERVICE_IDENTITY`: the subject the ticket service records as the
    /// actor of our changes (default `assignment-service`). With tokens
    /// from `SERVICE_TOKEN_FILE` set it to that token's `sub`, or our own
    /// `ticket.assigned` events would be taken for staff reassignments.
    pub service_identity: String,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let consumer = ConsumerConfig::from_env("assignment.ticket-events", &BINDINGS)?;
        let default_capacity = var_or("DEFAULT_CAPACITY", 10)?;
        anyhow::ensure!(
            crate::domain::agent::capacity(default_capacity).is_ok(),
            "DEFAULT_CAPACITY must be between 0 and {}",
            crate::domain::agent::MAX_CAPACITY
        );
        let secs = |name: &str, default: u64| -> anyhow::Result<Duration> {
            let n: u64 = var_or(name, default)?;
            anyhow::ensure!(n >= 1, "{name} must be at least 1");
            Ok(Duration::from_secs(n))
        };
        Ok(Self {
            common: CommonConfig::from_env(50052, DATABASE)?,
            accounts_addr: string_or("ACCOUNTS_ADDR", "http://127.0.0.1:50060"),
            ticket_addr: string_or("TICKET_ADDR", "http://127.0.0.1:50051"),
            call_timeout: millis_or("CALL_TIMEOUT_MS", Duration::from_millis(2000))?,
            consumer_concurrency: consumer.concurrency,
            consumer,
            default_capacity,
            roster_interval: secs("ROSTER_SYNC_SECS", 60)?,
            reconcile_interval: secs("RECONCILE_SECS", 300)?,
            redistribute_on_unavailable: var_or("REDISTRIBUTE_ON_UNAVAILABLE", true)?,
            escalation_tier: var_or("ESCALATION_TIER", Tier::L2)?,
            drain_interval: secs("DRAIN_SECS", 5)?,
            service_identity: {
                let identity = string_or("SERVICE_IDENTITY", SERVICE_SUBJECT);
                anyhow::ensure!(!identity.is_empty(), "SERVICE_IDENTITY must not be empty");
                identity
            },
        })
    }
}
