//! The service's PostgreSQL pool and its migrations.
//!
//! Every service's schema is the kit's tables (idempotency keys, outbox,
//! processed events; `shared/kit/migrations`, versions 1..999) followed by the
//! service's own (`<crate>/migrations`, timestamp versions). They run as one
//! ordered set so a database is migrated by one call, at start or from the
//! `migrate` subcommand that a Kubernetes Job runs.

use std::time::Duration;

use sqlx::{
    PgPool,
    migrate::{Migration, Migrator},
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// The kit's own tables.
pub static KIT_MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Opens a pool. Acquiring waits at most `acquire_timeout`, so a database
/// outage surfaces as UNAVAILABLE instead of hanging callers.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = options(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Opens a pool without connecting yet: the service starts even when the
/// database is briefly down, and readiness reflects it.
pub fn connect_lazy(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = options(url)?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options))
}

/// Connection options shared by every service.
///
/// `plan_cache_mode=force_custom_plan`: our list queries take optional
/// filters as `($n IS NULL OR col = $n)`, which keeps them compile-time
/// checked; a custom plan folds the absent filters away and picks the index
/// that matches the present ones, where a generic plan would not.
fn options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions = url.parse()?;
    Ok(options.options([("plan_cache_mode", "force_custom_plan")]))
}

/// The kit's migrations followed by the service's, as one migrator.
pub fn combined(service: &Migrator) -> Migrator {
    let all: Vec<Migration> = KIT_MIGRATOR.iter().chain(service.iter()).cloned().collect();
    Migrator::with_migrations(all)
}

/// Applies every pending migration (takes an advisory lock, so replicas
/// starting together do not race).
pub async fn migrate(pool: &PgPool, service: &Migrator) -> anyhow::Result<()> {
    combined(service).run(pool).await?;
    Ok(())
}

/// The `migrate` subcommand every service has (a Kubernetes Job runs it
/// before a rollout): applies pending migrations and exits.
pub async fn migrate_command(database_url: &str, service: &Migrator) -> anyhow::Result<()> {
    let pool = connect(database_url, 2).await?;
    migrate(&pool, service).await?;
    pool.close().await;
    tracing::info!("migrations applied");
    Ok(())
}
