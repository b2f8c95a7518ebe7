//! The work the jobs ask of the ticket service, behind a trait.
//!
//! The ticket service owns the tickets, so every job's effect is a call to
//! it: set-based and keyset-paged on its side, idempotent per (run id,
//! ticket) so a page repeated after a takeover changes nothing. Each call
//! does one page after the run's checkpoint and returns the new checkpoint;
//! the scheduler stores it under the run's fencing token before asking for
//! the next page. The gRPC client that implements [`TicketWork`] arrives
//! with the ticket-service calls; until then [`NotWired`] makes every run a
//! recorded skip that says so, and the tests plug in a recorder.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::stats::DailyStats;

/// What every call is told about the run it works for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunContext {
    /// The run: the ticket service records effects per (run id, ticket).
    pub run_id: Uuid,
    /// The fencing token of the current claim; strictly greater after every
    /// takeover, so the ticket side may refuse a stale holder too.
    pub fencing_token: i64,
    /// The time thresholds are measured from (the window's fire time, or
    /// RunJobNow's as-of).
    pub as_of: DateTime<Utc>,
    /// Where to continue: `None` on the first page, else the checkpoint the
    /// previous page returned (opaque to the scheduler).
    pub checkpoint: Option<String>,
}

/// What one page did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Tickets acted on in this page.
    pub processed: u64,
    /// Where the next page starts (stored before the next call).
    pub checkpoint: Option<String>,
    /// No more pages: the run is complete.
    pub done: bool,
}

impl Progress {
    /// A run with nothing (more) to do.
    pub fn finished(processed: u64) -> Self {
        Self {
            processed,
            checkpoint: None,
            done: true,
        }
    }
}

/// Why a call failed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkError {
    /// Worth retrying later (the ticket service is down or slow); the run
    /// keeps its checkpoint.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Retrying will not help; the run fails with this error.
    #[error("failed: {0}")]
    Failed(String),
    /// The work cannot be done here at all (an API that does not exist
    /// yet): the run is recorded as skipped with this reason.
    #[error("nothing to do: {0}")]
    NothingToDo(String),
}

/// First-response and resolution targets per priority (SLA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaTargets {
    /// (priority name, first response within, resolution within), urgent
    /// first.
    pub by_priority: Vec<(String, Duration, Duration)>,
}

/// The ticket-service calls the jobs make. Every method does one page and
/// is called again with the returned checkpoint until `done`.
#[tonic::async_trait]
pub trait TicketWork: Send + Sync + 'static {
    /// `auto_close_resolved_tickets`: close tickets resolved before
    /// `resolved_before` (emitting their status change).
    async fn close_resolved(
        &self,
        run: &RunContext,
        resolved_before: DateTime<Utc>,
    ) -> Result<Progress, WorkError>;

    /// `send_overdue_ticket_alerts`: emit `TicketOverdue` for tickets past a
    /// target as of `run.as_of`, once per ticket per breach.
    async fn alert_overdue(
        &self,
        run: &RunContext,
        targets: &SlaTargets,
    ) -> Result<Progress, WorkError>;

    /// `escalate_old_open_tickets`: raise the priority of tickets open since
    /// before `opened_before` by one level (up to urgent), emitting
    /// `TicketEscalated`.
    async fn escalate_open(
        &self,
        run: &RunContext,
        opened_before: DateTime<Utc>,
    ) -> Result<Progress, WorkError>;

    /// `send_rating_requests`: emit `RatingRequested` for tickets resolved
    /// before `resolved_before`, unrated and never asked.
    async fn request_ratings(
        &self,
        run: &RunContext,
        resolved_before: DateTime<Utc>,
    ) -> Result<Progress, WorkError>;

    /// `send_unrated_ticket_reminders`: remind users last asked before
    /// `asked_before` and still unrated, at most `max_reminders` times in all.
    async fn remind_unrated(
        &self,
        run: &RunContext,
        asked_before: DateTime<Utc>,
        max_reminders: u32,
    ) -> Result<Progress, WorkError>;

    /// `generate_support_statistics`: the statistics of local `day`, the
    /// instants in `[from, until)`. One call, aggregated on the ticket side.
    async fn daily_statistics(
        &self,
        run: &RunContext,
        day: NaiveDate,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<DailyStats, WorkError>;
}

/// The stand-in until the ticket-service batch calls exist: every run is a
/// skip that says why, so nothing pretends to have worked.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotWired;

const NOT_WIRED: &str = "the ticket service's batch calls are not wired into the scheduler yet";

#[tonic::async_trait]
impl TicketWork for NotWired {
    async fn close_resolved(
        &self,
        _: &RunContext,
        _: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        Err(WorkError::NothingToDo(NOT_WIRED.into()))
    }
    async fn alert_overdue(&self, _: &RunContext, _: &SlaTargets) -> Result<Progress, WorkError> {
        Err(WorkError::NothingToDo(NOT_WIRED.into()))
    }
    async fn escalate_open(&self, _: &RunContext, _: DateTime<Utc>) -> Result<Progress, WorkError> {
        Err(WorkError::NothingToDo(NOT_WIRED.into()))
    }
    async fn request_ratings(
        &self,
        _: &RunContext,
        _: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        Err(WorkError::NothingToDo(NOT_WIRED.into()))
    }
    async fn remind_unrated(
        &self,
        _: &RunContext,
        _: DateTime<Utc>,
        _: u32,
    ) -> Result<Progress, WorkError> {
        Err(WorkError::NothingToDo(NOT_WIRED.into()))
    }
    async fn daily_statistics(
        &self,
        _: &RunContext,
        _: NaiveDate,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<DailyStats, WorkError> {
        Err(WorkError::NothingToDo(NOT_WIRED.into()))
    }
}
