//! The `ticket_staff` table: staff who were assigned or wrote on a ticket,
//! the audience of its internal notes.

use sqlx::PgConnection;
use uuid::Uuid;

/// Remembers `staff` on the ticket (idempotent).
pub async fn add(conn: &mut PgConnection, ticket_id: Uuid, staff: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO ticket_staff (ticket_id, staff_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        ticket_id,
        staff
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Everyone remembered on the ticket.
pub async fn of(conn: &mut PgConnection, ticket_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT staff_id FROM ticket_staff WHERE ticket_id = $1 ORDER BY staff_id",
        ticket_id
    )
    .fetch_all(conn)
    .await
}
