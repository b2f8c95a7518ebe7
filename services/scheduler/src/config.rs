//! The scheduler's settings, from environment variables with defaults that
//! run locally with no configuration. Each field documents its variables
//! and defaults; docs/scheduler.md has the job table.

use std::time::Duration;

use chrono_tz::Tz;
use helpdesk_kit::config::{CommonConfig, millis_or, string_or, var_or};

use crate::{
    app::{jobs::Thresholds, scheduler::SchedulerConfig},
    clients::tickets::SlaTargets,
    domain::{CatchUp, JobKind, JobSpec, Overlap, Schedule},
};

/// The local database when `DATABASE_URL` is unset.
pub const DATABASE: &str = "helpdesk_scheduler";

/// A job's defaults: schedule, overlap, catch-up, maximum lateness (hours).
/// Schedules are read in `SCHEDULER_TIME_ZONE`, statistics in
/// `STATS_TIME_ZONE`.
const DEFAULTS: [(JobKind, &str, Overlap, CatchUp, u64); 7] = [
    // Daily; thresholds are relative to as-of, so one late run covers the
    // missed days.
    (
        JobKind::AutoCloseResolvedTickets,
        "0 2 * * *",
        Overlap::Skip,
        CatchUp::Latest,
        24,
    ),
    (
        JobKind::SendOverdueTicketAlerts,
        "0 */6 * * *",
        Overlap::Skip,
        CatchUp::Latest,
        6,
    ),
    (
        JobKind::EscalateOldOpenTickets,
        "0 1 * * *",
        Overlap::Skip,
        CatchUp::Latest,
        24,
    ),
    (
        JobKind::SendRatingRequests,
        "0 * * * *",
        Overlap::Skip,
        CatchUp::Latest,
        6,
    ),
    (
        JobKind::SendUnratedTicketReminders,
        "0 10 * * *",
        Overlap::Skip,
        CatchUp::Latest,
        24,
    ),
    // Each day's snapshot is its own: every missed day is computed, in order.
    (
        JobKind::GenerateSupportStatistics,
        "0 0 * * *",
        Overlap::Queue,
        CatchUp::All,
        7 * 24,
    ),
    (
        JobKind::UpdateFaqAnalytics,
        "0 4 * * *",
        Overlap::Skip,
        CatchUp::Latest,
        24,
    ),
];

