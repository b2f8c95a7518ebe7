//! The `moves` table: decided changes of holder, pending until the ticket
//! service answers (`done_at`), then kept a day so a retried request finds
//! its first answer.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::Move;

/// A move to record with its decision.
#[derive(Clone, Debug)]
pub struct NewMove {
    pub ticket_id: Uuid,
    pub from: Option<Uuid>,
    pub to: Option<Uuid>,
    pub request_id: Uuid,
    pub operation: Option<Uuid>,
}

/// Records decisions (one statement for a batch): each ticket takes its
/// new holder, each move is stored pending, and the agents given a ticket
/// are stamped (fairness tie-break); workloads follow (trigger). Returns
/// the moves' ids in order. One statement because it runs under the
/// exclusive decision lock, which every new ticket waits for.
pub async fn decide(
    conn: &mut PgConnection,
    moves: &[NewMove],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<i64>> {
    let nil = |u: Option<Uuid>| u.unwrap_or(Uuid::nil());
    let tickets: Vec<Uuid> = moves.iter().map(|m| m.ticket_id).collect();
    let from: Vec<Uuid> = moves.iter().map(|m| nil(m.from)).collect();
    let to: Vec<Uuid> = moves.iter().map(|m| nil(m.to)).collect();
    let requests: Vec<Uuid> = moves.iter().map(|m| m.request_id).collect();
    let operations: Vec<Uuid> = moves.iter().map(|m| nil(m.operation)).collect();
    sqlx::query_scalar!(
        "WITH d AS (
             SELECT t, NULLIF(f, '00000000-0000-0000-0000-000000000000'::uuid) AS f,
                    NULLIF(a, '00000000-0000-0000-0000-000000000000'::uuid) AS a, r,
                    NULLIF(o, '00000000-0000-0000-0000-000000000000'::uuid) AS o, n
             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[])
                  WITH ORDINALITY AS d(t, f, a, r, o, n)
         ),
         holders AS (
             UPDATE assignments s
             SET agent_id = d.a,
                 assigned_at = CASE WHEN d.a IS NULL THEN NULL ELSE $6::timestamptz END,
                 updated_at = $6, revision = nextval('assignment_revision')
             FROM d WHERE s.ticket_id = d.t
         ),
         given AS (
             UPDATE agents g SET last_assigned_at = $6
             WHERE g.account_id IN (SELECT a FROM d WHERE a IS NOT NULL)
         )
         INSERT INTO moves (ticket_id, from_agent, to_agent, request_id, operation_id, created_at)
         SELECT t, f, a, r, o, $6 FROM d
         ORDER BY n
         RETURNING id",
        &tickets,
        &from,
        &to,
        &requests,
        &operations,
        now,
    )
    .fetch_all(conn)
    .await
}

/// Whether a move with this request id was decided (a retried request).
pub async fn exists<'c>(db: impl PgExecutor<'c>, request_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM moves WHERE request_id = $1) AS "exists!""#,
        request_id
    )
    .fetch_one(db)
    .await
}

/// Whether `ticket` has a move still pending (a new decision must wait).
pub async fn pending_for<'c>(db: impl PgExecutor<'c>, ticket: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM moves WHERE ticket_id = $1 AND done_at IS NULL) AS "exists!""#,
        ticket
    )
    .fetch_one(db)
    .await
}

/// Takes up to `limit` due pending moves (`only`: just that one), leasing
/// them for `lease_secs` times their attempt count (at most 5): long enough
/// for the call in flight, and the backoff when it fails. Other replicas
/// skip them meanwhile; a crashed replica's lease lapses and they resume.
pub async fn claim(
    conn: &mut PgConnection,
    limit: i64,
    only: Option<i64>,
    lease_secs: f64,
) -> sqlx::Result<Vec<Move>> {
    let rows = sqlx::query!(
        "UPDATE moves m
         SET attempts = m.attempts + 1,
             not_before = now() + make_interval(secs => $3::float8 * LEAST(m.attempts + 1, 5))
         FROM (SELECT id FROM moves
               WHERE done_at IS NULL AND not_before <= now() AND ($2::bigint IS NULL OR id = $2)
               ORDER BY id
               LIMIT $1
               FOR UPDATE SKIP LOCKED) due
         WHERE m.id = due.id
         RETURNING m.id, m.ticket_id, m.from_agent, m.to_agent, m.request_id",
        limit,
        only,
        lease_secs,
    )
    .fetch_all(conn)
    .await?;
    let mut moves: Vec<Move> = rows
        .into_iter()
        .map(|r| Move {
            id: r.id,
            ticket_id: r.ticket_id,
            from: r.from_agent,
            to: r.to_agent,
            request_id: r.request_id,
        })
        .collect();
    moves.sort_by_key(|m| m.id);
    Ok(moves)
}

/// Marks moves answered.
pub async fn finish(conn: &mut PgConnection, ids: &[i64], now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE moves SET done_at = $2 WHERE id = ANY ($1) AND done_at IS NULL",
        ids,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets answered moves older than a day (the ticket service keeps its
/// own record of request ids for longer).
pub async fn prune(conn: &mut PgConnection) -> sqlx::Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM moves WHERE done_at < now() - interval '1 day'")
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
