//! The `operations` table: intents recorded by RPCs (redistribute an
//! agent's tickets, rebalance), leased by the replica carrying them out.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::corrupt;
use crate::domain::{Operation, OperationKind};

/// How long a replica holds an operation between two steps.
const LEASE: &str = "30 seconds";

struct Row {
    id: Uuid,
    kind: String,
    agent_id: Option<Uuid>,
    done: bool,
    moved: i32,
    pending: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn kind(kind: &str, agent: Option<Uuid>) -> sqlx::Result<OperationKind> {
    match (kind, agent) {
        ("redistribute", Some(agent)) => Ok(OperationKind::Redistribute(agent)),
        ("rebalance", _) => Ok(OperationKind::Rebalance),
        _ => Err(corrupt("operation kind", kind)),
    }
}

fn columns(k: OperationKind) -> (&'static str, Option<Uuid>) {
    match k {
        OperationKind::Redistribute(agent) => ("redistribute", Some(agent)),
        OperationKind::Rebalance => ("rebalance", None),
    }
}

/// Records an operation to carry out.
pub async fn create(
    conn: &mut PgConnection,
    id: Uuid,
    k: OperationKind,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let (name, agent) = columns(k);
    sqlx::query!(
        "INSERT INTO operations (id, kind, agent_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4)",
        id,
        name,
        agent,
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get<'c>(db: impl PgExecutor<'c>, id: Uuid) -> sqlx::Result<Option<Operation>> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT o.id, o.kind, o.agent_id, o.done, o.moved, o.created_at, o.updated_at,
                  (SELECT count(*) FROM moves m
                   WHERE m.operation_id = o.id AND m.done_at IS NULL) AS "pending!"
           FROM operations o WHERE o.id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(Operation {
            id: r.id,
            kind: kind(&r.kind, r.agent_id)?,
            decided: r.done,
            moved: r.moved,
            pending: r.pending,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    })
    .transpose()
}

/// The unfinished operation of this kind (an RPC repeated while one runs
/// joins it instead of starting another).
pub async fn running(conn: &mut PgConnection, k: OperationKind) -> sqlx::Result<Option<Uuid>> {
    let (name, agent) = columns(k);
    sqlx::query_scalar!(
        "SELECT id FROM operations
         WHERE NOT done AND kind = $1 AND agent_id IS NOT DISTINCT FROM $2
         ORDER BY created_at LIMIT 1",
        name,
        agent,
    )
    .fetch_optional(conn)
    .await
}

/// Unfinished redistributions, by agent (shown on the agents).
pub async fn redistributing<'c>(db: impl PgExecutor<'c>) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query!(
        r#"SELECT agent_id AS "agent_id!", id FROM operations
           WHERE NOT done AND kind = 'redistribute'"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.agent_id, r.id)).collect())
}

/// Leases the oldest unfinished operation nobody holds.
pub async fn claim(conn: &mut PgConnection) -> sqlx::Result<Option<(Uuid, OperationKind)>> {
    let row = sqlx::query!(
        "UPDATE operations o SET lease_until = now() + $1::text::interval
         FROM (SELECT id FROM operations WHERE NOT done AND lease_until <= now()
               ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) due
         WHERE o.id = due.id
         RETURNING o.id, o.kind, o.agent_id",
        LEASE,
    )
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.id, kind(&r.kind, r.agent_id)?)))
        .transpose()
}

/// One step made: `moved` more moves decided; the lease is renewed.
pub async fn stepped(
    conn: &mut PgConnection,
    id: Uuid,
    moved: i32,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE operations SET moved = moved + $2, updated_at = $3,
                               lease_until = now() + $4::text::interval
         WHERE id = $1",
        id,
        moved,
        now,
        LEASE,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Nothing is left to decide.
pub async fn finish(conn: &mut PgConnection, id: Uuid, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE operations SET done = true, updated_at = $2, lease_until = '-infinity'
         WHERE id = $1",
        id,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives an operation back (this replica stops): another may take it now.
pub async fn release(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE operations SET lease_until = '-infinity' WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}
