//! The ticket service's settings (environment variables; docs/operations.md).

use std::time::Duration;

use helpdesk_events::{amqp, relay::RelayConfig};
use helpdesk_kit::{
    config::{CommonConfig, millis_or, string_or, var_or},
    sla::{self, SlaTargets},
};

#[derive(Clone, Debug)]
pub struct Config {
    pub common: CommonConfig,
    /// `ACCOUNTS_ADDR`: the accounts service (default: the local stand-in).
    pub accounts_addr: String,
    /// `RIDES_ADDR`: the rides service (default: the local stand-in).
    pub rides_addr: String,
    /// `PLATFORM_TIMEOUT_MS`: deadline of each validation call.
    pub platform_timeout: Duration,
    /// `IDEMPOTENCY_RETENTION_HOURS`: how long `request_id`s replay (≥ 24).
    pub idempotency_retention: chrono::Duration,
    /// The outbox relay (`AMQP_URL`, `EVENTS_EXCHANGE`, `OUTBOX_RETENTION_HOURS`);
    /// `None` when `RELAY_ENABLED=false` (events then wait in the outbox).
    pub relay: Option<RelayConfig>,
    /// `SLA_TARGETS`: per-priority first-response/resolution hours, the same
    /// variable and default as the scheduler's (the dashboard's shares).
    pub sla: SlaTargets,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let retention_hours: i64 = var_or("IDEMPOTENCY_RETENTION_HOURS", 48)?;
        anyhow::ensure!(
            retention_hours >= 24,
            "IDEMPOTENCY_RETENTION_HOURS must be at least 24"
        );
        Ok(Self {
            common: CommonConfig::from_env(50051, "helpdesk_ticket")?,
            accounts_addr: string_or("ACCOUNTS_ADDR", "http://127.0.0.1:50060"),
            rides_addr: string_or("RIDES_ADDR", "http://127.0.0.1:50060"),
            platform_timeout: millis_or("PLATFORM_TIMEOUT_MS", Duration::from_millis(800))?,
            idempotency_retention: chrono::Duration::hours(retention_hours),
            relay: if var_or("RELAY_ENABLED", true)? {
                let mut relay = RelayConfig::new(
                    &string_or("AMQP_URL", amqp::DEFAULT_URL),
                    &string_or("EVENTS_EXCHANGE", amqp::DEFAULT_EXCHANGE),
                    "ticket",
                );
                relay.retention = chrono::Duration::hours(var_or("OUTBOX_RETENTION_HOURS", 72)?);
                Some(relay)
            } else {
                None
            },
            sla: SlaTargets::parse(&string_or("SLA_TARGETS", sla::DEFAULT))
                .map_err(|e| anyhow::anyhow!("SLA_TARGETS: {e}"))?,
        })
    }
}
