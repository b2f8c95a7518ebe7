//! The ticket service against PostgreSQL doing the same work directly.
//!
//! - CreateTicket over gRPC (JWT check, validation, two concurrent calls to
//!   the accounts/rides stand-in, one transaction with the outbox row, the
//!   relay publishing) at 32 concurrent callers, next to the same
//!   transaction (sequence, ticket insert, outbox insert) issued straight
//!   from a pool of the same size.
//! - GetTicket and ListTickets (page 1 and page 1,000) on 1,000,000 tickets
//!   at 8 concurrent callers, next to the same SELECTs issued directly.
//! - GetTicketStats over 30 days of those tickets (~84,000), next to its
//!   statements issued directly from a pool.
//!
//! - PostMessage (a staff reply) on 4,000 of those tickets at 32 callers.
//!
//! Run it release-built: `cargo run --release -p helpdesk-bench -- tickets`.
//! `BENCH_WITHOUT_SEARCH=1` drops the search vectors and their indexes
//! first: the write paths as they were before search, for an A/B.

use std::sync::Arc;

use chrono::Utc;
use helpdesk_events::relay::RelayConfig;
use helpdesk_kit::{
    auth::{AuthConfig, Role},
    clock::SystemClock,
    config::CommonConfig,
};
use helpdesk_proto::support::v1::{self as pb, ticket_service_client::TicketServiceClient};
use helpdesk_testkit::{TestDb, amqp_url, delete_broker_objects, minter, unique_exchange};
use platform_standin::{DemoData, Options};
use sqlx::PgPool;
use ticket_service::{MIGRATOR, config::Config, startup::Application};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::{
    load::{authorized, drive},
    report::{rate, row},
};

const POOL: u32 = 10;
const CREATE_CONCURRENCY: usize = 32;
const CREATES: usize = 4_000;
const READ_CONCURRENCY: usize = 8;
const READS: usize = 4_000;
const ALICE: &str = "0a000000-0000-4000-8000-000000000001";
const ALICE_RIDE: &str = "0d000000-0000-4000-8000-000000000001";

