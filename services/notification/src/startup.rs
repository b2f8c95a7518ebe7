//! Builds the service from its config and runs it. `main` and the tests go
//! through the same [`Application`], the tests on port 0 with a manual clock.
//!
//! Besides the gRPC server it runs supervised tasks (kit `tasks`): the event
//! consumer (intake), the processed-events pruner, the sender and the feed
//! listener. They stop in that order once the server has drained its calls
//! (open streams end first, when shutdown begins).

use std::{future::Future, sync::Arc};

use helpdesk_events::consumer::{self, ConsumerConfig};
use helpdesk_kit::{
    auth::Verifier,
    clock::SharedClock,
    service::{self, Service},
    tasks::Task,
};
use helpdesk_proto::support::v1::notification_service_server::NotificationServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    MIGRATOR,
    api::NotificationApi,
    app::{
        feed::Feed,
        intake::{Audiences, Intake},
        sender::{self, Sender},
    },
    clients::accounts::Directory,
    config::Config,
    templates::Templates,
};

/// The subject our calls to the accounts service carry.
pub const SERVICE_SUBJECT: &str = "notification-service";

pub struct Application {
    listener: TcpListener,
    pool: PgPool,
    config: Config,
    clock: SharedClock,
    templates: Arc<Templates>,
    directory: Directory,
    sender: Sender,
    feed: Feed,
}

impl Application {
    /// Connects, migrates, loads the templates and binds; nothing is served
    /// or consumed until [`Self::run`].
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let templates = Arc::new(Templates::load(&config.templates_dir)?);
        let pool = service::connect(&config.common, &MIGRATOR).await?;
        let directory = Directory::new(
            &config.accounts_addr,
            config.call_timeout,
            config.contact_ttl,
            &config.common.auth,
            SERVICE_SUBJECT,
        )?;
        let sender = Sender::new(
            pool.clone(),
            templates.clone(),
            directory.clone(),
            config.sender.clone(),
            clock.clone(),
        )?;
        let listener = helpdesk_kit::server::bind(config.common.listen_addr).await?;
        Ok(Self {
            listener,
            pool,
            config,
            clock,
            templates,
            directory,
            sender,
            feed: Feed::default(),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The live feed (tests count open streams).
    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    /// Serves until `shutdown` completes; open streams end at once, other
    /// calls finish, then the background tasks stop in declaration order.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let verifier = Verifier::new(&self.config.common.auth)?;
        let config = &self.config;
        let closing = CancellationToken::new();
        let intake = Arc::new(Intake::new(
            self.templates.clone(),
            self.directory.clone(),
            Audiences {
                new_ticket: config.new_ticket_audience,
                triage: config.triage_group.clone(),
                escalation: config.escalation_group.clone(),
            },
            config.policy.clone(),
            self.sender.clone(),
            self.clock.clone(),
        ));
        let api = NotificationApi::new(
            self.pool.clone(),
            self.feed.clone(),
            config.policy.clone(),
            self.clock.clone(),
            closing.clone(),
        );
        let consumer_config = ConsumerConfig {
            concurrency: config.consumer_concurrency,
            ..config.consumer.clone()
        };
        let (feed, pool) = (self.feed.clone(), self.pool.clone());
        let shutdown = async move {
            shutdown.await;
            closing.cancel();
        };
        Service::new()
            .grpc(NotificationServiceServer::new(api))
            .task(
                Task::from_worker(
                    "ticket-events-consumer",
                    (self.pool.clone(), consumer_config, intake),
                    |(pool, config, intake), ctx| consumer::run(pool, config, intake, ctx),
                )
                .with_watchdog(consumer::WATCHDOG),
            )
            .task(Task::from_loop(
                "processed-events-pruner",
                (self.pool.clone(), config.consumer.clone()),
                |(pool, config), stop| consumer::prune_processed(pool, config, stop),
            ))
            .task(Task::from_loop(
                "delivery-sender",
                self.sender.clone(),
                sender::run,
            ))
            .task(Task::new("feed-listener", move |ctx| {
                feed.clone().listen(pool.clone(), ctx.stop().clone())
            }))
            .database(self.pool)
            .metrics(config.common.metrics_addr)
            .run(self.listener, verifier, shutdown)
            .await
    }
}

/// The clock of a production process.
pub fn system_clock() -> SharedClock {
    Arc::new(helpdesk_kit::clock::SystemClock)
}
