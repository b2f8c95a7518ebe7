//! The `ticket_messages` table.

use chrono::{DateTime, Utc};
use helpdesk_events::outbox::Columns;
use helpdesk_kit::{idempotency::Finished, page_token::Cursor};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::stored;
use crate::domain::{AccountId, Message, Text, Ticket, ticket::AuthorRole};

struct Row {
    id: Uuid,
    ticket_id: Uuid,
    author_id: Uuid,
    author_role: String,
    body: String,
    internal: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for Message {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, Self::Error> {
        Ok(Message {
            author_role: stored("author role", &r.author_role, |s| {
                AuthorRole::parse(s).ok_or(())
            })?,
            body: stored("message body", &r.body, Text::parse)?,
            id: r.id,
            ticket_id: r.ticket_id,
            author_id: r.author_id.into(),
            internal: r.internal,
            created_at: r.created_at,
        })
    }
}

/// What [`post`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    Written,
    /// Nothing written: the ticket is no longer at the version the message
    /// was decided on (another write won); re-read and decide again.
    Stale,
    /// Nothing written: the request's key was taken (a replay).
    KeyTaken,
}

/// What [`post`] writes.
#[derive(Clone, Copy)]
pub struct Write<'a> {
    pub message: &'a Message,
    /// The ticket's version when the message was decided on.
    pub read_version: i64,
    /// The ticket's new state, when the message changed it.
    pub ticket: Option<&'a Ticket>,
    pub events: &'a Columns<'a>,
    pub key: &'a Finished<'a>,
}

/// Writes a message to a ticket read at `read_version`, the ticket's new
/// state (`ticket`, when the message changed it; its `version` already the
/// next one), the outbox rows and (with a key) the finished idempotency
/// record, in one statement, only if the ticket is still at `read_version`.
///
/// No lock is needed beforehand: the version check is the update's own
/// condition (re-checked on the newest row when a concurrent write commits
/// first), and everything else is written only from the rows it returns,
/// so after the ticket's row is locked (by the update, or for an internal
/// note, which changes nothing, by `FOR NO KEY UPDATE`): a ticket's outbox
/// rows are still drawn in the order of its writes (docs/events.md).
/// A taken key aborts the statement (a unique violation) rather than being
/// skipped, so a replay never leaves the ticket updated without its message.
pub async fn post<'c>(db: impl PgExecutor<'c>, w: &Write<'_>) -> sqlx::Result<Posted> {
    let Write {
        message: m,
        read_version,
        ticket,
        events,
        key,
    } = *w;
    let written = sqlx::query_scalar!(
        r#"WITH ticket AS (
             UPDATE tickets SET status = $9, first_response_at = $10, resolved_at = $11,
                                closed_at = $12, updated_at = $13, version = $14
             WHERE $8 AND id = $2 AND version = $27
             RETURNING id
           ), noted AS (
             SELECT id FROM tickets WHERE NOT $8 AND id = $2 AND version = $27
             FOR NO KEY UPDATE
           ), unchanged AS (
             SELECT id FROM ticket UNION ALL SELECT id FROM noted
           ), claim AS (
             INSERT INTO idempotency_keys (caller, method, request_id, request_hash, response)
             SELECT $15, $16, $17, $18, $19 FROM unchanged WHERE $17::uuid IS NOT NULL
           ), message AS (
             INSERT INTO ticket_messages (id, ticket_id, author_id, author_role, body, internal,
                                          created_at)
             SELECT $1, $2, $3, $4, $5, $6, $7 FROM unchanged
           ), events AS (
             INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload,
                                 traceparent, tracestate)
             SELECT e.event_id, e.aggregate_id, e.routing_key, e.message_type, e.payload, $25, $26
             FROM unnest($20::uuid[], $21::uuid[], $22::text[], $23::text[], $24::bytea[])
                  WITH ORDINALITY AS e(event_id, aggregate_id, routing_key, message_type, payload, n)
             WHERE EXISTS (SELECT FROM unchanged)
             ORDER BY e.n
           )
           SELECT EXISTS (SELECT FROM unchanged) AS "written!""#,
        m.id,
        m.ticket_id,
        m.author_id.as_uuid(),
        m.author_role.as_str(),
        m.body.as_str(),
        m.internal,
        m.created_at,
        ticket.is_some(),
        ticket.map(|t| t.status.as_str()),
        ticket.and_then(|t| t.first_response_at),
        ticket.and_then(|t| t.resolved_at),
        ticket.and_then(|t| t.closed_at),
        ticket.map(|t| t.updated_at),
        ticket.map(|t| t.version),
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
        read_version,
    )
    .fetch_one(db)
    .await;
    match written {
        Ok(true) => Ok(Posted::Written),
        Ok(false) => Ok(Posted::Stale),
        Err(sqlx::Error::Database(e))
            if e.is_unique_violation() && e.constraint() == Some("idempotency_keys_pkey") =>
        {
            Ok(Posted::KeyTaken)
        }
        Err(e) => Err(e),
    }
}

/// One message of one ticket; internal notes only when `include_internal`.
pub async fn get<'c>(
    db: impl PgExecutor<'c>,
    ticket_id: Uuid,
    id: Uuid,
    include_internal: bool,
) -> sqlx::Result<Option<Message>> {
    sqlx::query_as!(
        Row,
        "SELECT id, ticket_id, author_id, author_role, body, internal, created_at
         FROM ticket_messages
         WHERE ticket_id = $1 AND id = $2 AND (NOT internal OR $3)",
        ticket_id,
        id,
        include_internal,
    )
    .fetch_optional(db)
    .await?
    .map(Message::try_from)
    .transpose()
}

/// One message by its id alone, if its ticket is `owner`'s (any ticket when
/// `None`); internal notes only when `include_internal`.
pub async fn find<'c>(
    db: impl PgExecutor<'c>,
    id: Uuid,
    owner: Option<AccountId>,
    include_internal: bool,
) -> sqlx::Result<Option<Message>> {
    sqlx::query_as!(
        Row,
        "SELECT m.id, m.ticket_id, m.author_id, m.author_role, m.body, m.internal, m.created_at
         FROM ticket_messages m
         JOIN tickets t ON t.id = m.ticket_id
         WHERE m.id = $1 AND (NOT m.internal OR $2)
           AND ($3::uuid IS NULL OR t.user_id = $3)",
        id,
        include_internal,
        owner.map(|o| o.as_uuid()),
    )
    .fetch_optional(db)
    .await?
    .map(Message::try_from)
    .transpose()
}

/// One page of a ticket's messages, oldest first, after `cursor`.
pub async fn list<'c>(
    db: impl PgExecutor<'c>,
    ticket_id: Uuid,
    include_internal: bool,
    cursor: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Message>> {
    sqlx::query_as!(
        Row,
        "SELECT id, ticket_id, author_id, author_role, body, internal, created_at
         FROM ticket_messages
         WHERE ticket_id = $1 AND (NOT internal OR $2)
           AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
         ORDER BY created_at, id
         LIMIT $5",
        ticket_id,
        include_internal,
        cursor.map(|c| c.at),
        cursor.map(|c| c.id),
        limit,
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Message::try_from)
    .collect()
}