/// The CreateTicket transaction without the service around it: the same
/// statements the service issues for a request with a `request_id`.
async fn create_directly(pool: &PgPool, i: usize) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let request_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO idempotency_keys (caller, method, request_id, request_hash)
         VALUES ($1, 'CreateTicket', $2, $3) ON CONFLICT DO NOTHING RETURNING true",
    )
    .bind(ALICE)
    .bind(request_id)
    .bind(vec![7u8; 32])
    .fetch_optional(&mut *tx)
    .await?;
    let number: i64 = sqlx::query_scalar("SELECT nextval('ticket_number_seq')")
        .fetch_one(&mut *tx)
        .await?;
    let id = Uuid::now_v7();
    let now = Utc::now();
    sqlx::query(
        "INSERT INTO tickets (id, number, human_id, user_id, ride_id, category_id, subject,
                              description, priority, status, created_at, updated_at, version)
         SELECT $1, $2, $3, $4, $5, c.id, $7, $8, 'high', 'open', $9, $9, 1
         FROM categories c WHERE c.id = $6 AND c.active",
    )
    .bind(id)
    .bind(number)
    .bind(format!("TKT-D{number:09}"))
    .bind(Uuid::parse_str(ALICE)?)
    .bind(Uuid::parse_str(ALICE_RIDE)?)
    .bind("ride_issue")
    .bind(format!("Direct {i}"))
    .bind("The trip took 40 minutes instead of 15.")
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload)
         VALUES ($1, $2, 'ticket.created', 'support.v1.TicketCreated', $3)",
    )
    .bind(Uuid::now_v7())
    .bind(id)
    .bind(vec![0u8; 160])
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE idempotency_keys SET response = $3 WHERE caller = $1 AND method = 'CreateTicket' AND request_id = $2",
    )
    .bind(ALICE)
    .bind(request_id)
    .bind(vec![0u8; 300])
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn run() -> anyhow::Result<()> {
    let db = TestDb::create(&MIGRATOR).await?;
    if std::env::var_os("BENCH_WITHOUT_SEARCH").is_some() {
        // The write paths as they were before search (A/B in one binary):
        // without the generated tsvectors and their GIN indexes.
        sqlx::raw_sql(
            "ALTER TABLE tickets DROP COLUMN search; ALTER TABLE ticket_messages DROP COLUMN search",
        )
        .execute(&db.pool)
        .await?;
        println!("(search columns and indexes dropped: the write paths before search)");
    }
    let standin_listener = helpdesk_kit::server::bind("127.0.0.1:0".parse()?).await?;
    let standin_addr = format!("http://{}", standin_listener.local_addr()?);
    let (stop_standin, standin_stopped) = oneshot::channel::<()>();
    tokio::spawn(platform_standin::run(
        standin_listener,
        DemoData::demo(),
        Options::default(),
        async move {
            let _ = standin_stopped.await;
        },
    ));
    let exchange = unique_exchange();
    let common = CommonConfig {
        listen_addr: "127.0.0.1:0".parse()?,
        database_url: db.url.clone(),
        database_max_connections: POOL,
        auth: AuthConfig::dev(),
        otlp_endpoint: None,
        metrics_addr: None,
    };
    let relay = RelayConfig::new(&amqp_url(), &exchange, "bench-ticket");
    let config = Config::for_tests(common, &standin_addr, Some(relay));
    let app = Application::build(config, Arc::new(SystemClock)).await?;
    let addr = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(addr.clone())?.connect().await?;
    let client = TicketServiceClient::new(channel);
    let alice = minter().mint(ALICE, Role::User, chrono::Duration::hours(2));
    let staff = minter().mint(
        "0b000000-0000-4000-8000-000000000001",
        Role::Staff,
        chrono::Duration::hours(2),
    );
    let direct = helpdesk_kit::db::connect(&db.url, POOL).await?;

    println!("ticket service benchmark (pool {POOL} connections)\n");
    println!("CreateTicket, {CREATES} calls, {CREATE_CONCURRENCY} concurrent");
    let pool = direct.clone();
    let (db_time, db_lat) = drive(CREATE_CONCURRENCY, CREATES, move |i| {
        let pool = pool.clone();
        async move { create_directly(&pool, i).await }
    })
    .await?;
    let (c, token) = (client.clone(), alice.clone());
    let (grpc_time, grpc_lat) = drive(CREATE_CONCURRENCY, CREATES, move |i| {
        let (mut c, token) = (c.clone(), token.clone());
        async move {
            let request = pb::CreateTicketRequest {
                ride_id: ALICE_RIDE.into(),
                category_id: "ride_issue".into(),
                subject: format!("Bench {i}"),
                description: "The trip took 40 minutes instead of 15.".into(),
                priority: pb::TicketPriority::High.into(),
                request_id: Uuid::new_v4().to_string(),
                ..Default::default()
            };
            c.create_ticket(authorized(request, &token)).await?;
            Ok(())
        }
    })
    .await?;
    row(
        "database only (same transaction)",
        format!(
            "{:>8.0} tx/s    {}",
            rate(CREATES, db_time),
            db_lat.summary()
        ),
    );
    row(
        "CreateTicket over gRPC",
        format!(
            "{:>8.0} calls/s {}",
            rate(CREATES, grpc_time),
            grpc_lat.summary()
        ),
    );
    row(
        "gRPC / database",
        format!(
            "{:>8.0} %",
            100.0 * db_time.as_secs_f64() / grpc_time.as_secs_f64()
        ),
    );

    // PostMessage: a staff reply on each of 4,000 tickets (the first reply
    // also moves the ticket to waiting_user and sets its first response).
    // (Only the service's own tickets: the direct ones carry a made-up human id.)
    let ticket_ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM tickets WHERE subject LIKE 'Bench %' LIMIT $1")
            .bind(CREATES as i64)
            .fetch_all(&direct)
            .await?;
    let ticket_ids = Arc::new(ticket_ids);
    println!(
        "\nPostMessage (staff reply), {} calls, {CREATE_CONCURRENCY} concurrent",
        ticket_ids.len()
    );
    let (c, token, sample) = (client.clone(), staff.clone(), ticket_ids.clone());
    let (t, l) = drive(CREATE_CONCURRENCY, sample.len(), move |i| {
        let (mut c, token, id) = (c.clone(), token.clone(), sample[i]);
        async move {
            let request = pb::PostMessageRequest {
                ticket_id: id.to_string(),
                body: "We have issued a refund, it should arrive in 3 to 5 business days.".into(),
                request_id: Uuid::new_v4().to_string(),
                ..Default::default()
            };
            c.post_message(authorized(request, &token)).await?;
            Ok(())
        }
    })
    .await?;
    row(
        "PostMessage over gRPC",
        format!("{:>8.0} calls/s {}", rate(ticket_ids.len(), t), l.summary()),
    );

    if std::env::var_os("BENCH_SKIP_READS").is_some() {
        let _ = stop.send(());
        server.await??;
        let _ = stop_standin.send(());
        delete_broker_objects(Some(exchange), Vec::new());
        return Ok(());
    }
    println!("\nloading 1,000,000 tickets for the read benchmarks ...");
    sqlx::query("TRUNCATE tickets CASCADE")
        .execute(&direct)
        .await?;
    sqlx::raw_sql(include_str!("../../../scripts/sql/explain-seed.sql"))
        .execute(&direct)
        .await?;
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM tickets TABLESAMPLE SYSTEM (1) LIMIT 2000")
            .fetch_all(&direct)
            .await?;
    let ids = Arc::new(ids);

    println!("\nGetTicket by id, {READS} calls, {READ_CONCURRENCY} concurrent");
    let (pool, sample) = (direct.clone(), ids.clone());
    let (t, l) = drive(READ_CONCURRENCY, READS, move |i| {
        let (pool, id) = (pool.clone(), sample[i % sample.len()]);
        async move {
            sqlx::query("SELECT * FROM tickets WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await?;
            Ok(())
        }
    })
    .await?;
    row(
        "database only",
        format!("{:>8.0} q/s     {}", rate(READS, t), l.summary()),
    );
    let (c, token, sample) = (client.clone(), staff.clone(), ids.clone());
    let (t, l) = drive(READ_CONCURRENCY, READS, move |i| {
        let (mut c, token, id) = (c.clone(), token.clone(), sample[i % sample.len()]);
        async move {
            c.get_ticket(authorized(
                pb::GetTicketRequest { id: id.to_string() },
                &token,
            ))
            .await?;
            Ok(())
        }
    })
    .await?;
    row(
        "GetTicket over gRPC",
        format!("{:>8.0} calls/s {}", rate(READS, t), l.summary()),
    );

    // The token of page 1,000 (20 per page), found by walking there once.
    let mut walker = client.clone();
    let mut token_1000 = String::new();
    for _ in 1..1000 {
        let page = walker
            .list_tickets(authorized(
                pb::ListTicketsRequest {
                    page_size: 20,
                    page_token: token_1000.clone(),
                    ..Default::default()
                },
                &staff,
            ))
            .await?
            .into_inner();
        token_1000 = page.next_page_token;
    }
    for (label, page_token) in [("page 1", String::new()), ("page 1,000", token_1000)] {
        println!(
            "\nListTickets (staff, no filter, 20 per page) {label}, {READS} calls, {READ_CONCURRENCY} concurrent"
        );
        let (c, token, page_token) = (client.clone(), staff.clone(), page_token.clone());
        let (t, l) = drive(READ_CONCURRENCY, READS, move |_| {
            let (mut c, token, page_token) = (c.clone(), token.clone(), page_token.clone());
            async move {
                let request = pb::ListTicketsRequest {
                    page_size: 20,
                    page_token,
                    ..Default::default()
                };
                c.list_tickets(authorized(request, &token)).await?;
                Ok(())
            }
        })
        .await?;
        row(
            &format!("ListTickets over gRPC, {label}"),
            format!("{:>8.0} calls/s {}", rate(READS, t), l.summary()),
        );
    }
    let pool = direct.clone();
    let (t, l) = drive(READ_CONCURRENCY, READS, move |_| {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT * FROM tickets ORDER BY created_at DESC, id DESC LIMIT 21")
                .fetch_all(&pool)
                .await?;
            Ok(())
        }
    })
    .await?;
    row(
        "database only, page 1",
        format!("{:>8.0} q/s     {}", rate(READS, t), l.summary()),
    );

    stats(&addr, &staff, &direct).await?;

    let _ = stop.send(());
    server.await??;
    let _ = stop_standin.send(());
    delete_broker_objects(Some(exchange), Vec::new());
    Ok(())
}

