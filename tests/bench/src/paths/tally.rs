//! The work a write row left in each service's database, per call.
//!
//! A call's own latency says little about what it costs the system: a
//! create is one transaction in the ticket database, and then more in the
//! assignment and notification databases as its events travel. `--tally`
//! reads PostgreSQL's counters for each service's database (commits, rows
//! inserted, updated and deleted) before a row and after its work drained,
//! and prints them divided by the calls the row made, warm-up included.
//!
//! PostgreSQL publishes a backend's counters at most once a second while
//! it is busy, and within ten seconds of it going idle
//! (`PGSTAT_IDLE_INTERVAL`), so each snapshot waits that long first: a
//! tallied row takes about 22 s more.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;

/// How long a snapshot waits for idle backends to publish their counters.
const SETTLE: Duration = Duration::from_secs(11);

/// One database's counters.
#[derive(Clone, Copy, Default)]
struct Counters {
    commits: i64,
    inserted: i64,
    updated: i64,
    deleted: i64,
}

/// Every service database's counters at one moment.
pub struct Snapshot(Vec<(&'static str, Counters)>);

/// What a row left in one service's database, per call.
pub struct PerCall {
    pub service: &'static str,
    pub commits: f64,
    pub inserted: f64,
    pub updated: f64,
    pub deleted: f64,
}

impl Snapshot {
    /// The counters of `databases` (service, database URL), once the last
    /// work's counters are published.
    pub async fn take(db: &PgPool, databases: &[(&'static str, &str)]) -> sqlx::Result<Self> {
        tokio::time::sleep(SETTLE).await;
        let mut out = Vec::new();
        for &(service, url) in databases {
            let name = url.rsplit('/').next().unwrap_or(url);
            let (commits, inserted, updated, deleted): (i64, i64, i64, i64) = sqlx::query_as(
                "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted
                 FROM pg_stat_database WHERE datname = $1",
            )
            .bind(name)
            .fetch_one(db)
            .await?;
            out.push((
                service,
                Counters {
                    commits,
                    inserted,
                    updated,
                    deleted,
                },
            ));
        }
        Ok(Self(out))
    }

    /// The work done between this snapshot and `later`, over `calls`.
    pub fn per_call(&self, later: &Snapshot, calls: u64) -> Vec<PerCall> {
        let n = calls.max(1) as f64;
        self.0
            .iter()
            .zip(&later.0)
            .map(|((service, a), (_, b))| PerCall {
                service,
                commits: (b.commits - a.commits) as f64 / n,
                inserted: (b.inserted - a.inserted) as f64 / n,
                updated: (b.updated - a.updated) as f64 / n,
                deleted: (b.deleted - a.deleted) as f64 / n,
            })
            .collect()
    }
}

pub fn print(work: &[PerCall]) {
    let parts: Vec<String> = work
        .iter()
        .map(|w| {
            format!(
                "{} {:.2} commits, {:.1} rows written",
                w.service,
                w.commits,
                w.inserted + w.updated + w.deleted
            )
        })
        .collect();
    println!("{:33}per call: {}", "", parts.join("; "));
}

pub fn json(work: &[PerCall]) -> serde_json::Value {
    work.iter()
        .map(|w| {
            json!({
                "service": w.service,
                "commits": w.commits,
                "rows_inserted": w.inserted,
                "rows_updated": w.updated,
                "rows_deleted": w.deleted,
            })
        })
        .collect()
}
