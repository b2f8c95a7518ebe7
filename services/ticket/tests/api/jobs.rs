//! `TicketJobsService`, the scheduler's batch API, at its edges: who may
//! call it, bad input, stale fencing tokens, and a repeated page. The
//! jobs' effects are tested through the scheduler's own call path
//! (services/scheduler/tests/api/jobs.rs).

use chrono::Duration;
use helpdesk_kit::{
    auth::Role,
    clock::{Clock, to_timestamp},
};
use helpdesk_proto::support::v1::{
    self as pb, ticket_jobs_service_client::TicketJobsServiceClient,
};
use helpdesk_testkit::Bearer;
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};
use uuid::Uuid;

use crate::helpers::*;

type Jobs = TicketJobsServiceClient<InterceptedService<Channel, Bearer>>;

async fn jobs(app: &TestApp, sub: &str, role: Role) -> Jobs {
    let channel = Channel::from_shared(app.addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    TicketJobsServiceClient::with_interceptor(channel, Bearer::token(sub, role))
}

fn close(run_id: Uuid, fence: i64, app: &TestApp) -> pb::CloseResolvedTicketsRequest {
    pb::CloseResolvedTicketsRequest {
        run_id: run_id.to_string(),
        fencing_token: fence,
        page_size: 0,
        page_token: String::new(),
        resolved_before: Some(to_timestamp(app.clock.now() - Duration::days(7))),
    }
}

/// A resolved ticket, resolved eight days before the clock's time now.
async fn resolved_long_ago(app: &TestApp) -> String {
    let t = app.alice_ticket().await;
    app.sam()
        .tickets
        .update_ticket(set_status(&t.id, pb::TicketStatus::Resolved))
        .await
        .unwrap();
    app.clock.advance(Duration::days(8));
    t.id
}

#[tokio::test]
async fn only_our_own_services_may_run_batch_jobs() {
    let app = spawn().await;
    let run = Uuid::now_v7();
    for (sub, role) in [
        (ALICE, Role::User),
        (SAM, Role::Staff),
        (ADA, Role::Admin),
        ("rides-service", Role::Service),
    ] {
        let mut client = jobs(&app, sub, role).await;
        expect_code(
            client.close_resolved_tickets(close(run, 1, &app)).await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .alert_overdue_tickets(pb::AlertOverdueTicketsRequest::default())
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .escalate_open_tickets(pb::EscalateOpenTicketsRequest::default())
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .request_ratings(pb::RequestRatingsRequest::default())
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .remind_unrated_tickets(pb::RemindUnratedTicketsRequest::default())
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .compute_daily_stats(pb::ComputeDailyStatsRequest::default())
                .await,
            Code::PermissionDenied,
        );
    }
    let page = jobs(&app, "scheduler-service", Role::Service)
        .await
        .close_resolved_tickets(close(run, 1, &app))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((page.processed, page.done), (0, true));
}

#[tokio::test]
async fn bad_batch_requests_name_every_field() {
    let app = spawn().await;
    let mut client = jobs(&app, "scheduler-service", Role::Service).await;
    let status = expect_code(
        client
            .close_resolved_tickets(pb::CloseResolvedTicketsRequest {
                run_id: "nope".into(),
                fencing_token: 0,
                page_size: -1,
                page_token: String::new(),
                resolved_before: None,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["run_id", "fencing_token", "page_size", "resolved_before"]
    );
    // A rating window that ends before it starts.
    let now = app.clock.now();
    let status = expect_code(
        client
            .request_ratings(pb::RequestRatingsRequest {
                run_id: Uuid::now_v7().to_string(),
                fencing_token: 1,
                resolved_before: Some(to_timestamp(now - Duration::days(2))),
                resolved_after: Some(to_timestamp(now - Duration::days(2))),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["resolved_after"]);

    // A token of another run (or another method) steers nothing.
    let run = Uuid::now_v7();
    resolved_long_ago(&app).await;
    resolved_long_ago(&app).await;
    let mut other = close(Uuid::now_v7(), 1, &app);
    other.page_size = 1;
    let token = client
        .close_resolved_tickets(other)
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    assert!(!token.is_empty());
    let mut foreign = close(run, 1, &app);
    foreign.page_token = token;
    let status = expect_code(
        client.close_resolved_tickets(foreign).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["page_token"]);

    let status = expect_code(
        client
            .alert_overdue_tickets(pb::AlertOverdueTicketsRequest {
                run_id: run.to_string(),
                fencing_token: 1,
                as_of_time: None,
                targets: vec![
                    pb::SlaTarget {
                        priority: pb::TicketPriority::High.into(),
                        first_response: Some(prost_types::Duration {
                            seconds: 60,
                            nanos: 0,
                        }),
                        resolution: Some(prost_types::Duration {
                            seconds: 3600,
                            nanos: 0,
                        }),
                    },
                    pb::SlaTarget {
                        priority: pb::TicketPriority::High.into(),
                        first_response: Some(prost_types::Duration {
                            seconds: 0,
                            nanos: 0,
                        }),
                        resolution: None,
                    },
                ],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        [
            "as_of_time",
            "targets[1].first_response",
            "targets[1].resolution",
            "targets[1].priority",
        ]
    );
    let status = expect_code(
        client
            .remind_unrated_tickets(pb::RemindUnratedTicketsRequest {
                run_id: run.to_string(),
                fencing_token: 1,
                max_reminders: -1,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["asked_before", "max_reminders"]);

    let start = chrono::Utc::now();
    let status = expect_code(
        client
            .compute_daily_stats(pb::ComputeDailyStatsRequest {
                date: "10/03/2026".into(),
                time_zone: String::new(),
                start_time: Some(to_timestamp(start)),
                end_time: Some(to_timestamp(start - Duration::hours(1))),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["date", "time_zone", "end_time"]);
}

#[tokio::test]
async fn a_stale_fencing_token_is_aborted_and_changes_nothing() {
    let app = spawn().await;
    let mut client = jobs(&app, "scheduler-service", Role::Service).await;
    let run = Uuid::now_v7();
    // The run's new holder (token 2) has been here.
    client
        .close_resolved_tickets(close(run, 2, &app))
        .await
        .unwrap();
    let id = resolved_long_ago(&app).await;
    let status = expect_code(
        client.close_resolved_tickets(close(run, 1, &app)).await,
        Code::Aborted,
    );
    assert!(status.message().contains("fencing token"), "{status:?}");
    let ticket = app
        .sam()
        .tickets
        .get_ticket(pb::GetTicketRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ticket.status(), pb::TicketStatus::Resolved);

    // The current holder closes it, once: a repeat of the page does nothing.
    let page = client
        .close_resolved_tickets(close(run, 2, &app))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.processed, 1);
    let again = client
        .close_resolved_tickets(close(run, 2, &app))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.processed, 0);
    let keys = app.outbox_keys().await;
    assert_eq!(
        keys.iter()
            .filter(|k| *k == "ticket.status_changed")
            .count(),
        2,
        "resolved, then closed once: {keys:?}"
    );
}
