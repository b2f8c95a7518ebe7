//! Notifications: the fan-out of one `TicketCreated` to 1,000 staff, next
//! to the same rows inserted by one bare statement; then creation →
//! streamed for a user's receipt while CreateTicket runs at 32 concurrent
//! callers (`BENCH_SECS`, default 60; `BENCH_RATE` paces them to that many
//! creates a second in all, to see latency below saturation). The ticket service, the notification
//! service and the stand-in run in-process.
//!
//! Run it release-built: `cargo run --release -p helpdesk-bench -- notification`.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use futures_util::StreamExt;
use helpdesk_events::consumer::{self, ConsumerConfig};
use helpdesk_kit::{
    auth::Role,
    clock::{SystemClock, from_timestamp, to_timestamp},
};
use helpdesk_proto::{
    Event,
    support::v1::{self as pb, notification_service_client::NotificationServiceClient},
};
use helpdesk_testkit::{TestDb, amqp_url, delete_broker_objects, minter};
use lapin::{BasicProperties, options::BasicPublishOptions, options::ConfirmSelectOptions};
use notification_service::{
    config::Config,
    domain::{Channel, Kind, audience::StaffAudience, preferences::Policy},
    startup::Application as Notifications,
};
use platform_standin::SeedUser;
use sqlx::postgres::PgListener;
use tokio::sync::oneshot;
use tonic::{Request, transport::Channel as GrpcChannel};
use uuid::Uuid;

use crate::{
    report::{Latencies, ms, row},
    world,
};

const POOL: u32 = 10;
const CONCURRENCY: usize = 32;
const STAFF: usize = 1000;
const FANOUTS: usize = 30;
const ALICE: &str = "0a000000-0000-4000-8000-000000000001";

static TRIAGE: std::sync::LazyLock<Vec<SeedUser>> =
    std::sync::LazyLock::new(|| (0..10).map(staff).collect());

fn staff(n: usize) -> SeedUser {
    SeedUser {
        id: Uuid::from_u128(0x0b00_0000_0000_4000_8000_0000_0001_0000 + n as u128),
        display_name: format!("Agent {n}"),
        email: format!("agent{n}@example.com"),
        locale: if n.is_multiple_of(3) {
            "pt-BR"
        } else {
            "en-GB"
        }
        .into(),
        push_tokens: vec![format!("push-agent-{n}")],
        active: true,
        is_staff: true,
        create_time: Utc::now(),
    }
}

async fn publish<E: Event>(
    channel: &lapin::Channel,
    exchange: &str,
    event: &E,
    id: &str,
) -> anyhow::Result<()> {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/x-protobuf".into())
        .with_type(E::full_name().into())
        .with_message_id(id.into());
    channel
        .basic_publish(
            exchange.into(),
            E::ROUTING_KEY.into(),
            BasicPublishOptions::default(),
            &event.encode_to_vec(),
            properties,
        )
        .await?
        .await?;
    Ok(())
}

type Running = (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    String,
);

/// A notification service on its own queue and database.
async fn start_notifications(
    db: &TestDb,
    exchange: &str,
    standin_addr: &str,
    audience: StaffAudience,
) -> anyhow::Result<Running> {
    let queue = format!("bench-notification.{}", Uuid::new_v4().simple());
    // As deployed (`CONSUMER_CONCURRENCY`, `CONSUMER_BATCH`, ... apply).
    let consumer_config = ConsumerConfig {
        amqp_url: amqp_url(),
        exchange: exchange.to_owned(),
        ..ConsumerConfig::from_env(&queue, &notification_service::app::intake::BINDINGS)?
    };
    consumer::declare(&consumer_config).await?;
    let mut config = Config::with_common(world::common(&db.url, POOL)?)?;
    config.accounts_addr = standin_addr.to_owned();
    config.consumer_concurrency = consumer_config.concurrency;
    config.consumer = consumer_config;
    config.new_ticket_audience = audience;
    config.triage_group = TRIAGE.iter().map(|s| s.id).collect();
    // Every channel declined (marked on each notification, no delivery
    // rows): the intake does its whole work, and no SMTP server is needed.
    config.policy = Policy {
        default_off: Kind::ALL
            .iter()
            .flat_map(|k| Channel::ALL.map(|c| (*k, c)))
            .collect(),
        mandatory: HashSet::new(),
    };
    let app = Notifications::build(config, Arc::new(SystemClock)).await?;
    let addr = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    Ok((queue, stop, task, addr))
}

