//! The `job_runs` table: one row per window, the claim on it (holder, lease,
//! fencing token) and its progress. Every write a run's holder makes names
//! its fencing token in the `WHERE`: after a takeover the token moved on,
//! the stale holder's write matches no row and is refused.

use chrono::{DateTime, Utc};
use helpdesk_kit::page_token::Cursor;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Disposition, RunState, Trigger};

/// A run as stored.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub id: Uuid,
    pub job: String,
    pub fire_at: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    pub trigger: String,
    pub state: String,
    pub reason: Option<String>,
    pub requested_by: Option<String>,
    pub holder: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub fence: i64,
    pub checkpoint: Option<String>,
    pub processed: i64,
    pub attempts: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run this replica now holds.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: Uuid,
    pub job: String,
    pub fire_at: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    pub fence: i64,
    pub checkpoint: Option<String>,
    /// Claims so far, this one included.
    pub attempts: i32,
}

/// Writes the planned windows: runs as `queued`, the rest as `skipped`
/// with their reason. A window that already has a row keeps it.
pub async fn insert_planned(
    conn: &mut PgConnection,
    job: &str,
    planned: &[(DateTime<Utc>, Disposition)],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let mut ids = Vec::with_capacity(planned.len());
    let mut fires = Vec::with_capacity(planned.len());
    let mut triggers = Vec::with_capacity(planned.len());
    let mut states = Vec::with_capacity(planned.len());
    let mut reasons: Vec<Option<String>> = Vec::with_capacity(planned.len());
    for (fire_at, disposition) in planned {
        ids.push(Uuid::now_v7());
        fires.push(*fire_at);
        match disposition {
            Disposition::Run(trigger) => {
                triggers.push(trigger.as_str().to_owned());
                states.push(RunState::Queued.as_str().to_owned());
                reasons.push(None);
            }
            Disposition::Skip(reason) => {
                triggers.push(Trigger::Schedule.as_str().to_owned());
                states.push(RunState::Skipped.as_str().to_owned());
                reasons.push(Some(reason.clone()));
            }
        }
    }
    sqlx::query!(
        "INSERT INTO job_runs (id, job, fire_at, as_of, trigger, state, reason, created_at,
                               finished_at)
         SELECT p.id, $1, p.fire_at, p.fire_at, p.trigger, p.state, p.reason, $7::timestamptz,
                CASE WHEN p.state = 'skipped' THEN $7::timestamptz END
         FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[])
              AS p (id, fire_at, trigger, state, reason)
         ON CONFLICT (job, fire_at) DO NOTHING",
        job,
        &ids,
        &fires,
        &triggers,
        &states,
        &reasons as &[Option<String>],
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The window of the job's oldest unfinished run (queued or running),
/// if any: the run a new window would overlap.
pub async fn busy_with(conn: &mut PgConnection, job: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar!(
        "SELECT fire_at FROM job_runs WHERE job = $1 AND state IN ('queued', 'running')
         ORDER BY fire_at LIMIT 1",
        job
    )
    .fetch_optional(conn)
    .await
}

