//! The sender's queries on `deliveries`: claim due rows, then record each
//! outcome in a small statement of its own (no transaction is held while
//! an SMTP server or the push gateway thinks).
//!
//! **Claims are leases.** Claiming pushes `next_attempt_at` forward by the
//! lease and counts the attempt, in the statement that locks the rows
//! (`FOR UPDATE SKIP LOCKED`, so replicas never take the same row). A sender
//! that dies mid-send leaves rows that come due again when the lease lapses.
//!
//! **The attempt count fences outcomes.** Every outcome names the attempt it
//! reports on and applies only while the row is still queued at that count:
//! a sender that outlived its lease (another has claimed the row since)
//! changes nothing, and learns so from the `false` it gets back.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A claimed delivery with its notification: everything needed to send it.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: Uuid,
    pub channel: String,
    /// Attempts so far, this one included: the fence for its outcome.
    pub attempts: i32,
    pub create_time: DateTime<Utc>,
    /// Push: tokens a previous attempt already reached.
    pub sent_tokens: Vec<String>,
    pub notification_id: Uuid,
    pub recipient_id: Uuid,
    pub kind: String,
    pub ticket_id: Uuid,
    pub human_id: String,
    pub link: String,
    pub params: serde_json::Value,
}

/// Claims up to `limit` deliveries due at `now`, oldest due first, leased
/// until `lease_until`.
pub async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as!(
        Claimed,
        r#"WITH due AS (
               SELECT id FROM deliveries
               WHERE state = 'queued' AND next_attempt_at <= $1
               ORDER BY next_attempt_at
               LIMIT $3
               FOR UPDATE SKIP LOCKED
           ), claimed AS (
               UPDATE deliveries d
               SET attempts = d.attempts + 1, next_attempt_at = $2
               FROM due WHERE d.id = due.id
               RETURNING d.id, d.notification_id, d.channel, d.attempts, d.create_time, d.sent_tokens
           )
           SELECT c.id AS "id!", c.channel AS "channel!", c.attempts AS "attempts!",
                  c.create_time AS "create_time!", c.sent_tokens AS "sent_tokens!",
                  c.notification_id AS "notification_id!",
                  n.recipient_id, n.kind, n.ticket_id, n.human_id, n.link, n.params
           FROM claimed c JOIN notifications n ON n.id = c.notification_id"#,
        now,
        lease_until,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// Sent: done. `sent_tokens` (push) records who got it.
pub async fn sent<'c>(
    db: impl PgExecutor<'c>,
    id: Uuid,
    attempt: i32,
    sent_tokens: &[String],
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE deliveries
         SET state = 'sent', sent_time = $3, next_attempt_at = NULL, sent_tokens = $4
         WHERE id = $1 AND attempts = $2 AND state = 'queued'",
        id,
        attempt,
        now,
        sent_tokens,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Not sent on purpose, with the reason (`no_address`, ...).
pub async fn skipped<'c>(
    db: impl PgExecutor<'c>,
    id: Uuid,
    attempt: i32,
    reason: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE deliveries
         SET state = 'skipped', reason = $3, next_attempt_at = NULL
         WHERE id = $1 AND attempts = $2 AND state = 'queued'",
        id,
        attempt,
        reason,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A transient failure: due again at `next`, keeping the tokens reached so
/// far (push) so the retry sends only to the rest.
pub async fn retry<'c>(
    db: impl PgExecutor<'c>,
    id: Uuid,
    attempt: i32,
    next: DateTime<Utc>,
    error: &str,
    sent_tokens: &[String],
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE deliveries
         SET next_attempt_at = $3, last_error = $4, sent_tokens = $5
         WHERE id = $1 AND attempts = $2 AND state = 'queued'",
        id,
        attempt,
        next,
        error,
        sent_tokens,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Given up: a permanent failure, or the retry budget spent.
pub async fn failed<'c>(
    db: impl PgExecutor<'c>,
    id: Uuid,
    attempt: i32,
    error: &str,
    sent_tokens: &[String],
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE deliveries
         SET state = 'failed', next_attempt_at = NULL, last_error = $3, sent_tokens = $4
         WHERE id = $1 AND attempts = $2 AND state = 'queued'",
        id,
        attempt,
        error,
        sent_tokens,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Of `tokens`, those the gateway has reported as unregistered.
pub async fn unregistered<'c>(
    db: impl PgExecutor<'c>,
    tokens: &[String],
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT token FROM unregistered_push_tokens WHERE token = ANY($1)",
        tokens,
    )
    .fetch_all(db)
    .await
}

/// Records `tokens` of `account_id` as unregistered: never used again.
pub async fn unregister<'c>(
    db: impl PgExecutor<'c>,
    account_id: Uuid,
    tokens: &[String],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO unregistered_push_tokens (token, account_id, reported_at)
         SELECT t, $2, $3 FROM UNNEST($1::text[]) AS t
         ON CONFLICT (token) DO NOTHING",
        tokens,
        account_id,
        now,
    )
    .execute(db)
    .await?;
    Ok(())
}
