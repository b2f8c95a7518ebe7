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
//! **Batches.** With `batch` above 1, a lane that finds several deliveries
//! already waiting (prefetched) applies up to `batch` of them in one
//! transaction: one begin, one dedup insert, one commit for the burst, and
//! a handler may do the burst's work set-based ([`Handler::handle_batch`]).
//! Nothing waits for a batch to fill, so an idle queue keeps its latency.
//! When the batch's transaction fails, it is rolled back and each event is
//! applied again in a transaction of its own, so one bad event still costs
//! only itself (retried or dead-lettered alone).
//!
//! The loop reconnects with backoff after a broker restart or a closed
//! channel, and on shutdown finishes the messages in hand, then closes
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
    /// Most deliveries one transaction applies (see the module's
    /// "Batches"); 1 applies each in its own. At most `prefetch` are ever
    /// in hand.
    pub batch: usize,
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
            batch: 1,
            max_attempts: 5,
            retry_delay: Duration::from_secs(1),
            quorum: true,
            dedup_retention: chrono::Duration::days(14),
        }
    }

    /// A service's consumer as the environment configures it: `AMQP_URL`,
    /// `EVENTS_EXCHANGE`, `CONSUMER_QUEUE` (default `queue`),
    /// `CONSUMER_MAX_ATTEMPTS` (8), `CONSUMER_RETRY_MS` (1000, doubling),
    /// `CONSUMER_CONCURRENCY` (4 lanes), `CONSUMER_BATCH` (32 events per
    /// transaction at most; 1 turns batching off) and `CONSUMER_PREFETCH`
    /// (per lane; default and minimum the batch).
    pub fn from_env(queue: &str, bindings: &[&str]) -> anyhow::Result<Self> {
        use helpdesk_kit::config::{millis_or, string_or, var_or};
        let at_least_one = |name: &str, default: usize| -> anyhow::Result<usize> {
            let n = var_or(name, default)?;
            anyhow::ensure!(n >= 1, "{name} must be at least 1");
            Ok(n)
        };
        let mut config = Self::new(
            &string_or("AMQP_URL", amqp::DEFAULT_URL),
            &string_or("EVENTS_EXCHANGE", amqp::DEFAULT_EXCHANGE),
            &string_or("CONSUMER_QUEUE", queue),
            bindings,
        );
        config.max_attempts = var_or("CONSUMER_MAX_ATTEMPTS", 8)?;
        anyhow::ensure!(
            config.max_attempts >= 1,
            "CONSUMER_MAX_ATTEMPTS must be at least 1"
        );
        config.retry_delay = millis_or("CONSUMER_RETRY_MS", Duration::from_millis(1000))?;
        config.concurrency = at_least_one("CONSUMER_CONCURRENCY", 4)?;
        config.batch = at_least_one("CONSUMER_BATCH", 32)?;
        let prefetch = at_least_one("CONSUMER_PREFETCH", config.batch.max(32))?;
        anyhow::ensure!(
            prefetch >= config.batch && prefetch <= usize::from(u16::MAX),
            "CONSUMER_PREFETCH must be between CONSUMER_BATCH and 65535"
        );
        config.prefetch = u16::try_from(prefetch)?;
        Ok(config)
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

    /// Applies several events (new to this consumer, in delivery order)
    /// inside one transaction that also records their ids. The default
    /// applies them one by one, each in its delivery's span; override it to
    /// do a burst's work set-based. An error rolls the whole batch back and
    /// the kit applies each event again alone, so fail on what is wrong
    /// with the batch rather than skipping an event.
    fn handle_batch(
        &self,
        tx: &mut PgConnection,
        items: Vec<Item<Self::Event>>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        async move {
            for item in items {
                self.handle(tx, &item.meta, item.event)
                    .instrument(item.span)
                    .await?;
            }
            Ok(())
        }
    }
}

