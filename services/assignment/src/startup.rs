//! Builds the service from its config and runs it. `main` and the tests go
//! through the same [`Application`], the tests on port 0 with a manual clock.
//!
//! Besides the gRPC server it runs supervised tasks (kit `tasks`): the
//! event consumer (`CONSUMER_CONCURRENCY` lanes), the drainer (serves the
//! waiting queue when woken and every `DRAIN_SECS`), the mover (tells the
//! ticket service of decided moves), the operations worker, the roster sync
//! and the reconciliation. They stop in that order (the consumer after
//! finishing the events in hand) once the server has drained its calls.

use std::{future::Future, sync::Arc};

use helpdesk_events::consumer::{self, ConsumerConfig};
use helpdesk_kit::{
    auth::Verifier,
    clock::SharedClock,
    service::{self, Service},
    tasks::Task,
};
use helpdesk_proto::support::v1::assignment_service_server::AssignmentServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::{
    MIGRATOR,
    api::AssignmentApi,
    app::{
        consumer::TicketEvents,
        drainer,
        engine::{Engine, Policy},
        mover, operations, reconcile,
        roster::{self, Roster},
    },
    clients::{accounts::AccountsClient, tickets::TicketClient},
    config::Config,
};

pub struct Application {
    listener: TcpListener,
    pool: PgPool,
    config: Config,
    engine: Engine,
    roster: Roster,
}

impl Application {
    /// Connects, migrates and binds; nothing is served or consumed until
    /// [`Self::run`].
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let pool = service::connect(&config.common, &MIGRATOR).await?;
        // Token minting wants a `'static` subject; one small string per
        // process (tests build a few).
        let identity: &'static str = Box::leak(config.service_identity.clone().into_boxed_str());
        let tickets = TicketClient::new(
            &config.ticket_addr,
            config.call_timeout,
            &config.common.auth,
            identity,
        )?;
        let accounts = AccountsClient::new(
            &config.accounts_addr,
            config.call_timeout,
            &config.common.auth,
            identity,
        )?;
        let engine = Engine::new(
            pool.clone(),
            tickets,
            clock,
            Policy {
                redistribute_on_unavailable: config.redistribute_on_unavailable,
                escalation_tier: config.escalation_tier,
            },
        );
        let roster = Roster::new(engine.clone(), accounts, config.default_capacity);
        let listener = helpdesk_kit::server::bind(config.common.listen_addr).await?;
        Ok(Self {
            listener,
            pool,
            config,
            engine,
            roster,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The decision engine (tests run reconciliation through it).
    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }

    /// The roster sync (tests trigger it instead of waiting an interval).
    pub fn roster(&self) -> Roster {
        self.roster.clone()
    }

    /// Serves until `shutdown` completes; in-flight calls finish first,
    /// then the background tasks stop in the order declared here.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let verifier = Verifier::new(&self.config.common.auth)?;
        let config = &self.config;
        let events = Arc::new(TicketEvents::new(
            self.engine.clone(),
            config.service_identity.clone(),
        ));
        let service = Service::new().grpc(AssignmentServiceServer::new(AssignmentApi::new(
            self.engine.clone(),
        )));
        // The consumer first: it finishes the events in hand before the
        // drainer it wakes goes away. Several lanes side by side on one
        // connection: one handles one event at a time, each a transaction
        // that waits for its commit, below what intake produces (two events
        // per ticket); handlers tolerate any order.
        let consumer_config = ConsumerConfig {
            concurrency: config.consumer_concurrency,
            ..config.consumer.clone()
        };
        let service = service.task(
            Task::from_worker(
                "ticket-events-consumer",
                (self.pool.clone(), consumer_config, events),
                |(pool, config, events), ctx| consumer::run(pool, config, events, ctx),
            )
            .with_watchdog(consumer::WATCHDOG),
        );
        service
            .task(Task::from_loop(
                "processed-events-pruner",
                (self.pool.clone(), config.consumer.clone()),
                |(pool, config), stop| consumer::prune_processed(pool, config, stop),
            ))
            .task(Task::from_loop(
                "waiting-queue-drainer",
                (self.engine.clone(), config.drain_interval),
                |(engine, every), stop| drainer::run(engine, every, stop),
            ))
            .task(Task::from_loop(
                "move-sender",
                self.engine.clone(),
                mover::run,
            ))
            .task(Task::from_loop(
                "operations-worker",
                self.engine.clone(),
                operations::run,
            ))
            .task(Task::from_loop(
                "roster-sync",
                (self.roster.clone(), config.roster_interval),
                |(roster, every), stop| roster::run(roster, every, stop),
            ))
            .task(Task::from_loop(
                "reconciliation",
                (self.engine.clone(), config.reconcile_interval),
                |(engine, every), stop| reconcile::run(engine, every, stop),
            ))
            .database(self.pool)
            .metrics(self.config.common.metrics_addr)
            .run(self.listener, verifier, shutdown)
            .await
    }
}

/// The clock of a production process.
pub fn system_clock() -> SharedClock {
    Arc::new(helpdesk_kit::clock::SystemClock)
}