/// Claims the job's next run for `holder`, if one may start now: the oldest
/// unfinished run, when it is queued (and past its retry time) or running
/// under an expired lease (a takeover: the checkpoint stays), and no other
/// run of the job holds a live lease. The caller holds the job's row lock,
/// so no other replica decides for this job meanwhile.
pub async fn claim(
    conn: &mut PgConnection,
    job: &str,
    holder: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> sqlx::Result<Option<Claimed>> {
    let next = sqlx::query!(
        "SELECT id, state, lease_until, retry_at FROM job_runs
         WHERE job = $1 AND state IN ('queued', 'running')
         ORDER BY (state = 'running' AND lease_until >= $2) DESC, fire_at
         LIMIT 1",
        job,
        now,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(next) = next else { return Ok(None) };
    let live = next.state == "running" && next.lease_until.is_some_and(|l| l >= now);
    let waiting = next.retry_at.is_some_and(|r| r > now);
    if live || waiting {
        return Ok(None);
    }
    let fence = super::jobs::next_fence(conn, job).await?;
    sqlx::query_as!(
        Claimed,
        "UPDATE job_runs SET state = 'running', holder = $2, lease_until = $3, fence = $4,
                attempts = attempts + 1, retry_at = NULL,
                started_at = COALESCE(started_at, $5)
         WHERE id = $1
         RETURNING id, job, fire_at, as_of, fence, checkpoint, attempts",
        next.id,
        holder,
        lease_until,
        fence,
        now,
    )
    .fetch_optional(conn)
    .await
}

/// What a page did, as recorded.
#[derive(Clone, Copy, Debug)]
pub struct PageRecord<'a> {
    /// Where the next page starts.
    pub checkpoint: Option<&'a str>,
    /// Items this page processed (added to the run's count).
    pub processed: i64,
    /// The run is complete.
    pub done: bool,
}

/// Records a page: the new checkpoint and count, a renewed lease, and
/// `succeeded` when it was the last. `false`: the token is stale (the run
/// was taken over), nothing was written.
pub async fn record_progress(
    conn: &mut PgConnection,
    id: Uuid,
    fence: i64,
    page: PageRecord<'_>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE job_runs SET checkpoint = $3, processed = processed + $4,
                lease_until = CASE WHEN $5 THEN NULL ELSE $7::timestamptz END,
                holder = CASE WHEN $5 THEN NULL ELSE holder END,
                state = CASE WHEN $5 THEN 'succeeded' ELSE state END,
                finished_at = CASE WHEN $5 THEN $6::timestamptz END
         WHERE id = $1 AND fence = $2 AND state = 'running'",
        id,
        fence,
        page.checkpoint,
        page.processed,
        page.done,
        now,
        lease_until,
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Extends the lease while a page is in flight; `false` when the token is
/// stale.
pub async fn renew(
    pool: &PgPool,
    id: Uuid,
    fence: i64,
    lease_until: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE job_runs SET lease_until = $3 WHERE id = $1 AND fence = $2 AND state = 'running'",
        id,
        fence,
        lease_until,
    )
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Ends a held run as skipped (the work said there is nothing to do).
pub async fn finish_skipped(
    pool: &PgPool,
    id: Uuid,
    fence: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE job_runs SET state = 'skipped', reason = $3, finished_at = $4,
                holder = NULL, lease_until = NULL
         WHERE id = $1 AND fence = $2 AND state = 'running'",
        id,
        fence,
        reason,
        now,
    )
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// A failed page: back to `queued` until `retry_at` (the checkpoint stays),
/// or `failed` for good when `retry_at` is `None`.
pub async fn fail(
    pool: &PgPool,
    id: Uuid,
    fence: i64,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE job_runs SET error = $3, retry_at = $4, holder = NULL, lease_until = NULL,
                state = CASE WHEN $4::timestamptz IS NULL THEN 'failed' ELSE 'queued' END,
                finished_at = CASE WHEN $4::timestamptz IS NULL THEN $5::timestamptz END
         WHERE id = $1 AND fence = $2 AND state = 'running'",
        id,
        fence,
        error,
        retry_at,
        now,
    )
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Gives a held run back (graceful stop): queued again with its
/// checkpoint, for any replica to claim at once.
pub async fn release(pool: &PgPool, id: Uuid, fence: i64) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE job_runs SET state = 'queued', holder = NULL, lease_until = NULL
         WHERE id = $1 AND fence = $2 AND state = 'running'",
        id,
        fence,
    )
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// A manual run at `fire_at` (queued, or skipped with `skip_reason`); the
/// run already at that instant when there is one.
pub async fn insert_manual(
    conn: &mut PgConnection,
    job: &str,
    fire_at: DateTime<Utc>,
    as_of: DateTime<Utc>,
    requested_by: &str,
    skip_reason: Option<&str>,
) -> sqlx::Result<RunRow> {
    let id = Uuid::now_v7();
    let state = if skip_reason.is_some() {
        RunState::Skipped
    } else {
        RunState::Queued
    };
    sqlx::query!(
        "INSERT INTO job_runs (id, job, fire_at, as_of, trigger, state, reason, requested_by,
                               created_at, finished_at)
         VALUES ($1, $2, $3::timestamptz, $4, 'manual', $5::text, $6, $7, $3::timestamptz,
                 CASE WHEN $5::text = 'skipped' THEN $3::timestamptz END)
         ON CONFLICT (job, fire_at) DO NOTHING",
        id,
        job,
        fire_at,
        as_of,
        state.as_str(),
        skip_reason,
        requested_by,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_as!(
        RunRow,
        "SELECT id, job, fire_at, as_of, trigger, state, reason, requested_by, holder,
                lease_until, fence, checkpoint, processed, attempts, error, created_at,
                started_at, finished_at
         FROM job_runs WHERE job = $1 AND fire_at = $2",
        job,
        fire_at
    )
    .fetch_one(conn)
    .await
}

/// A page of runs, newest window first, optionally of one job.
pub async fn page(
    pool: &PgPool,
    job: Option<&str>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<RunRow>> {
    let (at, id) = match after {
        Some(c) => (Some(c.at), Some(c.id)),
        None => (None, None),
    };
    sqlx::query_as!(
        RunRow,
        "SELECT id, job, fire_at, as_of, trigger, state, reason, requested_by, holder,
                lease_until, fence, checkpoint, processed, attempts, error, created_at,
                started_at, finished_at
         FROM job_runs
         WHERE ($1::text IS NULL OR job = $1)
           AND ($2::timestamptz IS NULL OR (fire_at, id) < ($2, $3::uuid))
         ORDER BY fire_at DESC, id DESC
         LIMIT $4",
        job,
        at,
        id,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// The newest run or skip of every job.
pub async fn latest_per_job(pool: &PgPool) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as!(
        RunRow,
        "SELECT DISTINCT ON (job) id, job, fire_at, as_of, trigger, state, reason, requested_by,
                holder, lease_until, fence, checkpoint, processed, attempts, error, created_at,
                started_at, finished_at
         FROM job_runs ORDER BY job, fire_at DESC"
    )
    .fetch_all(pool)
    .await
}

/// Each job's latest completed run (succeeded, or claimed and found nothing
/// to do), as every replica sees it: what "last success" means for alerts.
pub async fn last_completed(pool: &PgPool) -> sqlx::Result<Vec<(String, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        r#"SELECT job, max(finished_at) AS "finished!"
           FROM job_runs
           WHERE finished_at IS NOT NULL
             AND (state = 'succeeded' OR (state = 'skipped' AND started_at IS NOT NULL))
           GROUP BY job"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.job, r.finished)).collect())
}
