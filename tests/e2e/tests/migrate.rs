//! `<service> migrate` needs the database alone: the migrate Job runs it
//! with `DATABASE_URL` and nothing else (no JWT keys, broker or SMTP
//! settings, no `HELPDESK_DEV`), and it leaves the service's tables behind.

use std::process::Command;

use helpdesk_e2e::{binary, create_database};
use helpdesk_testkit::admin_url;
use sqlx::{Connection, Executor, PgConnection};

#[tokio::test]
async fn every_service_migrates_with_only_database_url_set() {
    for (service, table) in [
        ("ticket", "tickets"),
        ("assignment", "assignments"),
        ("notification", "notifications"),
        ("scheduler", "job_runs"),
    ] {
        let (url, name) = create_database().await;
        let output = Command::new(binary(service))
            .arg("migrate")
            .env_clear()
            .env("DATABASE_URL", &url)
            .output()
            .expect("run the binary");
        assert!(
            output.status.success(),
            "{service} migrate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );

        let mut conn = PgConnection::connect(&url).await.expect("postgres");
        let (exists, failed): (bool, i64) = sqlx::query_as(
            "SELECT to_regclass($1) IS NOT NULL,
                    (SELECT count(*) FROM _sqlx_migrations WHERE NOT success)",
        )
        .bind(format!("public.{table}"))
        .fetch_one(&mut conn)
        .await
        .expect("query the migrated database");
        assert!(exists, "{service}: no table {table} after migrate");
        assert_eq!(failed, 0, "{service}: a failed migration");
        conn.close().await.expect("close");

        let mut admin = PgConnection::connect(&admin_url()).await.expect("postgres");
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
            )))
            .await
            .expect("drop the database");
    }
}
