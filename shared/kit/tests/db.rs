//! The pools' connection settings, as PostgreSQL reports them: custom plans
//! by default (optional filters fold away), generic plans on the pool made
//! for hot lookups, and neither JIT nor parallel workers on either.

use helpdesk_kit::db;
use helpdesk_testkit::admin_url;

async fn settings(pool: &sqlx::PgPool) -> (String, String, String) {
    sqlx::query_as(
        "SELECT current_setting('plan_cache_mode'), current_setting('jit'),
                current_setting('max_parallel_workers_per_gather')",
    )
    .fetch_one(pool)
    .await
    .expect("settings")
}

#[tokio::test]
async fn each_pool_plans_as_it_says() {
    // Settings do not depend on the database: the server's own will do.
    let custom = db::connect(&admin_url(), 1).await.expect("pool");
    let generic = db::connect_lazy_generic(&admin_url(), 1).expect("pool");
    let off = ("off".to_owned(), "0".to_owned());
    let (mode, jit, workers) = settings(&custom).await;
    assert_eq!(
        (mode.as_str(), (jit, workers)),
        ("force_custom_plan", off.clone())
    );
    let (mode, jit, workers) = settings(&generic).await;
    assert_eq!((mode.as_str(), (jit, workers)), ("force_generic_plan", off));
    custom.close().await;
    generic.close().await;
}
