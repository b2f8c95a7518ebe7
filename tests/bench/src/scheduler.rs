//! Scheduler: `auto_close_resolved_tickets` over 100,000 resolved tickets
//! (`BENCH_TICKETS`), events included, through the scheduler's call path
//! (`TicketJobsClient` → gRPC → the ticket service's `TicketJobsService`,
//! one keyset page after another until done, as a run does), next to the
//! bare set-based SQL doing the same on an identical database in the same
//! run: one `UPDATE tickets SET status = 'closed' ... WHERE status =
//! 'resolved' AND resolved_at < T` feeding one outbox insert. The bare
//! statement writes a placeholder payload (SQL cannot encode the protobuf
//! event); the service writes the real events. The relay is off in both,
//! so the outbox rows stay for the broker to take later either way.
//!
//! Run it release-built: `cargo run --release -p helpdesk-bench -- scheduler`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use helpdesk_kit::{auth::AuthConfig, clock::SystemClock, config::CommonConfig};
use helpdesk_testkit::TestDb;
use scheduler_service::clients::tickets::{RunContext, TicketJobsClient, TicketWork};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::report::{Latencies, ms, rate, row};

const ALICE: &str = "0a000000-0000-4000-8000-000000000001";

/// Inserts `n` tickets resolved eight days before now.
async fn seed(db: &TestDb, n: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO tickets (id, number, human_id, user_id, category_id, subject, description,
                              priority, status, resolved_at, created_at, updated_at)
         SELECT gen_random_uuid(), i, 'BULK-' || i, $1, 'other', 'bench', 'bench', 'medium',
                'resolved', now() - interval '8 days' - make_interval(secs => i),
                now() - interval '9 days', now() - interval '8 days'
         FROM generate_series(1, $2) AS i",
    )
    .bind(Uuid::parse_str(ALICE)?)
    .bind(n)
    .execute(&db.pool)
    .await?;
    sqlx::query("VACUUM ANALYZE tickets")
        .execute(&db.pool)
        .await?;
    Ok(())
}

async fn count(db: &TestDb, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&db.pool)
        .await?)
}

pub async fn run() -> anyhow::Result<()> {
    let n: i64 = std::env::var("BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let page_size: i32 = std::env::var("BENCH_PAGE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    println!("auto_close_resolved_tickets over {n} resolved tickets (page size {page_size})");
    let bare_db = TestDb::create(&ticket_service::MIGRATOR).await?;
    let service_db = TestDb::create(&ticket_service::MIGRATOR).await?;
    seed(&bare_db, n).await?;
    seed(&service_db, n).await?;
    let before = Utc::now() - chrono::Duration::days(7);

    // The baseline: one set-based statement, events included.
    let started = Instant::now();
    let closed = sqlx::query(
        "WITH closed AS (
             UPDATE tickets SET status = 'closed', closed_at = now(), updated_at = now(),
                                version = version + 1
             WHERE status = 'resolved' AND resolved_at < $1
             RETURNING id
         )
         INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload)
         SELECT gen_random_uuid(), id, 'ticket.status_changed', 'support.v1.TicketStatusChanged',
                '\\x00'::bytea
         FROM closed",
    )
    .bind(before)
    .execute(&bare_db.pool)
    .await?
    .rows_affected();
    let bare = started.elapsed();
    anyhow::ensure!(closed as i64 == n, "bare SQL closed {closed}, expected {n}");

    // The service: the ticket service in-process, called as the scheduler does.
    let common = CommonConfig {
        listen_addr: "127.0.0.1:0".parse()?,
        database_url: service_db.url.clone(),
        database_max_connections: 10,
        auth: AuthConfig::dev(),
        otlp_endpoint: None,
        metrics_addr: None,
    };
    let tickets = ticket_service::startup::Application::build(
        // The platform is not called by the batch jobs.
        ticket_service::config::Config::for_tests(common, "http://127.0.0.1:1", None),
        Arc::new(SystemClock),
    )
    .await?;
    let addr = format!("http://127.0.0.1:{}", tickets.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(tickets.run(async move {
        let _ = stopped.await;
    }));
    let client = TicketJobsClient::new(
        &addr,
        Duration::from_secs(60),
        page_size,
        "UTC",
        &AuthConfig::dev(),
    )?;
    let mut run = RunContext {
        run_id: Uuid::now_v7(),
        fencing_token: 1,
        as_of: Utc::now(),
        checkpoint: None,
    };
    let (mut processed, mut pages) = (0u64, 0u32);
    let mut latencies = Vec::new();
    let started = Instant::now();
    loop {
        let one = Instant::now();
        let page = client
            .close_resolved(&run, before)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        latencies.push(one.elapsed());
        processed += page.processed;
        pages += 1;
        run.checkpoint = page.checkpoint;
        if page.done {
            break;
        }
    }
    let service = started.elapsed();
    anyhow::ensure!(
        processed as i64 == n,
        "service closed {processed}, expected {n}"
    );
    let events = count(
        &service_db,
        "SELECT count(*) FROM outbox WHERE routing_key = 'ticket.status_changed'",
    )
    .await?;
    anyhow::ensure!(events == n, "service wrote {events} events, expected {n}");

    row(
        "bare set-based SQL (one statement)",
        format!(
            "{:>9.0} ms   {:>9.0} tickets/s",
            ms(bare),
            rate(n as usize, bare)
        ),
    );
    row(
        &format!("scheduler call path ({pages} pages)"),
        format!(
            "{:>9.0} ms   {:>9.0} tickets/s",
            ms(service),
            rate(n as usize, service)
        ),
    );
    row("one page (call)", Latencies::new(latencies).summary());
    row(
        "ratio (call path / bare SQL)",
        format!("{:.2}x", service.as_secs_f64() / bare.as_secs_f64()),
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}
