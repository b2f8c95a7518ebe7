//! The `ticket_attachments` table: attachment metadata (the bytes are in
//! object storage, `objects`).

use chrono::{DateTime, Utc};
use helpdesk_kit::page_token::Cursor;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::stored;
use crate::domain::{
    AccountId,
    attachment::{Attachment, FileName},
};

struct Row {
    id: Uuid,
    ticket_id: Uuid,
    message_id: Option<Uuid>,
    uploader_id: Uuid,
    file_name: String,
    content_type: String,
    size_bytes: i64,
    sha256: Vec<u8>,
    object_key: String,
    internal: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for Attachment {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, Self::Error> {
        Ok(Attachment {
            file_name: stored("file name", &r.file_name, FileName::parse)?,
            sha256: r.sha256.as_slice().try_into().map_err(|_| {
                sqlx::Error::Decode(format!("stored sha256 of {} is not 32 bytes", r.id).into())
            })?,
            id: r.id,
            ticket_id: r.ticket_id,
            message_id: r.message_id,
            uploader_id: r.uploader_id.into(),
            content_type: r.content_type,
            size_bytes: r.size_bytes,
            object_key: r.object_key,
            internal: r.internal,
            created_at: r.created_at,
        })
    }
}

pub async fn insert(conn: &mut PgConnection, a: &Attachment) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO ticket_attachments
           (id, ticket_id, message_id, uploader_id, file_name, content_type, size_bytes,
            sha256, object_key, internal, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        a.id,
        a.ticket_id,
        a.message_id,
        a.uploader_id.as_uuid(),
        a.file_name.as_str(),
        a.content_type,
        a.size_bytes,
        &a.sha256[..],
        a.object_key,
        a.internal,
        a.created_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// How many attachments a ticket has (the per-ticket limit counts them all,
/// staff-only ones included).
pub async fn count<'c>(db: impl PgExecutor<'c>, ticket_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM ticket_attachments WHERE ticket_id = $1"#,
        ticket_id
    )
    .fetch_one(db)
    .await
}

/// One attachment of one ticket; staff-only ones only when `include_internal`.
pub async fn get<'c>(
    db: impl PgExecutor<'c>,
    ticket_id: Uuid,
    id: Uuid,
    include_internal: bool,
) -> sqlx::Result<Option<Attachment>> {
    sqlx::query_as!(
        Row,
        "SELECT id, ticket_id, message_id, uploader_id, file_name, content_type, size_bytes,
                sha256, object_key, internal, created_at
         FROM ticket_attachments
         WHERE ticket_id = $1 AND id = $2 AND (NOT internal OR $3)",
        ticket_id,
        id,
        include_internal,
    )
    .fetch_optional(db)
    .await?
    .map(Attachment::try_from)
    .transpose()
}

/// One page of a ticket's attachments, oldest first, after `cursor`.
pub async fn list<'c>(
    db: impl PgExecutor<'c>,
    ticket_id: Uuid,
    include_internal: bool,
    cursor: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Attachment>> {
    sqlx::query_as!(
        Row,
        "SELECT id, ticket_id, message_id, uploader_id, file_name, content_type, size_bytes,
                sha256, object_key, internal, created_at
         FROM ticket_attachments
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
    .map(Attachment::try_from)
    .collect()
}

/// Links `ids` to a new message in one statement: only attachments of
/// `ticket_id` uploaded by `uploader`, on no message yet, and staff-only
/// ones only to an internal note. Each linked one becomes staff-only when
/// the message is. Returns those linked, in `ids` order; the caller
/// compares with `ids` to name the rest.
pub async fn link(
    conn: &mut PgConnection,
    ticket_id: Uuid,
    message_id: Uuid,
    uploader: AccountId,
    internal_message: bool,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Attachment>> {
    let mut linked: Vec<Attachment> = sqlx::query_as!(
        Row,
        "UPDATE ticket_attachments
         SET message_id = $2, internal = internal OR $4
         WHERE id = ANY($5) AND ticket_id = $1 AND uploader_id = $3
           AND message_id IS NULL AND (NOT internal OR $4)
         RETURNING id, ticket_id, message_id, uploader_id, file_name, content_type, size_bytes,
                   sha256, object_key, internal, created_at",
        ticket_id,
        message_id,
        uploader.as_uuid(),
        internal_message,
        ids,
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(Attachment::try_from)
    .collect::<sqlx::Result<_>>()?;
    linked.sort_by_key(|a| ids.iter().position(|id| *id == a.id));
    Ok(linked)
}

/// Which of `ids` have a row (the sweeper keeps their objects).
pub async fn existing<'c>(db: impl PgExecutor<'c>, ids: &[Uuid]) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM ticket_attachments WHERE id = ANY($1)", ids)
        .fetch_all(db)
        .await
}
