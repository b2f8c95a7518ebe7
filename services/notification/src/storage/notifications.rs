//! The `notifications` table: the in-app feed. One row per (event,
//! recipient); a fan-out is one statement whatever its size. `seq` orders
//! a recipient's feed and is the stream's cursor.
//!
//! Inserts take [`FEED_LOCK`] until commit, so feed rows commit in `seq`
//! order: a stream that has read up to `seq` N will never see a row below N
//! commit afterwards. Callers insert notifications at the end of their
//! transaction, so the lock is held only for the last statements and the
//! commit.
//!
//! Every change a stream should see (new rows, reads) sends a `pg_notify`
//! on [`CHANNEL`] inside its transaction, so listeners hear of it only once
//! it is committed (app::feed).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::deliveries::NewDelivery;

/// The `LISTEN` channel of feed changes; the payload names the recipients.
pub const CHANNEL: &str = "notification_feed";

/// The advisory lock that orders feed inserts (any constant unique to us).
const FEED_LOCK: i64 = 0x006e_6f74_6665_6564; // "notfeed"

/// Above this many recipients a change is announced as `*` (everyone
/// re-checks) instead of listing ids: NOTIFY payloads stop at 8,000 bytes.
const MAX_NAMED: usize = 200;

/// What every notification of one event shares.
#[derive(Clone, Debug)]
pub struct EventPart<'a> {
    pub event_id: Uuid,
    pub ticket_id: Uuid,
    pub human_id: &'a str,
    pub link: &'a str,
    pub params: &'a serde_json::Value,
    pub create_time: DateTime<Utc>,
}

/// One recipient's notification of the event.
#[derive(Clone, Debug)]
pub struct NewNotification {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub kind: &'static str,
    pub title: String,
    pub body: String,
    /// The channels the recipient's preferences turn off
    /// ([`crate::domain::Channel::bit`]s).
    pub declined: i16,
}

/// A stored notification.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct FeedItem {
    pub seq: i64,
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub kind: String,
    pub ticket_id: Uuid,
    pub human_id: String,
    pub title: String,
    pub body: String,
    pub link: String,
    pub create_time: DateTime<Utc>,
    pub read_time: Option<DateTime<Utc>>,
}

/// Stores the event's notifications and their deliveries in one statement,
/// unless the event already has notifications (a redelivery after its
/// processed-events record was pruned): all or nothing. Returns how many
/// deliveries are queued, or `None` when nothing was stored.
///
/// Under the feed lock the transaction then only commits. A plain insert
/// guarded by one index probe rather than `ON CONFLICT`: per-row
/// speculative insertion made a 1,000-recipient fan-out a third slower.
pub async fn store(
    conn: &mut PgConnection,
    event: &EventPart<'_>,
    items: &[NewNotification],
    deliveries: &[NewDelivery],
) -> sqlx::Result<Option<u64>> {
    let ids: Vec<Uuid> = items.iter().map(|n| n.id).collect();
    let recipients: Vec<Uuid> = items.iter().map(|n| n.recipient_id).collect();
    let kinds: Vec<&str> = items.iter().map(|n| n.kind).collect();
    let titles: Vec<&str> = items.iter().map(|n| n.title.as_str()).collect();
    let bodies: Vec<&str> = items.iter().map(|n| n.body.as_str()).collect();
    let declined: Vec<i16> = items.iter().map(|n| n.declined).collect();
    let delivery_ids: Vec<Uuid> = deliveries.iter().map(|_| Uuid::now_v7()).collect();
    let of: Vec<Uuid> = deliveries.iter().map(|d| d.notification_id).collect();
    let channels: Vec<&str> = deliveries.iter().map(|d| d.channel).collect();
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", FEED_LOCK)
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query!(
        r#"WITH n AS (
               INSERT INTO notifications
                   (id, event_id, recipient_id, kind, ticket_id, human_id, title, body, link,
                    params, create_time, declined)
               SELECT n.id, $6, n.recipient, n.kind, $7, $8, n.title, n.body, $9, $10, $11,
                      n.declined
               FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                           $12::smallint[])
                    WITH ORDINALITY AS n(id, recipient, kind, title, body, declined, ord)
               WHERE NOT EXISTS (SELECT 1 FROM notifications WHERE event_id = $6)
               ORDER BY n.ord
               RETURNING id
           ), d AS (
               INSERT INTO deliveries
                   (id, notification_id, channel, state, create_time, next_attempt_at)
               SELECT d.id, d.notification, d.channel, 'queued', $11, $11
               FROM UNNEST($13::uuid[], $14::uuid[], $15::text[]) AS d(id, notification, channel)
               WHERE d.notification IN (SELECT id FROM n)
               RETURNING 1
           )
           SELECT (SELECT count(*) FROM n) AS "stored!",
                  (SELECT count(*) FROM d) AS "queued!",
                  CASE WHEN EXISTS (SELECT 1 FROM n) THEN pg_notify($16, $17) END AS announced"#,
        &ids,
        &recipients,
        &kinds as &[&str],
        &titles as &[&str],
        &bodies as &[&str],
        event.event_id,
        event.ticket_id,
        event.human_id,
        event.link,
        event.params,
        event.create_time,
        &declined,
        &delivery_ids,
        &of,
        &channels as &[&str],
        CHANNEL,
        announcement(&recipients),
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.stored > 0).then_some(row.queued as u64))
}

