//! The `daily_stats` table: one snapshot per local day, kept as JSON (the
//! shape is the domain's `DailyStats`; nothing queries inside it).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::stats::DailyStats;

pub struct StoredDay {
    pub day: NaiveDate,
    pub time_zone: String,
    pub stats: DailyStats,
    pub computed_at: DateTime<Utc>,
}

/// Stores (or replaces: a re-run recomputes the same day) a day's snapshot.
pub async fn store(
    conn: &mut PgConnection,
    day: NaiveDate,
    time_zone: &str,
    stats: &DailyStats,
    run_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let json = serde_json::to_string(stats)?;
    sqlx::query!(
        "INSERT INTO daily_stats (day, time_zone, snapshot, run_id, computed_at)
         VALUES ($1, $2, $3::text::jsonb, $4, $5)
         ON CONFLICT (day) DO UPDATE SET time_zone = excluded.time_zone,
             snapshot = excluded.snapshot, run_id = excluded.run_id,
             computed_at = excluded.computed_at",
        day,
        time_zone,
        json,
        run_id,
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The snapshots of the days in `[first, last]`, oldest first.
pub async fn range(
    pool: &PgPool,
    first: NaiveDate,
    last: NaiveDate,
) -> anyhow::Result<Vec<StoredDay>> {
    let rows = sqlx::query!(
        r#"SELECT day, time_zone, snapshot::text AS "snapshot!", computed_at FROM daily_stats
           WHERE day BETWEEN $1 AND $2 ORDER BY day"#,
        first,
        last
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StoredDay {
                day: r.day,
                time_zone: r.time_zone,
                stats: serde_json::from_str(&r.snapshot)?,
                computed_at: r.computed_at,
            })
        })
        .collect()
}
