//! What one step of each job's run asks of the ticket service, with the
//! configured thresholds measured from the run's as-of time. The scheduling
//! machinery calls [`step`] until a step is done; it knows nothing of what
//! the jobs do.

use std::time::Duration;

use chrono_tz::Tz;

use crate::{
    clients::tickets::{Progress, RunContext, SlaTargets, TicketWork, WorkError},
    domain::{
        JobKind,
        stats::{self, DailyStats, StatsDay},
    },
};

/// The jobs' thresholds (each from the environment; see `config`).
#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Resolved this long before as-of → closed.
    pub auto_close_after: Duration,
    /// Open this long without resolution → escalated.
    pub escalate_after: Duration,
    /// Resolved this long ago, unrated → a rating request.
    pub rating_request_after: Duration,
    /// Resolved longer ago than this → never asked (a backlog after
    /// downtime, or tickets imported from another desk, is not surveyed).
    pub rating_request_within: Duration,
    /// Asked this long ago, still unrated → a reminder.
    pub reminder_after: Duration,
    /// Reminders per ticket, in all.
    pub max_reminders: u32,
    pub sla: SlaTargets,
    /// The zone statistics days are cut in.
    pub stats_zone: Tz,
}

/// What a step produced.
#[derive(Debug)]
pub enum Step {
    /// A page of a paged job.
    Page(Progress),
    /// The statistics of one day (the statistics job is one step).
    Stats(StatsDay, DailyStats),
}

fn before(run: &RunContext, d: Duration) -> chrono::DateTime<chrono::Utc> {
    run.as_of - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Runs one step of `kind` for `run`.
pub async fn step(
    kind: JobKind,
    work: &dyn TicketWork,
    t: &Thresholds,
    run: &RunContext,
) -> Result<Step, WorkError> {
    let page = match kind {
        JobKind::AutoCloseResolvedTickets => {
            work.close_resolved(run, before(run, t.auto_close_after))
                .await?
        }
        JobKind::SendOverdueTicketAlerts => work.alert_overdue(run, &t.sla).await?,
        JobKind::EscalateOldOpenTickets => {
            work.escalate_open(run, before(run, t.escalate_after))
                .await?
        }
        JobKind::SendRatingRequests => {
            work.request_ratings(
                run,
                before(run, t.rating_request_after),
                before(run, t.rating_request_within),
            )
            .await?
        }
        JobKind::SendUnratedTicketReminders => {
            work.remind_unrated(run, before(run, t.reminder_after), t.max_reminders)
                .await?
        }
        JobKind::GenerateSupportStatistics => {
            let day = stats::day_before(run.as_of, t.stats_zone);
            let stats = work
                .daily_statistics(run, day.day, day.from, day.until)
                .await?;
            return Ok(Step::Stats(day, stats));
        }
        JobKind::UpdateFaqAnalytics => work.faq_analytics(run).await?,
    };
    Ok(Step::Page(page))
}
