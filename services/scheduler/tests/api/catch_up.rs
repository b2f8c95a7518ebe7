//! Windows missed while no scheduler ran, under each catch-up policy, and
//! the maximum lateness: what runs, what is skipped, and the reason kept.

use scheduler_service::domain::{CatchUp, JobKind, Overlap};

use crate::helpers::*;

const JOB: JobKind = JobKind::SendRatingRequests;

/// Registers the hourly job at 09:00:30 (a scheduler ran then), lets the
/// clock move to 14:30 with no scheduler running (windows 10:00 to 14:00
/// missed), then starts one: the rows it settles on.
async fn after_downtime(catch_up: CatchUp) -> (TestEnv, Vec<RunView>) {
    let mut env = spawn_with(Setup {
        jobs: Some(vec![job(JOB, "0 * * * *", "UTC", Overlap::Queue, catch_up)]),
        replicas: 0,
        ..Setup::default()
    })
    .await;
    env.bare_scheduler("before").register().await.unwrap();
    env.set_clock(utc(2026, 3, 1, 14, 30, 0));
    env.start_replica("after").await;
    let runs = env.settled(JOB, 5).await;
    (env, runs)
}

fn hours_and_states(runs: &[RunView]) -> Vec<(u32, &str, &str)> {
    use chrono::Timelike;
    runs.iter()
        .map(|r| (r.fire_at.hour(), r.state.as_str(), r.trigger.as_str()))
        .collect()
}

#[tokio::test]
async fn catch_up_skip_records_every_missed_window_as_skipped() {
    let (env, runs) = after_downtime(CatchUp::Skip).await;
    assert!(runs.iter().all(|r| r.state == "skipped"), "{runs:?}");
    assert!(runs.iter().all(|r| {
        r.reason
            .as_deref()
            .unwrap()
            .contains("missed while no scheduler ran")
    }));
    assert!(env.recorder.calls().is_empty());
    // The next window runs on time.
    env.set_clock(utc(2026, 3, 1, 15, 0, 5));
    let runs = env.settled(JOB, 6).await;
    assert_eq!(
        (runs[5].state.as_str(), runs[5].trigger.as_str()),
        ("succeeded", "schedule")
    );
}

#[tokio::test]
async fn catch_up_latest_runs_the_newest_missed_window_once() {
    let (env, runs) = after_downtime(CatchUp::Latest).await;
    assert_eq!(
        hours_and_states(&runs),
        vec![
            (10, "skipped", "schedule"),
            (11, "skipped", "schedule"),
            (12, "skipped", "schedule"),
            (13, "skipped", "schedule"),
            (14, "succeeded", "catch_up"),
        ]
    );
    assert!(
        runs[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("superseded by the window at 2026-03-01 14:00:00 UTC")
    );
    let calls = env.recorder.calls();
    assert_eq!(calls.len(), 1);
    // The catch-up run works as of its own window.
    assert_eq!(calls[0].run.as_of, utc(2026, 3, 1, 14, 0, 0));
    assert_eq!(calls[0].threshold, Some(utc(2026, 2, 27, 14, 0, 0)));
}

#[tokio::test]
async fn catch_up_all_runs_each_window_within_the_maximum_lateness_in_order() {
    let (env, runs) = after_downtime(CatchUp::All).await;
    // Maximum lateness 3 h at 14:30: 10:00 and 11:00 are too late.
    assert_eq!(
        hours_and_states(&runs),
        vec![
            (10, "skipped", "schedule"),
            (11, "skipped", "schedule"),
            (12, "succeeded", "catch_up"),
            (13, "succeeded", "catch_up"),
            (14, "succeeded", "catch_up"),
        ]
    );
    assert!(
        runs[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("more than the maximum lateness of 3h00m")
    );
    let as_of: Vec<_> = env.recorder.calls().iter().map(|c| c.run.as_of).collect();
    assert_eq!(
        as_of,
        vec![
            utc(2026, 3, 1, 12, 0, 0),
            utc(2026, 3, 1, 13, 0, 0),
            utc(2026, 3, 1, 14, 0, 0)
        ]
    );
}