#[derive(Clone, Debug)]
pub struct Config {
    /// `LISTEN_ADDR` (default `0.0.0.0:50054`), `DATABASE_URL` (default
    /// `postgres://postgres@127.0.0.1:5432/helpdesk_scheduler`),
    /// `DATABASE_MAX_CONNECTIONS`, `JWT_*`, `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub common: CommonConfig,
    /// One per job. For each job `<NAME>` (upper-cased, e.g.
    /// `JOB_AUTO_CLOSE_RESOLVED_TICKETS_SCHEDULE`):
    /// - `JOB_<NAME>_SCHEDULE`: cron, 5 fields or 6 with seconds ([`DEFAULTS`]);
    /// - `JOB_<NAME>_TIME_ZONE`: IANA zone (default `SCHEDULER_TIME_ZONE`,
    ///   itself default `UTC`; the statistics job defaults to `STATS_TIME_ZONE`);
    /// - `JOB_<NAME>_OVERLAP`: `skip` | `queue`;
    /// - `JOB_<NAME>_CATCH_UP`: `skip` | `latest` | `all`;
    /// - `JOB_<NAME>_MAX_LATENESS_SECS`: missed windows older than this never run.
    pub jobs: Vec<JobSpec>,
    /// - `AUTO_CLOSE_AFTER_HOURS` (default 168 = 7 days);
    /// - `ESCALATE_AFTER_HOURS` (default 48);
    /// - `RATING_REQUEST_AFTER_HOURS` (default 48);
    /// - `RATING_REQUEST_WITHIN_HOURS` (default 336 = 14 days): tickets
    ///   resolved longer ago are never asked; must exceed the previous;
    /// - `RATING_REMINDER_AFTER_HOURS` (default 72);
    /// - `RATING_REMINDERS_MAX` (default 2);
    /// - `SLA_TARGETS`: `priority=first_response_hours/resolution_hours,...`
    ///   (default [`helpdesk_kit::sla::DEFAULT`]);
    /// - `STATS_TIME_ZONE`: the zone statistics days are cut in (default `UTC`).
    pub thresholds: Thresholds,
    /// - `TICK_MS` (default 1000): real time between ticks;
    /// - `LEASE_SECS` (default 60): a claim's lease;
    /// - `LEASE_RENEW_MS` (default 15000): renewal pace while a page runs;
    /// - `MISFIRE_GRACE_SECS` (default 60): later than this a window counts
    ///   as missed (catch-up policy) rather than on time;
    /// - `MAX_ATTEMPTS` (default 5): claims of a run failing transiently;
    /// - `RETRY_AFTER_SECS` (default 30, doubling): delay before a retry.
    pub scheduler: SchedulerConfig,
    /// `SCHEDULER_HOLDER`: this replica's name in run claims (default
    /// `HOSTNAME`, the pod name in Kubernetes, else `scheduler`); a random
    /// suffix is added.
    pub holder: String,
    /// `TICKET_ADDR`: the ticket service, whose `TicketJobsService` does
    /// every job's work (default `http://127.0.0.1:50051`). Set it empty to
    /// run without it: every run is then recorded as skipped, saying so.
    pub ticket_addr: Option<String>,
    /// `TICKET_TIMEOUT_MS` (default 30000): the deadline of one page's call.
    pub ticket_timeout: Duration,
    /// `TICKET_PAGE_SIZE` (default 500, at most 1000): tickets per page.
    /// Over 100,000 tickets 500 and 1000 took the same time (`bench
    /// scheduler`, docs/performance.md), and a smaller page holds its row
    /// locks for less time.
    pub ticket_page_size: i32,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::with_common(CommonConfig::from_env(50054, DATABASE)?)
    }

    /// Everything but `common` from the environment (tests pass their own
    /// database, port and keys, then adjust).
    pub fn with_common(common: CommonConfig) -> anyhow::Result<Self> {
        let zone = string_or("SCHEDULER_TIME_ZONE", "UTC");
        let stats_zone = string_or("STATS_TIME_ZONE", "UTC");
        let mut jobs = Vec::new();
        for (kind, schedule, overlap, catch_up, lateness_hours) in DEFAULTS {
            let key = |what: &str| format!("JOB_{}_{what}", kind.name().to_ascii_uppercase());
            let default_zone = if kind == JobKind::GenerateSupportStatistics {
                &stats_zone
            } else {
                &zone
            };
            let schedule = Schedule::parse(
                &string_or(&key("SCHEDULE"), schedule),
                &string_or(&key("TIME_ZONE"), default_zone),
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", key("SCHEDULE")))?;
            jobs.push(JobSpec {
                kind,
                schedule,
                overlap: var_or(&key("OVERLAP"), overlap)?,
                catch_up: var_or(&key("CATCH_UP"), catch_up)?,
                max_lateness: Duration::from_secs(var_or(
                    &key("MAX_LATENESS_SECS"),
                    lateness_hours * 3600,
                )?),
            });
        }
        let hours = |name: &str, default: u64| -> anyhow::Result<Duration> {
            Ok(Duration::from_secs(var_or(name, default)? * 3600))
        };
        let thresholds = Thresholds {
            auto_close_after: hours("AUTO_CLOSE_AFTER_HOURS", 168)?,
            escalate_after: hours("ESCALATE_AFTER_HOURS", 48)?,
            rating_request_after: hours("RATING_REQUEST_AFTER_HOURS", 48)?,
            rating_request_within: hours("RATING_REQUEST_WITHIN_HOURS", 336)?,
            reminder_after: hours("RATING_REMINDER_AFTER_HOURS", 72)?,
            max_reminders: var_or("RATING_REMINDERS_MAX", 2)?,
            sla: SlaTargets::parse(&string_or("SLA_TARGETS", helpdesk_kit::sla::DEFAULT))
                .map_err(|e| anyhow::anyhow!("SLA_TARGETS: {e}"))?,
            stats_zone: stats_zone.parse::<Tz>().map_err(|_| {
                anyhow::anyhow!("STATS_TIME_ZONE: {stats_zone:?} is not an IANA time zone")
            })?,
        };
        anyhow::ensure!(
            thresholds.rating_request_within > thresholds.rating_request_after,
            "RATING_REQUEST_WITHIN_HOURS must exceed RATING_REQUEST_AFTER_HOURS \
             (tickets are asked between the two)"
        );
        let lease = Duration::from_secs(var_or("LEASE_SECS", 60)?);
        let scheduler = SchedulerConfig {
            tick: millis_or("TICK_MS", Duration::from_secs(1))?,
            lease,
            renew_every: millis_or("LEASE_RENEW_MS", Duration::from_secs(15))?,
            grace: Duration::from_secs(var_or("MISFIRE_GRACE_SECS", 60)?),
            max_attempts: var_or("MAX_ATTEMPTS", 5)?,
            retry_after: Duration::from_secs(var_or("RETRY_AFTER_SECS", 30)?),
            ..SchedulerConfig::default()
        };
        anyhow::ensure!(
            scheduler.renew_every < lease,
            "LEASE_RENEW_MS must be shorter than LEASE_SECS"
        );
        anyhow::ensure!(
            scheduler.max_attempts >= 1,
            "MAX_ATTEMPTS must be at least 1"
        );
        Ok(Self {
            common,
            jobs,
            thresholds,
            scheduler,
            holder: string_or("SCHEDULER_HOLDER", &string_or("HOSTNAME", "scheduler")),
            ticket_addr: Some(string_or("TICKET_ADDR", "http://127.0.0.1:50051"))
                .filter(|a| !a.trim().is_empty()),
            ticket_timeout: millis_or("TICKET_TIMEOUT_MS", Duration::from_secs(30))?,
            ticket_page_size: var_or("TICKET_PAGE_SIZE", 500)?,
        })
    }
}
