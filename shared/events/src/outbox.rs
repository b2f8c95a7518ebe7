//! The producer half of the transactional outbox: [`enqueue`] writes an event
//! row in the same transaction as the change it describes, so there is never
//! a change without its event nor an event without its change. The relay
//! publishes the rows to RabbitMQ after commit (docs/events.md); a
//! [`Waker`] tells it to look now instead of at its next poll.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use helpdesk_proto::Event;
use sqlx::{Connection, Executor, PgConnection, PgExecutor, PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::amqp::Backoff;

/// The LISTEN/NOTIFY channel relays wait on.
pub const CHANNEL: &str = "outbox";

/// Wakes relays once events are committed.
///
/// Not a trigger: NOTIFY inside the writing transaction serializes every
/// commit on a database-wide lock (see migration 0002). Instead, writers
/// call [`Waker::commit`]: the relay in this process wakes at once, and
/// [`Waker::forward`] sends one NOTIFY for any number of wake-ups from its own
/// session (asynchronous commit), for a relay leading in another replica;
/// while this process's relay leads, it sends nothing.
#[derive(Clone, Debug, Default)]
pub struct Waker {
    local: Arc<Notify>,
    remote: Arc<Notify>,
    /// Set while this process's relay leads: then nobody else needs a NOTIFY.
    leading: Arc<AtomicBool>,
}

impl Waker {
    /// A waker no relay listens to yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Signals that events were committed.
    pub fn wake(&self) {
        self.local.notify_one();
        self.remote.notify_one();
    }

    /// Commits a transaction that enqueued events, then wakes the relays.
    pub async fn commit(&self, tx: Transaction<'_, Postgres>) -> sqlx::Result<()> {
        tx.commit().await?;
        self.wake();
        Ok(())
    }

    /// Completes when [`Waker::wake`] was called since the last time
    /// (a wake-up while nobody waits is kept, not lost).
    pub async fn woken(&self) {
        self.local.notified().await;
    }

    /// The relay of this process took (`true`) or lost (`false`) the lead.
    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::SeqCst);
    }

    /// Forwards wake-ups to other replicas as NOTIFY until `shutdown`.
    pub async fn forward(self, pool: PgPool, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            let result: sqlx::Result<()> = async {
                let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
                // A NOTIFY-only transaction need not wait for the WAL flush.
                conn.execute("SET synchronous_commit = off").await?;
                backoff.reset();
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = self.remote.notified() => {}
                    }
                    if self.leading.load(Ordering::SeqCst) {
                        continue;
                    }
                    sqlx::query("SELECT pg_notify($1, '')")
                        .bind(CHANNEL)
                        .execute(&mut conn)
                        .await?;
                }
            }
            .await;
            if let Err(error) = result {
                let delay = backoff.next_delay().min(Duration::from_secs(5));
                tracing::warn!(%error, "outbox wake-up forwarding interrupted");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Inserts `event` for `aggregate_id` (the ticket) into the outbox.
pub async fn enqueue<E: Event>(
    conn: &mut PgConnection,
    event_id: Uuid,
    aggregate_id: Uuid,
    event: &E,
) -> sqlx::Result<()> {
    let row = [Outgoing::new(event_id, aggregate_id, event)];
    insert_rows(conn, &Columns::of(&row)).await
}

/// An event ready for the outbox, for [`enqueue_all`] and [`Columns`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    event_id: Uuid,
    aggregate_id: Uuid,
    routing_key: &'static str,
    message_type: String,
    payload: Vec<u8>,
}

impl Outgoing {
    /// `event` about `aggregate_id` (the ticket), encoded.
    pub fn new<E: Event>(event_id: Uuid, aggregate_id: Uuid, event: &E) -> Self {
        Self {
            event_id,
            aggregate_id,
            routing_key: E::ROUTING_KEY,
            message_type: E::full_name(),
            payload: event.encode_to_vec(),
        }
    }
}

