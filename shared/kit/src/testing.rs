//! Test support shared by every service's tests: a fresh, migrated database
//! per test (dropped afterwards) and tokens for any role.

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{Connection, Executor, PgConnection, PgPool, migrate::Migrator};
use uuid::Uuid;

use crate::auth::{AuthConfig, Minter, Role};

/// The server tests create their databases on (`TEST_DATABASE_URL`).
pub fn admin_url() -> String {
    crate::config::string_or(
        "TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )
}

/// A database that exists for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    dropped: AtomicBool,
}

impl TestDb {
    /// Creates `test_<uuid>` and applies the kit's and `service`'s migrations.
    pub async fn create(service: &Migrator) -> anyhow::Result<Self> {
        let admin = admin_url();
        let name = format!("test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await?;
        conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await?;
        conn.close().await?;
        let url = with_database(&admin, &name);
        let pool = crate::db::connect(&url, 8).await?;
        crate::db::migrate(&pool, service).await?;
        Ok(Self {
            name,
            url,
            pool,
            dropped: AtomicBool::new(false),
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped.swap(true, Ordering::SeqCst) {
            return;
        }
        let name = self.name.clone();
        let admin = admin_url();
        // Drop runs outside any runtime guarantee: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!(
                            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Replaces the database name in a `postgres://` URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Mints tokens with the dev configuration every test server uses.
pub fn minter() -> Minter {
    Minter::new(&AuthConfig::dev())
}

/// A `Bearer` value for `sub` with `role`.
pub fn bearer(sub: &str, role: Role) -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
    minter().bearer(sub, role)
}
