//! Assignment under intake: CreateTicket at 32 concurrent callers for a
//! minute (`BENCH_SECS` to change), with agents that have room, the ticket
//! service and one assignment replica in-process on the same machine.
//! Printed in the same run: the create rate, the time from a ticket's
//! creation to its `ticket.assigned` (both stamped by the ticket service),
//! split at each ticket's decision (the assignment service's `moves`):
//! creation → decided is the relay, the broker, the consumer and the
//! drainer; decided → assigned is the mover and the ticket service's
//! BatchAssignTickets. And the backlog (created but not yet assigned)
//! sampled every 500 ms.
//!
//! `BENCH_RATE` paces the callers (creates per second in all). The
//! assignment replica's consumer is configured as deployed, from the
//! environment (`CONSUMER_CONCURRENCY`, `CONSUMER_BATCH`; docs/operations.md).
//!
//! Run it release-built: `cargo run --release -p helpdesk-bench -- assignment`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use assignment_service::{domain::Tier, startup::Application as Assignment};
use chrono::Utc;
use helpdesk_events::consumer::{self, ConsumerConfig};
use helpdesk_kit::{
    clock::{SystemClock, from_timestamp},
    config::CommonConfig,
};
use helpdesk_proto::support::v1::{self as pb};
use helpdesk_testkit::{EventTap, TestDb, amqp_url, delete_broker_objects};
use platform_standin::SeedUser;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{
    report::{Latencies, ms, row},
    world,
};

const POOL: u32 = 10;
const CONCURRENCY: usize = 32;
/// Room for 100,000 tickets (1,000 each): a minute at 900 creates/s filled 40.
const AGENTS: usize = 100;

fn staff(n: usize) -> SeedUser {
    SeedUser {
        id: Uuid::new_v4(),
        display_name: format!("Agent {n}"),
        email: format!("agent{n}@example.com"),
        locale: "en-GB".into(),
        push_tokens: Vec::new(),
        active: true,
        is_staff: true,
        create_time: Utc::now(),
    }
}

