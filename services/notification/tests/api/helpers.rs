//! `spawn()` and typed clients: the stand-in, the ticket service with its
//! relay on a fresh exchange, and the notification service consuming it.

use std::{future::Future, sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use helpdesk_events::{
    consumer::{self, ConsumerConfig},
    relay::RelayConfig,
};
use helpdesk_kit::{
    auth::{AuthConfig, Role},
    clock::ManualClock,
    config::CommonConfig,
};
use helpdesk_proto::{
    Event,
    support::v1::{
        self as pb, notification_service_client::NotificationServiceClient,
        ticket_service_client::TicketServiceClient,
    },
};
use helpdesk_testkit::{Bearer, TestDb, amqp_url, delete_broker_objects, unique_exchange};
pub use helpdesk_testkit::{expect_code, violated_fields};
use lapin::{BasicProperties, options::BasicPublishOptions, options::ConfirmSelectOptions};
use notification_service::{
    MIGRATOR, config::Config, domain::audience::StaffAudience, startup::Application,
};
use platform_standin::{DemoData, Options};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use uuid::Uuid;

pub use platform_standin::ids::{ADA, ALICE, BOB, SAM, SUE, TOM};

pub type Notifications = NotificationServiceClient<InterceptedService<Channel, Bearer>>;
pub type Tickets = TicketServiceClient<InterceptedService<Channel, Bearer>>;

/// Knobs for a test's world.
pub struct Setup {
    pub new_ticket: StaffAudience,
    pub triage: Vec<Uuid>,
    pub escalation: Vec<Uuid>,
    pub mandatory: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            new_ticket: StaffAudience::AllStaff,
            triage: Vec::new(),
            escalation: vec![Uuid::parse_str(TOM).unwrap()],
            mandatory: "",
        }
    }
}

pub struct TestEnv {
    _clock: Arc<ManualClock>,
    _ticket_db: TestDb,
    pub db: TestDb,
    pub exchange: String,
    pub queue: String,
    ticket_channel: Channel,
    channel: Channel,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
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
    let mut run = |task: JoinHandle<anyhow::Result<()>>, stop: oneshot::Sender<()>| {
        stops.push(stop);
        tasks.push(task);
    };

    let listener = helpdesk_kit::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let standin_addr = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    run(
        tokio::spawn(platform_standin::run(
            listener,
            DemoData::demo(),
            Options::default(),
            async move {
                let _ = stopped.await;
            },
        )),
        stop,
    );

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
    run(
        tokio::spawn(ticket_app.run(async move {
            let _ = stopped.await;
        })),
        stop,
    );

    let db = TestDb::create(&MIGRATOR)
        .await
        .expect("notification database");
    let queue = format!("notification-test.{}", Uuid::new_v4().simple());
    let mut consumer_config = ConsumerConfig::new(
        &amqp_url(),
        &exchange,
        &queue,
        &notification_service::app::intake::BINDINGS,
    );
    consumer_config.max_attempts = 3;
    consumer_config.retry_delay = Duration::from_millis(200);
    // Bursts applied in shared transactions, as in production.
    consumer_config.batch = 32;
    consumer::declare(&consumer_config)
        .await
        .expect("declare queues");
    // Everything else as a local run has it (SMTP and push unset or local).
    let mut config = Config::with_common(common(&db.url)).expect("config");
    config.accounts_addr = standin_addr;
    config.consumer = consumer_config;
    config.consumer_concurrency = 1;
    config.new_ticket_audience = setup.new_ticket;
    config.triage_group = setup.triage;
    config.escalation_group = setup.escalation;
    config.policy.mandatory =
        notification_service::domain::preferences::Policy::parse_pairs(setup.mandatory).unwrap();
    let app = Application::build(config, clock.clone())
        .await
        .expect("notification service");
    let app_port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    run(
        tokio::spawn(app.run(async move {
            let _ = stopped.await;
        })),
        stop,
    );
    TestEnv {
        _clock: clock,
        _ticket_db: ticket_db,
        db,
        exchange,
        queue,
        ticket_channel: channel_to(ticket_port).await,
        channel: channel_to(app_port).await,
        stops,
        tasks,
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
        delete_broker_objects(
            Some(self.exchange.clone()),
            vec![self.queue.clone(), format!("{}.dead", self.queue)],
        );
    }
}

impl TestEnv {
    /// The notification API as `sub` with `role`.
    pub fn notifications_as(&self, sub: &str, role: Role) -> Notifications {
        NotificationServiceClient::with_interceptor(self.channel.clone(), Bearer::token(sub, role))
    }

