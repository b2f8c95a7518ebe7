//! The outbox relay against the real broker: one leader among replicas,
//! order kept, a standby taking over, and pruning of sent rows.

use helpdesk_kit::tasks::TaskContext;
use std::time::{Duration, Instant};

use chrono::Utc;
use helpdesk_events::{
    outbox::{self, Waker},
    relay::{self, RelayConfig},
};
use helpdesk_proto::support::v1 as pb;
use helpdesk_testkit::{EventTap, TestDb, amqp_url, delete_broker_objects, unique_exchange};
use sqlx::{PgPool, migrate::Migrator};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn insert(pool: &PgPool, waker: &Waker, from: usize, to: usize) {
    let mut tx = pool.begin().await.unwrap();
    for i in from..to {
        let event = pb::TicketCreated {
            header: Some(pb::EventHeader {
                event_id: Uuid::now_v7().to_string(),
                ..Default::default()
            }),
            ticket: Some(pb::TicketSnapshot {
                subject: format!("{i}"),
                ..Default::default()
            }),
        };
        outbox::enqueue(&mut tx, Uuid::now_v7(), Uuid::now_v7(), &event)
            .await
            .unwrap();
    }
    waker.commit(tx).await.unwrap();
}

fn subjects(received: &[helpdesk_testkit::Received]) -> Vec<usize> {
    received
        .iter()
        .map(|r| {
            r.decode::<pb::TicketCreated>()
                .ticket
                .unwrap()
                .subject
                .parse()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn one_of_several_relays_publishes_in_order_and_a_standby_takes_over() {
    helpdesk_kit::telemetry::init_for_tests();
    let db = TestDb::create(&Migrator::with_migrations(Vec::new()))
        .await
        .unwrap();
    let exchange = unique_exchange();
    let mut tap = EventTap::start(&exchange, "#").await.unwrap();
    let mut config = RelayConfig::new(&amqp_url(), &exchange, "relay-test");
    config.standby_poll = Duration::from_millis(50);
    config.batch_size = 64;

    // Two relay replicas, and writers in a third process whose wake-ups can
    // only reach the leader as NOTIFY; a long fallback poll proves it.
    config.fallback_poll = Duration::from_secs(30);
    let (first_stop, second_stop) = (CancellationToken::new(), CancellationToken::new());
    let first = tokio::spawn(relay::run(
        db.pool.clone(),
        config.clone(),
        Waker::new(),
        TaskContext::detached(first_stop.clone()),
    ));
    let second = tokio::spawn(relay::run(
        db.pool.clone(),
        config.clone(),
        Waker::new(),
        TaskContext::detached(second_stop.clone()),
    ));
    let writers_waker = Waker::new();
    let forwarding = CancellationToken::new();
    let forward = tokio::spawn(
        writers_waker
            .clone()
            .forward(db.pool.clone(), forwarding.clone()),
    );

    // Concurrent writers; the outbox id order is the commit order per writer.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (pool, waker) = (db.pool.clone(), writers_waker.clone());
            tokio::spawn(async move {
                for batch in 0..5 {
                    let from = w * 1000 + batch * 50;
                    insert(&pool, &waker, from, from + 50).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let received = subjects(&tap.take(1000).await);
    tap.assert_quiet(Duration::from_millis(300)).await;
    // Exactly once (no crash), and each writer's events in its commit order.
    let mut sorted = received.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 1000);
    for w in 0..4 {
        let mine: Vec<usize> = received.iter().copied().filter(|s| s / 1000 == w).collect();
        assert!(
            mine.windows(2).all(|p| p[0] < p[1]),
            "writer {w} out of order"
        );
    }

    // Stop whichever leads; the other takes over and publishes what follows.
    first_stop.cancel();
    first.await.unwrap();
    insert(&db.pool, &writers_waker, 5000, 5010).await;
    let started = Instant::now();
    let after = subjects(&tap.take(10).await);
    assert_eq!(after, (5000..5010).collect::<Vec<_>>());
    assert!(started.elapsed() < Duration::from_secs(5));
    second_stop.cancel();
    second.await.unwrap();
    forwarding.cancel();
    forward.await.unwrap();

    assert_eq!(outbox::backlog(&db.pool).await.unwrap().unsent, 0);
    // Sent rows go once they are older than the retention.
    assert_eq!(
        outbox::prune(&db.pool, Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        outbox::prune(&db.pool, Utc::now() + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        1010
    );
    delete_broker_objects(Some(exchange), Vec::new());
}

#[tokio::test]
async fn events_committed_while_the_relay_is_down_are_published_when_it_starts() {
    helpdesk_kit::telemetry::init_for_tests();
    let db = TestDb::create(&Migrator::with_migrations(Vec::new()))
        .await
        .unwrap();
    let exchange = unique_exchange();
    let mut tap = EventTap::start(&exchange, "#").await.unwrap();
    let waker = Waker::new();
    insert(&db.pool, &waker, 0, 25).await;
    let backlog = outbox::backlog(&db.pool).await.unwrap();
    assert_eq!(backlog.unsent, 25);
    assert!(backlog.oldest.is_some());
    // Rolled-back changes leave no event behind.
    {
        let mut tx = db.pool.begin().await.unwrap();
        let event = pb::TicketCreated::default();
        outbox::enqueue(&mut tx, Uuid::now_v7(), Uuid::now_v7(), &event)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
    }
    let stop = CancellationToken::new();
    let task = tokio::spawn(relay::run(
        db.pool.clone(),
        RelayConfig::new(&amqp_url(), &exchange, "relay-test"),
        waker.clone(),
        TaskContext::detached(stop.clone()),
    ));
    let received = tap.take(25).await;
    assert_eq!(subjects(&received), (0..25).collect::<Vec<_>>());
    let first = &received[0];
    assert_eq!(first.content_type, "application/x-protobuf");
    assert!(first.persistent);
    assert_eq!(first.message_type, "support.v1.TicketCreated");
    assert!(Uuid::parse_str(&first.message_id).is_ok());
    tap.assert_quiet(Duration::from_millis(300)).await;
    stop.cancel();
    task.await.unwrap();
    delete_broker_objects(Some(exchange), Vec::new());
}

/// The relay reads unsent rows with a plain index scan even when the
/// planner expects fewer than a batch (then it prefers a bitmap scan and a
/// sort): a bitmap scan visits the heap of every sent row still in
/// `outbox_unsent` on every read, and never marks their entries dead.
#[tokio::test]
async fn the_relay_reads_unsent_rows_by_a_plain_index_scan() {
    let db = TestDb::create(&Migrator::with_migrations(Vec::new()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload)
         SELECT gen_random_uuid(), gen_random_uuid(), 'ticket.created', 'x', '\\x00'
         FROM generate_series(1, 20000)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // As under load on a young table: fewer unsent rows than a batch,
    // behind many sent ones whose index entries wait for a vacuum, and no
    // ANALYZE yet (the planner then expects about a hundred matches).
    sqlx::query("UPDATE outbox SET sent_at = now() WHERE id <= 19900")
        .execute(&db.pool)
        .await
        .unwrap();
    let explain =
        "EXPLAIN SELECT id, payload FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 500";

    let mut relay = relay::connect(&db.pool).await.unwrap();
    let plan: Vec<String> = sqlx::query_scalar(explain)
        .fetch_all(&mut relay)
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("Index Scan using outbox_unsent"), "{plan}");
    assert!(!plan.contains("Bitmap"), "{plan}");
}
