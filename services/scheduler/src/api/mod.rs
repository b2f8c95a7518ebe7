//! `support.v1.SchedulerService`: protobuf in, storage and the scheduler,
//! protobuf out. Staff, admins and our own services read jobs, runs and
//! statistics; admins and our own services run, pause and resume jobs.
//! Users and other teams' services are denied everything.
//!
//! RunJobNow goes through the same rules as a scheduled window: the job's
//! row lock, the unique (job, fire time) row, its overlap policy, and the
//! tick loop's claim (it is woken at once).

pub mod convert;

use chrono::NaiveDate;
use helpdesk_kit::{
    auth::Caller,
    clock::{SharedClock, from_timestamp},
    error::{ApiError, ApiResult, Violations},
    page_token::{self, Cursor, PageSize},
};
use helpdesk_proto::support::v1::{self as pb, scheduler_service_server::SchedulerService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::{
    app::scheduler::Scheduler,
    domain::{JobKind, Overlap},
    storage::{jobs, runs, stats},
};

const RUNS_PAGE: PageSize = PageSize {
    default: 50,
    max: 500,
};
/// The longest GetDailyStats range, in days.
const MAX_STATS_DAYS: i64 = 366;

pub struct SchedulerApi {
    pool: PgPool,
    scheduler: Scheduler,
    clock: SharedClock,
}

impl SchedulerApi {
    pub fn new(pool: PgPool, scheduler: Scheduler, clock: SharedClock) -> Self {
        Self {
            pool,
            scheduler,
            clock,
        }
    }
}

/// Staff, admins and our own services may look.
fn may_read(caller: &Caller) -> ApiResult<()> {
    if caller.is_staff() || caller.is_trusted_service() {
        Ok(())
    } else {
        Err(ApiError::denied("only staff may see the scheduler"))
    }
}

/// Admins and our own services may act.
fn may_operate(caller: &Caller) -> ApiResult<()> {
    if caller.is_admin() || caller.is_trusted_service() {
        Ok(())
    } else {
        Err(ApiError::denied(
            "only admins may run, pause or resume jobs",
        ))
    }
}

fn job_name(v: &mut Violations, raw: &str) -> Option<JobKind> {
    if raw.is_empty() {
        v.add("job", "is required");
        return None;
    }
    v.take("job", raw.parse::<JobKind>())
}

fn date(v: &mut Violations, field: &str, raw: &str) -> Option<NaiveDate> {
    if raw.is_empty() {
        v.add(field, "is required (YYYY-MM-DD)");
        return None;
    }
    v.take(
        field,
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| "must be a date as YYYY-MM-DD".into()),
    )
}

impl SchedulerApi {
    async fn job_view(&self, kind: JobKind) -> ApiResult<pb::Job> {
        let rows = jobs::all(&self.pool).await?;
        let last = runs::latest_per_job(&self.pool).await?;
        let row = rows
            .iter()
            .find(|r| r.name == kind.name())
            .ok_or_else(|| ApiError::not_found(format!("job {kind}")))?;
        let spec = self
            .scheduler
            .spec(kind)
            .ok_or_else(|| ApiError::not_found(format!("job {kind}")))?;
        Ok(convert::job(
            spec,
            row,
            last.iter().find(|r| r.job == kind.name()),
            self.clock.now(),
        ))
    }

    async fn list_jobs(&self) -> ApiResult<pb::ListJobsResponse> {
        let rows = jobs::all(&self.pool).await?;
        let last = runs::latest_per_job(&self.pool).await?;
        let now = self.clock.now();
        let jobs = self
            .scheduler
            .jobs()
            .iter()
            .filter_map(|spec| {
                let row = rows.iter().find(|r| r.name == spec.kind.name())?;
                let last = last.iter().find(|r| r.job == spec.kind.name());
                Some(convert::job(spec, row, last, now))
            })
            .collect();
        Ok(pb::ListJobsResponse { jobs })
    }

