//! `support.v1.TicketJobsService`: the scheduler's batch work (jobs.proto).
//! Only our own services may call it. Each paged call, in one transaction:
//! records the run's fencing token (a stale holder is ABORTED), does one
//! set-based page (`storage::jobs`), enqueues the page's events with one
//! multi-row outbox insert, and answers the next page token. Events carry
//! the caller (`scheduler-service`, role `service`) as their actor.

use chrono::{DateTime, NaiveDate, Utc};
use helpdesk_events::outbox::{self, Outgoing, Waker};
use helpdesk_kit::{
    auth::Caller,
    clock::{SharedClock, from_timestamp, to_timestamp},
    error::{ApiError, ApiResult, Violations},
    page_token::{self, Cursor, PageSize},
};
use helpdesk_proto::support::v1::{self as pb, ticket_jobs_service_server::TicketJobsService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::convert::{or_empty, priority_from_pb, priority_to_pb, status_to_pb};
use crate::{
    domain::{
        Priority, Status as TicketStatus,
        jobs::{Breach, PageDone, PageRequest, SlaTarget, Touched},
        values::uuid,
    },
    storage::{faqs, jobs},
};

/// Tickets per page: enough that 100,000 tickets take 100-200 calls, few
/// enough that one page's transaction holds its row locks briefly.
const JOB_PAGE: PageSize = PageSize {
    default: 500,
    max: 1000,
};

/// The longest "day" ComputeDailyStats accepts (a 25-hour DST day, and some).
const LONGEST_DAY_HOURS: i64 = 26;

pub struct TicketJobsApi {
    pool: PgPool,
    clock: SharedClock,
    outbox: Waker,
}

impl TicketJobsApi {
    pub fn new(pool: PgPool, clock: SharedClock, outbox: Waker) -> Self {
        Self {
            pool,
            clock,
            outbox,
        }
    }
}

/// Batch jobs are our own services' business only.
fn trusted(caller: &Caller) -> ApiResult<()> {
    if caller.is_trusted_service() {
        Ok(())
    } else {
        Err(ApiError::denied("only our own services run batch jobs"))
    }
}

/// What a paged call is asked to do.
enum Work {
    Close {
        resolved_before: DateTime<Utc>,
    },
    Alert {
        targets: Vec<SlaTarget>,
        as_of: DateTime<Utc>,
    },
    Escalate {
        opened_before: DateTime<Utc>,
    },
    Ask {
        resolved_before: DateTime<Utc>,
        resolved_after: Option<DateTime<Utc>>,
    },
    Remind {
        asked_before: DateTime<Utc>,
        max: i32,
    },
}

/// A parsed paged call.
struct Paged {
    page: PageRequest,
    fingerprint: u64,
    work: Work,
}

/// The fields every paged request has, parsed; `method` binds the page
/// token to the method and the run.
fn page_fields(
    v: &mut Violations,
    method: &str,
    run_id: &str,
    fencing_token: i64,
    page_size: i32,
    token: &str,
) -> Option<(PageRequest, u64)> {
    let run_id = v.take("run_id", uuid(run_id));
    if fencing_token <= 0 {
        v.add("fencing_token", "must be positive");
    }
    let limit = v.take("page_size", JOB_PAGE.resolve(page_size));
    let fingerprint =
        run_id.map(|run| page_token::fingerprint(&[method.as_bytes(), run.as_bytes()]));
    let cursor = match fingerprint {
        Some(f) => v.take("page_token", page_token::decode(token, f))?,
        None => None,
    };
    Some((
        PageRequest {
            run_id: run_id?,
            fencing_token,
            limit: limit?,
            after: cursor.map(|c| (c.at, c.id)),
        },
        fingerprint?,
    ))
}

fn time(
    v: &mut Violations,
    field: &str,
    t: Option<&prost_types::Timestamp>,
) -> Option<DateTime<Utc>> {
    let parsed = match t {
        None => Err("is required".to_owned()),
        Some(t) => from_timestamp(t).ok_or_else(|| "is not a valid time".to_owned()),
    };
    v.take(field, parsed)
}

fn duration(raw: Option<&prost_types::Duration>) -> Result<chrono::Duration, String> {
    let d = raw.ok_or("is required")?;
    let d = chrono::Duration::try_seconds(d.seconds)
        .and_then(|s| s.checked_add(&chrono::Duration::nanoseconds(i64::from(d.nanos))))
        .ok_or("is out of range")?;
    if d <= chrono::Duration::zero() {
        return Err("must be positive".into());
    }
    if d > chrono::Duration::days(3650) {
        return Err("must be at most 10 years".into());
    }
    Ok(d)
}

fn finish(v: Violations, parsed: Option<Paged>) -> ApiResult<Paged> {
    match parsed {
        Some(p) if v.is_empty() => Ok(p),
        _ => Err(ApiError::InvalidArgument(v)),
    }
}

fn sla_targets(v: &mut Violations, raw: &[pb::SlaTarget]) -> Option<Vec<SlaTarget>> {
    if raw.is_empty() {
        v.add("targets", "name at least one priority's targets");
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, t) in raw.iter().enumerate() {
        let priority = v.take(
            &format!("targets[{i}].priority"),
            priority_from_pb(t.priority),
        );
        let first = v.take(
            &format!("targets[{i}].first_response"),
            duration(t.first_response.as_ref()),
        );
        let resolution = v.take(
            &format!("targets[{i}].resolution"),
            duration(t.resolution.as_ref()),
        );
        if let Some(p) = priority
            && out.iter().any(|o: &SlaTarget| o.priority == p)
        {
            v.add(format!("targets[{i}].priority"), "named twice");
            ok = false;
        }
        match (priority, first, resolution) {
            (Some(priority), Some(first_response), Some(resolution)) => out.push(SlaTarget {
                priority,
                first_response,
                resolution,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// Who and when, shared by a page's events.
struct Events<'a> {
    caller: &'a Caller,
    now: DateTime<Utc>,
}

impl Events<'_> {
    fn header(&self, event_id: Uuid) -> Option<pb::EventHeader> {
        Some(pb::EventHeader {
            event_id: event_id.to_string(),
            occurred_at: Some(to_timestamp(self.now)),
            actor_id: self.caller.subject(),
            actor_role: self.caller.role().as_str().to_owned(),
        })
    }

    fn pending<E: helpdesk_proto::Event>(
        &self,
        t: &Touched,
        build: impl FnOnce(Option<pb::EventHeader>, Option<pb::TicketSnapshot>) -> E,
    ) -> Outgoing {
        let event_id = Uuid::now_v7();
        Outgoing::new(
            event_id,
            t.id,
            &build(self.header(event_id), Some(snapshot(t))),
        )
    }
}

fn snapshot(t: &Touched) -> pb::TicketSnapshot {
    pb::TicketSnapshot {
        ticket_id: t.id.to_string(),
        human_id: t.human_id.clone(),
        user_id: t.user_id.to_string(),
        assignee_id: or_empty(t.assignee_id),
        category_id: t.category_id.clone(),
        priority: priority_to_pb(t.priority).into(),
        status: status_to_pb(t.status).into(),
        subject: t.subject.clone(),
        ride_id: or_empty(t.ride_id),
        create_time: Some(to_timestamp(t.created_at)),
        version: t.version,
    }
}

fn breach_to_pb(b: Breach) -> pb::SlaBreach {
    match b {
        Breach::FirstResponse => pb::SlaBreach::FirstResponse,
        Breach::Resolution => pb::SlaBreach::Resolution,
    }
}

/// A page's events, one list per ticket in page order.
fn events<T>(done: &PageDone<T>, each: impl Fn(&Touched, &T) -> Vec<Outgoing>) -> Vec<Outgoing> {
    done.acted
        .iter()
        .flat_map(|(t, what)| each(t, what))
        .collect()
}

impl TicketJobsApi {
    /// ComputeFaqAnalytics: fenced like a page, then the analytics and the
    /// compaction of old view shards, in one transaction.
    async fn faq_analytics(
        &self,
        req: &pb::ComputeFaqAnalyticsRequest,
    ) -> ApiResult<pb::ComputeFaqAnalyticsResponse> {
        let mut v = Violations::default();
        let run_id = v.take("run_id", uuid(&req.run_id));
        if req.fencing_token <= 0 {
            v.add("fencing_token", "must be positive");
        }
        let as_of = time(&mut v, "as_of_time", req.as_of_time.as_ref());
        let (Some(run_id), Some(as_of), true) = (run_id, as_of, v.is_empty()) else {
            return Err(ApiError::InvalidArgument(v));
        };
        let day = as_of.date_naive();
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        if !jobs::fence(&mut tx, run_id, req.fencing_token, now).await? {
            return Err(ApiError::Aborted(format!(
                "run {run_id} is held under a newer fencing token than {}",
                req.fencing_token
            )));
        }
        let entries = faqs::compute_analytics(&mut tx, day, run_id, now).await?;
        // Yesterday's shards may still take a late view; older days are done.
        faqs::compact_views(&mut tx, day - chrono::Days::new(1)).await?;
        tx.commit().await?;
        Ok(pb::ComputeFaqAnalyticsResponse {
            entries: i64::try_from(entries).unwrap_or(i64::MAX),
            as_of_date: day.format("%Y-%m-%d").to_string(),
        })
    }

    /// One page of `paged.work`, its events, and the next token.
    async fn page(&self, caller: &Caller, paged: Paged) -> ApiResult<pb::JobPage> {
        let Paged {
            page,
            fingerprint,
            work,
        } = paged;
        let now = self.clock.now();
        let ev = Events { caller, now };
        let mut tx = self.pool.begin().await?;
        if !jobs::fence(&mut tx, page.run_id, page.fencing_token, now).await? {
            return Err(ApiError::Aborted(format!(
                "run {} is held under a newer fencing token than {}",
                page.run_id, page.fencing_token
            )));
        }
        let (selected, last, processed, pending) = match work {
            Work::Close { resolved_before } => {
                let done = jobs::close_resolved(&mut tx, &page, resolved_before, now).await?;
                let pending = events(&done, |t, ()| {
                    vec![ev.pending(t, |header, ticket| pb::TicketStatusChanged {
                        header,
                        ticket,
                        from: status_to_pb(TicketStatus::Resolved).into(),
                        to: status_to_pb(TicketStatus::Closed).into(),
                    })]
                });
                (done.selected, done.last, done.acted.len(), pending)
            }
            Work::Alert { targets, as_of } => {
                let done = jobs::alert_overdue(&mut tx, &page, &targets, as_of, now).await?;
                let pending = events(&done, |t, (breach, due)| {
                    vec![ev.pending(t, |header, ticket| pb::TicketOverdue {
                        header,
                        ticket,
                        due_at: Some(to_timestamp(*due)),
                        breach: breach_to_pb(*breach).into(),
                    })]
                });
                // Tickets alerted, not breaches (a ticket may breach both).
                let mut tickets: Vec<Uuid> = done.acted.iter().map(|(t, _)| t.id).collect();
                tickets.dedup();
                (done.selected, done.last, tickets.len(), pending)
            }
            Work::Escalate { opened_before } => {
                let done = jobs::escalate_open(&mut tx, &page, opened_before, now).await?;
                let pending = events(&done, |t, from: &Priority| {
                    vec![
                        ev.pending(t, |header, ticket| pb::TicketPriorityChanged {
                            header,
                            ticket,
                            from: priority_to_pb(*from).into(),
                            to: priority_to_pb(t.priority).into(),
                        }),
                        ev.pending(t, |header, ticket| pb::TicketEscalated {
                            header,
                            ticket,
                            reason: format!(
                                "not resolved since it was opened at {}",
                                t.created_at
                                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                            ),
                            from_priority: priority_to_pb(*from).into(),
                        }),
                    ]
                });
                (done.selected, done.last, done.acted.len(), pending)
            }
            Work::Ask {
                resolved_before,
                resolved_after,
            } => {
                let done =
                    jobs::request_ratings(&mut tx, &page, resolved_before, resolved_after, now)
                        .await?;
                let pending = events(&done, |t, reminder| rating_requested(&ev, t, *reminder));
                (done.selected, done.last, done.acted.len(), pending)
            }
            Work::Remind { asked_before, max } => {
                let done = jobs::remind_unrated(&mut tx, &page, asked_before, max, now).await?;
                let pending = events(&done, |t, reminder| rating_requested(&ev, t, *reminder));
                (done.selected, done.last, done.acted.len(), pending)
            }
        };
        outbox::enqueue_all(&mut tx, &pending).await?;
        self.outbox.commit(tx).await?;
        let at = last.or(page.after);
        Ok(pb::JobPage {
            processed: processed as i64,
            next_page_token: at
                .map(|(at, id)| page_token::encode(Cursor { at, id }, fingerprint))
                .unwrap_or_default(),
            done: (selected as i64) < page.limit,
        })
    }

    async fn stats(&self, req: &pb::ComputeDailyStatsRequest) -> ApiResult<pb::DailyStats> {
        let mut v = Violations::default();
        if NaiveDate::parse_from_str(&req.date, "%Y-%m-%d").is_err() {
            v.add("date", "must be a date (YYYY-MM-DD)");
        }
        if req.time_zone.is_empty() {
            v.add("time_zone", "is required");
        }
        let from = time(&mut v, "start_time", req.start_time.as_ref());
        let until = time(&mut v, "end_time", req.end_time.as_ref());
        if let (Some(from), Some(until)) = (from, until)
            && (until <= from || until - from > chrono::Duration::hours(LONGEST_DAY_HOURS))
        {
            v.add(
                "end_time",
                format!("must be after start_time, at most {LONGEST_DAY_HOURS} hours"),
            );
        }
        v.clone().into_result()?;
        let (Some(from), Some(until)) = (from, until) else {
            return Err(ApiError::InvalidArgument(v));
        };
        // One snapshot for every figure, and nothing written.
        let mut tx = self.pool.begin().await?;
        sqlx::Executor::execute(
            &mut *tx,
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        )
        .await?;
        let f = jobs::day_figures(&mut tx, from, until).await?;
        tx.commit().await?;
        let counts = |list: Vec<(String, i64)>| {
            list.into_iter()
                .map(|(key, count)| pb::CountByKey { key, count })
                .collect()
        };
        Ok(pb::DailyStats {
            date: req.date.clone(),
            time_zone: req.time_zone.clone(),
            created: f.created,
            resolved: f.resolved,
            closed: f.closed,
            created_by_category: counts(f.created_by_category),
            created_by_priority: counts(f.created_by_priority),
            first_response_median_seconds: f.first_response_median_seconds,
            first_response_p90_seconds: f.first_response_p90_seconds,
            resolution_median_seconds: f.resolution_median_seconds,
            resolution_p90_seconds: f.resolution_p90_seconds,
            average_rating: f.average_rating,
            rating_count: f.rating_count,
            agents: f
                .agents
                .into_iter()
                .map(|(agent, assigned, resolved, replies)| pb::AgentDayStats {
                    agent_id: agent.to_string(),
                    assigned,
                    resolved,
                    replies,
                })
                .collect(),
            compute_time: Some(to_timestamp(self.clock.now())),
        })
    }
}

fn rating_requested(ev: &Events<'_>, t: &Touched, reminder: i32) -> Vec<Outgoing> {
    vec![ev.pending(t, |header, ticket| pb::RatingRequested {
        header,
        ticket,
        reminder,
    })]
}

/// Runs a parsed paged call for the request's caller.
macro_rules! paged {
    ($self:ident, $request:ident, $parse:expr) => {{
        let caller = Caller::from_request(&$request)?;
        trusted(&caller)?;
        let paged = $parse($request.get_ref())?;
        Ok(Response::new($self.page(&caller, paged).await?))
    }};
}

fn close_request(r: &pb::CloseResolvedTicketsRequest) -> ApiResult<Paged> {
    let mut v = Violations::default();
    let page = page_fields(
        &mut v,
        "close",
        &r.run_id,
        r.fencing_token,
        r.page_size,
        &r.page_token,
    );
    let before = time(&mut v, "resolved_before", r.resolved_before.as_ref());
    let parsed = page
        .zip(before)
        .map(|((page, fingerprint), resolved_before)| Paged {
            page,
            fingerprint,
            work: Work::Close { resolved_before },
        });
    finish(v, parsed)
}

fn alert_request(r: &pb::AlertOverdueTicketsRequest) -> ApiResult<Paged> {
    let mut v = Violations::default();
    let page = page_fields(
        &mut v,
        "alert",
        &r.run_id,
        r.fencing_token,
        r.page_size,
        &r.page_token,
    );
    let as_of = time(&mut v, "as_of_time", r.as_of_time.as_ref());
    let targets = sla_targets(&mut v, &r.targets);
    let parsed = match (page, as_of, targets) {
        (Some((page, fingerprint)), Some(as_of), Some(targets)) => Some(Paged {
            page,
            fingerprint,
            work: Work::Alert { targets, as_of },
        }),
        _ => None,
    };
    finish(v, parsed)
}

fn escalate_request(r: &pb::EscalateOpenTicketsRequest) -> ApiResult<Paged> {
    let mut v = Violations::default();
    let page = page_fields(
        &mut v,
        "escalate",
        &r.run_id,
        r.fencing_token,
        r.page_size,
        &r.page_token,
    );
    let before = time(&mut v, "opened_before", r.opened_before.as_ref());
    let parsed = page
        .zip(before)
        .map(|((page, fingerprint), opened_before)| Paged {
            page,
            fingerprint,
            work: Work::Escalate { opened_before },
        });
    finish(v, parsed)
}

fn ask_request(r: &pb::RequestRatingsRequest) -> ApiResult<Paged> {
    let mut v = Violations::default();
    let page = page_fields(
        &mut v,
        "ask",
        &r.run_id,
        r.fencing_token,
        r.page_size,
        &r.page_token,
    );
    let before = time(&mut v, "resolved_before", r.resolved_before.as_ref());
    let after = match r.resolved_after.as_ref() {
        None => Some(None),
        Some(_) => time(&mut v, "resolved_after", r.resolved_after.as_ref()).map(Some),
    };
    if let (Some(before), Some(Some(after))) = (before, after)
        && after >= before
    {
        v.add("resolved_after", "must be before resolved_before");
    }
    let parsed = page.zip(before).zip(after).map(
        |(((page, fingerprint), resolved_before), resolved_after)| Paged {
            page,
            fingerprint,
            work: Work::Ask {
                resolved_before,
                resolved_after,
            },
        },
    );
    finish(v, parsed)
}

fn remind_request(r: &pb::RemindUnratedTicketsRequest) -> ApiResult<Paged> {
    let mut v = Violations::default();
    let page = page_fields(
        &mut v,
        "remind",
        &r.run_id,
        r.fencing_token,
        r.page_size,
        &r.page_token,
    );
    let before = time(&mut v, "asked_before", r.asked_before.as_ref());
    if !(0..=100).contains(&r.max_reminders) {
        v.add("max_reminders", "must be between 0 and 100");
    }
    let parsed = page
        .zip(before)
        .map(|((page, fingerprint), asked_before)| Paged {
            page,
            fingerprint,
            work: Work::Remind {
                asked_before,
                max: r.max_reminders,
            },
        });
    finish(v, parsed)
}

#[tonic::async_trait]
impl TicketJobsService for TicketJobsApi {
    async fn close_resolved_tickets(
        &self,
        request: Request<pb::CloseResolvedTicketsRequest>,
    ) -> Result<Response<pb::JobPage>, Status> {
        paged!(self, request, close_request)
    }

    async fn alert_overdue_tickets(
        &self,
        request: Request<pb::AlertOverdueTicketsRequest>,
    ) -> Result<Response<pb::JobPage>, Status> {
        paged!(self, request, alert_request)
    }

    async fn escalate_open_tickets(
        &self,
        request: Request<pb::EscalateOpenTicketsRequest>,
    ) -> Result<Response<pb::JobPage>, Status> {
        paged!(self, request, escalate_request)
    }

    async fn request_ratings(
        &self,
        request: Request<pb::RequestRatingsRequest>,
    ) -> Result<Response<pb::JobPage>, Status> {
        paged!(self, request, ask_request)
    }

    async fn remind_unrated_tickets(
        &self,
        request: Request<pb::RemindUnratedTicketsRequest>,
    ) -> Result<Response<pb::JobPage>, Status> {
        paged!(self, request, remind_request)
    }

    async fn compute_daily_stats(
        &self,
        request: Request<pb::ComputeDailyStatsRequest>,
    ) -> Result<Response<pb::DailyStats>, Status> {
        let caller = Caller::from_request(&request)?;
        trusted(&caller)?;
        Ok(Response::new(self.stats(request.get_ref()).await?))
    }

    async fn compute_faq_analytics(
        &self,
        request: Request<pb::ComputeFaqAnalyticsRequest>,
    ) -> Result<Response<pb::ComputeFaqAnalyticsResponse>, Status> {
        let caller = Caller::from_request(&request)?;
        trusted(&caller)?;
        Ok(Response::new(self.faq_analytics(request.get_ref()).await?))
    }
}
