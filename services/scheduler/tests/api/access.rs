//! Who may call what, and bad input named field by field.

use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1 as pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn users_and_other_services_see_nothing_and_staff_only_look() {
    let env = spawn().await;
    for client in [
        env.as_role(USER, Role::User),
        env.as_role("rides-service", Role::Service),
    ] {
        expect_code(
            client.clone().list_jobs(pb::ListJobsRequest {}).await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .clone()
                .list_job_runs(pb::ListJobRunsRequest::default())
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .clone()
                .get_daily_stats(pb::GetDailyStatsRequest {
                    start_date: "2026-03-01".into(),
                    end_date: "2026-03-02".into(),
                })
                .await,
            Code::PermissionDenied,
        );
    }
    let staff = env.staff();
    staff
        .clone()
        .list_jobs(pb::ListJobsRequest {})
        .await
        .unwrap();
    staff
        .clone()
        .list_job_runs(pb::ListJobRunsRequest::default())
        .await
        .unwrap();
    for client in [staff, env.as_role(USER, Role::User)] {
        expect_code(
            client
                .clone()
                .run_job_now(pb::RunJobNowRequest {
                    job: "auto_close_resolved_tickets".into(),
                    as_of_time: None,
                })
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .clone()
                .pause_job(pb::PauseJobRequest {
                    job: "auto_close_resolved_tickets".into(),
                })
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .clone()
                .resume_job(pb::ResumeJobRequest {
                    job: "auto_close_resolved_tickets".into(),
                })
                .await,
            Code::PermissionDenied,
        );
    }
    assert!(
        env.runs(scheduler_service::domain::JobKind::AutoCloseResolvedTickets)
            .await
            .is_empty()
    );
    // Our own services act like admins here (e2e, automation).
    env.as_role("ticket-service", Role::Service)
        .pause_job(pb::PauseJobRequest {
            job: "update_faq_analytics".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_input_is_invalid_argument_with_every_field_named() {
    let env = spawn().await;
    let admin = env.admin();
    let status = expect_code(
        admin
            .clone()
            .run_job_now(pb::RunJobNowRequest {
                job: "make_coffee".into(),
                as_of_time: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["job", "as_of_time"]);
    let status = expect_code(
        admin
            .clone()
            .pause_job(pb::PauseJobRequest { job: String::new() })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["job"]);
    let status = expect_code(
        admin
            .clone()
            .list_job_runs(pb::ListJobRunsRequest {
                job: "nope".into(),
                page_size: -1,
                page_token: "garbage".into(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        vec!["job", "page_size", "page_token"]
    );
    let status = expect_code(
        admin
            .clone()
            .get_daily_stats(pb::GetDailyStatsRequest {
                start_date: "01/03/2026".into(),
                end_date: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["start_date", "end_date"]);
    let status = expect_code(
        admin
            .clone()
            .get_daily_stats(pb::GetDailyStatsRequest {
                start_date: "2026-03-05".into(),
                end_date: "2026-03-01".into(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["end_date"]);
}

#[tokio::test]
async fn run_pages_are_keyset_tokens_bound_to_their_filter() {
    let env = spawn().await;
    let admin = env.admin();
    for i in 0..5 {
        env.clock.advance(chrono::Duration::seconds(1));
        admin
            .clone()
            .run_job_now(pb::RunJobNowRequest {
                job: "update_faq_analytics".into(),
                as_of_time: None,
            })
            .await
            .unwrap();
        env.settled(
            scheduler_service::domain::JobKind::UpdateFaqAnalytics,
            i + 1,
        )
        .await;
    }
    let first = env
        .staff()
        .list_job_runs(pb::ListJobRunsRequest {
            job: "update_faq_analytics".into(),
            page_size: 3,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.runs.len(), 3);
    let second = env
        .staff()
        .list_job_runs(pb::ListJobRunsRequest {
            job: "update_faq_analytics".into(),
            page_size: 3,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.runs.len(), 2);
    assert!(second.next_page_token.is_empty());
    assert!(first.runs[2].fire_time.unwrap().seconds > second.runs[0].fire_time.unwrap().seconds);
    // The token names its filter.
    let status = expect_code(
        env.staff()
            .list_job_runs(pb::ListJobRunsRequest {
                job: String::new(),
                page_size: 3,
                page_token: first.next_page_token,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["page_token"]);
}
