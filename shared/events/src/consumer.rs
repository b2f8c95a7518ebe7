//! The consumer kit: what every service that reacts to events runs.
//!
//! For each delivery: decode by the AMQP `type` property; open the service's
//! own transaction; record the `event_id` in `processed_events` (a duplicate
//! stops here, acked without effect); run the handler in that transaction;
//! commit; ack. Failures never block the queue:
//!
//! - a malformed envelope, an unknown type or an undecodable body goes to the
//!   dead-letter queue at once, with the reason in `x-death-reason`;
//! - a permanent handler error (the event is wrong for us) dead-letters too;
//! - a transient one (a dependency UNAVAILABLE, the database away) is
//!   republished to a delay queue whose TTL returns it to the main queue
//!   (`retry_delay`, doubling per attempt), and dead-lettered after
//!   `max_attempts`.
//!
//! Topology per consumer (`queue` = e.g. `assignment.ticket-events`):
//! `queue` (quorum) bound to the events exchange; `queue.retry.N` (one per
//! attempt, TTL = delay N, dead-lettering back to `queue`); `queue.dead`.
//!
//! The loop reconnects with backoff after a broker restart or a closed
//! channel, and on shutdown finishes the message in hand, then closes
//! (unacked prefetched messages return to the queue).

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures_util::{FutureExt, StreamExt};
use helpdesk_kit::tasks::TaskContext;
use lapin::{
    BasicProperties, Channel,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
        BasicQosOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    amqp::{self, Backoff},
    metrics::{self, DeadReason, QueueLabels},
};

/// How one consumer connects and behaves.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// `AMQP_URL`.
    pub amqp_url: String,
    /// The events exchange to bind to.
    pub exchange: String,
    /// This consumer's queue; also its name in `processed_events`.
    pub queue: String,
    /// Routing keys (topic patterns) to bind.
    pub bindings: Vec<String>,
    /// Unacked deliveries in flight per lane (broker-side buffer).
    pub prefetch: u16,
    /// Lanes: deliveries handled side by side, each on its own channel of
    /// one shared connection (a connection costs an I/O thread and its
    /// buffers; a channel costs next to nothing). Handlers must tolerate
    /// events of one queue applied in any order when this is above 1.
    pub concurrency: usize,
    /// Attempts before a failing event is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles for each following one.
    pub retry_delay: Duration,
    /// Declare the main and dead-letter queues as quorum queues.
    pub quorum: bool,
    /// How long processed event ids are remembered for deduplication; far
    /// longer than any redelivery or dead-letter replay window.
    pub dedup_retention: chrono::Duration,
}

impl ConsumerConfig {
    /// A consumer of `queue`, bound to `exchange` with `bindings`, with the default retry policy.
    pub fn new(amqp_url: &str, exchange: &str, queue: &str, bindings: &[&str]) -> Self {
        Self {
            amqp_url: amqp_url.to_owned(),
            exchange: exchange.to_owned(),
            queue: queue.to_owned(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            prefetch: 32,
            concurrency: 1,
            max_attempts: 5,
            retry_delay: Duration::from_secs(1),
            quorum: true,
            dedup_retention: chrono::Duration::days(14),
        }
    }

    /// The queue that holds this consumer's dead letters.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }

    fn retry_queue(&self, attempt: u32) -> String {
        format!("{}.retry.{attempt}", self.queue)
    }

    fn retry_delay_for(&self, attempt: u32) -> Duration {
        self.retry_delay * 2u32.saturating_pow(attempt.saturating_sub(1))
    }
}

/// What a delivery says about itself.
#[derive(Clone, Debug)]
pub struct Meta {
    /// The producer's `event_id` (the dedup key).
    pub event_id: Uuid,
    /// The AMQP `type`: the event's full protobuf name.
    pub message_type: String,
    /// The routing key it was published with.
    pub routing_key: String,
    /// 1 on the first delivery, then 2, 3, ... on retries.
    pub attempt: u32,
}

/// How a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying later (a dependency is down, a lock timed out).
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Retrying cannot help (the event contradicts our state).
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

impl From<sqlx::Error> for HandlerError {
    fn from(err: sqlx::Error) -> Self {
        HandlerError::Transient(err.into())
    }
}

/// Decoding outcome for a delivery's `type`.
pub enum Decoded<E> {
    /// One of the handler's events.
    Event(E),
    /// An event this consumer has no work for (one reporting its own
    /// change, say): acked at once, without a transaction, since a no-op
    /// needs no deduplication. Half of the assignment service's events are
    /// its own assignments; each would otherwise cost a commit.
    Skip,
    /// A type this consumer does not handle.
    Unknown,
    /// The body does not decode as its type says.
    Invalid(String),
}

/// Decodes `payload` as `E` when `message_type` is `E`'s full name.
pub fn decode_as<E: helpdesk_proto::Event>(
    message_type: &str,
    payload: &[u8],
) -> Option<Result<E, String>> {
    (message_type == E::full_name()).then(|| E::decode(payload).map_err(|e| e.to_string()))
}

/// A service's reaction to events.
pub trait Handler: Send + Sync + 'static {
    /// The decoded events this handler understands.
    type Event: Send;