/// The NOTIFY payload naming these recipients.
fn announcement(recipients: &[Uuid]) -> String {
    if recipients.len() > MAX_NAMED {
        "*".to_owned()
    } else {
        recipients
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The prefix of a payload saying notifications were read (not added):
/// streams then count the unread ones again instead of adding new ones.
pub const READ_PREFIX: &str = "read:";

/// Tells listeners that `recipient` read notifications (at commit).
async fn announce_read(conn: &mut PgConnection, recipient: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_notify($1, $2)",
        CHANNEL,
        format!("{READ_PREFIX}{recipient}")
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Filters of a feed listing.
#[derive(Clone, Copy, Debug, Default)]
pub struct FeedFilter {
    pub unread_only: bool,
    pub ticket_id: Option<Uuid>,
}

/// A page of the recipient's feed, newest first, after the notification
/// `after` (the last one of the previous page).
pub async fn page<'c>(
    db: impl PgExecutor<'c>,
    recipient: Uuid,
    filter: FeedFilter,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<FeedItem>> {
    sqlx::query_as!(
        FeedItem,
        "SELECT seq, id, recipient_id, kind, ticket_id, human_id, title, body, link,
                create_time, read_time
         FROM notifications
         WHERE recipient_id = $1
           AND seq < coalesce((SELECT seq FROM notifications WHERE id = $2), 9223372036854775807)
           AND (NOT $3 OR read_time IS NULL)
           AND ($4::uuid IS NULL OR ticket_id = $4)
         ORDER BY seq DESC
         LIMIT $5",
        recipient,
        after,
        filter.unread_only,
        filter.ticket_id,
        limit,
    )
    .fetch_all(db)
    .await
}

/// The recipient's notifications after `seq`, oldest first (stream replay).
pub async fn after<'c>(
    db: impl PgExecutor<'c>,
    recipient: Uuid,
    seq: i64,
    limit: i64,
) -> sqlx::Result<Vec<FeedItem>> {
    sqlx::query_as!(
        FeedItem,
        "SELECT seq, id, recipient_id, kind, ticket_id, human_id, title, body, link,
                create_time, read_time
         FROM notifications
         WHERE recipient_id = $1 AND seq > $2
         ORDER BY seq
         LIMIT $3",
        recipient,
        seq,
        limit,
    )
    .fetch_all(db)
    .await
}

/// The recipient's unread count and newest `seq` (0 for an empty feed),
/// from one snapshot: a stream's badge covers exactly the rows up to it.
pub async fn badge<'c>(db: impl PgExecutor<'c>, recipient: Uuid) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE read_time IS NULL) AS "unread!",
                  coalesce(max(seq), 0) AS "newest!"
           FROM notifications WHERE recipient_id = $1"#,
        recipient
    )
    .fetch_one(db)
    .await?;
    Ok((row.unread, row.newest))
}

pub async fn unread_count<'c>(db: impl PgExecutor<'c>, recipient: Uuid) -> sqlx::Result<i64> {
    Ok(sqlx::query_scalar!(
        "SELECT count(*) FROM notifications WHERE recipient_id = $1 AND read_time IS NULL",
        recipient
    )
    .fetch_one(db)
    .await?
    .unwrap_or(0))
}

/// Which of the recipient's notifications to mark read.
#[derive(Clone, Debug)]
pub enum Selection {
    Ids(Vec<Uuid>),
    Ticket(Uuid),
    All,
}

/// Marks the selection read (already-read rows keep their time); returns
/// how many changed. Ids of other recipients' notifications match nothing.
pub async fn mark_read(
    conn: &mut PgConnection,
    recipient: Uuid,
    selection: &Selection,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let (ids, ticket, all): (&[Uuid], Option<Uuid>, bool) = match selection {
        Selection::Ids(ids) => (ids, None, false),
        Selection::Ticket(ticket) => (&[], Some(*ticket), false),
        Selection::All => (&[], None, true),
    };
    let changed = sqlx::query!(
        "UPDATE notifications SET read_time = $2
         WHERE recipient_id = $1 AND read_time IS NULL
           AND ($5 OR id = ANY($3) OR ticket_id = $4)",
        recipient,
        now,
        ids,
        ticket,
        all,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed > 0 {
        announce_read(conn, recipient).await?;
    }
    Ok(changed)
}

/// The ticket id behind a `TKT-…` human id, if any notification names it.
pub async fn ticket_by_human_id<'c>(
    db: impl PgExecutor<'c>,
    human_id: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT ticket_id FROM notifications WHERE human_id = $1 LIMIT 1",
        human_id
    )
    .fetch_optional(db)
    .await
}
