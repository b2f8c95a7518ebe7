//! The tick loop: every replica runs one, and the database decides.
//!
//! Each tick, for every job, a replica locks the job's row (`FOR UPDATE
//! SKIP LOCKED`: if another replica is deciding for that job right now, this
//! one leaves it alone) and, in that one short transaction:
//!
//! 1. plans the windows due since `planned_through` ([`policy::plan`]): a
//!    row per window, unique on (job, fire time), queued to run or skipped
//!    with its reason (paused, missed under the catch-up policy, overlapping);
//! 2. claims the job's next run if none holds a live lease: a queued run, or
//!    a running one whose lease expired (its holder died: the run is taken
//!    over with its checkpoint). The claim takes the job's next fencing token.
//!
//! The claimed run then executes outside the transaction, in a task of this
//! loop: page after page, each page's checkpoint recorded under the fencing
//! token (a stale holder's write matches no row), the lease renewed while a
//! page is in flight. The loop owns those tasks, so when it is aborted (the
//! process dies) they die with it and their leases simply run out; when it
//! is stopped, each finishes the page in hand and gives its run back.
//!
//! Time comes from the injected clock (leases, windows, lateness); only the
//! pace of ticks and renewals is real time.

use helpdesk_kit::telemetry::{self, Causes};
use std::{sync::Arc, time::Duration};
use tracing::Instrument;

use chrono::{DateTime, Utc};
use helpdesk_kit::{clock::SharedClock, tasks::TaskContext};
use sqlx::PgPool;
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::jobs::{self, Step, Thresholds};
use crate::{
    clients::tickets::{RunContext, TicketWork, WorkError},
    domain::{Disposition, JobKind, JobSpec, Situation, policy},
    storage::{
        jobs as job_rows,
        runs::{self, Claimed, PageRecord},
        stats,
    },
};

/// How the loop paces itself and holds runs.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Real time between ticks (`TICK_MS`).
    pub tick: Duration,
    /// A claim's lease, in clock time (`LEASE_SECS`).
    pub lease: Duration,
    /// Real time between lease renewals while a page is in flight
    /// (`LEASE_RENEW_MS`); well under the lease.
    pub renew_every: Duration,
    /// A window picked up within this of its fire time is on time; later,
    /// it was missed (`MISFIRE_GRACE_SECS`).
    pub grace: Duration,
    /// Claims of a run that keeps failing transiently before it fails for
    /// good (`MAX_ATTEMPTS`).
    pub max_attempts: i32,
    /// The first retry's delay in clock time, doubling (`RETRY_AFTER_SECS`).
    pub retry_after: Duration,
    /// Windows planned per job per tick; more wait for the next tick.
    pub plan_limit: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            renew_every: Duration::from_secs(15),
            grace: Duration::from_secs(60),
            max_attempts: 5,
            retry_after: Duration::from_secs(30),
            plan_limit: 1000,
        }
    }
}

/// The jobs, their work and the loop's settings; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    clock: SharedClock,
    jobs: Vec<JobSpec>,
    work: Arc<dyn TicketWork>,
    thresholds: Thresholds,
    config: SchedulerConfig,
    /// This replica's name in `holder` (host name plus a random suffix:
    /// two processes never share one).
    holder: String,
    wake: Notify,
    /// Per manual run, the RunJobNow call's span: the run continues its trace.
    causes: Causes<Uuid>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("holder", &self.inner.holder)
            .finish_non_exhaustive()
    }
}

fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Scheduler {
    pub fn new(
        pool: PgPool,
        clock: SharedClock,
        jobs: Vec<JobSpec>,
        work: Arc<dyn TicketWork>,
        thresholds: Thresholds,
        config: SchedulerConfig,
        holder: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                clock,
                jobs,
                work,
                thresholds,
                config,
                holder: format!("{holder}-{}", &Uuid::new_v4().simple().to_string()[..8]),
                wake: Notify::new(),
                causes: Causes::new(1_000),
            }),
        }
    }

    pub fn jobs(&self) -> &[JobSpec] {
        &self.inner.jobs
    }

    pub fn spec(&self, kind: JobKind) -> Option<&JobSpec> {
        self.inner.jobs.iter().find(|j| j.kind == kind)
    }

    /// This replica's holder name.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// Writes the rows of jobs not seen before (planned from now on).
    pub async fn register(&self) -> sqlx::Result<()> {
        let names: Vec<String> = self
            .inner
            .jobs
            .iter()
            .map(|j| j.kind.name().to_owned())
            .collect();
        job_rows::register(&self.inner.pool, &names, self.inner.clock.now()).await
    }

    /// Remembers the current span (a RunJobNow call) as the cause of `run`.
    pub fn remember(&self, run: Uuid) {
        self.inner.causes.remember(run);
    }

    /// Ticks at once (a manual run was queued).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The loop, until `ctx.stop()`; see the module doc.
    pub async fn run(self, ctx: TaskContext) {
        let stop = ctx.stop().clone();
        let mut running = JoinSet::new();
        loop {
            ctx.beat();
            for claimed in self.tick().await {
                let (me, stop) = (self.clone(), stop.clone());
                running.spawn(async move { me.execute(claimed, stop).await });
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.inner.config.tick) => {}
                () = self.inner.wake.notified() => {}
                // A run ended: the job's next queued run may start now.
                Some(_) = running.join_next() => {}
            }
        }
        while running.join_next().await.is_some() {}
    }

    /// One tick over every job; the runs this replica claimed.
    pub async fn tick(&self) -> Vec<Claimed> {
        let mut claimed = Vec::new();
        for spec in &self.inner.jobs {
            match self.tick_job(spec).await {
                Ok(Some(c)) => claimed.push(c),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(job = spec.kind.name(), error = %e, "scheduler tick failed")
                }
            }
        }
        claimed
    }

    async fn tick_job(&self, spec: &JobSpec) -> sqlx::Result<Option<Claimed>> {
        let inner = &self.inner;
        let name = spec.kind.name();
        let mut tx = inner.pool.begin().await?;
        let Some(job) = job_rows::try_lock(&mut tx, name).await? else {
            return Ok(None);
        };
        // Read under the job's lock, which RunJobNow also takes: a time read
        // before it could be older than a run queued meanwhile, and a claim
        // of that run would start with a lease already expired (taken over
        // at the next tick, its first page done twice).
        let now = inner.clock.now();
        let windows = spec
            .schedule
            .between(job.planned_through, now, inner.config.plan_limit);
        if let Some(last) = windows.last() {
            let situation = Situation {
                now,
                overlap: spec.overlap,
                catch_up: spec.catch_up,
                max_lateness: spec.max_lateness,
                grace: inner.config.grace,
                paused: job.paused,
                busy_with: runs::busy_with(&mut tx, name).await?,
            };
            let plan = policy::plan(&windows, &situation);
            for (window, disposition) in &plan {
                match disposition {
                    Disposition::Run(trigger) => {
                        tracing::info!(job = name, %window, trigger = trigger.as_str(), "window queued")
                    }
                    Disposition::Skip(reason) => {
                        super::metrics::window_skipped(name);
                        tracing::info!(job = name, %window, reason, "window skipped")
                    }
                }
            }
            runs::insert_planned(&mut tx, name, &plan, now).await?;
            job_rows::set_planned_through(&mut tx, name, *last).await?;
        }
        let claimed = if job.paused {
            None
        } else {
            runs::claim(
                &mut tx,
                name,
                &inner.holder,
                now,
                after(now, inner.config.lease),
            )
            .await?
        };
        tx.commit().await?;
        if let Some(c) = &claimed {
            tracing::info!(job = name, run = %c.id, window = %c.fire_at, fence = c.fence,
                resumed_from = c.checkpoint.as_deref(), "run claimed");
        }
        Ok(claimed)
    }

    /// Renews the lease every `renew_every` until a renewal is refused
    /// (the run was taken over); never returns otherwise.
    async fn keep_lease(&self, claimed: &Claimed) {
        let inner = &self.inner;
        loop {
            tokio::time::sleep(inner.config.renew_every).await;
            let until = after(inner.clock.now(), inner.config.lease);
            match runs::renew(&inner.pool, claimed.id, claimed.fence, until).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(run = %claimed.id, error = %e, "lease renewal failed"),
            }
        }
    }

    /// Runs a claimed run to its end, or until its lease is lost, or until
    /// `stop` (after the page in hand; the run is given back).
    async fn execute(&self, claimed: Claimed, stop: CancellationToken) {
        let started = std::time::Instant::now();
        // A trace per run (a scheduled window starts its own; a manual one
        // continues the RunJobNow call's); its TicketJobsService calls
        // carry it to the ticket service.
        let span = tracing::info_span!(
            "scheduler.run",
            otel.name = format!("run {}", claimed.job),
            job = %claimed.job,
            run_id = %claimed.id,
            window = %claimed.fire_at,
            attempt = claimed.attempts,
            outcome = tracing::field::Empty,
        );
        telemetry::follow(&span, self.inner.causes.get(&claimed.id));
        self.inner.causes.forget(&claimed.id);
        let outcome = match self
            .execute_inner(&claimed, &stop)
            .instrument(span.clone())
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                // The database failed under us: the lease runs out and another
                // replica (or this one) takes the run over from its checkpoint.
                tracing::warn!(run = %claimed.id, error = %e, "run interrupted");
                "interrupted"
            }
        };
        span.record("outcome", outcome);
        super::metrics::run_ended(&claimed.job, outcome, started);
    }

    async fn execute_inner(
        &self,
        claimed: &Claimed,
        stop: &CancellationToken,
    ) -> anyhow::Result<&'static str> {
        let inner = &self.inner;
        let kind: JobKind = claimed.job.parse().map_err(anyhow::Error::msg)?;
        let mut checkpoint = claimed.checkpoint.clone();
        let stale = || {
            tracing::warn!(run = %claimed.id, fence = claimed.fence,
                "run was taken over by another replica; this holder's write was refused");
            Ok("taken_over")
        };
        loop {
            let context = RunContext {
                run_id: claimed.id,
                fencing_token: claimed.fence,
                as_of: claimed.as_of,
                checkpoint: checkpoint.clone(),
            };
            let outcome = tokio::select! {
                outcome = jobs::step(kind, &*inner.work, &inner.thresholds, &context) => outcome,
                () = self.keep_lease(claimed) => return stale(),
            };
            let now = inner.clock.now();
            let lease_until = after(now, inner.config.lease);
            match outcome {
                Ok(Step::Page(page)) => {
                    let mut conn = inner.pool.acquire().await?;
                    let processed = i64::try_from(page.processed).unwrap_or(i64::MAX);
                    let recorded = runs::record_progress(
                        &mut conn,
                        claimed.id,
                        claimed.fence,
                        PageRecord {
                            checkpoint: page.checkpoint.as_deref(),
                            processed,
                            done: page.done,
                        },
                        now,
                        lease_until,
                    )
                    .await?;
                    if !recorded {
                        return stale();
                    }
                    if page.done {
                        tracing::info!(run = %claimed.id, job = %kind, "run succeeded");
                        return Ok("succeeded");
                    }
                    checkpoint = page.checkpoint;
                }
                Ok(Step::Stats(day, snapshot)) => {
                    let mut tx = inner.pool.begin().await?;
                    let recorded = runs::record_progress(
                        &mut tx,
                        claimed.id,
                        claimed.fence,
                        PageRecord {
                            checkpoint: Some(&day.day.to_string()),
                            processed: 1,
                            done: true,
                        },
                        now,
                        lease_until,
                    )
                    .await?;
                    if !recorded {
                        return stale();
                    }
                    stats::store(
                        &mut tx,
                        day.day,
                        inner.thresholds.stats_zone.name(),
                        &snapshot,
                        claimed.id,
                        now,
                    )
                    .await?;
                    tx.commit().await?;
                    return Ok("succeeded");
                }
                Err(WorkError::NothingToDo(reason)) => {
                    if !runs::finish_skipped(&inner.pool, claimed.id, claimed.fence, &reason, now)
                        .await?
                    {
                        return stale();
                    }
                    return Ok("nothing_to_do");
                }
                Err(err) => {
                    let attempts = claimed.attempts;
                    let retry_at = match &err {
                        WorkError::Unavailable(_) if attempts < inner.config.max_attempts => {
                            let factor =
                                2u32.saturating_pow(u32::try_from(attempts - 1).unwrap_or(0));
                            Some(after(now, inner.config.retry_after.saturating_mul(factor)))
                        }
                        _ => None,
                    };
                    tracing::warn!(run = %claimed.id, job = %kind, error = %err, ?retry_at, "run step failed");
                    if !runs::fail(
                        &inner.pool,
                        claimed.id,
                        claimed.fence,
                        &err.to_string(),
                        retry_at,
                        now,
                    )
                    .await?
                    {
                        return stale();
                    }
                    return Ok(if retry_at.is_some() {
                        "retry"
                    } else {
                        "failed"
                    });
                }
            }
            if stop.is_cancelled() {
                runs::release(&inner.pool, claimed.id, claimed.fence).await?;
                tracing::info!(run = %claimed.id, "run given back at shutdown");
                return Ok("given_back");
            }
        }
    }
}
