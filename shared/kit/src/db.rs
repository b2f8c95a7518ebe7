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
    let pool = pool_options(max_connections)
        .min_connections(1)
        .connect_with(options(url, Plans::Custom)?)
        .await?;
    Ok(pool)
}

/// Opens a pool without connecting yet: the service starts even when the
/// database is briefly down, and readiness reflects it.
pub fn connect_lazy(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    Ok(pool_options(max_connections).connect_lazy_with(options(url, Plans::Custom)?))
}

/// Opens a pool, without connecting yet, whose connections plan each prepared
/// statement once and keep that (generic) plan: for hot statements whose plan
/// does not depend on their parameters, such as a lookup by ids, where the
/// default custom plan is made again on every call and making it costs more
/// than running it (a FAQ search page's entries: 10,800 calls/s with custom
/// plans, 41,400 with a generic one, pgbench at 8 clients here).
pub fn connect_lazy_generic(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    Ok(pool_options(max_connections).connect_lazy_with(options(url, Plans::Generic)?))
}

/// What every pool shares: its size and the bounded wait for a connection.
fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
}

/// How a pool's connections plan prepared statements (`plan_cache_mode`).
#[derive(Clone, Copy)]
enum Plans {
    /// Planned on every call with its values (`force_custom_plan`).
    Custom,
    /// Planned once per connection (`force_generic_plan`).
    Generic,
}

/// Connection options shared by every service.
///
/// Custom plans by default: queries such as SearchTickets' take optional
/// filters as `($n IS NULL OR col = $n)`, which keeps them compile-time
/// checked; a custom plan folds the absent filters away and picks the index
/// that matches the present ones, where a generic plan would not.
///
/// `jit=off` and `max_parallel_workers_per_gather=0`: every statement of ours
/// reads a few thousand rows at most, and the planner's high guesses (a
/// search word outside its statistics) would otherwise make it compile the
/// plan (10-30 ms) or start workers that take cores from concurrent calls.
/// The one wide read, the statistics dashboard, spreads over connections
/// of its own.
fn options(url: &str, plans: Plans) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions = url.parse()?;
    let plan_cache_mode = match plans {
        Plans::Custom => "force_custom_plan",
        Plans::Generic => "force_generic_plan",
    };
    Ok(options.options([
        ("plan_cache_mode", plan_cache_mode),
        ("jit", "off"),
        ("max_parallel_workers_per_gather", "0"),
    ]))
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

/// The most parameter bytes a set-based write sends in one statement; see
/// [`bounded_chunks`].
pub const MAX_BIND_BYTES: usize = 8 * 1024;

/// Splits `items` into runs whose parameters (`bytes` of each item) stay
/// under [`MAX_BIND_BYTES`], each run for one statement (an item larger than
/// that is a run of its own).
///
/// Why: sqlx 0.9.0 does not set `TCP_NODELAY` on its sockets (a regression,
/// sqlx issue #4335 at transact-rs/sqlx, fixed there by #4336
/// but not in a release yet). A statement
/// whose bind message exceeds the socket's send buffer (16 KB at first on
/// Linux) leaves in two writes, and Nagle holds the second until PostgreSQL's
/// delayed ACK, 40 ms later, whatever the statement costs the database.
/// Measured in BatchAssignTickets: 64 outbox rows (22 KB) took 41-52 ms
/// per statement where the database spent about 1 ms; in runs under 8 KB
/// they do not wait. Remove once sqlx sets `TCP_NODELAY` again.
pub fn bounded_chunks<T>(items: &[T], bytes: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = bytes(item);
        if i > start && size + n > MAX_BIND_BYTES {
            chunks.push(&items[start..i]);
            (start, size) = (i, 0);
        }
        size += n;
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

#[cfg(test)]
mod chunk_tests {
    use super::*;

    #[test]
    fn chunks_stay_under_the_bound_and_keep_every_item_in_order() {
        let items: Vec<usize> = vec![3000, 3000, 3000, 9000, 100, 100, 8000];
        let chunks = bounded_chunks(&items, |n| *n);
        assert_eq!(
            chunks,
            [&[3000, 3000][..], &[3000], &[9000], &[100, 100], &[8000]]
        );
        assert!(bounded_chunks(&[] as &[usize], |n| *n).is_empty());
        assert_eq!(bounded_chunks(&[1, 2, 3], |n| *n), [&[1, 2, 3][..]]);
    }
}