    async fn list_runs(&self, req: pb::ListJobRunsRequest) -> ApiResult<pb::ListJobRunsResponse> {
        let mut v = Violations::default();
        let job = if req.job.is_empty() {
            None
        } else {
            v.take("job", req.job.parse::<JobKind>())
        };
        let limit = v.take("page_size", RUNS_PAGE.resolve(req.page_size));
        let fingerprint = page_token::fingerprint(&[req.job.as_bytes()]);
        let after = v
            .take(
                "page_token",
                page_token::decode(&req.page_token, fingerprint),
            )
            .flatten();
        v.into_result()?;
        let limit = limit.unwrap_or(RUNS_PAGE.default);
        let rows = runs::page(&self.pool, job.map(JobKind::name), after, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next_page_token = match rows.last() {
            Some(last) if more => page_token::encode(
                Cursor {
                    at: last.fire_at,
                    id: last.id,
                },
                fingerprint,
            ),
            _ => String::new(),
        };
        Ok(pb::ListJobRunsResponse {
            runs: rows.iter().map(convert::run).collect(),
            next_page_token,
        })
    }

    async fn run_now(&self, caller: &Caller, req: pb::RunJobNowRequest) -> ApiResult<pb::JobRun> {
        let mut v = Violations::default();
        let kind = job_name(&mut v, &req.job);
        let as_of = match &req.as_of_time {
            None => None,
            Some(t) => {
                let parsed = from_timestamp(t);
                if parsed.is_none() {
                    v.add("as_of_time", "is not a valid timestamp");
                }
                parsed
            }
        };
        let kind = v.into_value(kind)?;
        let spec = self
            .scheduler
            .spec(kind)
            .ok_or_else(|| ApiError::not_found(format!("job {kind}")))?;
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let job = jobs::lock(&mut tx, kind.name())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("job {kind}")))?;
        if job.paused {
            return Err(ApiError::precondition(format!(
                "job {kind} is paused; resume it first"
            )));
        }
        let skip = match (runs::busy_with(&mut tx, kind.name()).await?, spec.overlap) {
            (Some(busy), Overlap::Skip) => Some(format!(
                "the run of the window at {busy} was still going (overlap policy skip)"
            )),
            _ => None,
        };
        let row = runs::insert_manual(
            &mut tx,
            kind.name(),
            now,
            as_of.unwrap_or(now),
            &caller.subject(),
            skip.as_deref(),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(job = %kind, run = %row.id, by = %caller.subject(), state = %row.state, "manual run requested");
        self.scheduler.remember(row.id);
        self.scheduler.wake();
        Ok(convert::run(&row))
    }

    async fn set_paused(&self, caller: &Caller, raw: &str, paused: bool) -> ApiResult<pb::Job> {
        let mut v = Violations::default();
        let kind = job_name(&mut v, raw);
        let kind = v.into_value(kind)?;
        let mut tx = self.pool.begin().await?;
        let job = jobs::lock(&mut tx, kind.name())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("job {kind}")))?;
        // Idempotent: pausing a paused job keeps who paused it first.
        if job.paused != paused {
            let (by, at) = if paused {
                (Some(caller.subject()), Some(self.clock.now()))
            } else {
                (None, None)
            };
            jobs::set_paused(&mut tx, kind.name(), paused, by.as_deref(), at).await?;
            tracing::info!(job = %kind, paused, by = %caller.subject(), "job pause changed");
        }
        tx.commit().await?;
        self.job_view(kind).await
    }

    async fn daily_stats(
        &self,
        req: pb::GetDailyStatsRequest,
    ) -> ApiResult<pb::GetDailyStatsResponse> {
        let mut v = Violations::default();
        let first = date(&mut v, "start_date", &req.start_date);
        let last = date(&mut v, "end_date", &req.end_date);
        if let (Some(first), Some(last)) = (first, last) {
            if last < first {
                v.add("end_date", "must not be before start_date");
            } else if (last - first).num_days() > MAX_STATS_DAYS {
                v.add(
                    "end_date",
                    format!("at most {MAX_STATS_DAYS} days after start_date"),
                );
            }
        }
        let (first, last) = v.into_value(first.zip(last))?;
        // A database error keeps its meaning (an outage is UNAVAILABLE, not
        // INTERNAL); only a snapshot that does not decode is a bug.
        let days = stats::range(&self.pool, first, last).await.map_err(|e| {
            match e.downcast::<sqlx::Error>() {
                Ok(db) => ApiError::from(db),
                Err(e) => ApiError::internal(e),
            }
        })?;
        Ok(pb::GetDailyStatsResponse {
            days: days.iter().map(convert::day).collect(),
        })
    }
}

#[tonic::async_trait]
impl SchedulerService for SchedulerApi {
    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        may_read(&Caller::from_request(&request)?)?;
        Ok(Response::new(self.list_jobs().await?))
    }

    async fn list_job_runs(
        &self,
        request: Request<pb::ListJobRunsRequest>,
    ) -> Result<Response<pb::ListJobRunsResponse>, Status> {
        may_read(&Caller::from_request(&request)?)?;
        Ok(Response::new(self.list_runs(request.into_inner()).await?))
    }

    async fn run_job_now(
        &self,
        request: Request<pb::RunJobNowRequest>,
    ) -> Result<Response<pb::JobRun>, Status> {
        let caller = Caller::from_request(&request)?;
        may_operate(&caller)?;
        Ok(Response::new(
            self.run_now(&caller, request.into_inner()).await?,
        ))
    }

    async fn pause_job(
        &self,
        request: Request<pb::PauseJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = Caller::from_request(&request)?;
        may_operate(&caller)?;
        let job = request.into_inner().job;
        Ok(Response::new(self.set_paused(&caller, &job, true).await?))
    }

    async fn resume_job(
        &self,
        request: Request<pb::ResumeJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = Caller::from_request(&request)?;
        may_operate(&caller)?;
        let job = request.into_inner().job;
        Ok(Response::new(self.set_paused(&caller, &job, false).await?))
    }

    async fn get_daily_stats(
        &self,
        request: Request<pb::GetDailyStatsRequest>,
    ) -> Result<Response<pb::GetDailyStatsResponse>, Status> {
        may_read(&Caller::from_request(&request)?)?;
        Ok(Response::new(self.daily_stats(request.into_inner()).await?))
    }
}
