//! Builds the service from its config and runs it. `main` and the tests go
//! through the same [`Application`], the tests on port 0 with a manual clock.
//!
//! Besides the gRPC server it runs four tasks: the event consumer, the
//! drainer (serves the waiting queue when woken and every `DRAIN_SECS`),
//! the roster sync and the reconciliation. All stop (the consumer after
//! finishing the event in hand) once the server has drained its calls.

use std::{future::Future, sync::Arc};

use helpdesk_events::consumer;
use helpdesk_kit::{auth::Verifier, clock::SharedClock, db};
use helpdesk_proto::support::v1::assignment_service_server::AssignmentServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

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
        let pool = db::connect(
            &config.common.database_url,
            config.common.database_max_connections,
        )
        .await?;
        db::migrate(&pool, &MIGRATOR).await?;
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

    /// Serves until `shutdown` completes; in-flight calls finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let verifier = Verifier::new(&self.config.common.auth)?;
        let routes = Routes::new(AssignmentServiceServer::new(AssignmentApi::new(
            self.engine.clone(),
        )));

        let stop = CancellationToken::new();
        let tasks = [
            tokio::spawn(consumer::run(
                self.pool.clone(),
                self.config.consumer.clone(),
                Arc::new(TicketEvents::new(
                    self.engine.clone(),
                    self.config.service_identity.clone(),
                )),
                stop.clone(),
            )),
            tokio::spawn(engine::run_drainer(
                self.engine.clone(),
                self.config.drain_interval,
                stop.clone(),
            )),
            tokio::spawn(roster::run(
                self.roster.clone(),
                self.config.roster_interval,
                stop.clone(),
            )),
            tokio::spawn(reconcile::run(
                self.engine.clone(),
                self.config.reconcile_interval,
                stop.clone(),
            )),
        ];

        let served = helpdesk_kit::server::serve(
            self.listener,
            verifier,
            routes,
            &["support.v1.AssignmentService"],
            shutdown,
        )
        .await;
        stop.cancel();
        for task in tasks {
            let _ = task.await;
        }
        self.pool.close().await;
        served
    }
}

/// The clock of a production process.
pub fn system_clock() -> SharedClock {
    Arc::new(helpdesk_kit::clock::SystemClock)
}
