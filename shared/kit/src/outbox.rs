//! The producer half of the transactional outbox: [`enqueue`] writes an event
//! row in the same transaction as the change it describes, so there is never
//! a change without its event nor an event without its change. A relay
//! publishes the rows to RabbitMQ after commit (docs/events.md).

use chrono::{DateTime, Utc};
use helpdesk_proto::Event;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Inserts `event` for `aggregate_id` (the ticket) into the outbox.
pub async fn enqueue<E: Event>(
    conn: &mut PgConnection,
    event_id: Uuid,
    aggregate_id: Uuid,
    event: &E,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload, traceparent)
         VALUES ($1, $2, $3, $4, $5, $6)",
        event_id,
        aggregate_id,
        E::ROUTING_KEY,
        E::full_name(),
        event.encode_to_vec(),
        crate::telemetry::current_traceparent(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What has not reached the broker yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub unsent: i64,
    pub oldest: Option<DateTime<Utc>>,
}

impl Backlog {
    /// Age of the oldest unsent event in milliseconds (0 when none).
    pub fn oldest_age_ms(&self) -> i64 {
        self.oldest
            .map(|t| (Utc::now() - t).num_milliseconds().max(0))
            .unwrap_or(0)
    }
}

/// Counts unsent rows and finds the oldest (served by the partial index).
pub async fn backlog<'c>(db: impl PgExecutor<'c>) -> sqlx::Result<Backlog> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "unsent!", min(created_at) AS oldest FROM outbox WHERE sent_at IS NULL"#
    )
    .fetch_one(db)
    .await?;
    Ok(Backlog {
        unsent: row.unsent,
        oldest: row.oldest,
    })
}

/// Deletes rows sent before `before`; returns how many.
pub async fn prune<'c>(db: impl PgExecutor<'c>, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query!("DELETE FROM outbox WHERE sent_at < $1", before)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
