//! `spawn()` and typed clients: the one way tests start the whole flow:
//! the stand-in (with the staff a test asks for), the ticket service with
//! its relay on a fresh exchange, and one or more assignment replicas
//! sharing one database and one queue.

use std::{future::Future, sync::Arc, time::Duration};

use assignment_service::{
    MIGRATOR,
    app::{engine::Engine, roster::Roster},
    config::Config,
    startup::Application,
};
use chrono::{TimeZone, Utc};
use helpdesk_events::{
    consumer::{self, ConsumerConfig},
    relay::RelayConfig,
};
use helpdesk_kit::{
    auth::{AuthConfig, Role},
    clock::{ManualClock, to_timestamp},
    config::CommonConfig,
};
use helpdesk_proto::{
    Event,
    support::v1::{
        self as pb, assignment_service_client::AssignmentServiceClient,
        ticket_service_client::TicketServiceClient,
    },
};
use helpdesk_testkit::{
    Bearer, EventTap, TcpProxy, TestDb, amqp_url, delete_broker_objects, unique_exchange,
    violated_fields,
};
pub use helpdesk_testkit::{expect_code, wait_until};
use lapin::{BasicProperties, options::BasicPublishOptions, options::ConfirmSelectOptions};
use platform_standin::{DemoData, Options, SeedUser};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use uuid::Uuid;

pub use platform_standin::ids::{ADA, ALICE, SAM, SUE, TOM};
/// A staff member the tests add to the stand-in's data.
pub const VIC: &str = "0b000000-0000-4000-8000-000000000005";

pub type Assignments = AssignmentServiceClient<InterceptedService<Channel, Bearer>>;
pub type Tickets = TicketServiceClient<InterceptedService<Channel, Bearer>>;

/// Knobs for a test's world.
pub struct Setup {
    /// Staff accounts the stand-in lists (id, display name).
    pub staff: Vec<(String, String)>,
    pub replicas: usize,
    pub default_capacity: i32,
    /// Route the replicas' calls to the ticket service through a
    /// [`TcpProxy`] the test can cut ([`TestEnv::ticket_proxy`]).
    pub ticket_proxy: bool,
    /// Event consumers per replica (1 keeps events in publication order,
    /// which some tests rely on to know an earlier event was handled).
    pub consumer_concurrency: usize,
}

impl Default for Setup {
    /// Sam and Sue, one replica, capacity 10.
    fn default() -> Self {
        Self {
            staff: vec![
                (SAM.into(), "Sam Support".into()),
                (SUE.into(), "Sue Support".into()),
            ],
            replicas: 1,
            default_capacity: 10,
            ticket_proxy: false,
            consumer_concurrency: 1,
        }
    }
}

struct Replica {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    channel: Channel,
    engine: Engine,
    roster: Roster,
}

