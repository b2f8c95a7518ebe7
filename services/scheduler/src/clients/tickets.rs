//! The work the jobs ask of the ticket service, behind a trait.
//!
//! The ticket service owns the tickets, so every job's effect is a call to
//! it: set-based and keyset-paged on its side, idempotent per (run id,
//! ticket) so a page repeated after a takeover changes nothing. Each call
//! does one page after the run's checkpoint and returns the new checkpoint;
//! the scheduler stores it under the run's fencing token before asking for
//! the next page. [`TicketJobsClient`] implements [`TicketWork`] over the
//! ticket service's `support.v1.TicketJobsService` (jobs.proto); with no
//! ticket address configured [`NotWired`] makes every run a recorded skip
//! that says so, and the scheduler's own tests plug in a recorder.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use helpdesk_kit::{
    auth::AuthConfig,
    client::{ServiceToken, channel},
    clock::to_timestamp,
};
use helpdesk_proto::support::v1::{
    self as pb, ticket_jobs_service_client::TicketJobsServiceClient,
};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};
use uuid::Uuid;

use crate::domain::stats::{AgentDay, DailyStats};

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

pub use helpdesk_kit::sla::SlaTargets;

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
    /// before `resolved_before` and not before `resolved_after`, unrated and
    /// never asked.
    async fn request_ratings(
        &self,
        run: &RunContext,
        resolved_before: DateTime<Utc>,
        resolved_after: DateTime<Utc>,
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

    /// `update_faq_analytics`: fold the FAQ's per-day views and votes into
    /// each entry's 7- and 30-day figures as of `run.as_of` (one call; the
    /// number of entries written).
    async fn faq_analytics(&self, run: &RunContext) -> Result<Progress, WorkError>;
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
    async fn faq_analytics(&self, _: &RunContext) -> Result<Progress, WorkError> {
        Err(WorkError::NothingToDo(NOT_WIRED.into()))
    }
}

/// The subject of the tokens we present: one of `TRUSTED_SERVICES`, and the
/// actor of the events the jobs cause.
pub const SERVICE_SUBJECT: &str = "scheduler-service";

/// [`TicketWork`] over gRPC: one `TicketJobsService` call per page, the
/// checkpoint being the call's opaque page token. Cheap to clone (one
/// HTTP/2 channel underneath).
#[derive(Clone)]
pub struct TicketJobsClient {
    inner: TicketJobsServiceClient<InterceptedService<Channel, ServiceToken>>,
    page_size: i32,
    /// The zone statistics days are cut in: the label of each day's figures.
    stats_zone: String,
}

impl TicketJobsClient {
    /// A client of the ticket service at `addr`; every call times out after
    /// `timeout`, and pages hold `page_size` tickets (the ticket service
    /// caps it at 1000); `stats_zone` labels the statistics days.
    pub fn new(
        addr: &str,
        timeout: Duration,
        page_size: i32,
        stats_zone: &str,
        auth: &AuthConfig,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            inner: TicketJobsServiceClient::with_interceptor(
                channel(addr, timeout)?,
                ServiceToken::new(auth, SERVICE_SUBJECT),
            ),
            page_size,
            stats_zone: stats_zone.to_owned(),
        })
    }

    fn client(&self) -> TicketJobsServiceClient<InterceptedService<Channel, ServiceToken>> {
        self.inner.clone()
    }
}

/// How a failed call ends the step: what may pass with time is
/// `Unavailable` (the run keeps its checkpoint and is retried), the rest
/// `Failed`. ABORTED means a newer claim holds the run: this holder's own
/// writes are fenced out too, so failing is only a formality.
fn work_error(status: tonic::Status) -> WorkError {
    let what = format!("ticket service: {:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
            WorkError::Unavailable(what)
        }
        _ => WorkError::Failed(what),
    }
}

fn progress(
    result: Result<tonic::Response<pb::JobPage>, tonic::Status>,
) -> Result<Progress, WorkError> {
    let page = result.map_err(work_error)?.into_inner();
    Ok(Progress {
        processed: u64::try_from(page.processed).unwrap_or(0),
        checkpoint: (!page.next_page_token.is_empty()).then_some(page.next_page_token),
        done: page.done,
    })
}

