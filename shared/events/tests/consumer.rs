//! The consumer kit against the real RabbitMQ and PostgreSQL: duplicates,
//! poison messages, retries with backoff, dead letters, a consumer killed
//! mid-message, a broker outage, a graceful stop, and bursts applied in
//! shared transactions.

use helpdesk_kit::tasks::TaskContext;
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use helpdesk_events::{
    amqp,
    consumer::{self, ConsumerConfig, Decoded, Handler, HandlerError, Meta},
};
use helpdesk_proto::support::v1 as pb;
use helpdesk_testkit::{TcpProxy, TestDb, amqp_url, delete_broker_objects, unique_exchange};
use lapin::{BasicProperties, options::BasicGetOptions, options::BasicPublishOptions};
use prost::{Message, Name};
use sqlx::{PgConnection, migrate::Migrator};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use uuid::Uuid;

/// Records effects in a table and misbehaves on request, by subject.
#[derive(Default)]
struct Recorder {
    attempts: Mutex<Vec<(String, u32, Instant)>>,
    fail_first: AtomicU32,
    release: Notify,
    entered: Notify,
    /// Deliveries that reached the blocking handler.
    in_hand: AtomicU32,
}

impl Handler for Recorder {
    type Event = pb::TicketCreated;

    fn decode(&self, message_type: &str, payload: &[u8]) -> Decoded<Self::Event> {
        match consumer::decode_as::<pb::TicketCreated>(message_type, payload) {
            Some(Ok(event)) if event.ticket.as_ref().is_some_and(|t| t.subject == "skip") => {
                Decoded::Skip
            }
            Some(Ok(event)) => Decoded::Event(event),
            Some(Err(why)) => Decoded::Invalid(why),
            None => Decoded::Unknown,
        }
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        meta: &Meta,
        event: Self::Event,
    ) -> Result<(), HandlerError> {
        let subject = event.ticket.map(|t| t.subject).unwrap_or_default();
        self.attempts
            .lock()
            .unwrap()
            .push((subject.clone(), meta.attempt, Instant::now()));
        sqlx::query("INSERT INTO effects (event_id, subject) VALUES ($1, $2)")
            .bind(meta.event_id)
            .bind(&subject)
            .execute(&mut *tx)
            .await?;
        match subject.as_str() {
            "always-fails" => Err(HandlerError::Transient(anyhow::anyhow!(
                "dependency unavailable"
            ))),
            "flaky" if self.fail_first.fetch_sub(1, Ordering::SeqCst) > 0 => {
                Err(HandlerError::Transient(anyhow::anyhow!("not yet")))
            }
            "rejected" => Err(HandlerError::Permanent(anyhow::anyhow!(
                "ticket unknown here"
            ))),
            "panics" => panic!("boom"),
            "block" => {
                self.in_hand.fetch_add(1, Ordering::SeqCst);
                self.entered.notify_one();
                self.release.notified().await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

struct Fixture {
    db: TestDb,
    config: ConsumerConfig,
    handler: Arc<Recorder>,
    publisher: lapin::Channel,
    _connection: lapin::Connection,
}

impl Fixture {
    async fn new(url: Option<String>) -> Self {
        helpdesk_kit::telemetry::init_for_tests();
        let db = TestDb::create(&Migrator::with_migrations(Vec::new()))
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE effects (event_id uuid NOT NULL, subject text NOT NULL, \
             txid bigint NOT NULL DEFAULT txid_current())",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let exchange = unique_exchange();
        let queue = format!("test.consumer.{}", Uuid::new_v4().simple());
        let mut config = ConsumerConfig::new(
            &url.unwrap_or_else(amqp_url),
            &exchange,
            &queue,
            &["ticket.created"],
        );
        config.max_attempts = 3;
        config.retry_delay = Duration::from_millis(60);
        consumer::declare(&ConsumerConfig {
            amqp_url: amqp_url(),
            ..config.clone()
        })
        .await
        .unwrap();
        let connection = amqp::connect(&amqp_url(), "test-publisher").await.unwrap();
        let publisher = connection.create_channel().await.unwrap();
        Self {
            db,
            config,
            handler: Arc::new(Recorder::default()),
            publisher,
            _connection: connection,
        }
    }

    fn start(&self) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(consumer::run(
            self.db.pool.clone(),
            self.config.clone(),
            self.handler.clone(),
            TaskContext::detached(stop.clone()),
        ));
        (stop, task)
    }

    async fn publish_raw(&self, event_id: &str, message_type: &str, payload: &[u8]) {
        self.publisher
            .basic_publish(
                self.config.exchange.as_str().into(),
                "ticket.created".into(),
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default()
                    .with_message_id(event_id.into())
                    .with_type(message_type.into())
                    .with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Publishes a TicketCreated with `subject`; returns its event id.
    async fn publish(&self, subject: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.publish_with_id(id, subject).await;
        id
    }

    async fn publish_with_id(&self, id: Uuid, subject: &str) {
        let event = pb::TicketCreated {
            header: Some(pb::EventHeader {
                event_id: id.to_string(),
                ..Default::default()
            }),
            ticket: Some(pb::TicketSnapshot {
                subject: subject.into(),
                ..Default::default()
            }),
        };
        self.publish_raw(
            &id.to_string(),
            pb::TicketCreated::full_name().as_str(),
            &event.encode_to_vec(),
        )
        .await;
    }

    async fn effects(&self, subject: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects WHERE subject = $1")
            .bind(subject)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Waits (bounded) until `subject` has `n` committed effects.
    async fn wait_effects(&self, subject: &str, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.effects(subject).await < n {
            assert!(Instant::now() < deadline, "{subject}: expected {n} effects");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Takes the next dead letter (bounded wait).
    async fn dead_letter(&self) -> lapin::message::BasicGetMessage {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self
                .publisher
                .basic_get(
                    self.config.dead_letter_queue().as_str().into(),
                    BasicGetOptions { no_ack: true },
                )
                .await
                .unwrap();
            if let Some(message) = got {
                return message;
            }
            assert!(Instant::now() < deadline, "nothing was dead-lettered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn queue_depth(&self, queue: &str) -> u32 {
        self.declared(queue).await.message_count()
    }

    async fn consumers(&self, queue: &str) -> u32 {
        self.declared(queue).await.consumer_count()
    }

    async fn declared(&self, queue: &str) -> lapin::Queue {
        self.publisher
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let c = &self.config;
        let mut queues = vec![c.queue.clone(), c.dead_letter_queue()];
        queues.extend((1..c.max_attempts).map(|n| format!("{}.retry.{n}", c.queue)));
        delete_broker_objects(Some(c.exchange.clone()), queues);
    }
}

fn reason(message: &lapin::message::BasicGetMessage) -> String {
    amqp::header_str(
        message.delivery.properties.headers().as_ref(),
        "x-death-reason",
    )
    .unwrap_or_default()
}

#[tokio::test]
async fn a_duplicated_delivery_has_no_second_effect() {
    let f = Fixture::new(None).await;
    let (stop, task) = f.start();
    let id = Uuid::now_v7();
    f.publish_with_id(id, "dup").await;
    f.publish_with_id(id, "dup").await;
    f.publish("after").await;
    f.wait_effects("after", 1).await;
    assert_eq!(f.effects("dup").await, 1);
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = $1")
            .bind(id)
            .fetch_one(&f.db.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 1);
    stop.cancel();
    task.await.unwrap();
    assert_eq!(
        f.queue_depth(&f.config.queue).await,
        0,
        "both copies were acked"
    );
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_with_a_reason_and_the_queue_keeps_flowing() {
    let f = Fixture::new(None).await;
    let (stop, task) = f.start();
    f.publish_raw(&Uuid::now_v7().to_string(), "support.v1.NoSuchEvent", b"x")
        .await;
    f.publish_raw(
        &Uuid::now_v7().to_string(),
        pb::TicketCreated::full_name().as_str(),
        b"\xff\xff\xff",
    )
    .await;
    f.publish_raw("not-a-uuid", pb::TicketCreated::full_name().as_str(), b"")
        .await;
    f.publish("rejected").await;
    f.publish("fine").await;
    f.wait_effects("fine", 1).await;

    let mut reasons = Vec::new();
    for _ in 0..4 {
        reasons.push(reason(&f.dead_letter().await));
    }
    assert!(
        reasons[0].contains("unknown event type support.v1.NoSuchEvent"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("undecodable"), "{reasons:?}");
    assert!(reasons[2].contains("malformed envelope"), "{reasons:?}");
    assert!(
        reasons[3].contains("rejected: ticket unknown here"),
        "{reasons:?}"
    );
    // A permanent failure is not retried, and its effect was rolled back.
    assert_eq!(f.effects("rejected").await, 0);
    assert_eq!(
        f.handler
            .attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.0 == "rejected")
            .count(),
        1
    );
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn failing_handlers_are_retried_with_growing_delays_then_dead_lettered() {
    let f = Fixture::new(None).await;
    f.handler.fail_first.store(2, Ordering::SeqCst);
    let (stop, task) = f.start();
    f.publish("always-fails").await;
    f.publish("flaky").await;

    let dead = f.dead_letter().await;
    assert!(
        reason(&dead).contains("gave up after 3 attempts: dependency unavailable"),
        "{}",
        reason(&dead)
    );
    assert_eq!(
        amqp::header_int(dead.delivery.properties.headers().as_ref(), "x-attempt"),
        Some(3)
    );
    assert_eq!(
        amqp::header_str(
            dead.delivery.properties.headers().as_ref(),
            "x-original-routing-key"
        )
        .as_deref(),
        Some("ticket.created")
    );
    // A transient failure eventually succeeds, once.
    f.wait_effects("flaky", 1).await;
    assert_eq!(
        f.effects("always-fails").await,
        0,
        "failed attempts left no effect"
    );

    let attempts = f.handler.attempts.lock().unwrap().clone();
    let always: Vec<_> = attempts.iter().filter(|a| a.0 == "always-fails").collect();
    assert_eq!(
        always.iter().map(|a| a.1).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let first_gap = always[1].2 - always[0].2;
    let second_gap = always[2].2 - always[1].2;
    assert!(
        first_gap >= Duration::from_millis(60),
        "first retry after {first_gap:?}"
    );
    assert!(
        second_gap >= Duration::from_millis(120),
        "second retry after {second_gap:?}"
    );
    assert_eq!(attempts.iter().filter(|a| a.0 == "flaky").count(), 3);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn lanes_handle_events_side_by_side_on_one_connection() {
    let mut f = Fixture::new(None).await;
    f.config.concurrency = 2;
    let (stop, task) = f.start();
    // Both lanes consuming before anything is published (the broker hands
    // messages round-robin to the consumers it has).
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.consumers(&f.config.queue).await < 2 {
        assert!(Instant::now() < deadline, "two lanes never consumed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f.publish("block").await;
    f.publish("block").await;
    // Both in hand at once: with one lane the second would wait its turn.
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.handler.in_hand.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "the second event never went in hand"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for done in 1..=2 {
        f.handler.release.notify_one();
        f.wait_effects("block", done).await;
    }
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_skipped_event_is_acked_without_a_transaction() {
    let f = Fixture::new(None).await;
    let (stop, task) = f.start();
    let skipped = f.publish("skip").await;
    f.publish("after").await;
    // One lane, in order: once "after" is applied, "skip" was settled.
    f.wait_effects("after", 1).await;
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = $1")
            .bind(skipped)
            .fetch_one(&f.db.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 0, "no dedup row: no transaction ran");
    assert_eq!(f.queue_depth(&f.config.queue).await, 0);
    assert_eq!(f.queue_depth(&f.config.dead_letter_queue()).await, 0);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_consumer_killed_mid_message_loses_nothing() {
    let f = Fixture::new(None).await;
    let (_stop, task) = f.start();
    f.publish("block").await;
    f.handler.entered.notified().await;
    // Killed hard: no ack, the transaction is dropped.
    task.abort();
    let _ = task.await;
    assert_eq!(f.effects("block").await, 0);

    let replacement = Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer::run(
        f.db.pool.clone(),
        f.config.clone(),
        replacement.clone(),
        TaskContext::detached(stop.clone()),
    ));
    replacement.entered.notified().await;
    replacement.release.notify_one();
    f.wait_effects("block", 1).await;
    stop.cancel();
    task.await.unwrap();
    assert_eq!(f.effects("block").await, 1);
}

#[tokio::test]
async fn the_consumer_reconnects_after_the_broker_goes_away() {
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().unwrap())
        .await
        .unwrap();
    let f = Fixture::new(Some(format!("amqp://guest:guest@{}/%2f", proxy.addr))).await;
    let (stop, task) = f.start();
    f.publish("before").await;
    f.wait_effects("before", 1).await;

    proxy.down().await;
    f.publish("during").await;
    // The message waits in the queue, ready and untaken, while the consumer
    // cannot reach the broker: nothing can have applied it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.queue_depth(&f.config.queue).await != 1 {
        assert!(
            Instant::now() < deadline,
            "the message never sat in the queue"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.effects("during").await, 0);
    proxy.up();
    f.wait_effects("during", 1).await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn shutdown_finishes_the_message_in_hand() {
    let f = Fixture::new(None).await;
    let (stop, task) = f.start();
    f.publish("block").await;
    f.handler.entered.notified().await;
    stop.cancel();
    f.handler.release.notify_one();
    task.await.unwrap();
    // Committed and acked after the stop signal: had the stop abandoned the
    // message in hand, its effect would be missing and the message requeued.
    assert_eq!(f.effects("block").await, 1);
    assert_eq!(
        f.queue_depth(&f.config.queue).await,
        0,
        "the message was acked"
    );
}

#[tokio::test]
async fn a_panicking_handler_dead_letters_its_event_and_consumption_goes_on() {
    let f = Fixture::new(None).await;
    let (stop, task) = f.start();
    f.publish("panics").await;
    f.publish("fine").await;
    f.wait_effects("fine", 1).await;
    let dead = f.dead_letter().await;
    assert!(
        reason(&dead).contains("handler panicked: boom"),
        "{}",
        reason(&dead)
    );
    assert_eq!(f.effects("panics").await, 0);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn our_database_away_pauses_consumption_without_spending_attempts() {
    let f = Fixture::new(None).await;
    // The consumer's own word that it met the outage (a current-thread
    // runtime: the spawned consumer logs on this thread).
    let pauses = LogCounter::new("database unavailable, pausing consumption");
    let _logs =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(pauses.clone()));
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap())
        .await
        .unwrap();
    let url = f.db.url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    assert_ne!(
        url, f.db.url,
        "the test database must be reached through the proxy"
    );
    let pool = helpdesk_kit::db::connect(&url, 4).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer::run(
        pool,
        f.config.clone(),
        f.handler.clone(),
        TaskContext::detached(stop.clone()),
    ));
    f.publish("before").await;
    f.wait_effects("before", 1).await;

    proxy.down().await;
    f.publish("during").await;
    // Wait until the consumer has met the outage more times than the event
    // has attempts (3): had those counted, it would be dead-lettered by now.
    let deadline = Instant::now() + Duration::from_secs(20);
    while pauses.count() <= 3 {
        assert!(Instant::now() < deadline, "the consumer never paused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        f.queue_depth(&f.config.dead_letter_queue()).await,
        0,
        "dead-lettered during the outage"
    );
    proxy.up();
    f.wait_effects("during", 1).await;
    assert_eq!(f.queue_depth(&f.config.dead_letter_queue()).await, 0);
    stop.cancel();
    task.await.unwrap();
}

/// Counts log events whose message is exactly `message`.
#[derive(Clone)]
struct LogCounter {
    message: &'static str,
    seen: Arc<AtomicU32>,
}

impl LogCounter {
    fn new(message: &'static str) -> Self {
        Self {
            message,
            seen: Arc::default(),
        }
    }

    fn count(&self) -> u32 {
        self.seen.load(Ordering::SeqCst)
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Message<'a>(&'a str, bool);
        impl tracing::field::Visit for Message<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" && format!("{value:?}") == self.0 {
                    self.1 = true;
                }
            }
        }
        let mut matched = Message(self.message, false);
        event.record(&mut matched);
        if matched.1 {
            self.seen.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Reads one consumer series for the fixture's queue from the registry.
fn series(f: &Fixture, name: &str, extra: &str) -> f64 {
    let exposition = helpdesk_kit::metrics::encode();
    helpdesk_kit::metrics::value(
        &exposition,
        &format!(r#"{name}{{queue="{}"{extra}}}"#, f.config.queue),
    )
    .unwrap_or(0.0)
}

/// Waits (bounded) until `read` returns `want`.
async fn wait_series(what: &str, want: f64, read: impl Fn() -> f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = read();
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what} is {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn consumed_retried_and_dead_lettered_deliveries_move_their_series() {
    let f = Fixture::new(None).await;
    f.handler.fail_first.store(1, Ordering::SeqCst);
    let (stop, task) = f.start();
    f.publish("fine").await;
    f.publish("flaky").await;
    f.publish("rejected").await;
    f.publish_raw(&Uuid::now_v7().to_string(), "support.v1.NoSuchEvent", b"x")
        .await;
    f.wait_effects("fine", 1).await;
    f.wait_effects("flaky", 1).await;

    // "fine", and "flaky" on its second attempt.
    wait_series("consumed", 2.0, || series(&f, "events_consumed_total", "")).await;
    assert_eq!(series(&f, "events_retried_total", ""), 1.0);
    wait_series("dead-lettered (rejected)", 1.0, || {
        series(&f, "events_dead_lettered_total", r#",reason="rejected""#)
    })
    .await;
    assert_eq!(
        series(
            &f,
            "events_dead_lettered_total",
            r#",reason="unknown_type""#
        ),
        1.0
    );
    // Every settlement was timed: 2 consumed, 1 retried, 2 dead-lettered.
    wait_series("handling count", 5.0, || {
        series(&f, "events_handling_seconds_count", "")
    })
    .await;
    // The consumer samples its dead-letter queue every few seconds.
    wait_series("dead-letter depth", 2.0, || {
        series(&f, "events_dead_letter_queue_messages", "")
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

/// Publishes `n` events of `subject` before the consumer starts, so its lane
/// holds many at once.
async fn burst(f: &Fixture, subject: &str, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(f.publish(subject).await);
    }
    ids
}

async fn transactions(f: &Fixture, subject: &str) -> i64 {
    sqlx::query_scalar("SELECT count(DISTINCT txid) FROM effects WHERE subject = $1")
        .bind(subject)
        .fetch_one(&f.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_burst_is_applied_in_shared_transactions_each_event_once() {
    let mut f = Fixture::new(None).await;
    f.config.batch = 16;
    let ids = burst(&f, "burst", 48).await;
    // A copy of one event inside the burst: recorded once, acked twice.
    f.publish_with_id(ids[5], "burst").await;
    let (stop, task) = f.start();
    f.wait_effects("burst", 48).await;
    let shared = transactions(&f, "burst").await;
    assert!(
        shared < 48,
        "48 waiting events took {shared} transactions: none was batched"
    );
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&f.db.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 48);
    stop.cancel();
    task.await.unwrap();
    assert_eq!(
        f.effects("burst").await,
        48,
        "the copy had no second effect"
    );
    assert_eq!(
        f.queue_depth(&f.config.queue).await,
        0,
        "every delivery was acked"
    );
}

#[tokio::test]
async fn a_bad_event_in_a_batch_costs_only_itself() {
    let mut f = Fixture::new(None).await;
    f.config.batch = 16;
    f.handler.fail_first.store(1, Ordering::SeqCst);
    burst(&f, "before", 6).await;
    f.publish("rejected").await;
    f.publish("flaky").await;
    f.publish("panics").await;
    burst(&f, "after", 6).await;
    let (stop, task) = f.start();
    f.wait_effects("before", 6).await;
    f.wait_effects("after", 6).await;
    f.wait_effects("flaky", 1).await;
    let mut reasons = [
        reason(&f.dead_letter().await),
        reason(&f.dead_letter().await),
    ];
    reasons.sort();
    assert!(reasons[0].contains("handler panicked: boom"), "{reasons:?}");
    assert!(
        reasons[1].contains("rejected: ticket unknown here"),
        "{reasons:?}"
    );
    // The failed batch was rolled back: no event took effect twice, and
    // the rejected one not at all.
    assert_eq!(f.effects("before").await, 6);
    assert_eq!(f.effects("after").await, 6);
    assert_eq!(f.effects("rejected").await, 0);
    assert_eq!(f.effects("flaky").await, 1);
    stop.cancel();
    task.await.unwrap();
}