pub async fn run() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);

    // The stand-in, with AGENTS staff who together have room for every
    // ticket of the run (capacity 1,000 each).
    let (standin_addr, standin) = world::standin((0..AGENTS).map(staff).collect()).await?;
    let tickets = world::tickets(&standin_addr, POOL).await?;
    let (ticket_addr, exchange) = (tickets.addr.clone(), tickets.exchange.clone());

    let assignment_db = TestDb::create(&assignment_service::MIGRATOR).await?;
    let queue = format!("bench-assignment.{}", Uuid::new_v4().simple());
    // As deployed (`CONSUMER_CONCURRENCY`, `CONSUMER_BATCH`, ... apply).
    let consumer_config = ConsumerConfig {
        amqp_url: amqp_url(),
        exchange: exchange.clone(),
        ..ConsumerConfig::from_env(&queue, &assignment_service::app::consumer::BINDINGS)?
    };
    consumer::declare(&consumer_config).await?;
    let (lanes, batch) = (consumer_config.concurrency, consumer_config.batch);
    let assignment = Assignment::build(
        assignment_service::config::Config {
            common: CommonConfig {
                database_max_connections: 2 * POOL,
                ..world::common(&assignment_db.url, POOL)?
            },
            accounts_addr: standin_addr,
            ticket_addr: ticket_addr.clone(),
            call_timeout: Duration::from_secs(2),
            consumer_concurrency: consumer_config.concurrency,
            consumer: consumer_config,
            default_capacity: 1000,
            roster_interval: Duration::from_secs(3600),
            reconcile_interval: Duration::from_secs(3600),
            redistribute_on_unavailable: true,
            escalation_tier: Tier::L2,
            drain_interval: Duration::from_secs(5),
            service_identity: assignment_service::clients::tickets::SERVICE_SUBJECT.to_owned(),
        },
        Arc::new(SystemClock),
    )
    .await?;
    let (stop_assignment, assignment_stopped) = oneshot::channel::<()>();
    let assignment_task = tokio::spawn(assignment.run(async move {
        let _ = assignment_stopped.await;
    }));
    let waiting_pool = assignment_db.pool.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM agents WHERE active")
        .fetch_one(&waiting_pool)
        .await?
        < AGENTS as i64
    {
        anyhow::ensure!(Instant::now() < deadline, "the roster did not sync");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every assignment, as the ticket service published it.
    let mut tap = EventTap::start(&exchange, "ticket.assigned").await?;
    let assigned = Arc::new(AtomicUsize::new(0));
    let to_assignment = Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = {
        let (assigned, to_assignment) = (assigned.clone(), to_assignment.clone());
        tokio::spawn(async move {
            while let Some(event) = tap.next(Duration::from_secs(3600)).await {
                let e: pb::TicketAssigned = event.decode();
                let at = e
                    .header
                    .and_then(|h| h.occurred_at)
                    .as_ref()
                    .and_then(from_timestamp);
                let created = e
                    .ticket
                    .as_ref()
                    .and_then(|t| t.create_time.as_ref())
                    .and_then(from_timestamp);
                let ticket = e
                    .ticket
                    .as_ref()
                    .and_then(|t| Uuid::parse_str(&t.ticket_id).ok());
                if let (Some(at), Some(created), Some(ticket)) = (at, created, ticket) {
                    to_assignment
                        .lock()
                        .expect("not poisoned")
                        .push((ticket, created, at));
                }
                assigned.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // The backlog, sampled.
    let created = Arc::new(AtomicUsize::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (created, assigned, sampling) = (created.clone(), assigned.clone(), sampling.clone());
        let pool = waiting_pool.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let started = Instant::now();
            while sampling.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let backlog = created
                    .load(Ordering::Relaxed)
                    .saturating_sub(assigned.load(Ordering::Relaxed));
                let (waiting, pending): (i64, i64) = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM assignments WHERE agent_id IS NULL AND open),
                            (SELECT count(*) FROM moves WHERE done_at IS NULL)",
                )
                .fetch_one(&pool)
                .await
                .unwrap_or((-1, -1));
                samples.push((
                    started.elapsed(),
                    created.load(Ordering::Relaxed),
                    backlog,
                    waiting,
                    pending,
                ));
            }
            samples
        })
    };

    // The intake.
    println!(
        "assignment under intake: CreateTicket at {CONCURRENCY} concurrent callers for {secs} s{}, \
         {AGENTS} agents with room, {lanes} consumer lanes, batches of at most {batch}\n",
        world::pacing_label()
    );
    let started = Instant::now();
    let intake = world::intake(&ticket_addr, CONCURRENCY, secs, created.clone()).await?;
    let (load_time, create_latencies) = (intake.elapsed, intake.latencies);
    let total = created.load(Ordering::Relaxed);
    // Then until every ticket is assigned (at most 60 s).
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    while assigned.load(Ordering::Relaxed) < total && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained_after = Instant::now() - (started + load_time);
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler.await?;

    let create = Latencies::new(create_latencies);
    row(
        "CreateTicket over gRPC",
        format!(
            "{:>8.0} calls/s {}",
            total as f64 / load_time.as_secs_f64(),
            create.summary()
        ),
    );
    let timeline = to_assignment.lock().expect("not poisoned").clone();
    let taken = Latencies::new(
        timeline
            .iter()
            .map(|(_, created, at)| between(*created, *at))
            .collect(),
    );
    row(
        "creation → ticket.assigned",
        format!(
            "{:>8.0} assigned/s {}",
            assigned.load(Ordering::Relaxed) as f64 / (load_time + drained_after).as_secs_f64(),
            taken.summary()
        ),
    );
    // Where the time went: each ticket's decision time, from the moves the
    // assignment service recorded, splits its time to assignment in two.
    let decided: std::collections::HashMap<Uuid, chrono::DateTime<Utc>> =
        sqlx::query_as::<_, (Uuid, chrono::DateTime<Utc>)>(
            "SELECT ticket_id, min(created_at) FROM moves GROUP BY ticket_id",
        )
        .fetch_all(&waiting_pool)
        .await?
        .into_iter()
        .collect();
    let (mut to_decision, mut to_assigned) = (Vec::new(), Vec::new());
    for (ticket, created, at) in &timeline {
        if let Some(decided) = decided.get(ticket) {
            to_decision.push(between(*created, *decided));
            to_assigned.push(between(*decided, *at));
        }
    }
    row(
        "  of which creation → decided",
        format!(
            "relay, consumer, drainer  {}",
            Latencies::new(to_decision).summary()
        ),
    );
    row(
        "  and decided → ticket.assigned",
        format!(
            "mover, BatchAssignTickets {}",
            Latencies::new(to_assigned).summary()
        ),
    );
    let mut backlogs: Vec<usize> = samples.iter().map(|s| s.2).collect();
    backlogs.sort_unstable();
    let p99 = backlogs
        .get(((backlogs.len().saturating_sub(1)) as f64 * 0.99).round() as usize)
        .copied()
        .unwrap_or(0);
    row(
        "backlog (created, not yet assigned)",
        format!(
            "max {:>6}   p99 {:>6}   last sample under load {:>6}",
            backlogs.last().copied().unwrap_or(0),
            p99,
            samples
                .iter()
                .rev()
                .find(|s| s.0 <= load_time)
                .map_or(0, |s| s.2)
        ),
    );
    row(
        "waiting queue / pending moves (max)",
        format!(
            "{:>6} / {:>6}",
            samples.iter().map(|s| s.3).max().unwrap_or(0),
            samples.iter().map(|s| s.4).max().unwrap_or(0)
        ),
    );
    row(
        "all assigned after the intake stopped",
        format!(
            "{:>8.0} ms ({} of {total})",
            ms(drained_after),
            assigned.load(Ordering::Relaxed)
        ),
    );
    println!("\n  every 10 s: elapsed, created, backlog, waiting, pending moves");
    for s in samples.iter().filter(|s| s.0.as_millis() % 10_000 < 500) {
        println!(
            "  {:>6.1} s {:>8} {:>8} {:>8} {:>8}",
            s.0.as_secs_f64(),
            s.1,
            s.2,
            s.3,
            s.4
        );
    }

    listener.abort();
    let _ = stop_assignment.send(());
    let _ = assignment_task.await;
    tickets.running.stop().await;
    standin.stop().await;
    let mut queues = vec![queue.clone(), format!("{queue}.dead")];
    queues.extend((1..8).map(|n| format!("{queue}.retry.{n}")));
    delete_broker_objects(Some(exchange), queues);
    Ok(())
}

/// From one timestamp to a later one (zero if the clocks disagree).
fn between(from: chrono::DateTime<Utc>, to: chrono::DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}
