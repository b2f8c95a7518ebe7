//! Exactly once per window across replicas: racing replicas, a replica
//! killed mid-run, and a stale holder's writes refused by the fencing token.

use chrono::Duration;
use scheduler_service::{
    domain::{CatchUp, JobKind, Overlap},
    storage::runs::{self, PageRecord},
};

use crate::helpers::*;

#[tokio::test]
async fn three_replicas_racing_run_each_window_once() {
    let mut env = spawn_with(Setup {
        jobs: Some(vec![
            job(
                JobKind::SendRatingRequests,
                "0 * * * *",
                "UTC",
                Overlap::Skip,
                CatchUp::Skip,
            ),
            job(
                JobKind::SendOverdueTicketAlerts,
                "*/30 * * * *",
                "UTC",
                Overlap::Skip,
                CatchUp::Skip,
            ),
        ]),
        start: utc(2026, 3, 1, 9, 45, 0),
        replicas: 3,
        pages: 3,
        ..Setup::default()
    })
    .await;
    env.start_bare_replica("bare").await;

    // Six hours, window by window: every replica ticks on every one. The
    // clock moves only once every run settled (a jump past a live lease
    // would be a takeover, tested below).
    let start = utc(2026, 3, 1, 10, 0, 1);
    for step in 0..12usize {
        env.set_clock(start + Duration::minutes(30 * i64::try_from(step).unwrap()));
        env.settled(JobKind::SendOverdueTicketAlerts, step + 1)
            .await;
        env.settled(JobKind::SendRatingRequests, step / 2 + 1).await;
    }

    let hourly = env.runs(JobKind::SendRatingRequests).await;
    let half_hourly = env.runs(JobKind::SendOverdueTicketAlerts).await;
    assert_eq!(hourly.len(), 6);
    assert_eq!(half_hourly.len(), 12);
    for run in hourly.iter().chain(&half_hourly) {
        assert_eq!(run.state, "succeeded", "{run:?}");
        assert_eq!(run.attempts, 1, "claimed once: {run:?}");
        assert_eq!(run.processed, 30, "three pages of ten: {run:?}");
    }
    // Every page of every run was done exactly once, by whichever replica
    // held it; fencing tokens only grow.
    let pages = env.recorder.completed_pages();
    assert_eq!(pages.len(), 18 * 3);
    assert!(pages.values().all(|n| *n == 1), "{pages:?}");
    let fences: Vec<i64> = hourly.iter().map(|r| r.fence).collect();
    assert!(fences.windows(2).all(|w| w[0] < w[1]), "{fences:?}");
    // The work was shared: more than one replica held runs.
    let mut holders: Vec<String> = env
        .recorder
        .calls()
        .into_iter()
        .map(|c| c.replica)
        .collect();
    holders.sort();
    holders.dedup();
    assert!(holders.len() > 1, "only {holders:?} ran anything");
}

