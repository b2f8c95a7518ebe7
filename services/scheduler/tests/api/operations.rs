//! What operators do: see jobs and their next runs, run a job now (as of
//! another time), pause and resume; statistics served; the FAQ job's
//! single step.

use chrono::Duration;
use helpdesk_proto::support::v1 as pb;
use scheduler_service::domain::{CatchUp, JobKind, Overlap};
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn list_jobs_shows_the_seven_jobs_with_their_next_runs() {
    let env = spawn().await;
    let jobs = env
        .staff()
        .list_jobs(pb::ListJobsRequest {})
        .await
        .unwrap()
        .into_inner()
        .jobs;
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "auto_close_resolved_tickets",
            "send_overdue_ticket_alerts",
            "escalate_old_open_tickets",
            "send_rating_requests",
            "send_unrated_ticket_reminders",
            "generate_support_statistics",
            "update_faq_analytics",
        ]
    );
    let hourly = &jobs[3];
    assert_eq!(hourly.schedule, "0 * * * *");
    assert_eq!(hourly.time_zone, "UTC");
    assert_eq!(
        hourly.next_run_times,
        vec![
            ts(utc(2026, 3, 1, 10, 0, 0)),
            ts(utc(2026, 3, 1, 11, 0, 0)),
            ts(utc(2026, 3, 1, 12, 0, 0))
        ]
    );
    assert_eq!(hourly.overlap_policy(), pb::OverlapPolicy::Skip);
    let stats = &jobs[5];
    assert_eq!(stats.catch_up_policy(), pb::CatchUpPolicy::All);
    assert_eq!(stats.overlap_policy(), pb::OverlapPolicy::Queue);
    assert_eq!(stats.next_run_times[0], ts(utc(2026, 3, 2, 0, 0, 0)));
}

