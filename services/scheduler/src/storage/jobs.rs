//! The `jobs` table: paused state, how far each job is planned, and its
//! fencing-token counter. Its row lock serializes everything that decides a
//! job's runs (planning, claiming, manual runs, pausing) across replicas.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

#[derive(Clone, Debug)]
pub struct JobRow {
    pub name: String,
    pub paused: bool,
    pub paused_by: Option<String>,
    pub paused_at: Option<DateTime<Utc>>,
    pub planned_through: DateTime<Utc>,
}

/// Adds the jobs not known yet, planned through `now`: a new job starts
/// with its next window, it does not catch up on history.
pub async fn register(pool: &PgPool, names: &[String], now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO jobs (name, planned_through, created_at)
         SELECT name, $2, $2 FROM unnest($1::text[]) AS name
         ON CONFLICT (name) DO NOTHING",
        names,
        now,
    )
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn all(pool: &PgPool) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as!(
        JobRow,
        "SELECT name, paused, paused_by, paused_at, planned_through FROM jobs ORDER BY name"
    )
    .fetch_all(pool)
    .await
}

/// Locks the job's row for this transaction, or `None` when another
/// replica holds it (it is planning or claiming this job right now; this
/// tick leaves the job to it).
pub async fn try_lock(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as!(
        JobRow,
        "SELECT name, paused, paused_by, paused_at, planned_through FROM jobs
         WHERE name = $1 FOR UPDATE SKIP LOCKED",
        name
    )
    .fetch_optional(conn)
    .await
}

/// Locks the job's row for this transaction, waiting for another holder.
pub async fn lock(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as!(
        JobRow,
        "SELECT name, paused, paused_by, paused_at, planned_through FROM jobs
         WHERE name = $1 FOR UPDATE",
        name
    )
    .fetch_optional(conn)
    .await
}

pub async fn set_planned_through(
    conn: &mut PgConnection,
    name: &str,
    through: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE jobs SET planned_through = $2 WHERE name = $1",
        name,
        through
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The job's next fencing token (monotonic per job).
pub async fn next_fence(conn: &mut PgConnection, name: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "UPDATE jobs SET fence = fence + 1 WHERE name = $1 RETURNING fence",
        name
    )
    .fetch_one(conn)
    .await
}

/// Pauses or resumes. Resuming plans from `now` on: the windows of the
/// pause were recorded as skipped while it lasted, and the ones since the
/// last tick are recorded so too, in the same transaction.
pub async fn set_paused(
    conn: &mut PgConnection,
    name: &str,
    paused: bool,
    by: Option<&str>,
    at: Option<DateTime<Utc>>,
) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as!(
        JobRow,
        "UPDATE jobs SET paused = $2, paused_by = $3, paused_at = $4 WHERE name = $1
         RETURNING name, paused, paused_by, paused_at, planned_through",
        name,
        paused,
        by,
        at,
    )
    .fetch_optional(conn)
    .await
}
