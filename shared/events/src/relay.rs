//! The outbox relay: publishes committed outbox rows to RabbitMQ.
//!
//! - **One publisher at a time.** Any number of replicas run the relay; the
//!   one holding a PostgreSQL advisory lock publishes, the others stand by.
//!   A single publisher is what keeps events in commit order, per ticket and
//!   overall. The lock lives on the relay's own connection, which also does
//!   every read and write of the relay: if that connection dies, the lock is
//!   gone and so is this relay's ability to mark rows, so two relays never
//!   both believe they lead for long.
//! - **Prompt.** Writers wake the relay after commit ([`outbox::Waker`]): in
//!   process directly, across replicas by NOTIFY, which the relay LISTENs
//!   for. It drains at once; a slow fallback poll covers a lost wake-up.
//! - **At least once.** A batch is published with publisher confirms and
//!   marked sent only after every message in it was confirmed. A crash in
//!   between republishes; consumers deduplicate on `event_id`.
//! - **Broker down.** Writes keep committing to the outbox; the relay retries
//!   with backoff and drains the backlog when the broker returns. The backlog
//!   is logged while it exists and readable through [`crate::outbox::backlog`].

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use helpdesk_kit::{tasks::TaskContext, telemetry::TraceContext};
use lapin::{
    BasicProperties, Channel, options::BasicPublishOptions, options::ConfirmSelectOptions,
};
use sqlx::{Connection, PgConnection, PgPool, postgres::PgListener};
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    amqp::{self, Backoff},
    metrics::{self, BacklogSampler},
    outbox,
};

/// How long the broker may take to confirm a publish.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Advisory lock key of the relay (one relay leads per database).
const LEADER_LOCK: i64 = 0x6f75_7462_6f78; // "outbox"

#[derive(Clone, Debug)]
/// How the relay reaches the broker and paces itself.
pub struct RelayConfig {
    /// `AMQP_URL`.
    pub amqp_url: String,
    /// `EVENTS_EXCHANGE`.
    pub exchange: String,
    /// AMQP `app_id` and connection name.
    pub app_id: String,
    /// Rows per publish batch.
    pub batch_size: i64,
    /// Drain even without a NOTIFY this often.
    pub fallback_poll: Duration,
    /// How often a standby replica tries to take the lead.
    pub standby_poll: Duration,
    /// `OUTBOX_RETENTION_HOURS`: sent rows older than this are deleted.
    pub retention: chrono::Duration,
}

impl RelayConfig {
    /// Defaults for everything but where to publish.
    pub fn new(amqp_url: &str, exchange: &str, app_id: &str) -> Self {
        Self {
            amqp_url: amqp_url.to_owned(),
            exchange: exchange.to_owned(),
            app_id: app_id.to_owned(),
            batch_size: 500,
            fallback_poll: Duration::from_secs(2),
            standby_poll: Duration::from_secs(2),
            retention: chrono::Duration::hours(72),
        }
    }
}