/// Outbox rows as the columns of one statement, with the current trace: a
/// statement that does the work itself can write its events too (`unnest`
/// over these arrays, in order), saving a round trip per write.
#[derive(Debug, Clone)]
pub struct Columns<'a> {
    /// `event_id` of each row.
    pub event_ids: Vec<Uuid>,
    /// `aggregate_id` of each row.
    pub aggregate_ids: Vec<Uuid>,
    /// `routing_key` of each row.
    pub routing_keys: Vec<&'static str>,
    /// `message_type` of each row.
    pub message_types: Vec<&'a str>,
    /// `payload` of each row.
    pub payloads: Vec<&'a [u8]>,
    /// The trace every row continues.
    pub traceparent: Option<String>,
    /// Its vendor state.
    pub tracestate: Option<String>,
}

impl<'a> Columns<'a> {
    /// The columns of `events`, in the order given (the relay publishes in
    /// that order), stamped with the current trace.
    pub fn of(events: &'a [Outgoing]) -> Self {
        let (traceparent, tracestate) = match helpdesk_kit::telemetry::current_trace() {
            Some(t) => (Some(t.traceparent), t.tracestate),
            None => (None, None),
        };
        Self {
            event_ids: events.iter().map(|e| e.event_id).collect(),
            aggregate_ids: events.iter().map(|e| e.aggregate_id).collect(),
            routing_keys: events.iter().map(|e| e.routing_key).collect(),
            message_types: events.iter().map(|e| e.message_type.as_str()).collect(),
            payloads: events.iter().map(|e| e.payload.as_slice()).collect(),
            traceparent,
            tracestate,
        }
    }
}

/// Inserts `events` with one statement per few kilobytes of them
/// (`helpdesk_kit::db::bounded_chunks`), in the order given (the relay
/// publishes in that order), all with the current trace.
pub async fn enqueue_all(conn: &mut PgConnection, events: &[Outgoing]) -> sqlx::Result<()> {
    for chunk in helpdesk_kit::db::bounded_chunks(events, |e| e.payload.len() + 100) {
        insert_rows(&mut *conn, &Columns::of(chunk)).await?;
    }
    Ok(())
}

async fn insert_rows(conn: &mut PgConnection, rows: &Columns<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload, traceparent, tracestate)
         SELECT e.event_id, e.aggregate_id, e.routing_key, e.message_type, e.payload, $6, $7
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bytea[])
              WITH ORDINALITY AS e(event_id, aggregate_id, routing_key, message_type, payload, n)
         ORDER BY e.n",
        &rows.event_ids,
        &rows.aggregate_ids,
        &rows.routing_keys as &[&str],
        &rows.message_types as &[&str],
        &rows.payloads as &[&[u8]],
        rows.traceparent,
        rows.tracestate,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What has not reached the broker yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Rows not yet confirmed by the broker.
    pub unsent: i64,
    /// When the oldest of them was committed.
    pub oldest: Option<DateTime<Utc>>,
}

impl Backlog {
    /// Age of the oldest unsent event in milliseconds (0 when none).
    pub fn oldest_age_ms(&self) -> i64 {
        self.oldest
            .map(|t| (Utc::now() - t).num_milliseconds().max(0))
            .unwrap_or(0)
    }
}

/// Counts unsent rows and finds the oldest (served by the partial index).
pub async fn backlog<'c>(db: impl PgExecutor<'c>) -> sqlx::Result<Backlog> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "unsent!", min(created_at) AS oldest FROM outbox WHERE sent_at IS NULL"#
    )
    .fetch_one(db)
    .await?;
    Ok(Backlog {
        unsent: row.unsent,
        oldest: row.oldest,
    })
}

/// Deletes rows sent before `before`; returns how many.
pub async fn prune<'c>(db: impl PgExecutor<'c>, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query!("DELETE FROM outbox WHERE sent_at < $1", before)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
