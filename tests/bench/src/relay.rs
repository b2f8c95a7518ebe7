//! Relay throughput and latency against raw publish-with-confirms.
//!
//! Both sides publish the same 10,000 protobuf payloads to a durable topic
//! exchange bound to one durable queue (so the broker persists before it
//! confirms), in pipelined batches of 500: the baseline from memory, the
//! relay from the outbox table (select, publish, confirm, mark sent).

use helpdesk_kit::tasks::TaskContext;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use helpdesk_events::{
    amqp,
    relay::{self, RelayConfig},
};
use helpdesk_proto::support::v1 as pb;
use helpdesk_testkit::{TestDb, amqp_url, delete_broker_objects, unique_exchange};
use lapin::{
    BasicProperties,
    options::{
        BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
        QueueDeclareOptions, QueuePurgeOptions,
    },
    types::FieldTable,
};
use prost::Message;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::report::{Latencies, rate, row};

const EVENTS: usize = 10_000;
const BATCH: usize = 500;
const LATENCY_SAMPLES: usize = 300;

fn payload(i: usize) -> Vec<u8> {
    pb::TicketCreated {
        header: Some(pb::EventHeader {
            event_id: Uuid::now_v7().to_string(),
            actor_id: "bench".into(),
            actor_role: "service".into(),
            ..Default::default()
        }),
        ticket: Some(pb::TicketSnapshot {
            ticket_id: Uuid::now_v7().to_string(),
            human_id: format!("TKT-BEN{:03}", i % 1000),
            subject: "Driver took a long detour on the way to the airport".into(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

pub async fn run() -> anyhow::Result<()> {
    let db = TestDb::create(&Migrator::with_migrations(Vec::new())).await?;
    let exchange = unique_exchange();
    let queue = format!("bench.{}", Uuid::new_v4().simple());
    let connection = amqp::connect(&amqp_url(), "bench").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    amqp::declare_exchange(&channel, &exchange).await?;
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let payloads: Vec<Vec<u8>> = (0..EVENTS).map(payload).collect();

    println!(
        "relay benchmark: {EVENTS} events of {} bytes, batches of {BATCH}",
        payloads[0].len()
    );

    // Baseline: the broker's own rate for persistent, confirmed publishes.
    let started = Instant::now();
    for batch in payloads.chunks(BATCH) {
        let mut confirms = Vec::with_capacity(batch.len());
        for body in batch {
            confirms.push(
                channel
                    .basic_publish(
                        exchange.as_str().into(),
                        "ticket.created".into(),
                        BasicPublishOptions::default(),
                        body,
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await?,
            );
        }
        for confirm in confirms {
            anyhow::ensure!(confirm.await?.is_ack());
        }
    }
    let raw = started.elapsed();
    channel
        .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
        .await?;

    // The relay draining a backlog of the same events.
    for (i, batch) in payloads.chunks(1000).enumerate() {
        let mut tx = db.pool.begin().await?;
        for (j, body) in batch.iter().enumerate() {
            sqlx::query(
                "INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload)
                 VALUES ($1, $2, 'ticket.created', 'support.v1.TicketCreated', $3)",
            )
            .bind(Uuid::now_v7())
            .bind(Uuid::from_u128((i * 1000 + j) as u128 % 97))
            .bind(body)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    }
    let mut config = RelayConfig::new(&amqp_url(), &exchange, "bench-relay");
    config.batch_size = BATCH as i64;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let waker = helpdesk_events::outbox::Waker::new();
    let relay_task = tokio::spawn(relay::run(
        db.pool.clone(),
        config,
        waker.clone(),
        TaskContext::detached(stop.clone()),
    ));
    loop {
        if helpdesk_events::outbox::backlog(&db.pool).await?.unsent == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drained = started.elapsed();
    channel
        .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
        .await?;

    println!("\nthroughput");
    row(
        "raw publish + confirm (baseline)",
        format!(
            "{:>9.0} events/s  ({:.2} s)",
            rate(EVENTS, raw),
            raw.as_secs_f64()
        ),
    );
    row(
        "outbox relay, 10,000-row backlog",
        format!(
            "{:>9.0} events/s  ({:.2} s)",
            rate(EVENTS, drained),
            drained.as_secs_f64()
        ),
    );
    row(
        "relay / baseline",
        format!(
            "{:>9.0} %",
            100.0 * raw.as_secs_f64() / drained.as_secs_f64()
        ),
    );

    // Latency: one committed event at a time, commit → delivered to a consumer.
    let consumer_channel = connection.create_channel().await?;
    let mut deliveries = consumer_channel
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut relayed = Vec::with_capacity(LATENCY_SAMPLES);
    for body in payloads.iter().take(LATENCY_SAMPLES) {
        let mut tx = db.pool.begin().await?;
        sqlx::query(
            "INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload)
             VALUES ($1, $2, 'ticket.created', 'support.v1.TicketCreated', $3)",
        )
        .bind(Uuid::now_v7())
        .bind(Uuid::now_v7())
        .bind(body)
        .execute(&mut *tx)
        .await?;
        waker.commit(tx).await?;
        let committed = Instant::now();
        deliveries
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("consumer ended"))??;
        relayed.push(committed.elapsed());
    }
    // Baseline: publish with confirm, then receive, with no database at all.
    let mut direct = Vec::with_capacity(LATENCY_SAMPLES);
    for body in payloads.iter().take(LATENCY_SAMPLES) {
        let started = Instant::now();
        channel
            .basic_publish(
                exchange.as_str().into(),
                "ticket.created".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?
            .await?;
        deliveries
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("consumer ended"))??;
        direct.push(started.elapsed());
    }
    println!("\nlatency to a consumer");
    row(
        "publish + confirm → delivered (baseline)",
        Latencies::new(direct).summary(),
    );
    row(
        "commit → relay → delivered",
        Latencies::new(relayed).summary(),
    );

    stop.cancel();
    relay_task.await?;
    let _ = connection.close(200, "done".into()).await;
    delete_broker_objects(Some(exchange), vec![queue]);
    Ok(())
}
