//! The `deliveries` table as intake and staff see it: one row per
//! (notification, channel) for email and push, created with the
//! notifications in one statement; the sender's claim and outcome queries
//! live in `outgoing`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A delivery to create: queued, or skipped with a reason.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub notification_id: Uuid,
    pub channel: &'static str,
    /// `None`: queued; `Some(reason)`: skipped.
    pub skipped: Option<&'static str>,
}

/// Creates the deliveries in one statement (a redelivered event's exist
/// already and stay as they are); returns how many are queued now.
pub async fn insert(
    conn: &mut PgConnection,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    if deliveries.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = deliveries.iter().map(|_| Uuid::now_v7()).collect();
    let notifications: Vec<Uuid> = deliveries.iter().map(|d| d.notification_id).collect();
    let channels: Vec<&str> = deliveries.iter().map(|d| d.channel).collect();
    let reasons: Vec<&str> = deliveries.iter().map(|d| d.skipped.unwrap_or("")).collect();
    let queued = sqlx::query_scalar!(
        "WITH created AS (
             INSERT INTO deliveries (id, notification_id, channel, state, reason, create_time, next_attempt_at)
             SELECT d.id, d.notification, d.channel,
                    CASE WHEN d.reason = '' THEN 'queued' ELSE 'skipped' END,
                    NULLIF(d.reason, ''), $5::timestamptz,
                    CASE WHEN d.reason = '' THEN $5::timestamptz END
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[])
                  AS d(id, notification, channel, reason)
             ON CONFLICT (notification_id, channel) DO NOTHING
             RETURNING state
         )
         SELECT count(*) FROM created WHERE state = 'queued'",
        &ids,
        &notifications,
        &channels as &[&str],
        &reasons as &[&str],
        now,
    )
    .fetch_one(conn)
    .await?;
    Ok(queued.unwrap_or(0) as u64)
}

/// One notification of a ticket with one of its deliveries (none for a
/// notification kept in-app only).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TicketDelivery {
    pub seq: i64,
    pub notification_id: Uuid,
    pub recipient_id: Uuid,
    pub kind: String,
    pub notified_at: DateTime<Utc>,
    pub read_time: Option<DateTime<Utc>>,
    pub channel: Option<String>,
    pub state: Option<String>,
    pub reason: Option<String>,
    pub attempts: Option<i32>,
    pub last_error: Option<String>,
    pub sent_time: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A page of a ticket's notifications after the notification `after`,
/// oldest first, each with its deliveries.
pub async fn by_ticket<'c>(
    db: impl PgExecutor<'c>,
    ticket_id: Uuid,
    after: Option<Uuid>,
    notifications: i64,
) -> sqlx::Result<Vec<TicketDelivery>> {
    sqlx::query_as!(
        TicketDelivery,
        r#"WITH page AS (
               SELECT seq, id, recipient_id, kind, create_time, read_time
               FROM notifications
               WHERE ticket_id = $1
                 AND seq > coalesce((SELECT seq FROM notifications WHERE id = $2), 0)
               ORDER BY seq
               LIMIT $3
           )
           SELECT p.seq, p.id AS notification_id, p.recipient_id, p.kind,
                  p.create_time AS notified_at, p.read_time,
                  d.channel AS "channel?", d.state AS "state?", d.reason, d.attempts AS "attempts?",
                  d.last_error, d.sent_time, d.next_attempt_at
           FROM page p LEFT JOIN deliveries d ON d.notification_id = p.id
           ORDER BY p.seq, d.channel"#,
        ticket_id,
        after,
        notifications,
    )
    .fetch_all(db)
    .await
}
