//! Builds the service from its config and runs it. `main` and the tests go
//! through the same [`Application`], the tests on port 0 with a manual clock.
//!
//! Besides the gRPC server it runs four supervised tasks (kit `tasks`): the
//! event consumer, the drainer (serves the waiting queue when woken and
//! every `DRAIN_SECS`), the roster sync and the reconciliation. They stop in
//! that order (the consumer after finishing the event in hand) once the
//! server has drained its calls.

use std::{future::Future, sync::Arc};

use helpdesk_events::consumer;
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
    accounts::AccountsClient,
    api::AssignmentApi,
    config::Config,
    consumer::TicketEvents,
    engine::{self, Engine, Policy},
    reconcile,
    roster::{self, Roster},
    tickets::TicketClient,
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
        Service::new()
            .grpc(AssignmentServiceServer::new(AssignmentApi::new(
                self.engine.clone(),
            )))
            // The consumer first: it finishes the event in hand before the
            // drainer it wakes goes away.
            .task(
                Task::new("ticket-events-consumer", {
                    let (pool, config) = (self.pool.clone(), config.consumer.clone());
                    move |ctx| {
                        let running =
                            consumer::run(pool.clone(), config.clone(), events.clone(), ctx);
                        async move {
                            running.await;
                            Ok(())
                        }
                    }
                })
                .with_watchdog(consumer::WATCHDOG),
            )
            .task(Task::from_loop(
                "processed-events-pruner",
                (self.pool.clone(), config.consumer.clone()),
                |(pool, config), stop| consumer::prune_processed(pool, config, stop),
            ))
            .task(Task::from_loop(
                "waiting-queue-drainer",
                (self.engine.clone(), config.drain_interval),
                |(engine, every), stop| engine::run_drainer(engine, every, stop),
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
            .run(self.listener, verifier, shutdown)
            .await
    }
}

/// The clock of a production process.
pub fn system_clock() -> SharedClock {
    Arc::new(helpdesk_kit::clock::SystemClock)
}