#[tokio::test]
async fn a_replica_killed_mid_run_is_taken_over_from_its_checkpoint() {
    let mut env = spawn_with(Setup {
        jobs: Some(vec![job(
            JobKind::AutoCloseResolvedTickets,
            "0 2 * * *",
            "UTC",
            Overlap::Skip,
            CatchUp::Latest,
        )]),
        replicas: 0,
        pages: 3,
        ..Setup::default()
    })
    .await;
    // Replica a does page 1, then hangs in page 2 and is killed there.
    *env.recorder.hang.lock().unwrap() = Some(("a".into(), Some("1".into())));
    env.start_bare_replica("a").await;
    env.set_clock(utc(2026, 3, 2, 2, 0, 1));
    wait_until("a hangs in page 2", || async {
        env.recorder
            .calls()
            .iter()
            .any(|c| c.replica == "a" && c.run.checkpoint.as_deref() == Some("1"))
    })
    .await;
    let held = env.runs(JobKind::AutoCloseResolvedTickets).await.remove(0);
    assert_eq!(held.state, "running");
    assert_eq!(held.checkpoint.as_deref(), Some("1"));
    assert_eq!(held.fence, 1);
    env.kill("a");

    // b starts: the lease is still live, so b waits; nothing runs twice.
    env.start_replica("b").await;
    a_few_ticks().await;
    assert!(env.recorder.calls().iter().all(|c| c.replica == "a"));

    // The lease runs out (clock time): b takes the run over with a greater
    // token and continues from page 2.
    env.set_clock(utc(2026, 3, 2, 2, 1, 2));
    let run = env
        .settled(JobKind::AutoCloseResolvedTickets, 1)
        .await
        .remove(0);
    assert_eq!(run.state, "succeeded");
    assert_eq!(run.attempts, 2);
    assert_eq!(run.fence, 2);
    assert_eq!(run.processed, 30);
    let b_calls: Vec<Option<String>> = env
        .recorder
        .calls()
        .into_iter()
        .filter(|c| c.replica == "b")
        .map(|c| c.run.checkpoint)
        .collect();
    assert_eq!(b_calls, vec![Some("1".into()), Some("2".into())]);
    assert!(
        env.recorder
            .calls()
            .iter()
            .filter(|c| c.replica == "b")
            .all(|c| c.run.fencing_token == 2)
    );
    let pages = env.recorder.completed_pages();
    assert_eq!(pages.len(), 3);
    assert!(pages.values().all(|n| *n == 1), "{pages:?}");

    // Had a survived, its writes under token 1 would be refused.
    let mut conn = env.db.pool.acquire().await.unwrap();
    let now = env.clock_now();
    assert!(
        !runs::record_progress(
            &mut conn,
            run.id,
            1,
            PageRecord {
                checkpoint: Some("9"),
                processed: 99,
                done: true
            },
            now,
            now
        )
        .await
        .unwrap()
    );
    assert!(!runs::renew(&env.db.pool, run.id, 1, now).await.unwrap());
    assert!(!runs::release(&env.db.pool, run.id, 1).await.unwrap());
    let after = env.runs(JobKind::AutoCloseResolvedTickets).await.remove(0);
    assert_eq!(
        (after.processed, after.checkpoint.as_deref()),
        (30, Some("3"))
    );
}

#[tokio::test]
async fn a_stale_holder_cannot_write_after_a_takeover() {
    let env = spawn_with(Setup {
        jobs: Some(vec![job(
            JobKind::EscalateOldOpenTickets,
            "0 1 * * *",
            "UTC",
            Overlap::Skip,
            CatchUp::Latest,
        )]),
        replicas: 0,
        pages: 2,
        ..Setup::default()
    })
    .await;
    // Two bare schedulers claim by hand: x claims, its lease runs out
    // (a long pause), y takes over; x's page then lands on a stale token.
    let x = env.bare_scheduler("x");
    x.register().await.unwrap();
    let y = env.bare_scheduler("y");
    env.set_clock(utc(2026, 3, 2, 1, 0, 1));
    let claimed_x = x.tick().await;
    assert_eq!(claimed_x.len(), 1);
    assert!(y.tick().await.is_empty(), "the lease is live");
    env.set_clock(utc(2026, 3, 2, 1, 2, 0));
    let claimed_y = y.tick().await;
    assert_eq!(claimed_y.len(), 1);
    assert_eq!(claimed_y[0].id, claimed_x[0].id);
    assert!(claimed_y[0].fence > claimed_x[0].fence);

    let now = env.clock_now();
    let mut conn = env.db.pool.acquire().await.unwrap();
    let stale = &claimed_x[0];
    assert!(
        !runs::record_progress(
            &mut conn,
            stale.id,
            stale.fence,
            PageRecord {
                checkpoint: Some("1"),
                processed: 10,
                done: false
            },
            now,
            now
        )
        .await
        .unwrap(),
        "the stale holder's checkpoint is refused"
    );
    let fresh = &claimed_y[0];
    assert!(
        runs::record_progress(
            &mut conn,
            fresh.id,
            fresh.fence,
            PageRecord {
                checkpoint: Some("1"),
                processed: 10,
                done: false
            },
            now,
            now
        )
        .await
        .unwrap()
    );
}
