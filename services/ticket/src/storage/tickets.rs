//! The `tickets` table.

use chrono::{DateTime, Utc};
use helpdesk_events::outbox::Columns;
use helpdesk_kit::{idempotency::Finished, page_token::Cursor};
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use super::stored;
use crate::domain::{
    AccountId, CategoryId, ListFilter, Priority, Rating, Status, Subject, Text, Ticket, TicketKey,
    TicketNumber,
};

/// A row as stored; statuses and priorities are text for readable SQL.
#[derive(sqlx::FromRow)]
pub(super) struct Row {
    pub(super) id: Uuid,
    pub(super) human_id: String,
    pub(super) user_id: Uuid,
    pub(super) ride_id: Option<Uuid>,
    pub(super) category_id: String,
    pub(super) subject: String,
    pub(super) description: String,
    pub(super) priority: String,
    pub(super) status: String,
    pub(super) assignee_id: Option<Uuid>,
    pub(super) rating: Option<i16>,
    pub(super) rating_feedback: Option<String>,
    pub(super) first_response_at: Option<DateTime<Utc>>,
    pub(super) resolved_at: Option<DateTime<Utc>>,
    pub(super) closed_at: Option<DateTime<Utc>>,
    pub(super) rated_at: Option<DateTime<Utc>>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) version: i64,
}

impl TryFrom<Row> for Ticket {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, Self::Error> {
        Ok(Ticket {
            priority: stored("priority", &r.priority, |s| Priority::parse(s).ok_or(()))?,
            status: stored("status", &r.status, |s| Status::parse(s).ok_or(()))?,
            human_id: stored("human id", &r.human_id, |s| {
                TicketNumber::parse(s).ok_or(())
            })?,
            category_id: stored("category id", &r.category_id, CategoryId::parse)?,
            subject: stored("subject", &r.subject, Subject::parse)?,
            description: stored("description", &r.description, Text::parse)?,
            rating: r
                .rating
                .map(|n| stored("rating", &n.to_string(), |_| Rating::parse(n.into())))
                .transpose()?,
            rating_feedback: r
                .rating_feedback
                .map(|f| stored("rating feedback", &f, Text::parse))
                .transpose()?,
            id: r.id,
            user_id: r.user_id.into(),
            ride_id: r.ride_id,
            assignee_id: r.assignee_id.map(AccountId::from),
            first_response_at: r.first_response_at,
            resolved_at: r.resolved_at,
            closed_at: r.closed_at,
            rated_at: r.rated_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

/// A rating as stored (`smallint`).
fn stars(r: Rating) -> i16 {
    i16::from(r.stars())
}

/// The `(id, human_id)` query parameters of a key: exactly one is set.
fn key_parts(key: &TicketKey) -> (Option<Uuid>, Option<&str>) {
    match key {
        TicketKey::Id(id) => (Some(*id), None),
        TicketKey::Number(n) => (None, Some(n.as_str())),
    }
}

/// `n` fresh ticket numbers from the sequence, in the order it gave them
/// (`numbers::Numbers` hands them out).
pub async fn next_numbers<'c>(db: impl PgExecutor<'c>, n: i32) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar!(
        r#"SELECT nextval('ticket_number_seq') AS "n!" FROM generate_series(1, $1::int4)"#,
        n
    )
    .fetch_all(db)
    .await
}

/// What [`create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The ticket, its events and its idempotency record are written.
    Yes,
    /// Nothing written: the category is missing or inactive.
    NoCategory,
    /// Nothing written: the request's key is already there (a replay).
    KeyTaken,
}

/// Writes a new ticket, its outbox rows and (with a key) its finished
/// idempotency record in one statement, hence one round trip and one
/// implicit transaction: all of it, or nothing when the category is not
/// active or the key was taken. A concurrent request with the same key waits
/// on the key's row and then finds it taken.
pub async fn create<'c>(
    db: impl PgExecutor<'c>,
    t: &Ticket,
    number: i64,
    events: &Columns<'_>,
    key: &Finished<'_>,
) -> sqlx::Result<Created> {
    let row = sqlx::query!(
        r#"WITH category AS (
             SELECT id FROM categories WHERE id = $6 AND active
           ), claim AS (
             INSERT INTO idempotency_keys (caller, method, request_id, request_hash, response)
             SELECT $13, $14, $15, $16, $17 FROM category WHERE $15::uuid IS NOT NULL
             ON CONFLICT DO NOTHING
             RETURNING true
           ), ticket AS (
             INSERT INTO tickets (id, number, human_id, user_id, ride_id, category_id, subject,
                                  description, priority, status, created_at, updated_at, version)
             SELECT $1, $2, $3, $4, $5, category.id, $7, $8, $9, $10, $11, $11, $12
             FROM category WHERE $15::uuid IS NULL OR EXISTS (SELECT FROM claim)
             RETURNING id
           ), events AS (
             INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload,
                                 traceparent, tracestate)
             SELECT e.event_id, e.aggregate_id, e.routing_key, e.message_type, e.payload, $23, $24
             FROM unnest($18::uuid[], $19::uuid[], $20::text[], $21::text[], $22::bytea[])
                  WITH ORDINALITY AS e(event_id, aggregate_id, routing_key, message_type, payload, n)
             WHERE EXISTS (SELECT FROM ticket)
             ORDER BY e.n
           )
           SELECT EXISTS (SELECT FROM category) AS "category!",
                  EXISTS (SELECT FROM ticket) AS "created!""#,
        t.id,
        number,
        t.human_id.as_str(),
        t.user_id.as_uuid(),
        t.ride_id,
        t.category_id.as_str(),
        t.subject.as_str(),
        t.description.as_str(),
        t.priority.as_str(),
        t.status.as_str(),
        t.created_at,
        t.version,
        key.caller,
        key.method,
        key.request_id,
        key.request_hash,
        key.response,
        &events.event_ids,
        &events.aggregate_ids,
        &events.routing_keys as &[&str],
        &events.message_types as &[&str],
        &events.payloads as &[&[u8]],
        events.traceparent,
        events.tracestate,
    )
    .fetch_one(db)
    .await?;
    Ok(match (row.category, row.created) {
        (_, true) => Created::Yes,
        (false, false) => Created::NoCategory,
        (true, false) => Created::KeyTaken,
    })
}

