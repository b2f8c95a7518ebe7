//! The producer half of the transactional outbox: [`enqueue`] writes an event
//! row in the same transaction as the change it describes, so there is never
//! a change without its event nor an event without its change. A relay
//! publishes the rows to RabbitMQ after commit (docs/events.md).

use helpdesk_proto::Event;
use sqlx::PgConnection;
use uuid::Uuid;

/// Inserts `event` for `aggregate_id` (the ticket) into the outbox.
pub async fn enqueue<E: Event>(
    conn: &mut PgConnection,
    event_id: Uuid,
    aggregate_id: Uuid,
    event: &E,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload)
         VALUES ($1, $2, $3, $4, $5)",
        event_id,
        aggregate_id,
        E::ROUTING_KEY,
        E::full_name(),
        event.encode_to_vec(),
    )
    .execute(conn)
    .await?;
    Ok(())
}
