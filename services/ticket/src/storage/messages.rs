//! The `ticket_messages` table.

use chrono::{DateTime, Utc};
use helpdesk_kit::page_token::Cursor;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::stored;
use crate::domain::{AccountId, Message, Text, ticket::AuthorRole};

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

pub async fn insert(conn: &mut PgConnection, m: &Message) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO ticket_messages (id, ticket_id, author_id, author_role, body, internal, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        m.id,
        m.ticket_id,
        m.author_id.as_uuid(),
        m.author_role.as_str(),
        m.body.as_str(),
        m.internal,
        m.created_at,
    )
    .execute(conn)
    .await?;
    Ok(())
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
