//! The one service skeleton. A service's `startup.rs` declares its parts
//! (gRPC services, background tasks, its database pool) on a [`Service`];
//! the sequence that runs them is written here once:
//!
//! 1. health starts NOT_SERVING for every name ([`crate::health`]);
//! 2. each background task starts under the [`Supervisor`], plus a probe
//!    that reports the database as `dependency.postgres`;
//! 3. readiness turns SERVING and the gRPC server answers;
//! 4. on the stop signal: health turns NOT_SERVING, the listener closes,
//!    in-flight calls drain ([`crate::server`]), then the tasks stop one at
//!    a time in the order they were declared (consumers finish the message
//!    in hand, the relay its batch), and last the pool closes.
//!
//! [`command`] reads the subcommand every binary shares (`serve`, `migrate`)
//! plus the service's own, and [`connect`] opens and migrates the database,
//! so `main.rs` only reads config and picks the branch.

use std::{convert::Infallible, future::Future, pin::Pin, sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::{server::NamedService, service::Routes};

use crate::{
    auth::Verifier,
    config::CommonConfig,
    db,
    health::Health,
    tasks::{RestartPolicy, Supervisor, Task},
};

/// How often a dependency is probed, and how long the database may take.
const PROBE_EVERY: Duration = Duration::from_secs(5);
const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve gRPC and run the background tasks (also with no argument).
    Serve,
    /// Apply pending migrations and exit (a Kubernetes Job runs this).
    Migrate,
    /// One of the service's own subcommands, as given to [`command`].
    Own(&'static str),
}

/// Parses the first argument: `serve` (the default), `migrate`, or one of
/// `own`. Anything else is an error that lists what is accepted.
pub fn command(own: &[&'static str]) -> anyhow::Result<Command> {
    command_from(std::env::args().nth(1).as_deref(), own)
}

fn command_from(arg: Option<&str>, own: &[&'static str]) -> anyhow::Result<Command> {
    match arg {
        None | Some("serve") => Ok(Command::Serve),
        Some("migrate") => Ok(Command::Migrate),
        Some(other) => own
            .iter()
            .find(|name| **name == other)
            .map(|name| Command::Own(name))
            .ok_or_else(|| {
                let mut known = vec!["serve", "migrate"];
                known.extend_from_slice(own);
                anyhow::anyhow!(
                    "unknown command {other:?}; use one of: {}",
                    known.join(", ")
                )
            }),
    }
}

/// Opens the service's pool and applies the kit's and the service's
/// migrations, so nothing is served on a schema older than the code.
pub async fn connect(
    common: &CommonConfig,
    migrator: &sqlx::migrate::Migrator,
) -> anyhow::Result<PgPool> {
    let pool = db::connect(&common.database_url, common.database_max_connections).await?;
    db::migrate(&pool, migrator).await?;
    Ok(pool)
}

/// Something the service depends on: probed for its `dependency.<name>`
/// health entry (never for readiness) and closed after the tasks stop. A
/// trait object, so a binary that declares no database links no database
/// code (the stand-in).
trait Dependency: Send + Sync {
    fn name(&self) -> &'static str;
    fn answers(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// Updates the dependency's gauges, if it has any.
    fn sample(&self) {}
}

/// The service's own PostgreSQL database.
struct Postgres(PgPool);

impl Dependency for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn answers(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async {
            matches!(
                tokio::time::timeout(
                    DATABASE_PROBE_TIMEOUT,
                    sqlx::query("SELECT 1").execute(&self.0)
                )
                .await,
                Ok(Ok(_))
            )
        })
    }

    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.0.close())
    }

    fn sample(&self) {
        crate::metrics::sample_pool(&self.0);
    }
}

/// A service's parts, declared once and run by [`Service::run`].
pub struct Service {
    routes: Routes,
    served: Vec<&'static str>,
    tasks: Vec<Task>,
    dependencies: Vec<Arc<dyn Dependency>>,
    policy: RestartPolicy,
    metrics: Metrics,
}

