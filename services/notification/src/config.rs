//! The notification service's settings, from environment variables with
//! defaults that run locally with no configuration. Each field documents its
//! variable and default.

use std::{path::PathBuf, time::Duration};

use helpdesk_events::consumer::ConsumerConfig;
use helpdesk_kit::config::{CommonConfig, millis_or, string_or, var_or};
use uuid::Uuid;

use crate::{
    app::{intake::BINDINGS, sender::SenderConfig},
    domain::{audience::StaffAudience, preferences::Policy},
};

/// The local database when `DATABASE_URL` is unset.
pub const DATABASE: &str = "helpdesk_notification";

#[derive(Clone, Debug)]
pub struct Config {
    /// `LISTEN_ADDR` (default `0.0.0.0:50053`), `DATABASE_URL` (default
    /// `postgres://postgres@127.0.0.1:5432/helpdesk_notification`),
    /// `DATABASE_MAX_CONNECTIONS`, `JWT_*`, `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub common: CommonConfig,
    /// `ACCOUNTS_ADDR`: contact details (default `http://127.0.0.1:50060`).
    pub accounts_addr: String,
    /// `CALL_TIMEOUT_MS`: deadline of each accounts call (default 2000).
    pub call_timeout: Duration,
    /// `CONTACT_TTL_SECS`: how long contacts and the staff list are cached
    /// (default 60).
    pub contact_ttl: Duration,
    /// The event consumer (`ConsumerConfig::from_env`: `CONSUMER_QUEUE`
    /// default `notification.ticket-events`, `CONSUMER_BATCH` events per
    /// transaction, default 32).
    pub consumer: ConsumerConfig,
    /// `CONSUMER_CONCURRENCY`: events handled side by side (default 4).
    pub consumer_concurrency: usize,
    /// `NEW_TICKET_AUDIENCE`: who hears of new tickets and of replies on
    /// unassigned ones: `all_staff` (default, as the original), `triage`
    /// (`TRIAGE_GROUP`) or `assignee_only` (nobody until assigned).
    pub new_ticket_audience: StaffAudience,
    /// `TRIAGE_GROUP`: comma-separated staff account ids.
    pub triage_group: Vec<Uuid>,
    /// `ESCALATION_GROUP`: comma-separated staff account ids told of overdue
    /// and escalated tickets besides the assignee.
    pub escalation_group: Vec<Uuid>,
    /// `PREFERENCE_DEFAULTS_OFF` (default `new_ticket:email,new_ticket:push`:
    /// staff see every new ticket in-app, and are mailed or buzzed for each
    /// only if they opt in) and `MANDATORY_CHANNELS`
    /// (default none): `kind:channel` lists.
    pub policy: Policy,
    /// `TEMPLATES_DIR` (default: this crate's `templates/`).
    pub templates_dir: PathBuf,
    /// The sender: `SMTP_*`, `PUSH_*`, `RETRY_*`, `SENDER_*`.
    pub sender: SenderConfig,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::with_common(CommonConfig::from_env(50053, DATABASE)?)
    }

    /// Everything but `common` from the environment (tests pass their own
    /// database, port and development keys).
    pub fn with_common(common: CommonConfig) -> anyhow::Result<Self> {
        let consumer = ConsumerConfig::from_env("notification.ticket-events", &BINDINGS)?;
        let policy = Policy {
            default_off: Policy::parse_pairs(&string_or(
                "PREFERENCE_DEFAULTS_OFF",
                "new_ticket:email,new_ticket:push",
            ))
            .map_err(|e| anyhow::anyhow!("PREFERENCE_DEFAULTS_OFF: {e}"))?,
            mandatory: Policy::parse_pairs(&string_or("MANDATORY_CHANNELS", ""))
                .map_err(|e| anyhow::anyhow!("MANDATORY_CHANNELS: {e}"))?,
        };
        Ok(Self {
            common,
            accounts_addr: string_or("ACCOUNTS_ADDR", "http://127.0.0.1:50060"),
            call_timeout: millis_or("CALL_TIMEOUT_MS", Duration::from_millis(2000))?,
            contact_ttl: Duration::from_secs(var_or("CONTACT_TTL_SECS", 60)?),
            consumer_concurrency: consumer.concurrency,
            consumer,
            new_ticket_audience: string_or("NEW_TICKET_AUDIENCE", "all_staff")
                .parse()
                .map_err(|e| anyhow::anyhow!("NEW_TICKET_AUDIENCE: {e}"))?,
            triage_group: ids("TRIAGE_GROUP")?,
            escalation_group: ids("ESCALATION_GROUP")?,
            policy,
            templates_dir: PathBuf::from(string_or(
                "TEMPLATES_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
            )),
            sender: SenderConfig::from_env()?,
        })
    }
}

/// A comma-separated list of account ids.
fn ids(name: &str) -> anyhow::Result<Vec<Uuid>> {
    string_or(name, "")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Uuid::parse_str(s).map_err(|e| anyhow::anyhow!("{name}: {s:?}: {e}")))
        .collect()
}