fn priority(name: &str) -> pb::TicketPriority {
    match name {
        "urgent" => pb::TicketPriority::Urgent,
        "high" => pb::TicketPriority::High,
        "medium" => pb::TicketPriority::Medium,
        "low" => pb::TicketPriority::Low,
        _ => pb::TicketPriority::Unspecified,
    }
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// The fields every paged request carries.
struct Page {
    run_id: String,
    fencing_token: i64,
    page_size: i32,
    page_token: String,
}

impl TicketJobsClient {
    fn page(&self, run: &RunContext) -> Page {
        Page {
            run_id: run.run_id.to_string(),
            fencing_token: run.fencing_token,
            page_size: self.page_size,
            page_token: run.checkpoint.clone().unwrap_or_default(),
        }
    }
}

#[tonic::async_trait]
impl TicketWork for TicketJobsClient {
    async fn close_resolved(
        &self,
        run: &RunContext,
        resolved_before: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        let p = self.page(run);
        progress(
            self.client()
                .close_resolved_tickets(pb::CloseResolvedTicketsRequest {
                    run_id: p.run_id,
                    fencing_token: p.fencing_token,
                    page_size: p.page_size,
                    page_token: p.page_token,
                    resolved_before: Some(to_timestamp(resolved_before)),
                })
                .await,
        )
    }

    async fn alert_overdue(
        &self,
        run: &RunContext,
        targets: &SlaTargets,
    ) -> Result<Progress, WorkError> {
        let p = self.page(run);
        progress(
            self.client()
                .alert_overdue_tickets(pb::AlertOverdueTicketsRequest {
                    run_id: p.run_id,
                    fencing_token: p.fencing_token,
                    page_size: p.page_size,
                    page_token: p.page_token,
                    as_of_time: Some(to_timestamp(run.as_of)),
                    targets: targets
                        .by_priority
                        .iter()
                        .map(|(name, first, resolution)| pb::SlaTarget {
                            priority: priority(name).into(),
                            first_response: Some(duration(*first)),
                            resolution: Some(duration(*resolution)),
                        })
                        .collect(),
                })
                .await,
        )
    }

    async fn escalate_open(
        &self,
        run: &RunContext,
        opened_before: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        let p = self.page(run);
        progress(
            self.client()
                .escalate_open_tickets(pb::EscalateOpenTicketsRequest {
                    run_id: p.run_id,
                    fencing_token: p.fencing_token,
                    page_size: p.page_size,
                    page_token: p.page_token,
                    opened_before: Some(to_timestamp(opened_before)),
                })
                .await,
        )
    }

    async fn request_ratings(
        &self,
        run: &RunContext,
        resolved_before: DateTime<Utc>,
        resolved_after: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        let p = self.page(run);
        progress(
            self.client()
                .request_ratings(pb::RequestRatingsRequest {
                    run_id: p.run_id,
                    fencing_token: p.fencing_token,
                    page_size: p.page_size,
                    page_token: p.page_token,
                    resolved_before: Some(to_timestamp(resolved_before)),
                    resolved_after: Some(to_timestamp(resolved_after)),
                })
                .await,
        )
    }

    async fn remind_unrated(
        &self,
        run: &RunContext,
        asked_before: DateTime<Utc>,
        max_reminders: u32,
    ) -> Result<Progress, WorkError> {
        let p = self.page(run);
        progress(
            self.client()
                .remind_unrated_tickets(pb::RemindUnratedTicketsRequest {
                    run_id: p.run_id,
                    fencing_token: p.fencing_token,
                    page_size: p.page_size,
                    page_token: p.page_token,
                    asked_before: Some(to_timestamp(asked_before)),
                    max_reminders: i32::try_from(max_reminders).unwrap_or(i32::MAX),
                })
                .await,
        )
    }

    async fn daily_statistics(
        &self,
        _run: &RunContext,
        day: NaiveDate,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<DailyStats, WorkError> {
        let s = self
            .client()
            .compute_daily_stats(pb::ComputeDailyStatsRequest {
                date: day.format("%Y-%m-%d").to_string(),
                time_zone: self.stats_zone.clone(),
                start_time: Some(to_timestamp(from)),
                end_time: Some(to_timestamp(until)),
            })
            .await
            .map_err(work_error)?
            .into_inner();
        let counts =
            |list: Vec<pb::CountByKey>| list.into_iter().map(|c| (c.key, c.count)).collect();
        Ok(DailyStats {
            created: s.created,
            resolved: s.resolved,
            closed: s.closed,
            created_by_category: counts(s.created_by_category),
            created_by_priority: counts(s.created_by_priority),
            first_response_median_seconds: s.first_response_median_seconds,
            first_response_p90_seconds: s.first_response_p90_seconds,
            resolution_median_seconds: s.resolution_median_seconds,
            resolution_p90_seconds: s.resolution_p90_seconds,
            average_rating: s.average_rating,
            rating_count: s.rating_count,
            agents: s
                .agents
                .into_iter()
                .map(|a| AgentDay {
                    agent_id: a.agent_id,
                    assigned: a.assigned,
                    resolved: a.resolved,
                    replies: a.replies,
                })
                .collect(),
        })
    }

    async fn faq_analytics(&self, run: &RunContext) -> Result<Progress, WorkError> {
        let done = self
            .client()
            .compute_faq_analytics(pb::ComputeFaqAnalyticsRequest {
                run_id: run.run_id.to_string(),
                fencing_token: run.fencing_token,
                as_of_time: Some(to_timestamp(run.as_of)),
            })
            .await
            .map_err(work_error)?
            .into_inner();
        Ok(Progress::finished(u64::try_from(done.entries).unwrap_or(0)))
    }
}