/// The dashboard over the seed's last 30 days: GetTicketStats (its three
/// statements at once on one snapshot) at 1 and 4 concurrent callers, next
/// to the same statements run by the storage code straight from a pool.
async fn stats(addr: &str, staff: &str, direct: &PgPool) -> anyhow::Result<()> {
    use helpdesk_proto::support::v1::statistics_service_client::StatisticsServiceClient;
    use ticket_service::domain::stats::StatsQuery;

    const CALLS: usize = 60;
    // The seed (scripts/sql/explain-seed.sql) runs from 2025-11-25 for 359 days.
    let until = chrono::DateTime::parse_from_rfc3339("2026-11-19T00:00:00Z")?.to_utc();
    let from = until - chrono::Duration::days(30);
    let query = StatsQuery::new(Some(from), Some(until), until, None, None)
        .map_err(|(field, why)| anyhow::anyhow!("{field}: {why}"))?;
    let targets = helpdesk_kit::sla::SlaTargets::default();
    let cohort: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tickets WHERE created_at >= $1 AND created_at < $2",
    )
    .bind(from)
    .bind(until)
    .fetch_one(direct)
    .await?;
    println!("\nGetTicketStats, 30 days ({cohort} tickets of 1,000,000), {CALLS} calls");
    let channel = Channel::from_shared(addr.to_owned())?.connect().await?;
    let client = StatisticsServiceClient::new(channel);
    for concurrency in [1, 4] {
        let (c, token) = (client.clone(), staff.to_owned());
        let (t, l) = drive(concurrency, CALLS, move |_| {
            let (mut c, token) = (c.clone(), token.clone());
            async move {
                let request = pb::GetTicketStatsRequest {
                    start_time: Some(helpdesk_kit::clock::to_timestamp(from)),
                    end_time: Some(helpdesk_kit::clock::to_timestamp(until)),
                    ..Default::default()
                };
                c.get_ticket_stats(authorized(request, &token)).await?;
                Ok(())
            }
        })
        .await?;
        row(
            &format!("GetTicketStats over gRPC, {concurrency} concurrent"),
            format!("{:>8.1} calls/s {}", rate(CALLS, t), l.summary()),
        );
    }
    // The same statements straight from a pool: what gRPC and the handler add.
    let (pool, query) = (direct.clone(), Arc::new(query));
    let (t, l) = drive(1, CALLS, move |_| {
        let (pool, query, targets) = (pool.clone(), query.clone(), targets.clone());
        async move {
            ticket_service::storage::stats::figures(&pool, &query, &targets, until).await?;
            Ok(())
        }
    })
    .await?;
    row(
        "database only, 1 concurrent",
        format!("{:>8.1} q/s     {}", rate(CALLS, t), l.summary()),
    );
    Ok(())
}
