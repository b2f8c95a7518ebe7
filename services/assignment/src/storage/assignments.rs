//! The `assignments` table: who holds each ticket, and the waiting queue.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::corrupt;
use crate::domain::{Assignment, Priority, TicketRef};

/// A row as stored; the priority is its rank (`Priority::rank`).
struct Row {
    ticket_id: Uuid,
    human_id: String,
    category_id: String,
    priority: i16,
    ticket_created_at: DateTime<Utc>,
    agent_id: Option<Uuid>,
    open: bool,
    assigned_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for Assignment {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, Self::Error> {
        Ok(Assignment {
            priority: Priority::from_rank(r.priority)
                .ok_or_else(|| corrupt("priority", &r.priority.to_string()))?,
            ticket_id: r.ticket_id,
            human_id: r.human_id,
            category_id: r.category_id,
            ticket_created_at: r.ticket_created_at,
            agent_id: r.agent_id,
            open: r.open,
            assigned_at: r.assigned_at,
        })
    }
}

/// Inserts a ticket seen for the first time, as of the event `(at, event)`;
/// `false` when it was known (a duplicate or late event changes nothing here).
pub async fn insert(
    conn: &mut PgConnection,
    a: &Assignment,
    at: DateTime<Utc>,
    event: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO assignments (ticket_id, human_id, category_id, priority, ticket_created_at,
                                  agent_id, open, assigned_at, updated_at, last_event_at,
                                  last_event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (ticket_id) DO NOTHING",
        a.ticket_id,
        a.human_id,
        a.category_id,
        a.priority.rank(),
        a.ticket_created_at,
        a.agent_id,
        a.open,
        a.assigned_at,
        now,
        at,
        event,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`insert`] for several tickets with no holder yet, in one statement;
/// each as of its own event (`at`, `event`). Returns the ids stored (a
/// ticket already known is left as it is).
pub async fn insert_waiting(
    conn: &mut PgConnection,
    tickets: &[(Assignment, DateTime<Utc>, Uuid)],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = tickets.iter().map(|(a, ..)| a.ticket_id).collect();
    let human_ids: Vec<&str> = tickets.iter().map(|(a, ..)| a.human_id.as_str()).collect();
    let categories: Vec<&str> = tickets
        .iter()
        .map(|(a, ..)| a.category_id.as_str())
        .collect();
    let priorities: Vec<i16> = tickets.iter().map(|(a, ..)| a.priority.rank()).collect();
    let created: Vec<DateTime<Utc>> = tickets.iter().map(|(a, ..)| a.ticket_created_at).collect();
    let open: Vec<bool> = tickets.iter().map(|(a, ..)| a.open).collect();
    let at: Vec<DateTime<Utc>> = tickets.iter().map(|(_, at, _)| *at).collect();
    let events: Vec<Uuid> = tickets.iter().map(|(.., event)| *event).collect();
    sqlx::query_scalar!(
        "INSERT INTO assignments (ticket_id, human_id, category_id, priority, ticket_created_at,
                                  open, updated_at, last_event_at, last_event_id)
         SELECT t.id, t.human_id, t.category_id, t.priority, t.created, t.open, $7, t.at, t.event
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::smallint[], $5::timestamptz[],
                     $6::boolean[], $8::timestamptz[], $9::uuid[])
              AS t(id, human_id, category_id, priority, created, open, at, event)
         ON CONFLICT (ticket_id) DO NOTHING
         RETURNING ticket_id",
        &ids,
        &human_ids as &[&str],
        &categories as &[&str],
        &priorities,
        &created,
        &open,
        now,
        &at,
        &events,
    )
    .fetch_all(conn)
    .await
}