    /// Decodes by the `type` property.
    fn decode(&self, message_type: &str, payload: &[u8]) -> Decoded<Self::Event>;

    /// Applies the event inside the consumer's transaction. The event id is
    /// recorded in the same transaction, so this runs once per event in effect.
    fn handle(
        &self,
        tx: &mut PgConnection,
        meta: &Meta,
        event: Self::Event,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Declares the consumer's queues and bindings (idempotent).
pub async fn declare_topology(channel: &Channel, config: &ConsumerConfig) -> lapin::Result<()> {
    amqp::declare_exchange(channel, &config.exchange).await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let main_args = if config.quorum {
        amqp::headers([("x-queue-type", amqp::string_value("quorum"))])
    } else {
        FieldTable::default()
    };
    channel
        .queue_declare(config.queue.as_str().into(), durable, main_args.clone())
        .await?;
    channel
        .queue_declare(
            config.dead_letter_queue().as_str().into(),
            durable,
            main_args,
        )
        .await?;
    for attempt in 1..config.max_attempts {
        let ttl = i64::try_from(config.retry_delay_for(attempt).as_millis()).unwrap_or(i64::MAX);
        let args = amqp::headers([
            ("x-message-ttl", AMQPValue::LongLongInt(ttl)),
            ("x-dead-letter-exchange", amqp::string_value("")),
            (
                "x-dead-letter-routing-key",
                amqp::string_value(config.queue.as_str()),
            ),
        ]);
        channel
            .queue_declare(config.retry_queue(attempt).as_str().into(), durable, args)
            .await?;
    }
    for key in &config.bindings {
        channel
            .queue_bind(
                config.queue.as_str().into(),
                config.exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Declares the topology over a connection of its own (tests, admin tools).
pub async fn declare(config: &ConsumerConfig) -> anyhow::Result<()> {
    let connection = amqp::connect(&config.amqp_url, "declare").await?;
    let channel = connection.create_channel().await?;
    declare_topology(&channel, config).await?;
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// How long a consumer may go without a sign of progress before the
/// supervisor calls it wedged: it beats every [`BEAT_EVERY`] while idle, on
/// every message and every reconnect, so only a handler or broker call that
/// never returns stays silent this long.
pub const WATCHDOG: Duration = Duration::from_secs(120);
const BEAT_EVERY: Duration = Duration::from_secs(5);

/// Consumes until `ctx.stop()` is cancelled, reconnecting with backoff.
/// Run [`prune_processed`] beside it (a task of its own).
pub async fn run<H: Handler>(
    pool: PgPool,
    config: ConsumerConfig,
    handler: Arc<H>,
    ctx: TaskContext,
) {
    let shutdown = ctx.stop().clone();
    let mut backoff = Backoff::default();
    while !shutdown.is_cancelled() {
        ctx.beat();
        match session(&pool, &config, handler.as_ref(), &ctx, &mut backoff).await {
            Ok(()) => break,
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(queue = %config.queue, error = format!("{error:#}"), retry_in_ms = delay.as_millis() as u64, "consumer interrupted");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    tracing::info!(queue = %config.queue, "consumer stopped");
}

/// Forgets processed event ids older than the retention, hourly, until
/// `shutdown`. Every service that runs a consumer runs this as a task.
pub async fn prune_processed(pool: PgPool, config: ConsumerConfig, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let before = chrono::Utc::now() - config.dedup_retention;
        match sqlx::query!(
            "DELETE FROM processed_events WHERE consumer = $1 AND processed_at < $2",
            config.queue,
            before,
        )
        .execute(&pool)
        .await
        {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::info!(queue = %config.queue, deleted = done.rows_affected(), "pruned processed event ids");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(queue = %config.queue, %error, "pruning processed event ids failed")
            }
        }
    }
}

/// One connection to the broker, its topology declared once, and
/// `config.concurrency` lanes consuming side by side until shutdown or the
/// first error (then all lanes end, and `run` reconnects).
async fn session<H: Handler>(
    pool: &PgPool,
    config: &ConsumerConfig,
    handler: &H,
    ctx: &TaskContext,
    backoff: &mut Backoff,
) -> anyhow::Result<()> {
    let connection = amqp::connect(&config.amqp_url, &config.queue)
        .await
        .context("connecting to RabbitMQ")?;
    declare_topology(&connection.create_channel().await?, config).await?;
    // Connected: the next outage's backoff starts from scratch.
    backoff.reset();
    let lanes =
        (0..config.concurrency.max(1)).map(|_| lane(&connection, pool, config, handler, ctx));
    let consumed = futures_util::future::try_join_all(lanes).await;
    let _ = connection.close(200, "shutdown".into()).await;
    consumed.map(|_| ())
}

/// One channel consuming the queue until shutdown or an error.
async fn lane<H: Handler>(
    connection: &lapin::Connection,
    pool: &PgPool,
    config: &ConsumerConfig,
    handler: &H,
    ctx: &TaskContext,
) -> anyhow::Result<()> {
    let shutdown = ctx.stop();
    let channel = connection.create_channel().await?;
    // Confirms for the retry and dead-letter republishes: the original is
    // acked only once its copy is safely stored.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            config.queue.as_str().into(),
            format!("{}-{}", config.queue, Uuid::new_v4().simple()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %config.queue, "consuming");
    let labels = metrics::consumer_started(&config.queue);
    let dead_letters = config.dead_letter_queue();
    let mut outage = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut beat = tokio::time::interval(BEAT_EVERY);
    loop {
        ctx.beat();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                let _ = channel.close(200, "shutdown".into()).await;
                return Ok(());
            }
            _ = beat.tick() => {
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                };
                let queue = channel
                    .queue_declare(dead_letters.as_str().into(), passive, FieldTable::default())
                    .await?;
                metrics::dead_letter_depth(&labels, queue.message_count());
            }
            delivery = deliveries.next() => {
                let delivery = delivery.context("delivery stream ended")??;
                match process(pool, config, handler, &channel, &labels, delivery).await? {
                    Processed::Settled => outage.reset(),
                    // Our own database is away: the message went back to the
                    // queue uncounted; pause instead of burning its attempts.
                    Processed::Requeued => {
                        let pause = outage.next_delay();
                        tracing::warn!(queue = %config.queue, pause_ms = pause.as_millis() as u64, "database unavailable, pausing consumption");
                        tokio::select! {
                            () = shutdown.cancelled() => {}
                            () = tokio::time::sleep(pause) => {}
                        }
                    }
                }
            }
        }
    }
}

/// How a delivery was settled.
enum Processed {
    /// Acked: applied, a duplicate, retried later or dead-lettered.
    Settled,
    /// Returned to the queue because our own database is unavailable.
    Requeued,
}

/// Handles one delivery to completion: acked, retried, dead-lettered, or
/// (our database away) requeued. An `Err` is a broker problem; the
/// delivery will come back.
async fn process<H: Handler>(
    pool: &PgPool,
    config: &ConsumerConfig,
    handler: &H,
    channel: &Channel,
    labels: &QueueLabels,
    delivery: lapin::message::Delivery,
) -> anyhow::Result<Processed> {
    let headers = delivery.properties.headers().as_ref();
    // The whole settlement (handled, retried or dead-lettered) is one span,
    // a child of the relay's publish span (and so of the request that made
    // the event); handlers record the ticket ([`record_ticket`]).
    let span = tracing::info_span!(
        "consume",
        otel.name = format!("{} process", config.queue),
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        queue = %config.queue,
        event_id = tracing::field::Empty,
        r#type = tracing::field::Empty,
        attempt = tracing::field::Empty,
        ticket_id = tracing::field::Empty,
        human_id = tracing::field::Empty,
    );
    helpdesk_kit::telemetry::set_remote_parent(
        &span,
        amqp::header_str(headers, "traceparent").as_deref(),
        amqp::header_str(headers, "tracestate").as_deref(),
    );
    settle(pool, config, handler, channel, labels, delivery)
        .instrument(span)
        .await
}

async fn settle<H: Handler>(
    pool: &PgPool,
    config: &ConsumerConfig,
    handler: &H,
    channel: &Channel,
    labels: &QueueLabels,
    delivery: lapin::message::Delivery,
) -> anyhow::Result<Processed> {
    let started = Instant::now();
    let headers = delivery.properties.headers().as_ref();
    let attempt = amqp::header_int(headers, "x-attempt").unwrap_or(1).max(1) as u32;
    let event_id = delivery
        .properties
        .message_id()
        .as_ref()
        .and_then(|id| Uuid::parse_str(id.as_str()).ok());
    let message_type = delivery
        .properties
        .kind()
        .as_ref()
        .map(|t| t.as_str().to_owned());
    let (Some(event_id), Some(message_type)) = (event_id, message_type) else {
        dead_letter(
            config,
            channel,
            &delivery,
            attempt,
            "malformed envelope: needs message_id (UUID) and type",
        )
        .await?;
        metrics::dead_lettered(labels, DeadReason::Malformed, started);
        return Ok(Processed::Settled);
    };
    let event = match handler.decode(&message_type, &delivery.data) {
        Decoded::Event(event) => event,
        Decoded::Skip => {
            delivery.ack(BasicAckOptions::default()).await?;
            metrics::consumed(labels, started);
            return Ok(Processed::Settled);
        }
        Decoded::Unknown => {
            let reason = format!("unknown event type {message_type}");
            dead_letter(config, channel, &delivery, attempt, &reason).await?;
            metrics::dead_lettered(labels, DeadReason::UnknownType, started);
            return Ok(Processed::Settled);
        }
        Decoded::Invalid(why) => {
            let reason = format!("undecodable {message_type}: {why}");
            dead_letter(config, channel, &delivery, attempt, &reason).await?;
            metrics::dead_lettered(labels, DeadReason::Undecodable, started);
            return Ok(Processed::Settled);
        }
    };
    let meta = Meta {
        event_id,
        message_type,
        routing_key: amqp::header_str(headers, "x-original-routing-key")
            .unwrap_or_else(|| delivery.routing_key.as_str().to_owned()),
        attempt,
    };
    let span = tracing::Span::current();
    span.record("event_id", tracing::field::display(meta.event_id));
    span.record("type", meta.message_type.as_str());
    span.record("attempt", attempt);
    let outcome = apply(pool, &config.queue, handler, &meta, event).await;
    if let Err(HandlerError::Transient(error)) = &outcome
        && database_down(pool).await
    {
        tracing::warn!(event_id = %meta.event_id, error = format!("{error:#}"), "database unavailable, requeueing");
        delivery
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await?;
        metrics::requeued(labels);
        return Ok(Processed::Requeued);
    }
    match outcome {
        Ok(()) => {
            delivery.ack(BasicAckOptions::default()).await?;
            metrics::consumed(labels, started);
            Ok(Processed::Settled)
        }
        Err(HandlerError::Transient(error)) if attempt < config.max_attempts => {
            tracing::warn!(event_id = %meta.event_id, attempt, error = format!("{error:#}"), "handler failed, retrying later");
            republish(
                channel,
                &config.retry_queue(attempt),
                &delivery,
                [
                    ("x-attempt", AMQPValue::LongLongInt(i64::from(attempt) + 1)),
                    ("x-last-error", amqp::string_value(format!("{error:#}"))),
                ],
            )
            .await?;
            delivery.ack(BasicAckOptions::default()).await?;
            metrics::retried(labels, started);
            Ok(Processed::Settled)
        }
        Err(error) => {
            let (reason, why) = match &error {
                HandlerError::Transient(e) => (
                    DeadReason::Exhausted,
                    format!("gave up after {attempt} attempts: {e:#}"),
                ),
                HandlerError::Permanent(e) => (DeadReason::Rejected, format!("rejected: {e:#}")),
            };
            dead_letter(config, channel, &delivery, attempt, &why).await?;
            metrics::dead_lettered(labels, reason, started);
            Ok(Processed::Settled)
        }
    }
}

/// Whether our own database is unreachable (as opposed to the handler's
/// dependency failing): then retrying the event counts for nothing.
async fn database_down(pool: &PgPool) -> bool {
    let probe = tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::query("SELECT 1").execute(pool),
    );
    !matches!(probe.await, Ok(Ok(_)))
}

/// Names the ticket an event is about on the handler's span (ids only:
/// spans never carry bodies, addresses or tokens).
pub fn record_ticket(ticket_id: &str, human_id: &str) {
    let span = tracing::Span::current();
    span.record("ticket_id", ticket_id);
    if !human_id.is_empty() {
        span.record("human_id", human_id);
    }
}

/// Records the event id and runs the handler in one transaction.
async fn apply<H: Handler>(
    pool: &PgPool,
    consumer: &str,
    handler: &H,
    meta: &Meta,
    event: H::Event,
) -> Result<(), HandlerError> {
    let mut tx = pool.begin().await?;
    let fresh = sqlx::query!(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        consumer,
        meta.event_id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        tracing::debug!(event_id = %meta.event_id, "duplicate delivery, already processed");
        return Ok(());
    }
    // A panicking handler is a bug in it, not a reason to stop consuming:
    // the event is dead-lettered with the panic message.
    let handled = std::panic::AssertUnwindSafe(handler.handle(&mut tx, meta, event))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(HandlerError::Permanent(anyhow::anyhow!(
                "handler panicked: {message}"
            )))
        });
    handled?;
    tx.commit().await?;
    Ok(())
}

