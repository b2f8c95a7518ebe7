//! A daily 02:30 Europe/Berlin job across both DST changes of 2026: once on
//! each day, the spring-forward day's run right after the gap, the
//! fall-back day's at the first 02:30 only. The clock moves through every
//! hour in between, so a spurious window would show as an extra row.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use scheduler_service::domain::{CatchUp, JobKind, Overlap};

use crate::helpers::*;

const JOB: JobKind = JobKind::AutoCloseResolvedTickets;

/// Walks the clock in half-hour steps (plus 5 s) from `from` to `to`.
/// After each step it waits until the replica planned every expected window
/// up to then and no run is in flight, so the clock never jumps past a live
/// lease. A spurious window shows up as an extra row at the end.
async fn walk(env: &TestEnv, from: DateTime<Utc>, to: DateTime<Utc>, expected: &[DateTime<Utc>]) {
    let mut t = from;
    while t <= to {
        env.set_clock(t + Duration::seconds(5));
        let due = expected.iter().filter(|w| **w <= t).max().copied();
        tokio::time::sleep(StdDuration::from_millis(40)).await;
        wait_until("the step planned and no run in flight", || async {
            let planned: DateTime<Utc> = sqlx::query_scalar!(
                "SELECT planned_through FROM jobs WHERE name = $1",
                JOB.name()
            )
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
            due.is_none_or(|d| planned >= d)
                && env
                    .runs(JOB)
                    .await
                    .iter()
                    .all(|r| r.state != "queued" && r.state != "running")
        })
        .await;
        t += Duration::minutes(30);
    }
}

async fn berlin_env(start: DateTime<Utc>) -> TestEnv {
    spawn_with(Setup {
        start,
        jobs: Some(vec![job(
            JOB,
            "30 2 * * *",
            "Europe/Berlin",
            Overlap::Skip,
            CatchUp::Skip,
        )]),
        // Every window counts as on time however slowly the loop ticks on a
        // busy machine: this test is about which windows exist.
        grace: StdDuration::from_secs(7 * 86_400),
        ..Setup::default()
    })
    .await
}

#[tokio::test]
async fn a_daily_job_runs_once_across_spring_forward() {
    let start = utc(2026, 3, 27, 12, 0, 0);
    let env = berlin_env(start).await;
    let expected = vec![
        utc(2026, 3, 28, 1, 30, 0), // 02:30 CET
        utc(2026, 3, 29, 1, 0, 0),  // 02:30 does not exist: 03:00 CEST
        utc(2026, 3, 30, 0, 30, 0), // 02:30 CEST
    ];
    walk(&env, start, utc(2026, 3, 30, 12, 0, 0), &expected).await;
    let runs = env.settled(JOB, 3).await;
    let fires: Vec<_> = runs.iter().map(|r| r.fire_at).collect();
    assert_eq!(fires, expected);
    assert!(runs.iter().all(|r| r.state == "succeeded"), "{runs:?}");
    assert_eq!(env.recorder.calls().len(), 3);
}

#[tokio::test]
async fn a_daily_job_runs_once_across_fall_back() {
    let start = utc(2026, 10, 23, 12, 0, 0);
    let env = berlin_env(start).await;
    let expected = vec![
        utc(2026, 10, 24, 0, 30, 0), // 02:30 CEST
        utc(2026, 10, 25, 0, 30, 0), // the first 02:30 (CEST); not the second (CET)
        utc(2026, 10, 26, 1, 30, 0), // 02:30 CET
    ];
    walk(&env, start, utc(2026, 10, 26, 12, 0, 0), &expected).await;
    let runs = env.settled(JOB, 3).await;
    let fires: Vec<_> = runs.iter().map(|r| r.fire_at).collect();
    assert_eq!(fires, expected);
    assert!(runs.iter().all(|r| r.state == "succeeded"), "{runs:?}");
    assert_eq!(env.recorder.calls().len(), 3);
}