impl Replica {
    async fn start(config: &Config, clock: &Arc<ManualClock>) -> Self {
        let app = Application::build(config.clone(), clock.clone())
            .await
            .expect("assignment service");
        let (engine, roster, port) = (app.engine(), app.roster(), app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        Self {
            stop: Some(stop),
            task: Some(task),
            channel: channel_to(port).await,
            engine,
            roster,
        }
    }
}

pub struct TestEnv {
    pub clock: Arc<ManualClock>,
    /// The ticket service's database (kept alive for the test).
    ticket_db: TestDb,
    pub db: TestDb,
    /// The replicas' configuration (restarts reuse it).
    config: Config,
    pub exchange: String,
    pub queue: String,
    /// Between the replicas and the ticket service, when asked for.
    pub ticket_proxy: Option<TcpProxy>,
    ticket_channel: Channel,
    replicas: Vec<Replica>,
    standin: Standin,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// The running stand-in; its data is fixed, so tests that change the
/// directory restart it on the same port with new data.
struct Standin {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Standin {
    async fn start(listener: tokio::net::TcpListener, staff: Vec<SeedUser>) -> Self {
        let mut data = DemoData::demo();
        data.users.retain(|u| !u.is_staff);
        data.users.extend(staff);
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(platform_standin::run(
            listener,
            data,
            Options::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            port,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// A staff account for the stand-in.
pub fn staff_user(id: &str, name: &str) -> SeedUser {
    SeedUser {
        id: Uuid::parse_str(id).unwrap(),
        display_name: name.to_owned(),
        email: format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
        locale: "en-GB".into(),
        push_tokens: Vec::new(),
        active: true,
        is_staff: true,
        create_time: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    }
}

async fn channel_to(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn spawn() -> TestEnv {
    spawn_with(Setup::default()).await
}

pub async fn spawn_with(setup: Setup) -> TestEnv {
    helpdesk_kit::telemetry::init_for_tests();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
    ));
    let (mut stops, mut tasks) = (Vec::new(), Vec::new());

    // The stand-in: the demo customers and rides, and exactly the staff asked for.
    let listener = helpdesk_kit::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let standin_addr = format!("http://{}", listener.local_addr().unwrap());
    let staff = setup
        .staff
        .iter()
        .map(|(id, name)| staff_user(id, name))
        .collect();
    let standin = Standin::start(listener, staff).await;

    // The ticket service, publishing to this test's exchange.
    let exchange = unique_exchange();
    let ticket_db = TestDb::create(&ticket_service::MIGRATOR)
        .await
        .expect("ticket database");
    let mut relay = RelayConfig::new(&amqp_url(), &exchange, "ticket-test");
    relay.fallback_poll = Duration::from_millis(200);
    relay.standby_poll = Duration::from_millis(100);
    let common = |url: &str| CommonConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: url.to_owned(),
        database_max_connections: 8,
        auth: AuthConfig::dev(),
        otlp_endpoint: None,
        metrics_addr: None,
    };
    let ticket_config = ticket_service::config::Config {
        platform_timeout: Duration::from_secs(2),
        ..ticket_service::config::Config::for_tests(
            common(&ticket_db.url),
            &standin_addr,
            Some(relay),
        )
    };
    let ticket_app = ticket_service::startup::Application::build(ticket_config, clock.clone())
        .await
        .expect("ticket service");
    let ticket_port = ticket_app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    stops.push(stop);
    tasks.push(tokio::spawn(ticket_app.run(async move {
        let _ = stopped.await;
    })));

    // The assignment replicas: one database, one queue, declared before
    // anything is published so no event is missed.
    let db = TestDb::create(&MIGRATOR)
        .await
        .expect("assignment database");
    let queue = format!("assignment-test.{}", Uuid::new_v4().simple());
    let mut consumer_config = ConsumerConfig::new(
        &amqp_url(),
        &exchange,
        &queue,
        &assignment_service::app::consumer::BINDINGS,
    );
    consumer_config.max_attempts = 3;
    consumer_config.retry_delay = Duration::from_millis(200);
    // Bursts applied in shared transactions, as in production.
    consumer_config.batch = 32;
    consumer::declare(&consumer_config)
        .await
        .expect("declare queues");
    let ticket_proxy = if setup.ticket_proxy {
        Some(
            TcpProxy::start(([127, 0, 0, 1], ticket_port).into())
                .await
                .expect("ticket proxy"),
        )
    } else {
        None
    };
    let ticket_addr = match &ticket_proxy {
        Some(proxy) => format!("http://{}", proxy.addr),
        None => format!("http://127.0.0.1:{ticket_port}"),
    };
    let config = Config {
        common: common(&db.url),
        accounts_addr: standin_addr,
        ticket_addr,
        call_timeout: Duration::from_secs(5),
        consumer: consumer_config,
        consumer_concurrency: setup.consumer_concurrency,
        default_capacity: setup.default_capacity,
        roster_interval: Duration::from_secs(3600),
        reconcile_interval: Duration::from_secs(3600),
        redistribute_on_unavailable: true,
        escalation_tier: assignment_service::domain::Tier::L2,
        drain_interval: Duration::from_millis(200),
        service_identity: assignment_service::clients::tickets::SERVICE_SUBJECT.to_owned(),
    };
    let mut replicas = Vec::new();
    for _ in 0..setup.replicas.max(1) {
        replicas.push(Replica::start(&config, &clock).await);
    }
    let env = TestEnv {
        clock,
        ticket_db,
        db,
        config,
        exchange,
        queue,
        ticket_proxy,
        ticket_channel: channel_to(ticket_port).await,
        replicas,
        standin,
        stops,
        tasks,
    };
    // The start-up roster sync runs in the background; wait for it.
    let expected = setup.staff.len();
    env.wait_until("the roster is synced", || async {
        env.agents().await.len() == expected
    })
    .await;
    env
}

impl TestEnv {
    fn bearer(sub: &str, role: Role) -> Bearer {
        Bearer::token(sub, role)
    }

    /// The assignment API (replica 0) as `sub` with `role`.
    pub fn assignments_as(&self, sub: &str, role: Role) -> Assignments {
        self.assignments_on(0, sub, role)
    }

    pub fn assignments_on(&self, replica: usize, sub: &str, role: Role) -> Assignments {
        AssignmentServiceClient::with_interceptor(
            self.replicas[replica].channel.clone(),
            Self::bearer(sub, role),
        )
    }

    pub fn admin(&self) -> Assignments {
        self.assignments_as(ADA, Role::Admin)
    }

    /// The ticket service as `sub` with `role`.
    pub fn tickets_as(&self, sub: &str, role: Role) -> Tickets {
        TicketServiceClient::with_interceptor(self.ticket_channel.clone(), Self::bearer(sub, role))
    }

    pub fn engine(&self) -> &Engine {
        &self.replicas[0].engine
    }

    pub fn roster(&self) -> &Roster {
        &self.replicas[0].roster
    }

    /// Every agent, by id.
    pub async fn agents(&self) -> Vec<pb::Agent> {
        let mut agents = self
            .assignments_as("test", Role::Service)
            .list_agents(pb::ListAgentsRequest {
                show_inactive: true,
            })
            .await
            .unwrap()
            .into_inner()
            .agents;
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        agents
    }

    pub async fn agent(&self, id: &str) -> pb::Agent {
        self.assignments_as("test", Role::Service)
            .get_agent(pb::GetAgentRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
    }

    /// Open tickets per agent, as this service stores it.
    pub async fn workload(&self, id: &str) -> i32 {
        self.agent(id).await.open_tickets
    }

    /// Admin UpdateAgent; waits for the redistribution it starts, if any.
    pub async fn update_agent(&self, agent: pb::Agent, paths: &[&str]) -> pb::Agent {
        let agent = self
            .admin()
            .update_agent(update(agent, paths))
            .await
            .expect("update agent")
            .into_inner();
        if !agent.redistribution_operation_id.is_empty() {
            self.wait_operation(&agent.redistribution_operation_id)
                .await;
        }
        agent
    }

    /// Polls an operation until it is done (every move confirmed).
    pub async fn wait_operation(&self, id: &str) -> pb::AssignmentOperation {
        let get = || async {
            self.admin()
                .get_assignment_operation(pb::GetAssignmentOperationRequest { id: id.into() })
                .await
                .expect("get operation")
                .into_inner()
        };
        self.wait_until("the operation is done", || async { get().await.done })
            .await;
        get().await
    }

    /// Pending moves the mover has tried at least once.
    pub async fn attempted_moves(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM moves WHERE done_at IS NULL AND attempts > 0")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Makes every pending move due now, as if its retry delay had passed.
    pub async fn moves_due_now(&self) {
        sqlx::query("UPDATE moves SET not_before = '-infinity' WHERE done_at IS NULL")
            .execute(&self.db.pool)
            .await
            .unwrap();
    }

    /// Pending moves (decided, not yet confirmed by the ticket service).
    pub async fn pending_moves(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM moves WHERE done_at IS NULL")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    pub async fn set_available(&self, id: &str, available: bool) {
        self.update_agent(
            pb::Agent {
                id: id.into(),
                available,
                ..Default::default()
            },
            &["available"],
        )
        .await;
    }

    pub async fn set_capacity(&self, id: &str, capacity: i32) {
        self.update_agent(
            pb::Agent {
                id: id.into(),
                capacity,
                ..Default::default()
            },
            &["capacity"],
        )
        .await;
    }

    /// A ticket for Alice filed by staff, in `category` with `priority`.
    pub async fn create_ticket(&self, category: &str, priority: pb::TicketPriority) -> pb::Ticket {
        self.tickets_as(SAM, Role::Staff)
            .create_ticket(new_ticket(category, priority))
            .await
            .expect("create ticket")
            .into_inner()
    }

    /// The ticket as the ticket service has it now.
    pub async fn ticket(&self, id: &str) -> pb::Ticket {
        self.tickets_as("test", Role::Service)
            .get_ticket(pb::GetTicketRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
    }

    /// The ticket's assignee in the ticket service ("" when none).
    pub async fn assignee(&self, id: &str) -> String {
        self.ticket(id).await.assignee_id
    }

    /// Waits (at most 20 s, polling) until the ticket service shows `agent`
    /// as the ticket's assignee.
    pub async fn wait_assignee(&self, ticket: &str, agent: &str) {
        self.wait_until(
            &format!("ticket {ticket} assigned to {agent:?}"),
            || async { self.assignee(ticket).await == agent },
        )
        .await;
    }

    /// The waiting queue, in serving order (ticket ids).
    pub async fn waiting(&self) -> Vec<String> {
        self.assignments_as("test", Role::Service)
            .list_unassigned_tickets(pb::ListUnassignedTicketsRequest { page_size: 0 })
            .await
            .unwrap()
            .into_inner()
            .assignments
            .into_iter()
            .map(|a| a.ticket_id)
            .collect()
    }

    /// Polls `condition` every 50 ms for at most 20 s.
    pub async fn wait_until<F, Fut>(&self, what: &str, condition: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        wait_until(what, Duration::from_secs(20), condition).await
    }

    /// Whether every stored workload equals the count of open assignments.
    pub async fn stored_workloads_are_true(&self) -> bool {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM agents a
             WHERE a.open_tickets <> (SELECT count(*) FROM assignments s
                                      WHERE s.agent_id = a.account_id AND s.open)",
        )
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
            == 0
    }

    /// Publishes `event` to this test's exchange as the ticket service
    /// would: routing key, `type`, `message_id` = event id, persistent.
    pub async fn publish<E: Event>(&self, event_id: &str, event: &E) {
        self.publish_raw(
            E::ROUTING_KEY,
            &E::full_name(),
            event_id,
            event.encode_to_vec(),
        )
        .await;
    }

    pub async fn publish_raw(
        &self,
        routing_key: &str,
        message_type: &str,
        message_id: &str,
        payload: Vec<u8>,
    ) {
        let connection = helpdesk_events::amqp::connect(&amqp_url(), "test-publisher")
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/x-protobuf".into())
            .with_type(message_type.into())
            .with_message_id(message_id.into());
        let confirm = channel
            .basic_publish(
                self.exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                &payload,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
        let _ = connection.close(200, "done".into()).await;
    }

    /// How many events wait in the dead-letter queue (a passive declare).
    pub async fn dead_letters(&self) -> u32 {
        let connection = helpdesk_events::amqp::connect(&amqp_url(), "test-dead-letters")
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let queue = channel
            .queue_declare(
                format!("{}.dead", self.queue).as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .expect("the dead-letter queue exists");
        let _ = connection.close(200, "done".into()).await;
        queue.message_count()
    }

    /// Whether the consumer has processed the event `event_id`.
    pub async fn processed(&self, event_id: &str) -> bool {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM processed_events WHERE event_id = $1::uuid",
        )
        .bind(event_id)
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
            == 1
    }

    /// Reads the events of this test's exchange matching `pattern` from now on.
    pub async fn tap(&self, pattern: &str) -> EventTap {
        EventTap::start(&self.exchange, pattern)
            .await
            .expect("event tap")
    }

    /// Replaces the staff directory: the stand-in restarts on its port
    /// serving `staff` (clients reconnect on their own).
    pub async fn restart_standin(&mut self, staff: Vec<SeedUser>) {
        self.standin.stop().await;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.standin.port));
        let listener = helpdesk_kit::server::bind(addr)
            .await
            .expect("rebind the stand-in's port");
        self.standin = Standin::start(listener, staff).await;
    }

    /// Stops every replica gracefully and waits: each must shut down
    /// cleanly (server drained, consumer and tasks stopped).
    /// Stops every replica and starts as many new ones (a restart).
    pub async fn restart_replicas(&mut self) {
        self.stop_replicas().await;
        for replica in &mut self.replicas {
            *replica = Replica::start(&self.config, &self.clock).await;
        }
    }

    /// `ticket.assigned` events the ticket service wrote for `ticket`
    /// (its outbox keeps sent events): the count of assignments it applied.
    pub async fn assigned_events(&self, ticket: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM outbox
             WHERE aggregate_id = $1::uuid AND routing_key = 'ticket.assigned'",
        )
        .bind(ticket)
        .fetch_one(&self.ticket_db.pool)
        .await
        .unwrap()
    }

    /// Every `ticket.assigned` the ticket service wrote.
    pub async fn assigned_events_total(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE routing_key = 'ticket.assigned'")
            .fetch_one(&self.ticket_db.pool)
            .await
            .unwrap()
    }

    /// Waits until no move is pending: the ticket service has applied
    /// every assignment it ever will for what was decided so far.
    pub async fn moves_settled(&self) {
        self.wait_until("every move is answered", || async {
            self.pending_moves().await == 0
        })
        .await;
    }

    pub async fn stop_replicas(&mut self) {
        for replica in &mut self.replicas {
            if let Some(stop) = replica.stop.take() {
                let _ = stop.send(());
            }
            if let Some(task) = replica.task.take() {
                task.await.expect("replica task").expect("clean shutdown");
            }
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for replica in &mut self.replicas {
            if let Some(stop) = replica.stop.take() {
                let _ = stop.send(());
            }
        }
        if let Some(stop) = self.standin.stop.take() {
            let _ = stop.send(());
        }
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in &self.tasks {
            task.abort();
        }
        let mut queues = vec![self.queue.clone(), format!("{}.dead", self.queue)];
        queues.extend((1..3).map(|n| format!("{}.retry.{n}", self.queue)));
        delete_broker_objects(Some(self.exchange.clone()), queues);
    }
}

pub fn new_ticket(category: &str, priority: pb::TicketPriority) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        user_id: ALICE.into(),
        ride_id: String::new(),
        category_id: category.into(),
        subject: "Charged twice".into(),
        description: "The fare was taken twice from my card.".into(),
        priority: priority.into(),
        request_id: String::new(),
    }
}

pub fn update(agent: pb::Agent, paths: &[&str]) -> pb::UpdateAgentRequest {
    pb::UpdateAgentRequest {
        agent: Some(agent),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    }
}

/// A `TicketEscalated` for `ticket` as the scheduler would publish it.
pub fn escalated(ticket: &pb::Ticket, reason: &str) -> (String, pb::TicketEscalated) {
    let event_id = Uuid::now_v7().to_string();
    let event = pb::TicketEscalated {
        header: Some(pb::EventHeader {
            event_id: event_id.clone(),
            occurred_at: Some(to_timestamp(Utc::now())),
            actor_id: "scheduler-service".into(),
            actor_role: "service".into(),
        }),
        ticket: Some(snapshot(ticket)),
        reason: reason.into(),
        from_priority: ticket.priority,
    };
    (event_id, event)
}

pub fn snapshot(t: &pb::Ticket) -> pb::TicketSnapshot {
    pb::TicketSnapshot {
        ticket_id: t.id.clone(),
        human_id: t.human_id.clone(),
        user_id: t.user_id.clone(),
        assignee_id: t.assignee_id.clone(),
        category_id: t.category_id.clone(),
        priority: t.priority,
        status: t.status,
        subject: t.subject.clone(),
        ride_id: t.ride_id.clone(),
        create_time: t.create_time,
        ..Default::default()
    }
}

/// Asserts INVALID_ARGUMENT naming each of `fields`.
#[track_caller]
pub fn expect_violations<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, Status>,
    fields: &[&str],
) {
    let status = expect_code(result, Code::InvalidArgument);
    let named = violated_fields(&status);
    for field in fields {
        assert!(
            named.iter().any(|f| f == field),
            "expected a violation on {field}, got {named:?}"
        );
    }
}

/// Staff (Sam) moves `ticket` to `status` through the ticket service.
pub async fn set_status(env: &TestEnv, ticket: &str, status: pb::TicketStatus) {
    env.tickets_as(SAM, Role::Staff)
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: ticket.into(),
                status: status.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["status".into()],
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
}

/// Creates `n` tickets and waits until each has an assignee.
pub async fn assigned_tickets(env: &TestEnv, n: usize) -> Vec<pb::Ticket> {
    let mut out = Vec::new();
    for _ in 0..n {
        let t = env
            .create_ticket("ride_issue", pb::TicketPriority::Medium)
            .await;
        env.wait_until("the ticket is assigned", || async {
            !env.assignee(&t.id).await.is_empty()
        })
        .await;
        out.push(env.ticket(&t.id).await);
    }
    // The ticket service shows an assignee as soon as it applied a move; the
    // mover records the answer just after. Until then a manual assignment
    // of the ticket is refused with "being moved; retry shortly".
    env.wait_until("every move is recorded", || async {
        env.pending_moves().await == 0
    })
    .await;
    out
}
