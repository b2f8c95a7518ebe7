//! What the load benchmarks start in process: the stand-in with the staff a
//! benchmark asks for, and the ticket service with its relay on a fresh
//! exchange and database. Each runs until its `stop`.

use std::{sync::Arc, time::Duration};

use helpdesk_events::relay::RelayConfig;
use helpdesk_kit::{auth::AuthConfig, clock::SystemClock, config::CommonConfig};
use helpdesk_testkit::{TestDb, amqp_url, unique_exchange};
use platform_standin::{DemoData, Options, SeedUser};
use tokio::{sync::oneshot, task::JoinHandle};

/// A service's settings for a benchmark: port 0, development keys.
pub fn common(url: &str, pool: u32) -> anyhow::Result<CommonConfig> {
    Ok(CommonConfig {
        listen_addr: "127.0.0.1:0".parse()?,
        database_url: url.to_owned(),
        database_max_connections: pool,
        auth: AuthConfig::dev(),
        otlp_endpoint: None,
        metrics_addr: None,
    })
}

/// The demo customer every CreateTicket load runs as, and her ride (the
/// stand-in's demo data knows both).
pub const ALICE: &str = "0a000000-0000-4000-8000-000000000001";
pub const ALICE_RIDE: &str = "0d000000-0000-4000-8000-000000000001";

/// A CreateTicket for Alice's ride with a fresh `request_id`, as a gateway
/// sends it.
pub fn create_request() -> helpdesk_proto::support::v1::CreateTicketRequest {
    use helpdesk_proto::support::v1 as pb;
    pb::CreateTicketRequest {
        ride_id: ALICE_RIDE.into(),
        category_id: "ride_issue".into(),
        subject: "Bench".into(),
        description: "The trip took 40 minutes instead of 15.".into(),
        priority: pb::TicketPriority::High.into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

/// What an intake run did.
pub struct Intake {
    /// How long the callers ran.
    pub elapsed: Duration,
    /// Each CreateTicket's latency.
    pub latencies: Vec<Duration>,
    /// Each created ticket's id and its `create_time`.
    pub tickets: Vec<(String, chrono::DateTime<chrono::Utc>)>,
}

/// CreateTicket for Alice's ride from `callers` concurrent callers for
/// `secs` (paced by `BENCH_RATE` when set), counting each in `created` as
/// it returns.
pub async fn intake(
    ticket_addr: &str,
    callers: usize,
    secs: u64,
    created: Arc<std::sync::atomic::AtomicUsize>,
) -> anyhow::Result<Intake> {
    use helpdesk_kit::{auth::Role, clock::from_timestamp};
    use helpdesk_proto::support::v1::ticket_service_client::TicketServiceClient;
    use tonic::{Request, transport::Channel};

    let client = TicketServiceClient::new(
        Channel::from_shared(ticket_addr.to_owned())?
            .connect()
            .await?,
    );
    let token = helpdesk_testkit::minter().mint(ALICE, Role::User, chrono::Duration::hours(2));
    let started = tokio::time::Instant::now();
    let until = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (mut client, token, created) = (client.clone(), token.clone(), created.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut tickets) = (Vec::new(), Vec::new());
            let mut ticks = pacing(callers);
            while tokio::time::Instant::now() < until {
                if let Some(ticks) = ticks.as_mut() {
                    ticks.tick().await;
                }
                let mut request = Request::new(create_request());
                request
                    .metadata_mut()
                    .insert("authorization", format!("Bearer {token}").parse()?);
                let sent = std::time::Instant::now();
                let ticket = client.create_ticket(request).await?.into_inner();
                latencies.push(sent.elapsed());
                created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(at) = ticket.create_time.as_ref().and_then(from_timestamp) {
                    tickets.push((ticket.id, at));
                }
            }
            Ok::<_, anyhow::Error>((latencies, tickets))
        }));
    }
    let mut out = Intake {
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        tickets: Vec::new(),
    };
    for task in tasks {
        let (latencies, tickets) = task.await??;
        out.latencies.extend(latencies);
        out.tickets.extend(tickets);
    }
    out.elapsed = started.elapsed();
    Ok(out)
}

/// `BENCH_RATE`: creates per second in all, spread over `callers`; each
/// caller's ticker, or `None` to run unpaced (as fast as the machine goes).
pub fn pacing(callers: usize) -> Option<tokio::time::Interval> {
    let rate: f64 = std::env::var("BENCH_RATE").ok()?.parse().ok()?;
    (rate > 0.0).then(|| {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(callers as f64 / rate));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    })
}

/// How the intake is paced, for the report's header.
pub fn pacing_label() -> String {
    std::env::var("BENCH_RATE")
        .ok()
        .and_then(|r| r.parse::<f64>().ok())
        .filter(|r| *r > 0.0)
        .map_or(String::new(), |r| format!(", paced to {r:.0}/s"))
}

/// Something running until told to stop.
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Runs `serve` with a stop signal.
pub fn spawn<F, Fut>(serve: F) -> Running
where
    F: FnOnce(oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    Running {
        stop,
        task: tokio::spawn(serve(stopped)),
    }
}

/// The stand-in: the demo customers and rides, and exactly `staff`.
pub async fn standin(staff: Vec<SeedUser>) -> anyhow::Result<(String, Running)> {
    let listener = helpdesk_kit::server::bind("127.0.0.1:0".parse()?).await?;
    let addr = format!("http://{}", listener.local_addr()?);
    let mut data = DemoData::demo();
    data.users.retain(|u| !u.is_staff);
    data.users.extend(staff);
    let running = spawn(|stopped| {
        platform_standin::run(listener, data, Options::default(), async move {
            let _ = stopped.await;
        })
    });
    Ok((addr, running))
}

/// The ticket service with its relay publishing to a fresh exchange.
pub struct Tickets {
    pub addr: String,
    pub exchange: String,
    /// Kept so the database lives as long as the service.
    _db: TestDb,
    pub running: Running,
}

pub async fn tickets(standin_addr: &str, pool: u32) -> anyhow::Result<Tickets> {
    let exchange = unique_exchange();
    let db = TestDb::create(&ticket_service::MIGRATOR).await?;
    let app = ticket_service::startup::Application::build(
        ticket_service::config::Config::for_tests(
            common(&db.url, pool)?,
            standin_addr,
            Some(RelayConfig::new(&amqp_url(), &exchange, "bench-ticket")),
        ),
        Arc::new(SystemClock),
    )
    .await?;
    let addr = format!("http://127.0.0.1:{}", app.port());
    let running = spawn(|stopped| {
        app.run(async move {
            let _ = stopped.await;
        })
    });
    Ok(Tickets {
        addr,
        exchange,
        _db: db,
        running,
    })
}
