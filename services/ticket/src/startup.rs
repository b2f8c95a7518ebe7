//! Builds the service from its config and runs it. `main` and the tests go
//! through the same [`Application`], the tests on port 0 with a manual clock.

use std::{future::Future, sync::Arc, time::Duration};

use helpdesk_events::{ops::Operations, outbox::Waker, relay};
use helpdesk_kit::{
    auth::Verifier,
    clock::SharedClock,
    idempotency,
    service::{self, Service},
    tasks::Task,
};
use helpdesk_proto::support::v1::{
    attachment_service_server::AttachmentServiceServer,
    category_service_server::CategoryServiceServer, faq_service_server::FaqServiceServer,
    operations_service_server::OperationsServiceServer,
    statistics_service_server::StatisticsServiceServer,
    ticket_jobs_service_server::TicketJobsServiceServer,
    ticket_service_server::TicketServiceServer,
};
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::{
    MIGRATOR,
    api::{
        attachments::AttachmentApi, categories::CategoryApi, faqs::FaqApi, jobs::TicketJobsApi,
        stats::StatisticsApi, tickets::TicketApi,
    },
    clients::Platform,
    config::Config,
    storage::objects::{self, Objects},
};

pub struct Application {
    listener: TcpListener,
    verifier: Verifier,
    pool: PgPool,
    config: Config,
    clock: SharedClock,
    platform: Platform,
    objects: Objects,
}

/// Connections of the generic-plan pool for hot statements whose plans never
/// depend on their values (ticket lookups, ListTickets, FAQ search hits),
/// opened as needed, beside
/// `DATABASE_MAX_CONNECTIONS`.
const LOOKUP_CONNECTIONS: u32 = 4;

impl Application {
    /// Connects, migrates and binds; nothing is served until [`Self::run`].
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let pool = service::connect(&config.common, &MIGRATOR).await?;
        let verifier = Verifier::new(&config.common.auth)?;
        let platform = Platform::new(
            &config.accounts_addr,
            &config.rides_addr,
            config.platform_timeout,
            &config.common.auth,
        )?;
        let objects = Objects::open(&config.attachments_store)?;
        let listener = helpdesk_kit::server::bind(config.common.listen_addr).await?;
        Ok(Self {
            listener,
            verifier,
            pool,
            config,
            clock,
            platform,
            objects,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until `shutdown` completes; in-flight calls finish first,
    /// then the background tasks stop in the order declared here.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        self.service()?
            .run(self.listener, self.verifier, shutdown)
            .await
    }

    /// The service's parts: the gRPC services (tickets, attachments, the
    /// scheduler's batch jobs, categories, FAQ, statistics, operations), the
    /// idempotency-key pruner, the attachment sweeper, and the outbox relay
    /// last (it publishes what the others committed, so it stops after them).
    fn service(&self) -> anyhow::Result<Service> {
        let waker = Waker::new();
        let pool = self.pool.clone();
        let lookups = helpdesk_kit::db::connect_lazy_generic(
            &self.config.common.database_url,
            LOOKUP_CONNECTIONS,
        )?;
        let tickets = TicketApi::new(
            pool.clone(),
            lookups.clone(),
            self.platform.clone(),
            self.clock.clone(),
            waker.clone(),
        );
        let mut service = Service::new()
            .grpc(TicketServiceServer::new(tickets))
            .grpc(TicketJobsServiceServer::new(TicketJobsApi::new(
                pool.clone(),
                self.clock.clone(),
                waker.clone(),
            )))
            .grpc(AttachmentServiceServer::new(AttachmentApi::new(
                pool.clone(),
                lookups.clone(),
                self.objects.clone(),
                self.config.attachment_limits,
                self.clock.clone(),
                waker.clone(),
            )))
            .grpc(CategoryServiceServer::new(CategoryApi::new(pool.clone())))
            .grpc(StatisticsServiceServer::new(StatisticsApi::new(
                pool.clone(),
                self.clock.clone(),
                self.config.sla.clone(),
            )))
            .grpc(FaqServiceServer::new(FaqApi::new(
                pool.clone(),
                lookups,
                self.clock.clone(),
                waker.clone(),
                self.config.faq_search_cache,
            )))
            .grpc(OperationsServiceServer::new(Operations::new(pool.clone())))
            .task(prune_idempotency_keys(
                pool.clone(),
                self.clock.clone(),
                self.config.idempotency_retention,
            ))
            .task(sweep_attachment_objects(
                pool.clone(),
                self.objects.clone(),
                self.clock.clone(),
            ))
            // Wakes a relay leading in another replica (this one's is woken directly).
            .task(Task::from_loop(
                "outbox-wake-forwarder",
                (pool.clone(), waker.clone()),
                |(pool, waker), stop| async move { waker.forward(pool, stop).await },
            ));
        if let Some(config) = self.config.relay.clone() {
            service = service.task(
                Task::from_worker(
                    "outbox-relay",
                    (pool, config, waker),
                    |(pool, config, waker), ctx| relay::run(pool, config, waker, ctx),
                )
                .with_watchdog(relay::WATCHDOG),
            );
        }
        Ok(service
            .database(self.pool.clone())
            .metrics(self.config.common.metrics_addr))
    }
}

/// Deletes expired idempotency keys once an hour.
fn prune_idempotency_keys(pool: PgPool, clock: SharedClock, retention: chrono::Duration) -> Task {
    Task::new("idempotency-pruner", move |ctx| {
        let (pool, clock) = (pool.clone(), clock.clone());
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = ctx.stop().cancelled() => return Ok(()),
                }
                match idempotency::prune(&pool, clock.now() - retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "pruned idempotency keys"),
                    Err(e) => tracing::warn!(error = %e, "pruning idempotency keys failed"),
                }
            }
        }
    })
}

/// Deletes attachment objects that have no row an hour after they were
/// written (a crash between an object's completion and its row's commit);
/// every 15 minutes, and once at start.
fn sweep_attachment_objects(pool: PgPool, objects: Objects, clock: SharedClock) -> Task {
    Task::new("attachment-sweeper", move |ctx| {
        let (pool, objects, clock) = (pool.clone(), objects.clone(), clock.clone());
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(15 * 60));
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = ctx.stop().cancelled() => return Ok(()),
                }
                let before = clock.now() - objects::ORPHAN_AGE;
                match objects.sweep(&pool, before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "swept orphaned attachment objects"),
                    Err(e) => tracing::warn!(error = %e, "sweeping attachment objects failed"),
                }
            }
        }
    })
}

/// The clock of a production process.
pub fn system_clock() -> SharedClock {
    Arc::new(helpdesk_kit::clock::SystemClock)
}
