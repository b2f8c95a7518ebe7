//! The dashboard's figures (`domain::stats`), exact, over the tickets created
//! in a range. Three statements, each one pass over the range through the
//! covering index `tickets_stats` (an index-only scan: migration
//! 20261210000004, plans in docs/indexes.md):
//! - totals, percentiles, target shares and ratings;
//! - counts by status, priority and category (one hashed pass);
//! - per agent.
//!
//! They run at once on three connections (two cores work instead of one),
//! and still see one state of the data: the first exports its snapshot and
//! the others adopt it (`SET TRANSACTION SNAPSHOT`), so the figures always
//! add up.

use chrono::{DateTime, Utc};
use helpdesk_kit::sla::SlaTargets;
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::stats::{AgentFigures, DurationFigures, StatsQuery, TicketFigures, seconds};

/// Ordered-set aggregates sort in memory up to this; a year's cohort of a
/// busy desk fits, where the default 4 MB would spill to disk.
const WORK_MEM: &str = "SET LOCAL work_mem = '64MB'";
const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// Computes every figure of `query`, as of `now` (which decides which open
/// tickets are already past their target).
pub async fn figures(
    pool: &PgPool,
    query: &StatsQuery,
    targets: &SlaTargets,
    now: DateTime<Utc>,
) -> sqlx::Result<TicketFigures> {
    let mut lead = pool.begin_with(BEGIN).await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *lead)
        .await?;
    let (totals, breakdown, agents) = tokio::try_join!(
        async {
            sqlx::Executor::execute(&mut *lead, WORK_MEM).await?;
            totals(&mut lead, query, targets, now).await
        },
        async {
            let mut tx = follower(pool, &snapshot).await?;
            breakdown(&mut tx, query).await
        },
        async {
            let mut tx = follower(pool, &snapshot).await?;
            agents(&mut tx, query).await
        },
    )?;
    lead.commit().await?;
    let (total, first_response, resolution, average_rating, rating_distribution) = totals;
    let (by_status, by_priority, by_category) = breakdown;
    Ok(TicketFigures {
        total,
        by_status,
        by_priority,
        by_category,
        first_response,
        resolution,
        average_rating,
        rating_distribution,
        agents,
    })
}

/// A read-only transaction that sees exactly what the leader's does.
async fn follower(pool: &PgPool, snapshot: &str) -> sqlx::Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin_with(BEGIN).await?;
    // The snapshot id comes from PostgreSQL itself; SET takes no parameter.
    let set = format!("SET TRANSACTION SNAPSHOT '{}'", snapshot.replace('\'', ""));
    sqlx::raw_sql(sqlx::AssertSqlSafe(set))
        .execute(&mut *tx)
        .await?;
    sqlx::Executor::execute(&mut *tx, WORK_MEM).await?;
    Ok(tx)
}

/// Targets as seconds per priority (NULL: no target).
fn target_seconds(
    targets: &SlaTargets,
    pick: fn((std::time::Duration, std::time::Duration)) -> std::time::Duration,
) -> [Option<f64>; 4] {
    ["urgent", "high", "medium", "low"].map(|p| targets.of(p).map(|t| pick(t).as_secs_f64()))
}

type Totals = (i64, DurationFigures, DurationFigures, Option<f64>, [i64; 5]);

