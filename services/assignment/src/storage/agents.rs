//! The `agents` table: the roster, each agent's settings and workload.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::corrupt;
use crate::domain::{Agent, Candidate, Tier, rebalance::Load};

/// A row as stored; the tier is text for readable SQL.
struct Row {
    account_id: Uuid,
    display_name: String,
    active: bool,
    available: bool,
    capacity: i32,
    skills: Vec<String>,
    tier: String,
    open_tickets: i32,
    last_assigned_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for Agent {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, Self::Error> {
        Ok(Agent {
            tier: Tier::parse(&r.tier).ok_or_else(|| corrupt("tier", &r.tier))?,
            account_id: r.account_id,
            display_name: r.display_name,
            active: r.active,
            available: r.available,
            capacity: r.capacity,
            skills: r.skills,
            open_tickets: r.open_tickets,
            last_assigned_at: r.last_assigned_at,
            updated_at: r.updated_at,
        })
    }
}

/// The roster by name; inactive agents only when asked.
pub async fn list<'c>(db: impl PgExecutor<'c>, include_inactive: bool) -> sqlx::Result<Vec<Agent>> {
    sqlx::query_as!(
        Row,
        "SELECT account_id, display_name, active, available, capacity, skills, tier,
                open_tickets, last_assigned_at, updated_at
         FROM agents
         WHERE active OR $1
         ORDER BY display_name, account_id",
        include_inactive,
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Agent::try_from)
    .collect()
}

pub async fn get<'c>(db: impl PgExecutor<'c>, id: Uuid) -> sqlx::Result<Option<Agent>> {
    sqlx::query_as!(
        Row,
        "SELECT account_id, display_name, active, available, capacity, skills, tier,
                open_tickets, last_assigned_at, updated_at
         FROM agents WHERE account_id = $1",
        id,
    )
    .fetch_optional(db)
    .await?
    .map(Agent::try_from)
    .transpose()
}

/// Writes back what UpdateAgent may change.
pub async fn save_settings(conn: &mut PgConnection, a: &Agent) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE agents SET available = $2, capacity = $3, skills = $4, tier = $5, updated_at = $6
         WHERE account_id = $1",
        a.account_id,
        a.available,
        a.capacity,
        &a.skills,
        a.tier.as_str(),
        a.updated_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The agents automatic assignment may choose from: active and on shift
/// (`domain::choose` applies capacity, skills, load and fairness).
pub async fn candidates(conn: &mut PgConnection) -> sqlx::Result<Vec<Candidate>> {
    let rows = sqlx::query!(
        "SELECT account_id, skills, tier, open_tickets, capacity, last_assigned_at
         FROM agents WHERE active AND available ORDER BY account_id",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Candidate {
                tier: Tier::parse(&r.tier).ok_or_else(|| corrupt("tier", &r.tier))?,
                id: r.account_id,
                skills: r.skills,
                open_tickets: r.open_tickets,
                capacity: r.capacity,
                last_assigned_at: r.last_assigned_at,
            })
        })
        .collect()
}

/// One agent whose stored workload differed from the truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub agent: Uuid,
    pub stored: i32,
    pub actual: i32,
}

/// Recounts every agent; returns those whose stored workload was wrong.
pub async fn recount_all(conn: &mut PgConnection, now: DateTime<Utc>) -> sqlx::Result<Vec<Drift>> {
    let rows = sqlx::query!(
        r#"UPDATE agents a SET open_tickets = c.actual, updated_at = $1
           FROM (SELECT g.account_id, g.open_tickets AS stored,
                        (SELECT count(*) FROM assignments s
                         WHERE s.agent_id = g.account_id AND s.open)::int AS actual
                 FROM agents g) c
           WHERE a.account_id = c.account_id AND c.stored <> c.actual
           RETURNING a.account_id, c.stored AS "stored!", c.actual AS "actual!""#,
        now,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Drift {
            agent: r.account_id,
            stored: r.stored,
            actual: r.actual,
        })
        .collect())
}

/// Makes sure rows exist for `ids` (a ticket held by someone the roster has
/// not synced yet): inactive placeholders until the roster confirms them.
pub async fn ensure_known(
    conn: &mut PgConnection,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO agents (account_id, display_name, active, updated_at)
         SELECT DISTINCT id, '', false, $2::timestamptz FROM UNNEST($1::uuid[]) AS t(id)
         ON CONFLICT (account_id) DO NOTHING",
        ids,
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes an agent out of automatic assignment (the ticket service refused
/// them as assignee; the next roster sync has the last word).
pub async fn deactivate(conn: &mut PgConnection, id: Uuid, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE agents SET active = false, updated_at = $2 WHERE account_id = $1",
        id,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Upserts the staff list: new agents get the defaults; known ones get
/// their name refreshed and are reactivated when active again (deactivation
/// is [`deactivate_others`], so it can report who left). Returns how many
/// were new.
pub async fn upsert_roster(
    conn: &mut PgConnection,
    ids: &[Uuid],
    names: &[String],
    active: &[bool],
    default_capacity: i32,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let new = sqlx::query_scalar!(
        r#"INSERT INTO agents (account_id, display_name, active, available, capacity, updated_at)
           SELECT id, name, active, true, $4, $5
           FROM UNNEST($1::uuid[], $2::text[], $3::bool[]) AS t(id, name, active)
           ON CONFLICT (account_id) DO UPDATE
               SET display_name = EXCLUDED.display_name,
                   active = agents.active OR EXCLUDED.active,
                   updated_at = EXCLUDED.updated_at
               WHERE agents.display_name <> EXCLUDED.display_name
                  OR (EXCLUDED.active AND NOT agents.active)
           RETURNING (xmax = 0) AS "inserted!""#,
        ids,
        names,
        active,
        default_capacity,
        now,
    )
    .fetch_all(conn)
    .await?;
    Ok(new.into_iter().filter(|inserted| *inserted).count() as u64)
}

/// Deactivates active agents who are not `active_staff` (they left, or
/// their account was deactivated); returns them.
pub async fn deactivate_others(
    conn: &mut PgConnection,
    active_staff: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "UPDATE agents SET active = false, updated_at = $2
         WHERE active AND NOT (account_id = ANY ($1))
         RETURNING account_id",
        active_staff,
        now,
    )
    .fetch_all(conn)
    .await
}

/// Deactivated agents who still hold open tickets.
pub async fn inactive_holding_work(conn: &mut PgConnection) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT a.account_id FROM agents a
         WHERE NOT a.active
           AND EXISTS (SELECT 1 FROM assignments s WHERE s.agent_id = a.account_id AND s.open)
         ORDER BY a.account_id",
    )
    .fetch_all(conn)
    .await
}

/// The workloads of the agents on shift (rebalancing).
pub async fn loads(conn: &mut PgConnection) -> sqlx::Result<Vec<Load>> {
    let rows = sqlx::query!(
        "SELECT account_id, open_tickets, capacity FROM agents
         WHERE active AND available ORDER BY account_id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Load {
            agent: r.account_id,
            open_tickets: r.open_tickets,
            capacity: r.capacity,
        })
        .collect())
}
