//! The `deliveries` table as staff see it: one row per (notification,
//! channel) for email and push, created with the notifications in one
//! statement (`notifications::store`); the sender's claim and outcome
//! queries live in `outgoing`.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// A delivery to create, queued. A channel the recipient's preferences
/// turn off gets no row: the notification's `declined` bits say so.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub notification_id: Uuid,
    pub channel: &'static str,
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
/// oldest first, each with its deliveries: the rows, and a `skipped` one
/// with reason `preference` for each channel the notification declined.
pub async fn by_ticket<'c>(
    db: impl PgExecutor<'c>,
    ticket_id: Uuid,
    after: Option<Uuid>,
    notifications: i64,
) -> sqlx::Result<Vec<TicketDelivery>> {
    sqlx::query_as!(
        TicketDelivery,
        r#"WITH page AS (
               SELECT seq, id, recipient_id, kind, create_time, read_time, declined
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
           FROM page p LEFT JOIN LATERAL (
               SELECT channel, state, reason, attempts, last_error, sent_time, next_attempt_at
               FROM deliveries WHERE notification_id = p.id
               UNION ALL
               SELECT c.channel, 'skipped', 'preference', 0, NULL, NULL, NULL
               FROM (VALUES ('email', 1), ('push', 2)) AS c(channel, bit)
               WHERE p.declined & c.bit <> 0
           ) d ON true
           ORDER BY p.seq, d.channel"#,
        ticket_id,
        after,
        notifications,
    )
    .fetch_all(db)
    .await
}