/// How long a relay may go without a sign of progress before the
/// supervisor calls it wedged. It beats at least every `fallback_poll`,
/// `standby_poll`, reconnect delay (at most 10 s) and published batch, so
/// only a hung database or broker call stays silent this long.
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// Runs until `ctx.stop()` is cancelled. `waker` is the one this process's
/// writers commit with.
pub async fn run(pool: PgPool, config: RelayConfig, waker: outbox::Waker, ctx: TaskContext) {
    let shutdown = ctx.stop().clone();
    let mut backoff = Backoff::default();
    let mut sampler = BacklogSampler::default();
    while !shutdown.is_cancelled() {
        ctx.beat();
        let led = lead(&pool, &config, &waker, &ctx, &mut backoff, &mut sampler).await;
        waker.set_leading(false);
        match led {
            Ok(()) => break,
            Err(error) => {
                // The backlog grows while the broker is away: keep it visible.
                sampler.sample(&pool).await;
                let delay = backoff.next_delay();
                tracing::warn!(
                    error = format!("{error:#}"),
                    retry_in_ms = delay.as_millis() as u64,
                    "outbox relay interrupted"
                );
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    tracing::info!("outbox relay stopped");
}

/// The relay's own connection (its leader lock, reads and marks).
///
/// It makes no bitmap scans: a bitmap scan of `outbox_unsent` visits the
/// heap of every sent row still in the index on every read (10,000 entries
/// and 680 pages a read under 700 creates a second, until a vacuum), while
/// a plain index scan marks their entries dead once and later reads skip
/// them (66 pages, 0.14 ms). The planner picks the bitmap whenever it
/// expects many unsent rows.
pub async fn connect(pool: &PgPool) -> sqlx::Result<PgConnection> {
    let options = pool
        .connect_options()
        .as_ref()
        .clone()
        .options([("enable_bitmapscan", "off")]);
    PgConnection::connect_with(&options).await
}

/// Waits for the lead, then publishes until shutdown or an error.
async fn lead(
    pool: &PgPool,
    config: &RelayConfig,
    waker: &outbox::Waker,
    ctx: &TaskContext,
    backoff: &mut Backoff,
    sampler: &mut BacklogSampler,
) -> anyhow::Result<()> {
    let shutdown = ctx.stop();
    let mut conn = connect(pool).await.context("relay database connection")?;
    loop {
        ctx.beat();
        let leader: bool = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_lock($1) AS "locked!""#,
            LEADER_LOCK
        )
        .fetch_one(&mut conn)
        .await?;
        if leader {
            break;
        }
        sampler.sample(&mut conn).await;
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(config.standby_poll) => {}
        }
    }

    let mut listener = PgListener::connect_with(pool)
        .await
        .context("LISTEN connection")?;
    listener.listen(outbox::CHANNEL).await?;
    let broker = amqp::connect(&config.amqp_url, &config.app_id)
        .await
        .context("connecting to RabbitMQ")?;
    let channel = broker.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    amqp::declare_exchange(&channel, &config.exchange).await?;
    waker.set_leading(true);
    tracing::info!(exchange = %config.exchange, "outbox relay leading");

    let mut prune = tokio::time::interval(Duration::from_secs(3600));
    let mut report = tokio::time::interval(Duration::from_secs(30));
    loop {
        ctx.beat();
        let published = drain(&mut conn, &channel, config, ctx).await?;
        sampler.sample(&mut conn).await;
        if published > 0 {
            // A healthy round: the next outage starts its backoff from scratch.
            backoff.reset();
        }
        tokio::select! {
            () = shutdown.cancelled() => {
                let _ = broker.close(200, "shutdown".into()).await;
                return Ok(());
            }
            () = waker.woken() => {}
            notification = listener.recv() => { notification?; }
            () = tokio::time::sleep(config.fallback_poll) => {}
            _ = prune.tick() => {
                let before = Utc::now() - config.retention;
                let deleted = outbox::prune(&mut conn, before).await?;
                if deleted > 0 {
                    tracing::info!(deleted, "pruned sent outbox rows");
                }
            }
            _ = report.tick() => {
                let backlog = outbox::backlog(&mut conn).await?;
                if backlog.unsent > 0 {
                    tracing::info!(unsent = backlog.unsent, oldest_age_ms = backlog.oldest_age_ms(), "outbox backlog");
                }
            }
        }
    }
}

struct Row {
    id: i64,
    event_id: Uuid,
    routing_key: String,
    message_type: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
    tracestate: Option<String>,
    created_at: DateTime<Utc>,
}

/// Publishes every unsent row, batch by batch; returns how many.
///
/// Each batch starts again from the lowest unsent id. A transaction that
/// took its ids earlier may commit later; reading "after the last id sent"
/// (to overlap the next read with the broker's confirms) would then publish
/// a ticket's later event before its earlier one. The relay test with
/// concurrent writers caught exactly that.
async fn drain(
    conn: &mut PgConnection,
    channel: &Channel,
    config: &RelayConfig,
    ctx: &TaskContext,
) -> anyhow::Result<usize> {
    let shutdown = ctx.stop();
    let mut total = 0;
    let mut reported = std::time::Instant::now();
    loop {
        ctx.beat();
        // A long backlog (after an outage) must not hold up a stop, and
        // stays visible in the logs while it drains.
        if shutdown.is_cancelled() {
            return Ok(total);
        }
        if reported.elapsed() >= Duration::from_secs(30) {
            reported = std::time::Instant::now();
            let backlog = outbox::backlog(&mut *conn).await?;
            BacklogSampler::default().record(&backlog);
            tracing::info!(
                unsent = backlog.unsent,
                oldest_age_ms = backlog.oldest_age_ms(),
                published = total,
                "outbox backlog draining"
            );
        }
        let rows = sqlx::query_as!(
            Row,
            "SELECT id, event_id, routing_key, message_type, payload, traceparent, tracestate, created_at
             FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1",
            config.batch_size,
        )
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Ok(total);
        }
        // Pipelined within the batch: publish it all, then collect the confirms.
        let mut confirms = Vec::with_capacity(rows.len());
        let published_at = std::time::Instant::now();
        for row in &rows {
            // A child of the trace that wrote the row; the consumers'
            // spans become children of this one.
            let span = tracing::info_span!(
                "publish",
                otel.name = format!("{} publish", row.routing_key),
                otel.kind = "producer",
                messaging.system = "rabbitmq",
                messaging.destination.name = %config.exchange,
                event_id = %row.event_id,
            );
            helpdesk_kit::telemetry::set_remote_parent(
                &span,
                row.traceparent.as_deref(),
                row.tracestate.as_deref(),
            );
            let trace = helpdesk_kit::telemetry::trace_of(&span);
            let confirm = channel
                .basic_publish(
                    config.exchange.as_str().into(),
                    row.routing_key.as_str().into(),
                    BasicPublishOptions::default(),
                    &row.payload,
                    properties(row, trace.as_ref(), &config.app_id),
                )
                .instrument(span)
                .await?;
            confirms.push(confirm);
        }
        for (confirm, row) in confirms.into_iter().zip(&rows) {
            // A broker that blocks publishers must not hang the leader forever.
            let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
                .await
                .context("no publisher confirm within 30 s")??;
            anyhow::ensure!(
                confirmation.is_ack(),
                "broker refused event {}",
                row.event_id
            );
        }
        let confirmed_after = published_at.elapsed();
        for _ in &rows {
            metrics::published(confirmed_after);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        sqlx::query!("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)", &ids)
            .execute(&mut *conn)
            .await?;
        total += rows.len();
        if (rows.len() as i64) < config.batch_size {
            return Ok(total);
        }
    }
}

/// The message properties; `trace` is the publish span's context (else the
/// row's own, as the writer stored it).
fn properties(row: &Row, trace: Option<&TraceContext>, app_id: &str) -> BasicProperties {
    let (traceparent, tracestate) = match trace {
        Some(t) => (Some(&t.traceparent), t.tracestate.as_ref()),
        None => (row.traceparent.as_ref(), row.tracestate.as_ref()),
    };
    let mut headers = Vec::new();
    if let Some(traceparent) = traceparent {
        headers.push(("traceparent", amqp::string_value(traceparent.as_str())));
    }
    if let Some(tracestate) = tracestate {
        headers.push(("tracestate", amqp::string_value(tracestate.as_str())));
    }
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/x-protobuf".into())
        .with_type(row.message_type.as_str().into())
        .with_message_id(row.event_id.to_string().into())
        .with_timestamp(row.created_at.timestamp().max(0) as u64)
        .with_app_id(app_id.into())
        .with_headers(amqp::headers(headers))
}
