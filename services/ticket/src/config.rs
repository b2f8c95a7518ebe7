//! The ticket service's settings (environment variables; docs/operations.md).

use std::{path::PathBuf, time::Duration};

use helpdesk_events::{amqp, relay::RelayConfig};
use helpdesk_kit::{
    config::{CommonConfig, millis_or, string_or, var_or},
    sla::{self, SlaTargets},
};

use crate::domain::attachment::Limits;

/// The local database when `DATABASE_URL` is unset.
pub const DATABASE: &str = "helpdesk_ticket";

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
    /// `ATTACHMENTS_STORE` and `ATTACHMENTS_S3_*`: where attachment bytes go.
    pub attachments_store: StoreConfig,
    /// `ATTACHMENT_MAX_BYTES`, `ATTACHMENTS_PER_TICKET`.
    pub attachment_limits: Limits,
    /// `FAQ_SEARCH_CACHE`: SearchFaqs pages each replica keeps (0: none).
    pub faq_search_cache: usize,
}

/// SearchFaqs pages kept by default: a few MB.
pub const FAQ_SEARCH_CACHE: usize = 1_000;

/// Where attachment bytes are kept (docs/attachments.md).
#[derive(Clone, Debug, PartialEq)]
pub enum StoreConfig {
    /// A local directory (`ATTACHMENTS_STORE=/path` or `file:///path`).
    Directory(PathBuf),
    /// An S3-compatible bucket (`ATTACHMENTS_STORE=s3://bucket`).
    S3(S3Config),
}

#[derive(Clone, PartialEq)]
pub struct S3Config {
    pub bucket: String,
    /// `ATTACHMENTS_S3_ENDPOINT`: for S3-compatible services (MinIO, Ceph,
    /// a test server); unset means AWS itself.
    pub endpoint: Option<String>,
    /// `ATTACHMENTS_S3_REGION` (default `us-east-1`).
    pub region: String,
    /// `ATTACHMENTS_S3_ACCESS_KEY_ID` + `ATTACHMENTS_S3_SECRET_ACCESS_KEY`;
    /// unset means the AWS defaults (`AWS_*` variables, web identity,
    /// instance metadata).
    pub credentials: Option<(String, String)>,
    /// `ATTACHMENTS_S3_ALLOW_HTTP`: plain HTTP to the endpoint (local test
    /// servers only).
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(id, _)| (id, "<secret>")),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl StoreConfig {
    /// The default: `.dev/attachments` under the working directory (the
    /// local stack sets an absolute path; deploy/ mounts a volume).
    pub const DEFAULT: &str = ".dev/attachments";

    /// A directory under the system's temporary one, for tests and
    /// benchmarks that never look at attachments.
    pub fn temporary() -> Self {
        Self::Directory(
            std::env::temp_dir().join(format!("helpdesk-attachments-{}", std::process::id())),
        )
    }

    /// Reads `ATTACHMENTS_STORE` and, for S3, the `ATTACHMENTS_S3_*` variables.
    pub fn from_env() -> anyhow::Result<Self> {
        let raw = string_or("ATTACHMENTS_STORE", Self::DEFAULT);
        if let Some(bucket) = raw.strip_prefix("s3://") {
            let bucket = bucket.trim_end_matches('/');
            anyhow::ensure!(
                !bucket.is_empty() && !bucket.contains('/'),
                "ATTACHMENTS_STORE={raw:?}: name a bucket, as s3://bucket"
            );
            let id = string_or("ATTACHMENTS_S3_ACCESS_KEY_ID", "");
            let secret = string_or("ATTACHMENTS_S3_SECRET_ACCESS_KEY", "");
            anyhow::ensure!(
                id.is_empty() == secret.is_empty(),
                "set both ATTACHMENTS_S3_ACCESS_KEY_ID and ATTACHMENTS_S3_SECRET_ACCESS_KEY, or neither"
            );
            let endpoint = string_or("ATTACHMENTS_S3_ENDPOINT", "");
            return Ok(Self::S3(S3Config {
                bucket: bucket.to_owned(),
                endpoint: (!endpoint.is_empty()).then_some(endpoint),
                region: string_or("ATTACHMENTS_S3_REGION", "us-east-1"),
                credentials: (!id.is_empty()).then_some((id, secret)),
                allow_http: var_or("ATTACHMENTS_S3_ALLOW_HTTP", false)?,
            }));
        }
        let dir = match raw.strip_prefix("file://") {
            Some(path) => path,
            None if raw.contains("://") => {
                anyhow::bail!(
                    "ATTACHMENTS_STORE={raw:?}: use a directory, file:///dir or s3://bucket"
                )
            }
            None => raw.as_str(),
        };
        anyhow::ensure!(
            !dir.is_empty(),
            "ATTACHMENTS_STORE={raw:?} names no directory"
        );
        Ok(Self::Directory(PathBuf::from(dir)))
    }
}

impl Config {
    /// The settings tests and benchmarks start an in-process service with:
    /// `common` as given, the accounts and rides services both at
    /// `platform_addr` (the stand-in), the events relay as given, and every
    /// other setting at its default (attachments in a temporary directory).
    /// Override a field with `Config { field, ..Config::for_tests(..) }`, so
    /// a new setting is added here once, not in every harness.
    pub fn for_tests(
        common: CommonConfig,
        platform_addr: &str,
        relay: Option<RelayConfig>,
    ) -> Self {
        Self {
            common,
            accounts_addr: platform_addr.to_owned(),
            rides_addr: platform_addr.to_owned(),
            platform_timeout: Duration::from_millis(800),
            idempotency_retention: chrono::Duration::hours(48),
            relay,
            sla: SlaTargets::default(),
            attachments_store: StoreConfig::temporary(),
            attachment_limits: Limits::default(),
            faq_search_cache: FAQ_SEARCH_CACHE,
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let retention_hours: i64 = var_or("IDEMPOTENCY_RETENTION_HOURS", 48)?;
        anyhow::ensure!(
            retention_hours >= 24,
            "IDEMPOTENCY_RETENTION_HOURS must be at least 24"
        );
        Ok(Self {
            common: CommonConfig::from_env(50051, DATABASE)?,
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
            attachments_store: StoreConfig::from_env()?,
            attachment_limits: {
                let max_bytes: u64 = var_or("ATTACHMENT_MAX_BYTES", Limits::default().max_bytes)?;
                let per_ticket: i64 =
                    var_or("ATTACHMENTS_PER_TICKET", Limits::default().per_ticket)?;
                anyhow::ensure!(max_bytes > 0, "ATTACHMENT_MAX_BYTES must be positive");
                anyhow::ensure!(per_ticket > 0, "ATTACHMENTS_PER_TICKET must be positive");
                Limits {
                    max_bytes,
                    per_ticket,
                }
            },
            faq_search_cache: var_or("FAQ_SEARCH_CACHE", FAQ_SEARCH_CACHE)?,
            sla: SlaTargets::parse(&string_or("SLA_TARGETS", sla::DEFAULT))
                .map_err(|e| anyhow::anyhow!("SLA_TARGETS: {e}"))?,
        })
    }
}
