//! `World`: the scheduler wired to a real ticket service, both in this
//! process on one manual clock: the platform stand-in, the ticket service
//! (its own database, its relay publishing to a fresh exchange on the real
//! RabbitMQ) and one scheduler replica whose `TicketWork` is the gRPC
//! [`TicketJobsClient`]. Every job is scheduled yearly (on 1 January), so
//! nothing runs unless a test says `run(job)`; tests move the clock through
//! the days, never sleep through them.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use helpdesk_events::relay::RelayConfig;
use helpdesk_kit::{
    auth::{AuthConfig, Role},
    clock::ManualClock,
    config::CommonConfig,
};
use helpdesk_proto::support::v1::{
    self as pb, faq_service_client::FaqServiceClient,
    scheduler_service_client::SchedulerServiceClient, ticket_service_client::TicketServiceClient,
};
use helpdesk_testkit::{
    Bearer, EventTap, TestDb, amqp_url, delete_broker_objects, unique_exchange,
};
use platform_standin::{DemoData, Options};
use scheduler_service::{
    MIGRATOR,
    clients::tickets::TicketJobsClient,
    config::Config,
    domain::{CatchUp, JobKind, Overlap},
    startup::Application,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use uuid::Uuid;

use crate::helpers::{ADMIN, RunView, job, wait_until};

pub use platform_standin::ids::{ALICE, ALICE_RIDE, SAM};

pub type Tickets = TicketServiceClient<InterceptedService<Channel, Bearer>>;
pub type Faqs = FaqServiceClient<InterceptedService<Channel, Bearer>>;
pub type Scheduler = SchedulerServiceClient<InterceptedService<Channel, Bearer>>;

pub struct World {
    pub clock: Arc<ManualClock>,
    pub ticket_db: TestDb,
    pub db: TestDb,
    pub exchange: String,
    pub ticket_addr: String,
    ticket_channel: Channel,
    scheduler_channel: Channel,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

async fn channel_to(addr: &str) -> Channel {
    Channel::from_shared(addr.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn common(url: &str) -> CommonConfig {
    CommonConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: url.to_owned(),
        database_max_connections: 8,
        auth: AuthConfig::dev(),
        otlp_endpoint: None,
        metrics_addr: None,
    }
}

impl World {
    /// Everything up at `start`; the scheduler asks for `page_size`
    /// tickets per page.
    pub async fn start(start: DateTime<Utc>, page_size: i32) -> World {
        helpdesk_kit::telemetry::init_for_tests();
        let clock = Arc::new(ManualClock::new(start));
        let (mut stops, mut tasks) = (Vec::new(), Vec::new());

        let listener = helpdesk_kit::server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let standin_addr = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tasks.push(tokio::spawn(platform_standin::run(
            listener,
            DemoData::demo(),
            Options::default(),
            async move {
                let _ = stopped.await;
            },
        )));
        stops.push(stop);

        let exchange = unique_exchange();
        let ticket_db = TestDb::create(&ticket_service::MIGRATOR)
            .await
            .expect("ticket database");
        let mut relay = RelayConfig::new(&amqp_url(), &exchange, "ticket-test");
        relay.fallback_poll = Duration::from_millis(200);
        relay.standby_poll = Duration::from_millis(100);
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
        let ticket_addr = format!("http://127.0.0.1:{}", ticket_app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        tasks.push(tokio::spawn(ticket_app.run(async move {
            let _ = stopped.await;
        })));
        stops.push(stop);

        let db = TestDb::create(&MIGRATOR).await.expect("scheduler database");
        let mut config = Config::with_common(common(&db.url)).expect("config");
        config.jobs = JobKind::ALL
            .into_iter()
            .map(|kind| job(kind, "0 0 1 1 *", "UTC", Overlap::Skip, CatchUp::Skip))
            .collect();
        config.scheduler.tick = Duration::from_millis(20);
        config.scheduler.renew_every = Duration::from_millis(100);
        config.holder = "r0".into();
        config.ticket_addr = Some(ticket_addr.clone());
        config.ticket_page_size = page_size;
        let work = scheduler_service::startup::ticket_work(&config).expect("ticket client");
        let app = Application::build(config, clock.clone(), work)
            .await
            .expect("scheduler");
        let scheduler_addr = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        tasks.push(tokio::spawn(app.run(async move {
            let _ = stopped.await;
        })));
        stops.push(stop);

        World {
            clock,
            ticket_db,
            db,
            exchange,
            ticket_channel: channel_to(&ticket_addr).await,
            ticket_addr,
            scheduler_channel: channel_to(&scheduler_addr).await,
            stops,
            tasks,
        }
    }

    /// Moves the shared clock (forward only, in these tests).
    pub fn set_clock(&self, t: DateTime<Utc>) {
        self.clock.set(t);
    }

    pub fn tickets_as(&self, sub: &str, role: Role) -> Tickets {
        TicketServiceClient::with_interceptor(self.ticket_channel.clone(), Bearer::token(sub, role))
    }

    pub fn faqs_as(&self, sub: &str, role: Role) -> Faqs {
        FaqServiceClient::with_interceptor(self.ticket_channel.clone(), Bearer::token(sub, role))
    }

    pub fn scheduler(&self) -> Scheduler {
        SchedulerServiceClient::with_interceptor(
            self.scheduler_channel.clone(),
            Bearer::token(ADMIN, Role::Admin),
        )
    }

    /// A direct client of the ticket service's job API, as the scheduler
    /// builds it, with its own page size.
    pub fn jobs_client(&self, page_size: i32) -> TicketJobsClient {
        TicketJobsClient::new(
            &self.ticket_addr,
            Duration::from_secs(10),
            page_size,
            "UTC",
            &AuthConfig::dev(),
        )
        .unwrap()
    }

    /// Reads the events the ticket service publishes from now on.
    pub async fn tap(&self, pattern: &str) -> EventTap {
        EventTap::start(&self.exchange, pattern)
            .await
            .expect("event tap")
    }

    /// Alice files a ticket of `priority` now.
    pub async fn ticket(&self, priority: pb::TicketPriority) -> String {
        self.tickets_as(ALICE, Role::User)
            .create_ticket(pb::CreateTicketRequest {
                ride_id: ALICE_RIDE.into(),
                category_id: "ride_issue".into(),
                subject: "Driver took a long detour".into(),
                description: "The trip took 40 minutes instead of 15.".into(),
                priority: priority.into(),
                ..Default::default()
            })
            .await
            .expect("create")
            .into_inner()
            .id
    }

    /// Sam moves `id` to `status` now.
    pub async fn set_status(&self, id: &str, status: pb::TicketStatus) {
        self.tickets_as(SAM, Role::Staff)
            .update_ticket(pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    id: id.into(),
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

    /// Sam replies publicly now.
    pub async fn staff_reply(&self, id: &str) {
        self.tickets_as(SAM, Role::Staff)
            .post_message(pb::PostMessageRequest {
                ticket_id: id.into(),
                body: "Looking into it.".into(),
                ..Default::default()
            })
            .await
            .expect("reply");
    }

    pub async fn get(&self, id: &str) -> pb::Ticket {
        self.tickets_as(SAM, Role::Staff)
            .get_ticket(pb::GetTicketRequest { id: id.into() })
            .await
            .expect("get")
            .into_inner()
    }

    /// Runs `job` now (as of now) through RunJobNow and waits for it to
    /// settle; returns the run.
    pub async fn run(&self, kind: JobKind) -> RunView {
        let run = self
            .scheduler()
            .run_job_now(pb::RunJobNowRequest {
                job: kind.name().into(),
                as_of_time: None,
            })
            .await
            .expect("run job now")
            .into_inner();
        let id = Uuid::parse_str(&run.id).unwrap();
        wait_until("the run settles", || async {
            let state = self.run_row(id).await.state;
            state != "queued" && state != "running"
        })
        .await;
        let row = self.run_row(id).await;
        assert_eq!(row.state, "succeeded", "{row:#?}");
        // The next RunJobNow must be another window.
        self.clock.advance(chrono::Duration::seconds(1));
        row
    }

    async fn run_row(&self, id: Uuid) -> RunView {
        sqlx::query_as!(
            RunView,
            r#"SELECT id, fire_at, trigger, state, reason, fence, attempts, processed, checkpoint
               FROM job_runs WHERE id = $1"#,
            id
        )
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }

    /// Outbox rows of the ticket service with `routing_key`.
    pub async fn outbox_count(&self, routing_key: &str) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE routing_key = $1")
            .bind(routing_key)
            .fetch_one(&self.ticket_db.pool)
            .await
            .unwrap()
    }

    /// The decoded outbox events with `routing_key`, in order.
    pub async fn outbox<E: helpdesk_proto::Event>(&self) -> Vec<E> {
        let payloads: Vec<Vec<u8>> = sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT payload FROM outbox WHERE routing_key = $1 ORDER BY id",
        )
        .bind(E::ROUTING_KEY)
        .fetch_all(&self.ticket_db.pool)
        .await
        .unwrap();
        payloads
            .iter()
            .map(|p| E::decode(p.as_slice()).unwrap())
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
        delete_broker_objects(Some(self.exchange.clone()), Vec::new());
    }
}