/// Sets holder and openness as an event `(at, event)` describes them, only
/// when that event is newer than every one applied to the row so far
/// (events are retried and may arrive out of order). `false`: stale (or no
/// such row), nothing changed.
pub async fn apply_event(
    conn: &mut PgConnection,
    ticket: Uuid,
    agent: Option<Uuid>,
    open: bool,
    at: DateTime<Utc>,
    event: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE assignments
         SET agent_id = $2, open = $3,
             assigned_at = CASE WHEN $2::uuid IS NULL THEN NULL
                                WHEN agent_id IS NOT DISTINCT FROM $2 THEN assigned_at
                                ELSE $6::timestamptz END,
             last_event_at = $4, last_event_id = $5,
             updated_at = $6, revision = nextval('assignment_revision')
         WHERE ticket_id = $1
           AND (last_event_at IS NULL OR ($4::timestamptz, $5::uuid) > (last_event_at, last_event_id))",
        ticket,
        agent,
        open,
        at,
        event,
        now,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One answer of the ticket service to a move.
#[derive(Clone, Debug)]
pub struct Answered {
    pub ticket: Uuid,
    /// The holder it now has (`None`: nobody).
    pub agent: Option<Uuid>,
    /// Still counts toward a workload.
    pub open: bool,
    /// When the ticket last changed, as the answer says.
    pub at: Option<DateTime<Utc>>,
}

/// Records answers of the ticket service to moves (one statement for a
/// batch): each row takes the answer's holder and openness. Unconditional
/// (we hold the decision lock and an answer is the ticket as of our call),
/// but a row's event mark only moves forward, to `(at, nil)`: an event of
/// the same instant still wins. The workloads follow (trigger).
pub async fn record_answers(
    conn: &mut PgConnection,
    answers: &[Answered],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let tickets: Vec<Uuid> = answers.iter().map(|a| a.ticket).collect();
    let agents: Vec<Uuid> = answers
        .iter()
        .map(|a| a.agent.unwrap_or(Uuid::nil()))
        .collect();
    let open: Vec<bool> = answers.iter().map(|a| a.open).collect();
    // The epoch stands for "the answer carried no time" (the mark stays).
    let at: Vec<DateTime<Utc>> = answers
        .iter()
        .map(|a| a.at.unwrap_or(DateTime::UNIX_EPOCH))
        .collect();
    sqlx::query!(
        r#"UPDATE assignments s
           SET agent_id = a.agent, open = a.open,
               assigned_at = CASE WHEN a.agent IS NULL THEN NULL
                                  WHEN s.agent_id IS NOT DISTINCT FROM a.agent THEN s.assigned_at
                                  ELSE $6::timestamptz END,
               updated_at = $6, revision = nextval('assignment_revision'),
               last_event_id = CASE WHEN a.at IS NOT NULL
                                         AND (s.last_event_at IS NULL OR a.at > s.last_event_at)
                                    THEN '00000000-0000-0000-0000-000000000000'::uuid
                                    ELSE s.last_event_id END,
               last_event_at = GREATEST(s.last_event_at, a.at)
           FROM (SELECT t.ticket, NULLIF(t.agent, '00000000-0000-0000-0000-000000000000'::uuid) AS agent,
                        t.open, NULLIF(t.at, $4::timestamptz) AS at
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::bool[], $5::timestamptz[])
                      AS t(ticket, agent, open, at)) a
           WHERE s.ticket_id = a.ticket"#,
        &tickets,
        &agents,
        &open,
        DateTime::UNIX_EPOCH,
        &at,
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts `back` as holder again where a move to `to` was refused, unless
/// something newer changed the row meanwhile.
pub async fn revert_holder(
    conn: &mut PgConnection,
    ticket: Uuid,
    to: Option<Uuid>,
    back: Option<Uuid>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE assignments
         SET agent_id = $3, assigned_at = CASE WHEN $3::uuid IS NULL THEN NULL ELSE assigned_at END,
             updated_at = $4, revision = nextval('assignment_revision')
         WHERE ticket_id = $1 AND agent_id IS NOT DISTINCT FROM $2",
        ticket,
        to,
        back,
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get<'c>(db: impl PgExecutor<'c>, ticket: Uuid) -> sqlx::Result<Option<Assignment>> {
    sqlx::query_as!(
        Row,
        "SELECT ticket_id, human_id, category_id, priority, ticket_created_at, agent_id, open,
                assigned_at
         FROM assignments WHERE ticket_id = $1",
        ticket,
    )
    .fetch_optional(db)
    .await?
    .map(Assignment::try_from)
    .transpose()
}

/// The ticket a caller named, by UUID or human id.
pub async fn find<'c>(
    db: impl PgExecutor<'c>,
    ticket: &TicketRef,
) -> sqlx::Result<Option<Assignment>> {
    let (id, human) = match ticket {
        TicketRef::Id(id) => (Some(*id), None),
        TicketRef::Human(h) => (None, Some(h.as_str())),
    };
    sqlx::query_as!(
        Row,
        "SELECT ticket_id, human_id, category_id, priority, ticket_created_at, agent_id, open,
                assigned_at
         FROM assignments WHERE ticket_id = $1 OR human_id = $2",
        id,
        human,
    )
    .fetch_optional(db)
    .await?
    .map(Assignment::try_from)
    .transpose()
}

/// The head of the waiting queue, `limit` tickets: most urgent, then
/// oldest, without those a pending move is about to unassign.
pub async fn next_waiting(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Assignment>> {
    sqlx::query_as!(
        Row,
        "SELECT ticket_id, human_id, category_id, priority, ticket_created_at, agent_id, open,
                assigned_at
         FROM assignments s WHERE agent_id IS NULL AND open
           AND NOT EXISTS (SELECT 1 FROM moves m WHERE m.ticket_id = s.ticket_id
                                                   AND m.done_at IS NULL)
         ORDER BY priority DESC, ticket_created_at, ticket_id
         LIMIT $1",
        limit,
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(Assignment::try_from)
    .collect()
}

/// The first `limit` waiting tickets, in the order they will be served.
pub async fn waiting<'c>(db: impl PgExecutor<'c>, limit: i64) -> sqlx::Result<Vec<Assignment>> {
    sqlx::query_as!(
        Row,
        "SELECT ticket_id, human_id, category_id, priority, ticket_created_at, agent_id, open,
                assigned_at
         FROM assignments WHERE agent_id IS NULL AND open
         ORDER BY priority DESC, ticket_created_at, ticket_id
         LIMIT $1",
        limit,
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Assignment::try_from)
    .collect()
}

/// The open ticket most recently given to `agent` (rebalancing moves it:
/// the least worked on), among those no pending move is about to move.
pub async fn latest_of(conn: &mut PgConnection, agent: Uuid) -> sqlx::Result<Option<Assignment>> {
    sqlx::query_as!(
        Row,
        "SELECT ticket_id, human_id, category_id, priority, ticket_created_at, agent_id, open,
                assigned_at
         FROM assignments s WHERE agent_id = $1 AND open
           AND NOT EXISTS (SELECT 1 FROM moves m WHERE m.ticket_id = s.ticket_id
                                                   AND m.done_at IS NULL)
         ORDER BY assigned_at DESC NULLS LAST, ticket_id DESC
         LIMIT 1",
        agent,
    )
    .fetch_optional(conn)
    .await?
    .map(Assignment::try_from)
    .transpose()
}

/// Sets whether the ticket counts toward its agent's workload.
pub async fn set_open(
    conn: &mut PgConnection,
    ticket: Uuid,
    open: bool,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE assignments SET open = $2, updated_at = $3, revision = nextval('assignment_revision')
         WHERE ticket_id = $1",
        ticket,
        open,
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A revision mark: every later change has a higher revision. Taken under
/// the decision lock, so every change at or below it has committed.
pub async fn revision_mark(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT nextval('assignment_revision') AS "mark!""#)
        .fetch_one(conn)
        .await
}

/// The open tickets as the ticket service listed them (parallel arrays;
/// the nil UUID stands for "unassigned").
pub struct Listed<'a> {
    pub ids: &'a [Uuid],
    pub human_ids: &'a [String],
    pub categories: &'a [String],
    pub priorities: &'a [i16],
    pub created: &'a [DateTime<Utc>],
    pub assignees: &'a [Uuid],
}

/// Makes rows unchanged since `mark` match the listing: listed tickets are
/// open with the listed assignee (unlisted ones are [`unlisted`], confirmed
/// one by one before [`close_unchanged`]). Rows changed after `mark` are
/// newer than the listing, and rows with a pending move are ahead of it
/// until the move is answered: both are left alone. Returns how many rows
/// changed.
pub async fn match_listing(
    conn: &mut PgConnection,
    listed: &Listed<'_>,
    mark: i64,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let upserted = sqlx::query!(
        "INSERT INTO assignments (ticket_id, human_id, category_id, priority, ticket_created_at,
                                  agent_id, open, assigned_at, updated_at)
         SELECT t.id, t.human_id, t.category_id, t.priority, t.created_at,
                NULLIF(t.agent, '00000000-0000-0000-0000-000000000000'::uuid), true,
                CASE WHEN t.agent = '00000000-0000-0000-0000-000000000000'::uuid THEN NULL ELSE $7::timestamptz END,
                $7
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int2[], $5::timestamptz[], $6::uuid[])
              AS t(id, human_id, category_id, priority, created_at, agent)
         ON CONFLICT (ticket_id) DO UPDATE
             SET agent_id = EXCLUDED.agent_id, open = true, priority = EXCLUDED.priority,
                 category_id = EXCLUDED.category_id,
                 assigned_at = CASE WHEN assignments.agent_id IS NOT DISTINCT FROM EXCLUDED.agent_id
                                    THEN assignments.assigned_at ELSE EXCLUDED.assigned_at END,
                 updated_at = EXCLUDED.updated_at, revision = nextval('assignment_revision')
             WHERE assignments.revision <= $8
               AND NOT EXISTS (SELECT 1 FROM moves m WHERE m.ticket_id = assignments.ticket_id
                                                       AND m.done_at IS NULL)
               AND (assignments.agent_id IS DISTINCT FROM EXCLUDED.agent_id
                    OR NOT assignments.open
                    OR assignments.priority <> EXCLUDED.priority
                    OR assignments.category_id <> EXCLUDED.category_id)",
        listed.ids,
        listed.human_ids,
        listed.categories,
        listed.priorities,
        listed.created,
        listed.assignees,
        now,
        mark,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(upserted)
}

/// Notes that reconciliation `pass` listed `tickets` (see [`unlisted`]).
pub async fn note_listed(
    conn: &mut PgConnection,
    pass: Uuid,
    tickets: &[Uuid],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO reconcile_seen (pass, ticket_id)
         SELECT $1, id FROM UNNEST($2::uuid[]) AS t(id)
         ON CONFLICT DO NOTHING",
        pass,
        tickets,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Open rows unchanged since `mark` that `pass` did not list: the ticket
/// was resolved or closed, or the listing missed it while it ran (each is
/// confirmed with the ticket service before anything is closed). At most
/// `limit`.
pub async fn unlisted(
    conn: &mut PgConnection,
    pass: Uuid,
    mark: i64,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT s.ticket_id FROM assignments s
         WHERE s.open AND s.revision <= $2
           AND NOT EXISTS (SELECT 1 FROM reconcile_seen r
                           WHERE r.pass = $1 AND r.ticket_id = s.ticket_id)
         ORDER BY s.ticket_id
         LIMIT $3",
        pass,
        mark,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Forgets what `pass` listed, and what passes killed midway left over an
/// hour ago (no pass lasts that long).
pub async fn forget_pass(conn: &mut PgConnection, pass: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM reconcile_seen WHERE pass = $1 OR noted_at < now() - interval '1 hour'",
        pass
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks `tickets` not open, unless changed since `mark`. Returns how many.
pub async fn close_unchanged(
    conn: &mut PgConnection,
    tickets: &[Uuid],
    mark: i64,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE assignments SET open = false, updated_at = $3,
                                revision = nextval('assignment_revision')
         WHERE open AND revision <= $2 AND ticket_id = ANY ($1)",
        tickets,
        mark,
        now,
    )
    .execute(conn)
    .await?
    .rows_affected())
}