/// One event of a batch.
pub struct Item<E> {
    /// What its delivery says about itself.
    pub meta: Meta,
    /// The decoded event.
    pub event: E,
    /// Its delivery's span (a child of the publisher's): run the event's
    /// own work in it, so its trace continues through the batch.
    pub span: tracing::Span,
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
                let mut batch = vec![delivery.context("delivery stream ended")??];
                // Whatever else the lane already holds, without waiting.
                while batch.len() < config.batch {
                    match deliveries.next().now_or_never() {
                        Some(Some(delivery)) => batch.push(delivery?),
                        _ => break,
                    }
                }
                let processed = if batch.len() == 1 {
                    let delivery = batch.pop().context("one delivery")?;
                    process(pool, config, handler, &channel, &labels, delivery).await?
                } else {
                    process_batch(pool, config, handler, &channel, &labels, batch).await?
                };
                match processed {
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
    let span = consume_span(config, &delivery);
    async {
        let Some(ready) = screen(config, handler, channel, labels, delivery).await? else {
            return Ok(Processed::Settled);
        };
        let outcome = apply(pool, &config.queue, handler, &ready.meta, ready.event).await;
        finish(pool, config, channel, labels, ready.settle, outcome).await
    }
    .instrument(span)
    .await
}

/// The span of one delivery's settlement (handled, retried or
/// dead-lettered): a child of the relay's publish span, and so of the
/// request that made the event; handlers record the ticket
/// ([`record_ticket`]).
fn consume_span(config: &ConsumerConfig, delivery: &lapin::message::Delivery) -> tracing::Span {
    let headers = delivery.properties.headers().as_ref();
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
    span
}

/// A delivery that decoded to one of the handler's events.
struct Ready<E> {
    meta: Meta,
    event: E,
    settle: Settle,
}

/// What settling a delivery after its transaction needs.
struct Settle {
    delivery: lapin::message::Delivery,
    meta: Meta,
    started: Instant,
}

/// Reads the envelope and decodes the body. What needs no transaction is
/// settled here (a malformed envelope, an unknown type or an undecodable
/// body dead-lettered, a skipped event acked): then `None`.
async fn screen<H: Handler>(
    config: &ConsumerConfig,
    handler: &H,
    channel: &Channel,
    labels: &QueueLabels,
    delivery: lapin::message::Delivery,
) -> anyhow::Result<Option<Ready<H::Event>>> {
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
        return Ok(None);
    };
    let event = match handler.decode(&message_type, &delivery.data) {
        Decoded::Event(event) => event,
        Decoded::Skip => {
            delivery.ack(BasicAckOptions::default()).await?;
            metrics::consumed(labels, started);
            return Ok(None);
        }
        Decoded::Unknown => {
            let reason = format!("unknown event type {message_type}");
            dead_letter(config, channel, &delivery, attempt, &reason).await?;
            metrics::dead_lettered(labels, DeadReason::UnknownType, started);
            return Ok(None);
        }
        Decoded::Invalid(why) => {
            let reason = format!("undecodable {message_type}: {why}");
            dead_letter(config, channel, &delivery, attempt, &reason).await?;
            metrics::dead_lettered(labels, DeadReason::Undecodable, started);
            return Ok(None);
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
    Ok(Some(Ready {
        meta: meta.clone(),
        event,
        settle: Settle {
            delivery,
            meta,
            started,
        },
    }))
}

/// Settles a delivery by its handler's outcome: acked when applied;
/// requeued when our own database is away; otherwise retried later or
/// dead-lettered.
async fn finish(
    pool: &PgPool,
    config: &ConsumerConfig,
    channel: &Channel,
    labels: &QueueLabels,
    Settle {
        delivery,
        meta,
        started,
    }: Settle,
    outcome: Result<(), HandlerError>,
) -> anyhow::Result<Processed> {
    let attempt = meta.attempt;
    if let Err(HandlerError::Transient(error)) = &outcome
        && database_down(pool).await
    {
        tracing::warn!(event_id = %meta.event_id, error = format!("{error:#}"), "database unavailable, requeueing");
        requeue(&delivery, labels).await?;
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

/// Handles several deliveries: screened one by one, then applied in one
/// transaction; if that fails, each is applied and settled alone.
async fn process_batch<H: Handler>(
    pool: &PgPool,
    config: &ConsumerConfig,
    handler: &H,
    channel: &Channel,
    labels: &QueueLabels,
    deliveries: Vec<lapin::message::Delivery>,
) -> anyhow::Result<Processed> {
    let mut items = Vec::with_capacity(deliveries.len());
    let mut settles = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let span = consume_span(config, &delivery);
        let screened = screen(config, handler, channel, labels, delivery)
            .instrument(span.clone())
            .await?;
        if let Some(Ready {
            meta,
            event,
            settle,
        }) = screened
        {
            items.push(Item { meta, event, span });
            settles.push(settle);
        }
    }
    if items.is_empty() {
        return Ok(Processed::Settled);
    }
    let spans: Vec<tracing::Span> = items.iter().map(|item| item.span.clone()).collect();
    let batch_span = tracing::info_span!(
        "consume batch",
        otel.name = format!("{} process batch", config.queue),
        queue = %config.queue,
        messaging.batch.message_count = items.len(),
    );
    let error = match apply_batch(pool, &config.queue, handler, items)
        .instrument(batch_span)
        .await
    {
        Ok(()) => {
            for settle in settles {
                settle.delivery.ack(BasicAckOptions::default()).await?;
                metrics::consumed(labels, settle.started);
            }
            return Ok(Processed::Settled);
        }
        Err(error) => error,
    };
    if matches!(error, HandlerError::Transient(_)) && database_down(pool).await {
        tracing::warn!(queue = %config.queue, events = settles.len(), error = format!("{error:#}"), "database unavailable, requeueing the batch");
        for settle in settles {
            requeue(&settle.delivery, labels).await?;
        }
        return Ok(Processed::Requeued);
    }
    tracing::warn!(queue = %config.queue, events = settles.len(), error = format!("{error:#}"), "batch failed, applying its events one by one");
    let mut processed = Processed::Settled;
    for (settle, span) in settles.into_iter().zip(spans) {
        let settled = async {
            // Decoding is deterministic: it succeeded a moment ago.
            let outcome = match handler.decode(&settle.meta.message_type, &settle.delivery.data) {
                Decoded::Event(event) => {
                    apply(pool, &config.queue, handler, &settle.meta, event).await
                }
                _ => Err(HandlerError::Permanent(anyhow::anyhow!(
                    "the event decoded differently the second time"
                ))),
            };
            finish(pool, config, channel, labels, settle, outcome).await
        }
        .instrument(span)
        .await?;
        if let Processed::Requeued = settled {
            processed = Processed::Requeued;
        }
    }
    Ok(processed)
}

/// Returns a delivery to the queue uncounted (our database is away: no
/// attempt of it was spent).
async fn requeue(delivery: &lapin::message::Delivery, labels: &QueueLabels) -> anyhow::Result<()> {
    delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        })
        .await?;
    metrics::requeued(labels);
    Ok(())
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
    caught(handler.handle(&mut tx, meta, event)).await?;
    tx.commit().await?;
    Ok(())
}

/// Records the events' ids and runs the handler over the new ones, in one
/// transaction. Duplicates (also two copies within the batch) are left out.
async fn apply_batch<H: Handler>(
    pool: &PgPool,
    consumer: &str,
    handler: &H,
    items: Vec<Item<H::Event>>,
) -> Result<(), HandlerError> {
    let ids: Vec<Uuid> = items.iter().map(|item| item.meta.event_id).collect();
    let mut tx = pool.begin().await?;
    let mut fresh: std::collections::HashSet<Uuid> = sqlx::query_scalar!(
        "INSERT INTO processed_events (consumer, event_id)
         SELECT $1, id FROM UNNEST($2::uuid[]) AS batch(id)
         ON CONFLICT DO NOTHING
         RETURNING event_id",
        consumer,
        &ids,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let items: Vec<_> = items
        .into_iter()
        .filter(|item| fresh.remove(&item.meta.event_id))
        .collect();
    if items.len() < ids.len() {
        tracing::debug!(
            duplicates = ids.len() - items.len(),
            "duplicate deliveries, already processed"
        );
    }
    if !items.is_empty() {
        caught(handler.handle_batch(&mut tx, items)).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A panicking handler is a bug in it, not a reason to stop consuming: the
/// event is dead-lettered with the panic message.
async fn caught(
    handled: impl Future<Output = Result<(), HandlerError>>,
) -> Result<(), HandlerError> {
    std::panic::AssertUnwindSafe(handled)
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
        })
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