/// Finds a ticket by id or human id.
pub async fn find<'c>(db: impl PgExecutor<'c>, key: &TicketKey) -> sqlx::Result<Option<Ticket>> {
    let (id, human_id) = key_parts(key);
    sqlx::query_as!(
        Row,
        "SELECT id, human_id, user_id, ride_id, category_id, subject, description, priority,
                status, assignee_id, rating, rating_feedback, first_response_at, resolved_at,
                closed_at, rated_at, created_at, updated_at, version
         FROM tickets
         WHERE ($1::uuid IS NOT NULL AND id = $1) OR ($2::text IS NOT NULL AND human_id = $2)",
        id,
        human_id,
    )
    .fetch_optional(db)
    .await?
    .map(Ticket::try_from)
    .transpose()
}

/// Reads a ticket and locks its row until the transaction ends, so
/// read-check-write sequences on one ticket serialize.
pub async fn lock(conn: &mut PgConnection, key: &TicketKey) -> sqlx::Result<Option<Ticket>> {
    let (id, human_id) = key_parts(key);
    sqlx::query_as!(
        Row,
        "SELECT id, human_id, user_id, ride_id, category_id, subject, description, priority,
                status, assignee_id, rating, rating_feedback, first_response_at, resolved_at,
                closed_at, rated_at, created_at, updated_at, version
         FROM tickets
         WHERE ($1::uuid IS NOT NULL AND id = $1) OR ($2::text IS NOT NULL AND human_id = $2)
         FOR UPDATE",
        id,
        human_id,
    )
    .fetch_optional(conn)
    .await?
    .map(Ticket::try_from)
    .transpose()
}

