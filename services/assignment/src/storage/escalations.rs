//! The `escalations` table: who handed which ticket to whom, and why.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Records one escalation; `to` is `None` when nobody of the tier was free.
pub async fn record(
    conn: &mut PgConnection,
    ticket: Uuid,
    from: Option<Uuid>,
    to: Option<Uuid>,
    reason: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO escalations (ticket_id, from_agent, to_agent, reason, escalated_at)
         VALUES ($1, $2, $3, $4, $5)",
        ticket,
        from,
        to,
        reason,
        at,
    )
    .execute(conn)
    .await?;
    Ok(())
}
