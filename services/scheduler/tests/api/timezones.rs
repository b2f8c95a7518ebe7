//! A daily 02:30 Europe/Berlin job across both DST changes of 2026: once on
//! each day, the spring-forward day's run right after the gap, the
//! fall-back day's at the first 02:30 only. The clock moves through every
//! hour in between, so a spurious window would show as an extra row.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use scheduler_service::domain::{CatchUp, JobKind, Overlap};

use crate::helpers::*;

const JOB: JobKind = JobKind::AutoCloseResolvedTickets;

/// Walks the clock hour by hour (plus 5 s) from `from` to `to`, letting the
/// replica tick after each step.
async fn walk(env: &TestEnv, from: DateTime<Utc>, to: DateTime<Utc>) {
    let mut t = from;
    while t <= to {
        env.set_clock(t + Duration::seconds(5));
        tokio::time::sleep(StdDuration::from_millis(60)).await;
        wait_until("no run in flight", || async {
            env.runs(JOB)
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
        // Half-hour steps: every window is picked up well within grace.
        grace: StdDuration::from_secs(3600),
        ..Setup::default()
    })
    .await
}

#[tokio::test]
async fn a_daily_job_runs_once_across_spring_forward() {
    let start = utc(2026, 3, 27, 12, 0, 0);
    let env = berlin_env(start).await;
    walk(&env, start, utc(2026, 3, 30, 12, 0, 0)).await;
    let runs = env.runs(JOB).await;
    let fires: Vec<_> = runs.iter().map(|r| r.fire_at).collect();
    assert_eq!(
        fires,
        vec![
            utc(2026, 3, 28, 1, 30, 0), // 02:30 CET
            utc(2026, 3, 29, 1, 0, 0),  // 02:30 does not exist: 03:00 CEST
            utc(2026, 3, 30, 0, 30, 0), // 02:30 CEST
        ]
    );
    assert!(runs.iter().all(|r| r.state == "succeeded"), "{runs:?}");
    assert_eq!(env.recorder.calls().len(), 3);
}

#[tokio::test]
async fn a_daily_job_runs_once_across_fall_back() {
    let start = utc(2026, 10, 23, 12, 0, 0);
    let env = berlin_env(start).await;
    walk(&env, start, utc(2026, 10, 26, 12, 0, 0)).await;
    let runs = env.runs(JOB).await;
    let fires: Vec<_> = runs.iter().map(|r| r.fire_at).collect();
    assert_eq!(
        fires,
        vec![
            utc(2026, 10, 24, 0, 30, 0), // 02:30 CEST
            utc(2026, 10, 25, 0, 30, 0), // the first 02:30 (CEST); not the second (CET)
            utc(2026, 10, 26, 1, 30, 0), // 02:30 CET
        ]
    );
    assert!(runs.iter().all(|r| r.state == "succeeded"), "{runs:?}");
    assert_eq!(env.recorder.calls().len(), 3);
}