/// The spans and targets are computed once per ticket in the subquery,
/// which `OFFSET 0` keeps from being flattened into the aggregates: flattened,
/// each is recomputed wherever an aggregate names it (up to four times a
/// ticket), which took 79 ms instead of 53 for 80,000 tickets.
async fn totals(
    tx: &mut Transaction<'static, Postgres>,
    query: &StatsQuery,
    targets: &SlaTargets,
    now: DateTime<Utc>,
) -> sqlx::Result<Totals> {
    let [fu, fh, fm, fl] = target_seconds(targets, |t| t.0);
    let [ru, rh, rm, rl] = target_seconds(targets, |t| t.1);
    let r = sqlx::query!(
        r#"SELECT count(*) AS "total!",
                  count(fr) AS "responded!",
                  percentile_cont(ARRAY[0.5, 0.9]::float8[]) WITHIN GROUP (ORDER BY fr) AS fr_pct,
                  count(*) FILTER (WHERE fr_target IS NOT NULL
                                     AND (fr IS NOT NULL OR age > fr_target)) AS "fr_known!",
                  count(*) FILTER (WHERE fr <= fr_target) AS "fr_within!",
                  count(res) AS "resolved!",
                  percentile_cont(ARRAY[0.5, 0.9]::float8[]) WITHIN GROUP (ORDER BY res) AS res_pct,
                  count(*) FILTER (WHERE res_target IS NOT NULL
                                     AND (res IS NOT NULL
                                          OR (status <> 'closed' AND age > res_target))) AS "res_known!",
                  count(*) FILTER (WHERE res <= res_target) AS "res_within!",
                  avg(rating)::float8 AS average_rating,
                  count(*) FILTER (WHERE rating = 1) AS "r1!",
                  count(*) FILTER (WHERE rating = 2) AS "r2!",
                  count(*) FILTER (WHERE rating = 3) AS "r3!",
                  count(*) FILTER (WHERE rating = 4) AS "r4!",
                  count(*) FILTER (WHERE rating = 5) AS "r5!"
           FROM (SELECT status, rating,
                        date_part('epoch', first_response_at - created_at) AS fr,
                        date_part('epoch', resolved_at - created_at) AS res,
                        date_part('epoch', $5::timestamptz - created_at) AS age,
                        CASE priority WHEN 'urgent' THEN $6::float8 WHEN 'high' THEN $7::float8
                                      WHEN 'medium' THEN $8::float8 WHEN 'low' THEN $9::float8 END AS fr_target,
                        CASE priority WHEN 'urgent' THEN $10::float8 WHEN 'high' THEN $11::float8
                                      WHEN 'medium' THEN $12::float8 WHEN 'low' THEN $13::float8 END AS res_target
                 FROM tickets
                 WHERE created_at >= $1 AND created_at < $2
                   AND ($3::text IS NULL OR category_id = $3)
                   AND ($4::uuid IS NULL OR assignee_id = $4)
                 OFFSET 0) t"#,
        query.from,
        query.until,
        query.category.as_ref().map(|c| c.as_str()),
        query.agent.map(|a| a.as_uuid()),
        now,
        fu,
        fh,
        fm,
        fl,
        ru,
        rh,
        rm,
        rl,
    )
    .fetch_one(&mut **tx)
    .await?;
    let percentiles = |count: i64, pct: Option<Vec<f64>>| {
        let pct = pct.unwrap_or_default();
        let at = |i: usize| pct.get(i).copied().filter(|_| count > 0).map(seconds);
        (at(0), at(1))
    };
    let (fr_median, fr_p90) = percentiles(r.responded, r.fr_pct);
    let (res_median, res_p90) = percentiles(r.resolved, r.res_pct);
    Ok((
        r.total,
        DurationFigures {
            count: r.responded,
            median: fr_median,
            p90: fr_p90,
            target_known: r.fr_known,
            within_target: r.fr_within,
        },
        DurationFigures {
            count: r.resolved,
            median: res_median,
            p90: res_p90,
            target_known: r.res_known,
            within_target: r.res_within,
        },
        r.average_rating,
        [r.r1, r.r2, r.r3, r.r4, r.r5],
    ))
}

type Breakdown = (Vec<(String, i64)>, Vec<(String, i64)>, Vec<(String, i64)>);

async fn breakdown(
    tx: &mut Transaction<'static, Postgres>,
    query: &StatsQuery,
) -> sqlx::Result<Breakdown> {
    let rows = sqlx::query!(
        r#"SELECT CASE WHEN grouping(status) = 0 THEN 'status'
                       WHEN grouping(priority) = 0 THEN 'priority'
                       ELSE 'category' END AS "dimension!",
                  coalesce(status, priority, category_id) AS "key!",
                  count(*) AS "n!"
           FROM tickets
           WHERE created_at >= $1 AND created_at < $2
             AND ($3::text IS NULL OR category_id = $3)
             AND ($4::uuid IS NULL OR assignee_id = $4)
           GROUP BY GROUPING SETS ((status), (priority), (category_id))
           ORDER BY 1, 2"#,
        query.from,
        query.until,
        query.category.as_ref().map(|c| c.as_str()),
        query.agent.map(|a| a.as_uuid()),
    )
    .fetch_all(&mut **tx)
    .await?;
    let (mut status, mut priority, mut category) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        match row.dimension.as_str() {
            "status" => &mut status,
            "priority" => &mut priority,
            _ => &mut category,
        }
        .push((row.key, row.n));
    }
    Ok((status, priority, category))
}

async fn agents(
    tx: &mut Transaction<'static, Postgres>,
    query: &StatsQuery,
) -> sqlx::Result<Vec<AgentFigures>> {
    let rows = sqlx::query!(
        r#"SELECT assignee_id AS "agent!",
                  count(*) AS "assigned!",
                  count(resolved_at) AS "resolved!",
                  percentile_cont(0.5) WITHIN GROUP
                      (ORDER BY date_part('epoch', first_response_at - created_at)) AS first_response_median,
                  avg(rating)::float8 AS average_rating,
                  count(rating) AS "rating_count!"
           FROM tickets
           WHERE created_at >= $1 AND created_at < $2 AND assignee_id IS NOT NULL
             AND ($3::text IS NULL OR category_id = $3)
             AND ($4::uuid IS NULL OR assignee_id = $4)
           GROUP BY assignee_id
           ORDER BY 2 DESC, 1"#,
        query.from,
        query.until,
        query.category.as_ref().map(|c| c.as_str()),
        query.agent.map(|a| a.as_uuid()),
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AgentFigures {
            agent: r.agent,
            assigned: r.assigned,
            resolved: r.resolved,
            first_response_median: r.first_response_median.map(seconds),
            average_rating: r.average_rating,
            rating_count: r.rating_count,
        })
        .collect())
}
