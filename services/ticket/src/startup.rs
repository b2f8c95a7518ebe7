//! Builds the service from its config and runs it. `main` and the tests go
//! through the same [`Application`], the tests on port 0 with a manual clock.

use std::{future::Future, sync::Arc, time::Duration};

use helpdesk_events::{ops::Operations, outbox::Waker, relay};
use helpdesk_kit::{auth::Verifier, clock::SharedClock, db, idempotency};
use helpdesk_proto::support::v1::{
    category_service_server::CategoryServiceServer,
    operations_service_server::OperationsServiceServer, ticket_service_server::TicketServiceServer,
};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::{
    MIGRATOR,
    api::{categories::CategoryApi, tickets::TicketApi},
    config::Config,
    platform::Platform,
};

pub struct Application {
    listener: TcpListener,
    pool: PgPool,
    config: Config,
    clock: SharedClock,
    platform: Platform,
}

impl Application {
    /// Connects, migrates and binds; nothing is served until [`Self::run`].
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let pool = db::connect(
            &config.common.database_url,
            config.common.database_max_connections,
        )
        .await?;
        db::migrate(&pool, &MIGRATOR).await?;
        let platform = Platform::new(
            &config.accounts_addr,
            &config.rides_addr,
            config.platform_timeout,
            &config.common.auth,
        )?;
        let listener = helpdesk_kit::server::bind(config.common.listen_addr).await?;
        Ok(Self {
            listener,
            pool,
            config,
            clock,
            platform,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until `shutdown` completes; in-flight calls finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let verifier = Verifier::new(&self.config.common.auth)?;
        let waker = Waker::new();
        let tickets = TicketApi::new(
            self.pool.clone(),
            self.platform,
            self.clock.clone(),
            waker.clone(),
        );
        let categories = CategoryApi::new(self.pool.clone());
        let routes = Routes::new(TicketServiceServer::new(tickets))
            .add_service(CategoryServiceServer::new(categories))
            .add_service(OperationsServiceServer::new(Operations::new(
                self.pool.clone(),
            )));

        let stop_relay = CancellationToken::new();
        let relay = self.config.relay.clone().map(|config| {
            tokio::spawn(relay::run(
                self.pool.clone(),
                config,
                waker.clone(),
                stop_relay.clone(),
            ))
        });
        // Wakes a relay leading in another replica (this one's is woken directly).
        let forward = tokio::spawn(waker.forward(self.pool.clone(), stop_relay.clone()));

        let pruner = tokio::spawn(prune_idempotency_keys(
            self.pool.clone(),
            self.clock.clone(),
            self.config.idempotency_retention,
        ));
        let served = helpdesk_kit::server::serve(
            self.listener,
            verifier,
            routes,
            &[
                "support.v1.TicketService",
                "support.v1.CategoryService",
                "support.v1.OperationsService",
            ],
            shutdown,
        )
        .await;
        pruner.abort();
        // After the last call committed: what the relay has not sent stays
        // in the outbox for the next leader.
        stop_relay.cancel();
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        let _ = forward.await;
        self.pool.close().await;
        served
    }
}

/// Deletes expired idempotency keys once an hour.
async fn prune_idempotency_keys(pool: PgPool, clock: SharedClock, retention: chrono::Duration) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match idempotency::prune(&pool, clock.now() - retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned idempotency keys"),
            Err(e) => tracing::warn!(error = %e, "pruning idempotency keys failed"),
        }
    }
}

/// The clock of a production process.
pub fn system_clock() -> SharedClock {
    Arc::new(helpdesk_kit::clock::SystemClock)
}