/// Reads the tickets `keys` name and locks their rows until the transaction
/// ends, in id order (so two batches never wait for each other in a
/// cycle). Keys naming no ticket are simply absent from the result.
pub async fn lock_all(conn: &mut PgConnection, keys: &[&TicketKey]) -> sqlx::Result<Vec<Ticket>> {
    let (mut ids, mut human_ids) = (Vec::new(), Vec::new());
    for key in keys {
        match key_parts(key) {
            (Some(id), _) => ids.push(id),
            (_, Some(human_id)) => human_ids.push(human_id),
            (None, None) => {}
        }
    }
    sqlx::query_as!(
        Row,
        "SELECT id, human_id, user_id, ride_id, category_id, subject, description, priority,
                status, assignee_id, rating, rating_feedback, first_response_at, resolved_at,
                closed_at, rated_at, created_at, updated_at, version
         FROM tickets
         WHERE id = ANY($1) OR human_id = ANY($2)
         ORDER BY id
         FOR UPDATE",
        &ids,
        &human_ids as &[&str],
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(Ticket::try_from)
    .collect()
}

/// Writes back the assignee, `updated_at` and version of locked tickets (the
/// only fields an assignment changes; the versions already bumped), one
/// statement for all of them.
pub async fn save_assignments(conn: &mut PgConnection, changed: &[&Ticket]) -> sqlx::Result<()> {
    if changed.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = changed.iter().map(|t| t.id).collect();
    let assignees: Vec<Option<Uuid>> = changed
        .iter()
        .map(|t| t.assignee_id.map(AccountId::as_uuid))
        .collect();
    let updated: Vec<DateTime<Utc>> = changed.iter().map(|t| t.updated_at).collect();
    let versions: Vec<i64> = changed.iter().map(|t| t.version).collect();
    sqlx::query!(
        "UPDATE tickets t SET assignee_id = c.assignee_id, updated_at = c.updated_at,
                              version = c.version
         FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::int8[])
              AS c(id, assignee_id, updated_at, version)
         WHERE t.id = c.id",
        &ids,
        &assignees as &[Option<Uuid>],
        &updated,
        &versions,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes back a locked ticket's mutable fields and bumps its version.
/// Returns `false` when the category is missing or inactive.
pub async fn save(conn: &mut PgConnection, t: &mut Ticket) -> sqlx::Result<bool> {
    let version = sqlx::query_scalar!(
        "UPDATE tickets t SET
             category_id = c.id, priority = $3, status = $4, assignee_id = $5, rating = $6,
             rating_feedback = $7, first_response_at = $8, resolved_at = $9, closed_at = $10,
             rated_at = $11, updated_at = $12, version = t.version + 1
         FROM categories c
         WHERE t.id = $1 AND c.id = $2 AND (c.active OR c.id = t.category_id)
         RETURNING t.version",
        t.id,
        t.category_id.as_str(),
        t.priority.as_str(),
        t.status.as_str(),
        t.assignee_id.map(AccountId::as_uuid),
        t.rating.map(stars),
        t.rating_feedback.as_ref().map(Text::as_str),
        t.first_response_at,
        t.resolved_at,
        t.closed_at,
        t.rated_at,
        t.updated_at,
    )
    .fetch_optional(conn)
    .await?;
    match version {
        Some(v) => {
            t.version = v;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// One page of tickets, newest first, after `cursor`, in a statement
/// written for the filters present: each appears as an equality or range
/// that the index of that filter serves, and nothing else does. So its plan
/// never depends on the values bound, and on a pool that keeps generic
/// plans (`kit::db::connect_lazy_generic`) each filter combination is
/// planned once per connection; planning the one statement with optional
/// filters (`$n IS NULL OR …`) on every call cost more than running it.
///
/// Statuses and the priority come from closed sets and are written as
/// literals, so the planner can prove once that a set of unresolved
/// statuses is served by the partial `tickets_unresolved`; one status is
/// compared with `=` (PostgreSQL 15 keeps `tickets_by_status`'s order only
/// under equality). Everything else is bound.
///
/// The page starts below one key, always an index condition: the cursor,
/// or on the first page a key past every ticket, lowered to the start of
/// `created_before` when that is earlier (`created_at < B` is
/// `(created_at, id) < (B, nil)`). Kept as a separate condition, the bound
/// could not be compared with the keyset's when the scan is positioned, and
/// a range in June was found by walking down from today (68 ms, not 0.3).
pub async fn list<'c>(
    db: impl PgExecutor<'c>,
    f: &ListFilter,
    cursor: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Ticket>> {
    let after = cursor.map_or((DateTime::<Utc>::MAX_UTC, Uuid::max()), |c| (c.at, c.id));
    let (at, id) = match f.created_before {
        Some(before) => after.min((before, Uuid::nil())),
        None => after,
    };
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT id, human_id, user_id, ride_id, category_id, subject, description, priority,
                status, assignee_id, rating, rating_feedback, first_response_at, resolved_at,
                closed_at, rated_at, created_at, updated_at, version
         FROM tickets WHERE (created_at, id) < (",
    );
    q.push_bind(at).push(", ").push_bind(id).push(")");
    if let Some(user) = f.user_id {
        q.push(" AND user_id = ").push_bind(user.as_uuid());
    }
    match f.statuses.as_slice() {
        [] => {}
        [one] => {
            q.push(format_args!(" AND status = '{}'", one.as_str()));
        }
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            q.push(format_args!(" AND status IN ({})", names.join(", ")));
        }
    }
    if let Some(priority) = f.priority {
        q.push(format_args!(" AND priority = '{}'", priority.as_str()));
    }
    if let Some(category) = &f.category_id {
        q.push(" AND category_id = ").push_bind(category.as_str());
    }
    if let Some(assignee) = f.assignee_id {
        q.push(" AND assignee_id = ").push_bind(assignee.as_uuid());
    }
    if let Some(ride) = f.ride_id {
        q.push(" AND ride_id = ").push_bind(ride);
    }
    if let Some(after) = f.created_after {
        q.push(" AND created_at >= ").push_bind(after);
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    q.build_query_as::<Row>()
        .fetch_all(db)
        .await?
        .into_iter()
        .map(Ticket::try_from)
        .collect()
}