/// Where the metrics endpoint listens, if anywhere.
enum Metrics {
    Off,
    At(std::net::SocketAddr),
    On(TcpListener),
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("served", &self.served)
            .field("tasks", &self.tasks)
            .finish_non_exhaustive()
    }
}

impl Default for Service {
    fn default() -> Self {
        Self::new()
    }
}

impl Service {
    /// A service with nothing declared yet.
    pub fn new() -> Self {
        Self {
            routes: Routes::default(),
            served: Vec::new(),
            tasks: Vec::new(),
            dependencies: Vec::new(),
            policy: RestartPolicy::default(),
            metrics: Metrics::Off,
        }
    }

    /// Serves a generated gRPC service (behind the auth layer); it is listed
    /// by reflection and health under its full name.
    pub fn grpc<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.served.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }

    /// Runs `task` under supervision. Tasks stop in declaration order.
    pub fn task(mut self, task: Task) -> Self {
        self.tasks.push(task);
        self
    }

    /// The service's database: probed for health, closed last.
    pub fn database(mut self, pool: PgPool) -> Self {
        self.dependencies.push(Arc::new(Postgres(pool)));
        self
    }

    /// Serves the Prometheus endpoint at `addr` (see [`crate::metrics`];
    /// `None`, the default, serves none). Binding fails the start.
    pub fn metrics(mut self, addr: Option<std::net::SocketAddr>) -> Self {
        self.metrics = addr.map_or(Metrics::Off, Metrics::At);
        self
    }

    /// Serves the Prometheus endpoint on a listener already bound (tests
    /// bind port 0 and read the port back).
    pub fn metrics_listener(mut self, listener: TcpListener) -> Self {
        self.metrics = Metrics::On(listener);
        self
    }

    /// How failing tasks are restarted (tests shorten the delays).
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Runs the service on `listener` until `shutdown` completes, then
    /// tears it down in order (see the module doc).
    pub async fn run(
        self,
        listener: TcpListener,
        verifier: Verifier,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let metrics = match self.metrics {
            Metrics::Off => None,
            Metrics::At(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("binding the metrics endpoint to {addr}: {e}"))?,
            ),
            Metrics::On(listener) => Some(listener),
        };
        let (health, health_service) = Health::new(&self.served).await;
        let mut supervisor = Supervisor::default();
        if let Some(listener) = metrics {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "metrics endpoint listening");
            }
            supervisor.start(
                crate::metrics::endpoint_task(listener),
                self.policy,
                &health,
            );
        }
        for task in self.tasks {
            supervisor.start(task, self.policy, &health);
        }
        for dependency in &self.dependencies {
            supervisor.start(
                probe(dependency.clone(), health.clone()),
                self.policy,
                &health,
            );
        }
        health.ready();

        let routes = self.routes.add_service(health_service);
        let served =
            crate::server::serve(listener, verifier, routes, &self.served, &health, shutdown).await;
        supervisor.stop().await;
        for dependency in &self.dependencies {
            dependency.close().await;
        }
        served
    }
}

/// Reports whether `dependency` answers, as `dependency.<name>`.
fn probe(dependency: Arc<dyn Dependency>, health: Health) -> Task {
    Task::new(format!("{}-probe", dependency.name()), move |ctx| {
        let (dependency, health) = (dependency.clone(), health.clone());
        async move {
            loop {
                health.dependency(dependency.name(), dependency.answers().await);
                dependency.sample();
                ctx.beat();
                tokio::select! {
                    () = tokio::time::sleep(PROBE_EVERY) => {}
                    () = ctx.stop().cancelled() => return Ok(()),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_default_to_serve_and_list_what_is_accepted() {
        assert_eq!(command_from(None, &[]).unwrap(), Command::Serve);
        assert_eq!(
            command_from(Some("migrate"), &[]).unwrap(),
            Command::Migrate
        );
        assert_eq!(
            command_from(Some("seed-demo"), &["seed-demo"]).unwrap(),
            Command::Own("seed-demo")
        );
        let error = command_from(Some("sede"), &["seed-demo"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown command \"sede\"; use one of: serve, migrate, seed-demo"
        );
    }
}
