//! Builds the service from its config and runs it. `main` and the tests go
//! through the same [`Application`], the tests on port 0 with a manual clock
//! and a recording [`TicketWork`].
//!
//! Besides the gRPC server it runs one supervised task (kit `tasks`): the
//! tick loop, which plans windows, claims runs and executes them. On stop it
//! lets each run finish the page in hand and gives the run back.

use std::{future::Future, sync::Arc, time::Duration};

use helpdesk_kit::{
    auth::Verifier,
    clock::SharedClock,
    service::{self, Service},
    tasks::Task,
};
use helpdesk_proto::support::v1::scheduler_service_server::SchedulerServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::{
    MIGRATOR,
    api::SchedulerApi,
    app::scheduler::Scheduler,
    clients::tickets::{NotWired, TicketJobsClient, TicketWork},
    config::Config,
};

pub struct Application {
    listener: TcpListener,
    pool: PgPool,
    config: Config,
    clock: SharedClock,
    scheduler: Scheduler,
}

impl Application {
    /// Connects, migrates, registers the jobs and binds; nothing is served
    /// or scheduled until [`Self::run`].
    pub async fn build(
        config: Config,
        clock: SharedClock,
        work: Arc<dyn TicketWork>,
    ) -> anyhow::Result<Self> {
        let pool = service::connect(&config.common, &MIGRATOR).await?;
        let scheduler = Scheduler::new(
            pool.clone(),
            clock.clone(),
            config.jobs.clone(),
            work,
            config.thresholds.clone(),
            config.scheduler.clone(),
            config.holder.clone(),
        );
        scheduler.register().await?;
        let listener = helpdesk_kit::server::bind(config.common.listen_addr).await?;
        Ok(Self {
            listener,
            pool,
            config,
            clock,
            scheduler,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Serves until `shutdown` completes, then stops the tick loop (runs in
    /// hand finish their page and are given back).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let verifier = Verifier::new(&self.config.common.auth)?;
        let api = SchedulerApi::new(
            self.pool.clone(),
            self.scheduler.clone(),
            self.clock.clone(),
        );
        // A tick takes milliseconds; a watchdog of many ticks (and at least
        // a minute) catches a wedged loop without false alarms.
        let watchdog = (self.config.scheduler.tick * 30).max(Duration::from_secs(60));
        Service::new()
            .grpc(SchedulerServiceServer::new(api))
            .task(
                Task::from_worker("scheduler-tick", self.scheduler.clone(), Scheduler::run)
                    .with_watchdog(watchdog),
            )
            .task(Task::from_loop(
                "last-success-sampler",
                self.pool.clone(),
                crate::app::metrics::sample_last_success,
            ))
            .database(self.pool)
            .metrics(self.config.common.metrics_addr)
            .run(self.listener, verifier, shutdown)
            .await
    }
}

/// The jobs' work: the ticket service's `TicketJobsService` at
/// `TICKET_ADDR`, or, with none configured, [`NotWired`] (every run a
/// recorded skip saying so).
pub fn ticket_work(config: &Config) -> anyhow::Result<Arc<dyn TicketWork>> {
    Ok(match &config.ticket_addr {
        Some(addr) => Arc::new(TicketJobsClient::new(
            addr,
            config.ticket_timeout,
            config.ticket_page_size,
            config.thresholds.stats_zone.name(),
            &config.common.auth,
        )?),
        None => {
            tracing::warn!("TICKET_ADDR is empty: every job run will be skipped");
            Arc::new(NotWired)
        }
    })
}

/// The clock of a production process.
pub fn system_clock() -> SharedClock {
    Arc::new(helpdesk_kit::clock::SystemClock)
}
