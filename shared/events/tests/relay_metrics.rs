//! The relay's series (a test binary of its own: the backlog gauges are
//! process-wide): the backlog is sampled while the broker is unreachable,
//! and publishing moves the counter and empties the backlog.

use std::time::{Duration, Instant};

use helpdesk_events::{
    outbox::{self, Waker},
    relay::{self, RelayConfig},
};
use helpdesk_kit::{metrics, tasks::TaskContext};
use helpdesk_proto::support::v1 as pb;
use helpdesk_testkit::{EventTap, TestDb, amqp_url, delete_broker_objects, unique_exchange};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn read(series: &str) -> f64 {
    metrics::value(&metrics::encode(), series).unwrap_or(0.0)
}

async fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "{what} never held:\n{}",
            metrics::encode()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_backlog_is_visible_while_the_broker_is_away_and_publishing_moves_the_counter() {
    helpdesk_kit::telemetry::init_for_tests();
    let db = TestDb::create(&Migrator::with_migrations(Vec::new()))
        .await
        .unwrap();
    let exchange = unique_exchange();
    let waker = Waker::new();
    let mut tx = db.pool.begin().await.unwrap();
    for _ in 0..3 {
        let event = pb::TicketCreated {
            header: Some(pb::EventHeader {
                event_id: Uuid::now_v7().to_string(),
                ..Default::default()
            }),
            ..Default::default()
        };
        outbox::enqueue(&mut tx, Uuid::now_v7(), Uuid::now_v7(), &event)
            .await
            .unwrap();
    }
    waker.commit(tx).await.unwrap();
    let published_before = read("outbox_published_total");
    let confirms_before = read("outbox_publish_confirm_seconds_count");

    // Nothing listens on port 1: the relay cannot reach the broker.
    let away = RelayConfig::new(
        "amqp://guest:guest@127.0.0.1:1/%2f",
        &exchange,
        "relay-test",
    );
    let stop = CancellationToken::new();
    let relay = tokio::spawn(relay::run(
        db.pool.clone(),
        away,
        waker.clone(),
        TaskContext::detached(stop.clone()),
    ));
    wait_until("3 unsent events", || read("outbox_unsent_events") == 3.0).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(read("outbox_published_total"), published_before);
    stop.cancel();
    relay.await.unwrap();

    let mut tap = EventTap::start(&exchange, "#").await.unwrap();
    let stop = CancellationToken::new();
    let relay = tokio::spawn(relay::run(
        db.pool.clone(),
        RelayConfig::new(&amqp_url(), &exchange, "relay-test"),
        waker,
        TaskContext::detached(stop.clone()),
    ));
    assert_eq!(tap.take(3).await.len(), 3);
    wait_until("3 published", || {
        read("outbox_published_total") == published_before + 3.0
    })
    .await;
    assert_eq!(
        read("outbox_publish_confirm_seconds_count"),
        confirms_before + 3.0
    );
    wait_until("an empty backlog", || {
        read("outbox_unsent_events") == 0.0 && read("outbox_oldest_unsent_age_seconds") == 0.0
    })
    .await;
    stop.cancel();
    relay.await.unwrap();
    delete_broker_objects(Some(exchange), Vec::new());
}