#[tokio::test]
async fn run_job_now_as_of_measures_thresholds_from_that_time() {
    let env = spawn().await;
    let as_of = utc(2026, 3, 20, 12, 0, 0);
    let run = env
        .admin()
        .run_job_now(pb::RunJobNowRequest {
            job: "auto_close_resolved_tickets".into(),
            as_of_time: Some(ts(as_of)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.trigger(), pb::JobRunTrigger::Manual);
    assert_eq!(run.state(), pb::JobRunState::Queued);
    assert_eq!(run.requested_by, ADMIN);
    let runs = env.settled(JobKind::AutoCloseResolvedTickets, 1).await;
    assert_eq!(runs[0].state, "succeeded");
    let calls = env.recorder.calls();
    assert_eq!(calls[0].run.as_of, as_of);
    assert_eq!(calls[0].threshold, Some(as_of - Duration::days(7)));

    // Without as_of: now. The listing shows it.
    env.clock.advance(Duration::seconds(1));
    env.admin()
        .run_job_now(pb::RunJobNowRequest {
            job: "escalate_old_open_tickets".into(),
            as_of_time: None,
        })
        .await
        .unwrap();
    env.settled(JobKind::EscalateOldOpenTickets, 1).await;
    let call = env
        .recorder
        .calls_of(JobKind::EscalateOldOpenTickets)
        .remove(0);
    assert_eq!(call.run.as_of, utc(2026, 3, 1, 9, 0, 31));
    assert_eq!(call.threshold, Some(utc(2026, 2, 27, 9, 0, 31)));
    let listed = env
        .staff()
        .list_job_runs(pb::ListJobRunsRequest {
            job: "auto_close_resolved_tickets".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.runs.len(), 1);
    assert_eq!(listed.runs[0].state(), pb::JobRunState::Succeeded);
    assert_eq!(listed.runs[0].as_of_time, Some(ts(as_of)));
    assert_eq!(listed.runs[0].processed, 10);
}

#[tokio::test]
async fn run_job_now_follows_the_overlap_policy() {
    let mut env = spawn_with(Setup {
        jobs: Some(vec![
            job(
                JobKind::AutoCloseResolvedTickets,
                "0 2 * * *",
                "UTC",
                Overlap::Skip,
                CatchUp::Skip,
            ),
            job(
                JobKind::SendRatingRequests,
                "0 * * * *",
                "UTC",
                Overlap::Queue,
                CatchUp::Skip,
            ),
        ]),
        replicas: 1,
        pages: 2,
        ..Setup::default()
    })
    .await;
    // The first run of each hangs in its second page.
    *env.recorder.hang.lock().unwrap() = Some(("r0".into(), Some("1".into())));
    let admin = env.admin();
    for job in ["auto_close_resolved_tickets", "send_rating_requests"] {
        admin
            .clone()
            .run_job_now(pb::RunJobNowRequest {
                job: job.into(),
                as_of_time: None,
            })
            .await
            .unwrap();
    }
    wait_until("both runs hang", || async {
        env.recorder
            .calls()
            .iter()
            .filter(|c| c.run.checkpoint.is_some())
            .count()
            == 2
    })
    .await;
    env.clock.advance(Duration::seconds(1));
    let skipped = admin
        .clone()
        .run_job_now(pb::RunJobNowRequest {
            job: "auto_close_resolved_tickets".into(),
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(skipped.state(), pb::JobRunState::Skipped);
    assert!(
        skipped.reason.contains("overlap policy skip"),
        "{}",
        skipped.reason
    );
    let queued = admin
        .clone()
        .run_job_now(pb::RunJobNowRequest {
            job: "send_rating_requests".into(),
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queued.state(), pb::JobRunState::Queued);
    a_few_ticks().await;
    let rating_runs = env.runs(JobKind::SendRatingRequests).await;
    assert_eq!(
        rating_runs[1].state, "queued",
        "waits behind the running one"
    );

    // Released, the running ones finish and the queued one runs after.
    *env.recorder.hang.lock().unwrap() = None;
    let rating_runs = env.settled(JobKind::SendRatingRequests, 2).await;
    assert!(
        rating_runs.iter().all(|r| r.state == "succeeded"),
        "{rating_runs:?}"
    );
    let closes = env.settled(JobKind::AutoCloseResolvedTickets, 2).await;
    assert_eq!(closes[0].state, "succeeded");
    assert_eq!(closes[1].state, "skipped");
    env.stop("r0").await;
}

#[tokio::test]
async fn a_paused_job_skips_its_windows_until_resumed() {
    let env = spawn_with(Setup {
        jobs: Some(vec![job(
            JobKind::SendRatingRequests,
            "0 * * * *",
            "UTC",
            Overlap::Skip,
            CatchUp::Skip,
        )]),
        ..Setup::default()
    })
    .await;
    let admin = env.admin();
    let paused = admin
        .clone()
        .pause_job(pb::PauseJobRequest {
            job: "send_rating_requests".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(paused.paused);
    assert_eq!(paused.paused_by, ADMIN);
    assert!(paused.next_run_times.is_empty());
    // Idempotent.
    assert!(
        admin
            .clone()
            .pause_job(pb::PauseJobRequest {
                job: "send_rating_requests".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .paused
    );
    expect_code(
        admin
            .clone()
            .run_job_now(pb::RunJobNowRequest {
                job: "send_rating_requests".into(),
                as_of_time: None,
            })
            .await,
        Code::FailedPrecondition,
    );
    for hour in [10, 11] {
        env.set_clock(utc(2026, 3, 1, hour, 0, 5));
        env.settled(
            JobKind::SendRatingRequests,
            usize::try_from(hour - 9).unwrap(),
        )
        .await;
    }
    let runs = env.runs(JobKind::SendRatingRequests).await;
    assert!(
        runs.iter()
            .all(|r| r.state == "skipped" && r.reason.as_deref() == Some("job paused")),
        "{runs:?}"
    );
    assert!(env.recorder.calls().is_empty());

    let resumed = admin
        .clone()
        .resume_job(pb::ResumeJobRequest {
            job: "send_rating_requests".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!resumed.paused);
    assert_eq!(resumed.next_run_times[0], ts(utc(2026, 3, 1, 12, 0, 0)));
    assert_eq!(resumed.last_run.unwrap().state(), pb::JobRunState::Skipped);
    env.set_clock(utc(2026, 3, 1, 12, 0, 5));
    let runs = env.settled(JobKind::SendRatingRequests, 3).await;
    assert_eq!(runs[2].state, "succeeded");
}

#[tokio::test]
async fn the_statistics_job_stores_the_day_before_and_get_daily_stats_serves_it() {
    let env = spawn().await;
    // Nothing computed yet: an empty answer, not an error.
    let empty = env
        .staff()
        .get_daily_stats(pb::GetDailyStatsRequest {
            start_date: "2026-03-01".into(),
            end_date: "2026-03-31".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.days.is_empty());
    // Midnight of 2026-03-02 in UTC: the statistics of 2026-03-01.
    env.set_clock(utc(2026, 3, 2, 0, 0, 5));
    let runs = env.settled(JobKind::GenerateSupportStatistics, 1).await;
    assert_eq!(runs[0].state, "succeeded");
    let days = env
        .staff()
        .get_daily_stats(pb::GetDailyStatsRequest {
            start_date: "2026-03-01".into(),
            end_date: "2026-03-31".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .days;
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].date, "2026-03-01");
    assert_eq!(days[0].time_zone, "UTC");
    assert_eq!(days[0].created, 1);
    assert_eq!(
        days[0].resolved, 24,
        "the recorder reports the day's length in hours"
    );
    assert_eq!(days[0].created_by_priority[0].key, "high");
    assert!((days[0].average_rating - 4.5).abs() < f64::EPSILON);
}

#[tokio::test]
async fn the_faq_job_runs_through_its_ticket_work() {
    let env = spawn().await;
    let run = env
        .admin()
        .run_job_now(pb::RunJobNowRequest {
            job: "update_faq_analytics".into(),
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner();
    let runs = env.settled(JobKind::UpdateFaqAnalytics, 1).await;
    assert_eq!(runs[0].id.to_string(), run.id);
    assert_eq!(runs[0].state, "succeeded");
    assert_eq!(env.recorder.calls_of(JobKind::UpdateFaqAnalytics).len(), 1);
}

#[tokio::test]
async fn get_daily_stats_answers_unavailable_while_the_database_is_away() {
    let env = spawn_with(Setup {
        database_proxy: true,
        ..Setup::default()
    })
    .await;
    let ask = || pb::GetDailyStatsRequest {
        start_date: "2026-03-01".into(),
        end_date: "2026-03-31".into(),
    };
    env.staff().get_daily_stats(ask()).await.expect("served");
    env.database_proxy().down().await;
    // An outage is "retry later", not a bug of ours (it was INTERNAL).
    let status = env
        .staff()
        .get_daily_stats(ask())
        .await
        .expect_err("the database is away");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    env.database_proxy().up();
    env.staff()
        .get_daily_stats(ask())
        .await
        .expect("served again once it is back");
}