async fn dead_letter(
    config: &ConsumerConfig,
    channel: &Channel,
    delivery: &lapin::message::Delivery,
    attempt: u32,
    reason: &str,
) -> anyhow::Result<()> {
    tracing::error!(queue = %config.queue, reason, "dead-lettering event");
    republish(
        channel,
        &config.dead_letter_queue(),
        delivery,
        [
            ("x-death-reason", amqp::string_value(reason)),
            ("x-attempt", AMQPValue::LongLongInt(i64::from(attempt))),
        ],
    )
    .await?;
    delivery.ack(BasicAckOptions::default()).await?;
    Ok(())
}

/// Copies `delivery` into `queue` (default exchange) with extra headers and
/// the original routing key, and waits for the broker's confirm.
async fn republish<const N: usize>(
    channel: &Channel,
    queue: &str,
    delivery: &lapin::message::Delivery,
    extra: [(&'static str, AMQPValue); N],
) -> anyhow::Result<()> {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    // Retries come back from a delay queue under its name: keep the first key.
    if !headers.inner().contains_key("x-original-routing-key") {
        headers.insert(
            "x-original-routing-key".into(),
            amqp::string_value(delivery.routing_key.as_str()),
        );
    }
    for (key, value) in extra {
        headers.insert(key.into(), value);
    }
    let properties: BasicProperties = delivery.properties.clone().with_headers(headers);
    let confirmation = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            &delivery.data,
            properties,
        )
        .await?
        .await?;
    anyhow::ensure!(confirmation.is_ack(), "broker refused the copy for {queue}");
    Ok(())
}