    pub fn user(&self, sub: &str) -> Notifications {
        self.notifications_as(sub, Role::User)
    }

    pub fn staff(&self, sub: &str) -> Notifications {
        self.notifications_as(sub, Role::Staff)
    }

    pub fn tickets_as(&self, sub: &str, role: Role) -> Tickets {
        TicketServiceClient::with_interceptor(self.ticket_channel.clone(), Bearer::token(sub, role))
    }

    /// Alice opens a ticket herself.
    pub async fn alice_opens(&self, subject: &str) -> pb::Ticket {
        self.tickets_as(ALICE, Role::User)
            .create_ticket(pb::CreateTicketRequest {
                user_id: ALICE.into(),
                subject: subject.into(),
                description: "The fare was taken twice from my card.".into(),
                priority: pb::TicketPriority::High.into(),
                ..Default::default()
            })
            .await
            .expect("create ticket")
            .into_inner()
    }

    pub async fn assign(&self, ticket: &pb::Ticket, by: &str, to: &str) {
        self.tickets_as(by, Role::Staff)
            .assign_ticket(pb::AssignTicketRequest {
                ticket_id: ticket.id.clone(),
                assignee_id: to.into(),
                ..Default::default()
            })
            .await
            .expect("assign");
    }

    pub async fn post(
        &self,
        ticket: &pb::Ticket,
        by: &str,
        role: Role,
        body: &str,
        internal: bool,
    ) {
        self.tickets_as(by, role)
            .post_message(pb::PostMessageRequest {
                ticket_id: ticket.id.clone(),
                body: body.into(),
                internal,
                request_id: String::new(),
                attachment_ids: Vec::new(),
            })
            .await
            .expect("post message");
    }

    pub async fn set_status(&self, ticket: &pb::Ticket, by: &str, status: pb::TicketStatus) {
        self.tickets_as(by, Role::Staff)
            .update_ticket(pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    id: ticket.id.clone(),
                    status: status.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into()],
                }),
                request_id: String::new(),
            })
            .await
            .expect("update status");
    }

    /// `who`'s feed, newest first (as user or staff by the id's shape).
    pub async fn feed(&self, who: &str) -> Vec<pb::Notification> {
        self.notifications_as(who, role_of(who))
            .list_notifications(pb::ListNotificationsRequest {
                page_size: 100,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner()
            .notifications
    }

    /// The kinds in `who`'s feed about `ticket`, oldest first.
    pub async fn kinds(&self, who: &str, ticket: &pb::Ticket) -> Vec<pb::NotificationKind> {
        let mut kinds: Vec<_> = self
            .feed(who)
            .await
            .into_iter()
            .filter(|n| n.ticket_id == ticket.id)
            .map(|n| n.kind())
            .collect();
        kinds.reverse();
        kinds
    }

    /// Publishes `event` to this test's exchange as a producer would.
    pub async fn publish<E: Event>(&self, event_id: &str, event: &E) {
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
            .with_type(E::full_name().into())
            .with_message_id(event_id.into());
        let confirm = channel
            .basic_publish(
                self.exchange.as_str().into(),
                E::ROUTING_KEY.into(),
                BasicPublishOptions::default(),
                &event.encode_to_vec(),
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
        let _ = connection.close(200, "done".into()).await;
    }
}

/// Staff ids start `0b`/`0c` in the demo data.
pub fn role_of(id: &str) -> Role {
    match &id[..2] {
        "0b" => Role::Staff,
        "0c" => Role::Admin,
        _ => Role::User,
    }
}

/// A header and snapshot for events the scheduler publishes.
pub fn header_and_snapshot(ticket: &pb::Ticket) -> (String, pb::EventHeader, pb::TicketSnapshot) {
    let event_id = Uuid::now_v7().to_string();
    let header = pb::EventHeader {
        event_id: event_id.clone(),
        occurred_at: Some(helpdesk_kit::clock::to_timestamp(Utc::now())),
        actor_id: String::new(),
        actor_role: "service".into(),
    };
    let snapshot = pb::TicketSnapshot {
        ticket_id: ticket.id.clone(),
        human_id: ticket.human_id.clone(),
        user_id: ticket.user_id.clone(),
        assignee_id: ticket.assignee_id.clone(),
        subject: ticket.subject.clone(),
        priority: ticket.priority,
        status: ticket.status,
        ..Default::default()
    };
    (event_id, header, snapshot)
}

/// Polls `condition` for at most 20 s (testkit `wait_until`).
pub async fn wait_until<F, Fut>(what: &str, condition: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    helpdesk_testkit::wait_until(what, Duration::from_secs(20), condition).await
}
