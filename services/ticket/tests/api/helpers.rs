//! `spawn()` / `spawn_with(Setup)` and typed clients: the one way tests start the service.

use std::{sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use helpdesk_events::relay::RelayConfig;
use helpdesk_kit::{
    auth::{AuthConfig, Role},
    clock::ManualClock,
    config::CommonConfig,
};
use helpdesk_proto::support::v1::{
    self as pb, attachment_service_client::AttachmentServiceClient,
    category_service_client::CategoryServiceClient, faq_service_client::FaqServiceClient,
    operations_service_client::OperationsServiceClient, ticket_service_client::TicketServiceClient,
};
use helpdesk_testkit::{
    Bearer, EventTap, TcpProxy, TestDb, amqp_url, delete_broker_objects, minter, unique_exchange,
};
pub use helpdesk_testkit::{expect_code, violated_fields};
use platform_standin::{DemoData, Options};
use ticket_service::{
    MIGRATOR,
    config::{Config, StoreConfig},
    domain::attachment::Limits,
    startup::Application,
};
use tokio::{
    sync::{Notify, oneshot},
    task::JoinHandle,
};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

pub use platform_standin::ids::*;

pub const SERVICE: &str = "assignment-service";
pub const UNKNOWN: &str = "0f000000-0000-4000-8000-000000000099";

pub type Tickets = TicketServiceClient<InterceptedService<Channel, Bearer>>;
pub type Categories = CategoryServiceClient<InterceptedService<Channel, Bearer>>;
pub type Operations = OperationsServiceClient<InterceptedService<Channel, Bearer>>;
pub type Attachments = AttachmentServiceClient<InterceptedService<Channel, Bearer>>;
pub type Faqs = FaqServiceClient<InterceptedService<Channel, Bearer>>;

/// Clients acting as one caller.
pub struct As {
    pub tickets: Tickets,
    pub categories: Categories,
    pub operations: Operations,
    pub attachments: Attachments,
    pub faqs: Faqs,
}

/// A running stand-in that tests can stop.
struct Standin {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

pub struct TestApp {
    pub db: TestDb,
    pub clock: Arc<ManualClock>,
    pub addr: String,
    channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    standin: Standin,
    /// This test's own events exchange.
    pub exchange: String,
    /// Between the relay and RabbitMQ, when the test asked for one.
    pub broker: Option<TcpProxy>,
    /// Between the service and PostgreSQL, when the test asked for one.
    pub database: Option<TcpProxy>,
    /// Notified as each call reaches the stand-in: a call is in flight.
    pub standin_arrivals: Arc<Notify>,
    /// The attachment store, when it is a directory (by default a fresh one
    /// per test, removed at the end).
    pub attachments_dir: Option<std::path::PathBuf>,
}

/// Knobs for unusual setups.
#[derive(Default)]
pub struct Setup {
    /// Per-call delay of the stand-in.
    pub standin_delay: Duration,
    /// The ticket service's deadline on platform calls (default 800 ms).
    pub platform_timeout: Option<Duration>,
    /// Route the relay's broker connection through a [`TcpProxy`] the test can cut.
    pub broker_proxy: bool,
    /// Route the service's database connections through a [`TcpProxy`] too.
    pub database_proxy: bool,
    /// Where attachments go (default: a fresh directory of this test's).
    pub attachments_store: Option<StoreConfig>,
    /// Attachment limits (default: the service's defaults).
    pub attachment_limits: Option<Limits>,
}

pub async fn spawn() -> TestApp {
    spawn_with(Setup::default()).await
}

pub async fn spawn_with(setup: Setup) -> TestApp {
    helpdesk_kit::telemetry::init_for_tests();
    let db = TestDb::create(&MIGRATOR).await.expect("test database");

    let standin_listener = helpdesk_kit::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let standin_addr = format!("http://{}", standin_listener.local_addr().unwrap());
    let (standin_stop, standin_stopped) = oneshot::channel::<()>();
    let standin_options = Options::with_delay(setup.standin_delay);
    let standin_arrivals = standin_options.arrivals.clone();
    let standin_task = tokio::spawn(platform_standin::run(
        standin_listener,
        DemoData::demo(),
        standin_options,
        async move {
            let _ = standin_stopped.await;
        },
    ));

    let exchange = unique_exchange();
    let broker = if setup.broker_proxy {
        Some(
            TcpProxy::start("127.0.0.1:5672".parse().unwrap())
                .await
                .unwrap(),
        )
    } else {
        None
    };
    let broker_url = match &broker {
        Some(proxy) => format!("amqp://guest:guest@{}/%2f", proxy.addr),
        None => amqp_url(),
    };
    let database = if setup.database_proxy {
        Some(
            TcpProxy::start("127.0.0.1:5432".parse().unwrap())
                .await
                .unwrap(),
        )
    } else {
        None
    };
    let database_url = match &database {
        Some(proxy) => db.url.replace("127.0.0.1:5432", &proxy.addr.to_string()),
        None => db.url.clone(),
    };
    let mut relay = RelayConfig::new(&broker_url, &exchange, "ticket-test");
    relay.fallback_poll = Duration::from_millis(200);
    relay.standby_poll = Duration::from_millis(100);

    let attachments_store = setup.attachments_store.unwrap_or_else(|| {
        StoreConfig::Directory(
            std::env::temp_dir().join(format!("ticket-attachments-{}", uuid::Uuid::new_v4())),
        )
    });
    let attachments_dir = match &attachments_store {
        StoreConfig::Directory(dir) => Some(dir.clone()),
        StoreConfig::S3(_) => None,
    };
    let common = CommonConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        database_url,
        database_max_connections: 8,
        auth: AuthConfig::dev(),
        otlp_endpoint: None,
        metrics_addr: None,
    };
    let defaults = Config::for_tests(common, &standin_addr, Some(relay));
    let config = Config {
        platform_timeout: setup.platform_timeout.unwrap_or(defaults.platform_timeout),
        attachments_store,
        attachment_limits: setup.attachment_limits.unwrap_or_default(),
        ..defaults
    };
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
    ));
    let app = Application::build(config, clock.clone())
        .await
        .expect("build app");
    let addr = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    TestApp {
        db,
        clock,
        addr,
        channel,
        stop: Some(stop),
        server: Some(server),
        standin: Standin {
            stop: Some(standin_stop),
            task: standin_task,
        },
        exchange,
        broker,
        database,
        standin_arrivals,
        attachments_dir,
    }
}