pub async fn run() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);

    let (standin_addr, standin) = world::standin((0..STAFF).map(staff).collect()).await?;
    let tickets = world::tickets(&standin_addr, POOL).await?;
    let (ticket_addr, exchange) = (tickets.addr.clone(), tickets.exchange.clone());

    let db = TestDb::create(&notification_service::MIGRATOR).await?;
    let (queue, stop_app, app_task, _) =
        start_notifications(&db, &exchange, &standin_addr, StaffAudience::AllStaff).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. Fan-out: TicketCreated published straight to the exchange; timed
    // from publish to the commit's NOTIFY (what a stream is woken by).
    println!("notification fan-out: one TicketCreated to {STAFF} active staff, {FANOUTS} times\n");
    let mut listener = PgListener::connect_with(&db.pool).await?;
    listener
        .listen(notification_service::storage::notifications::CHANNEL)
        .await?;
    let connection = helpdesk_events::amqp::connect(&amqp_url(), "bench-publisher").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut fanout = Vec::new();
    for n in 0..FANOUTS {
        let event_id = Uuid::now_v7().to_string();
        let event = pb::TicketCreated {
            header: Some(pb::EventHeader {
                event_id: event_id.clone(),
                occurred_at: Some(to_timestamp(Utc::now())),
                actor_id: ALICE.into(),
                actor_role: "user".into(),
            }),
            ticket: Some(pb::TicketSnapshot {
                ticket_id: Uuid::now_v7().to_string(),
                human_id: format!("TKT-BEN{n:03}"),
                user_id: ALICE.into(),
                subject: "Bench fan-out".into(),
                priority: pb::TicketPriority::High.into(),
                status: pb::TicketStatus::Open.into(),
                ..Default::default()
            }),
        };
        let started = Instant::now();
        publish(&channel, &exchange, &event, &event_id).await?;
        listener.recv().await?;
        fanout.push(started.elapsed());
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&db.pool)
        .await?;
    anyhow::ensure!(
        stored == (FANOUTS * (STAFF + 1)) as i64,
        "expected {} notifications, found {stored}",
        FANOUTS * (STAFF + 1)
    );
    // The first round fills the staff cache; the rest is the steady state.
    let first = fanout.remove(0);
    row(
        "TicketCreated → 1,001 stored (publish → commit)",
        format!(
            "{} first {:.1} ms",
            Latencies::new(fanout).summary(),
            ms(first)
        ),
    );
    // Baseline: the same 1,001 rows (both channels declined) by bare statements.
    let mut bare = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let mut tx = db.pool.begin().await?;
        let event = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO notifications (id, event_id, recipient_id, kind, ticket_id, human_id,
                                        title, body, link, params, create_time, declined)
             SELECT gen_random_uuid(), $1, gen_random_uuid(), 'new_ticket', $1, 'TKT-BASE00',
                    'New ticket from Alice Archer', 'TKT-BASE00: Bench fan-out (high priority)',
                    '/support/tickets/TKT-BASE00', '{}'::jsonb, now(), 3
             FROM generate_series(1, 1001)",
        )
        .bind(event)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        bare.push(started.elapsed());
    }
    row(
        "baseline: the same rows, one bare statement",
        Latencies::new(bare).summary(),
    );

    let _ = stop_app.send(());
    let _ = app_task.await;

    // 2. Under intake: Alice's receipts, streamed to an open stream. New
    // tickets go to a triage group of ten here: at 1,000 staff each, every
    // ticket would be 1,000 rows, which is what `triage` exists for.
    let load_db = TestDb::create(&notification_service::MIGRATOR).await?;
    let (load_queue, stop_app, app_task, notification_addr) =
        start_notifications(&load_db, &exchange, &standin_addr, StaffAudience::Triage).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let alice = minter().mint(ALICE, Role::User, chrono::Duration::hours(2));
    let mut request = Request::new(pb::StreamNotificationsRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {alice}").parse()?);
    let mut stream = NotificationServiceClient::new(
        GrpcChannel::from_shared(notification_addr)?
            .connect()
            .await?,
    )
    .stream_notifications(request)
    .await?
    .into_inner();
    stream.next().await.transpose()?; // the count
    let streamed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let receiver = {
        let streamed = streamed.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Some(n) = message.notification {
                    // Stored at: the intake's clock while handling the
                    // event, just after it was consumed.
                    let stored = n.create_time.as_ref().and_then(from_timestamp);
                    streamed
                        .lock()
                        .expect("not poisoned")
                        .push((n.ticket_id, stored, Utc::now()));
                }
            }
        })
    };
    println!(
        "\nnotification under intake: CreateTicket at {CONCURRENCY} concurrent callers for {secs} s{} \
         (a triage group of ten told of each ticket, Alice's receipt streamed)\n",
        world::pacing_label(),
    );
    let started = Instant::now();
    let intake = world::intake(&ticket_addr, CONCURRENCY, secs, Arc::default()).await?;
    let load_time = intake.elapsed;
    let creations: std::collections::HashMap<_, _> = intake.tickets.into_iter().collect();
    let total = creations.len();
    let drain_deadline = Instant::now() + Duration::from_secs(120);
    while streamed.lock().expect("not poisoned").len() < total && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained_after = Instant::now() - (started + load_time);
    receiver.abort();
    let streamed = streamed.lock().expect("not poisoned").clone();
    let latencies: Vec<Duration> = streamed
        .iter()
        .filter_map(|(id, _, at)| Some((*at - *creations.get(id)?).to_std().unwrap_or_default()))
        .collect();
    let from_intake: Vec<Duration> = streamed
        .iter()
        .filter_map(|(_, stored, at)| Some((*at - (*stored)?).to_std().unwrap_or_default()))
        .collect();
    row(
        "CreateTicket over gRPC",
        format!("{:>8.0} calls/s", total as f64 / load_time.as_secs_f64()),
    );
    row(
        "creation → receipt streamed",
        format!(
            "{} ({} of {total} streamed)",
            Latencies::new(latencies).summary(),
            streamed.len()
        ),
    );
    row(
        "consumed (stored) → streamed",
        Latencies::new(from_intake).summary(),
    );
    row(
        "all streamed after the intake stopped",
        format!("{:>8.0} ms", ms(drained_after)),
    );

    let _ = connection.close(200, "done".into()).await;
    let _ = stop_app.send(());
    let _ = app_task.await;
    tickets.running.stop().await;
    standin.stop().await;
    let mut queues = Vec::new();
    for queue in [queue, load_queue] {
        queues.extend([queue.clone(), format!("{queue}.dead")]);
        queues.extend((1..8).map(|n| format!("{queue}.retry.{n}")));
    }
    delete_broker_objects(Some(exchange), queues);
    Ok(())
}