impl TestApp {
    /// Clients sending `authorization` exactly as given (or nothing).
    pub fn with_header(&self, value: Option<&str>) -> As {
        let bearer = Bearer::raw(value);
        As {
            tickets: TicketServiceClient::with_interceptor(self.channel.clone(), bearer.clone()),
            categories: CategoryServiceClient::with_interceptor(
                self.channel.clone(),
                bearer.clone(),
            ),
            operations: OperationsServiceClient::with_interceptor(
                self.channel.clone(),
                bearer.clone(),
            ),
            attachments: AttachmentServiceClient::with_interceptor(
                self.channel.clone(),
                bearer.clone(),
            ),
            faqs: FaqServiceClient::with_interceptor(self.channel.clone(), bearer),
        }
    }

    /// Clients acting as `sub` with `role`, with a valid token.
    pub fn as_(&self, sub: &str, role: Role) -> As {
        let token = minter().mint(sub, role, chrono::Duration::hours(1));
        self.with_header(Some(&format!("Bearer {token}")))
    }

    pub fn alice(&self) -> As {
        self.as_(ALICE, Role::User)
    }
    pub fn bob(&self) -> As {
        self.as_(BOB, Role::User)
    }
    pub fn sam(&self) -> As {
        self.as_(SAM, Role::Staff)
    }
    pub fn ada(&self) -> As {
        self.as_(ADA, Role::Admin)
    }
    pub fn service(&self) -> As {
        self.as_(SERVICE, Role::Service)
    }

    /// Reads every event this test's service publishes from now on.
    pub async fn tap(&self) -> EventTap {
        EventTap::start(&self.exchange, "#")
            .await
            .expect("event tap")
    }

    /// Stops the stand-in: the dependency is down from now on.
    pub async fn stop_standin(&mut self) {
        if let Some(stop) = self.standin.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.standin.task).await;
    }

    /// Starts a graceful stop of the ticket service and waits for it.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => server.await?,
            None => Ok(()),
        }
    }

    /// Sends the stop signal without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.db.pool)
            .await
            .expect("count query")
    }

    /// Outbox routing keys in insertion order.
    pub async fn outbox_keys(&self) -> Vec<String> {
        sqlx::query_scalar::<_, String>("SELECT routing_key FROM outbox ORDER BY id")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }

    /// Alice's ticket about her ride, created by Alice.
    pub async fn alice_ticket(&self) -> pb::Ticket {
        self.alice()
            .tickets
            .create_ticket(new_ticket(""))
            .await
            .expect("create")
            .into_inner()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.standin.stop.take() {
            let _ = stop.send(());
        }
        delete_broker_objects(Some(self.exchange.clone()), Vec::new());
        if let Some(dir) = &self.attachments_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A valid CreateTicketRequest for Alice (ride and all).
pub fn new_ticket(request_id: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        user_id: String::new(),
        ride_id: ALICE_RIDE.into(),
        category_id: "ride_issue".into(),
        subject: "Driver took a long detour".into(),
        description: "The trip took 40 minutes instead of 15.".into(),
        priority: pb::TicketPriority::High.into(),
        request_id: request_id.into(),
    }
}

/// A request for `sub`, as staff would file it.
pub fn ticket_for(user: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        user_id: user.into(),
        ride_id: String::new(),
        ..new_ticket("")
    }
}

/// Asserts INVALID_ARGUMENT naming `field`.
#[track_caller]
pub fn expect_violation<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, Status>,
    field: &str,
) {
    let status = expect_code(result, Code::InvalidArgument);
    let fields = violated_fields(&status);
    assert!(
        fields.iter().any(|f| f == field),
        "expected a violation on {field}, got {fields:?} ({})",
        status.message()
    );
}

pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// UpdateTicket setting only the status.
pub fn set_status(ticket_id: &str, status: pb::TicketStatus) -> pb::UpdateTicketRequest {
    pb::UpdateTicketRequest {
        ticket: Some(pb::Ticket {
            id: ticket_id.into(),
            status: status.into(),
            ..Default::default()
        }),
        update_mask: mask(&["status"]),
        request_id: String::new(),
    }
}

pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
