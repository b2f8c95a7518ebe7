//! The original flow across the real binaries (design brief §4, steps 1–8;
//! the scheduler's "two days later" and "seven days later" run as-of):
//! separate processes, real sockets, real PostgreSQL and RabbitMQ, a real
//! SMTP server; after each step the right people have the right in-app
//! notification and email. Graceful stops and a killed service.

use std::time::{Duration, Instant};

use helpdesk_e2e::Stack;
use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1::{
    self as pb, JobRunState, NotificationKind as K, TicketStatus as S,
    assignment_service_client::AssignmentServiceClient,
    notification_service_client::NotificationServiceClient,
    scheduler_service_client::SchedulerServiceClient, ticket_service_client::TicketServiceClient,
};
use helpdesk_testkit::Bearer;
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use tonic_health::pb::health_check_response::ServingStatus;

const ALICE: &str = "0a000000-0000-4000-8000-000000000001";
const ALICE_RIDE: &str = "0d000000-0000-4000-8000-000000000001";
const ADA: &str = "0c000000-0000-4000-8000-000000000001";
const SAM: &str = "0b000000-0000-4000-8000-000000000001";

type Tickets = TicketServiceClient<InterceptedService<Channel, Bearer>>;

async fn tickets(addr: String, sub: &str, role: Role) -> Tickets {
    let channel = Channel::from_shared(addr).unwrap().connect().await.unwrap();
    TicketServiceClient::with_interceptor(channel, Bearer::token(sub, role))
}

fn new_ticket(subject: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        ride_id: ALICE_RIDE.into(),
        category_id: "ride_issue".into(),
        subject: subject.into(),
        description: "The driver went the long way.".into(),
        ..Default::default()
    }
}

/// Waits (bounded) until `who` has a notification of `kind` about `ticket`
/// in-app and, when `email` is given, until an email with that subject
/// reached `email`; returns the notification.
async fn wait_told(
    stack: &Stack,
    who: &str,
    role: Role,
    ticket: &pb::Ticket,
    kind: K,
    email: Option<&str>,
) -> pb::Notification {
    let channel = Channel::from_shared(stack.notification.addr())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = NotificationServiceClient::with_interceptor(channel, Bearer::token(who, role));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = client
            .list_notifications(pb::ListNotificationsRequest {
                ticket_id: ticket.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .notifications
            .into_iter()
            .find(|n| n.kind() == kind);
        if let Some(notification) = found {
            let mailed = email.is_none_or(|to| {
                stack.mail.messages().iter().any(|m| {
                    m.header("to").contains(to) && m.header("subject") == notification.title
                })
            });
            if mailed {
                return notification;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{who} was never told {kind:?} (email: {email:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// RunJobNow as an admin with `as_of` (the scheduler's "N days later"), then
/// waits until the run succeeded; returns how many tickets it processed.
async fn run_job(stack: &Stack, job: &str, as_of: chrono::DateTime<chrono::Utc>) -> i64 {
    let channel = Channel::from_shared(stack.scheduler.addr())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut scheduler =
        SchedulerServiceClient::with_interceptor(channel, Bearer::token(ADA, Role::Admin));
    let run = scheduler
        .run_job_now(pb::RunJobNowRequest {
            job: job.into(),
            as_of_time: Some(helpdesk_kit::clock::to_timestamp(as_of)),
        })
        .await
        .unwrap()
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = scheduler
            .list_job_runs(pb::ListJobRunsRequest {
                job: job.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .runs
            .into_iter()
            .find(|r| r.id == run.id)
            .expect("the run is listed");
        match now.state() {
            JobRunState::Succeeded => return now.processed,
            JobRunState::Failed | JobRunState::Skipped => panic!("{job} did not run: {now:?}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "{job} never finished: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls GetTicket until `done` holds (bounded).
async fn wait_for(
    client: &mut Tickets,
    id: &str,
    done: impl Fn(&pb::Ticket) -> bool,
) -> pb::Ticket {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ticket = client
            .get_ticket(pb::GetTicketRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner();
        if done(&ticket) {
            return ticket;
        }
        assert!(
            Instant::now() < deadline,
            "ticket never reached the state: {ticket:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_original_flow_runs_across_the_real_binaries() {
    let mut stack = Stack::start().await;
    let mut alice = tickets(stack.ticket.addr(), ALICE, Role::User).await;

    // 1. The user opens a ticket about her ride (validated with the stand-in).
    let created = alice
        .create_ticket(new_ticket("Long detour"))
        .await
        .unwrap()
        .into_inner();
    assert!(created.human_id.starts_with("TKT-"));
    // 2. She gets her receipt in-app and by email; staff hear of it in-app.
    let receipt = wait_told(
        &stack,
        ALICE,
        Role::User,
        &created,
        K::TicketCreated,
        Some("alice@example.com"),
    )
    .await;
    assert_eq!(
        receipt.title,
        format!("Ticket {} created", created.human_id)
    );
    wait_told(&stack, SAM, Role::Staff, &created, K::NewTicket, None).await;

    // 3. The assignment service gives it to an agent, over events and gRPC.
    let assigned = wait_for(&mut alice, &created.id, |t| !t.assignee_id.is_empty()).await;
    let agent = assigned.assignee_id.clone();
    let mut staff = tickets(stack.ticket.addr(), &agent, Role::Staff).await;
    wait_told(
        &stack,
        &agent,
        Role::Staff,
        &created,
        K::TicketAssigned,
        None,
    )
    .await;
    wait_told(
        &stack,
        ALICE,
        Role::User,
        &created,
        K::AgentAssigned,
        Some("alice@example.com"),
    )
    .await;

    // 4. The agent replies: first response, waiting for the user.
    staff
        .post_message(pb::PostMessageRequest {
            ticket_id: created.id.clone(),
            body: "Sorry about that, checking the route.".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let answered = wait_for(&mut alice, &created.id, |t| {
        t.status == S::WaitingUser as i32
    })
    .await;
    assert!(answered.first_response_at.is_some());
    let reply = wait_told(
        &stack,
        ALICE,
        Role::User,
        &created,
        K::StaffReply,
        Some("alice@example.com"),
    )
    .await;
    assert_eq!(reply.body, "Sorry about that, checking the route.");

    // 5. The user answers; an internal note stays among staff.
    alice
        .post_message(pb::PostMessageRequest {
            ticket_id: created.id.clone(),
            body: "It was twice the usual fare.".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    staff
        .post_message(pb::PostMessageRequest {
            ticket_id: created.id.clone(),
            body: "Driver flagged before.".into(),
            internal: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let visible = alice
        .list_messages(pb::ListMessagesRequest {
            ticket_id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert_eq!(visible.len(), 2);
    assert!(visible.iter().all(|m| !m.internal));
    wait_told(&stack, &agent, Role::Staff, &created, K::UserReply, None).await;

    // 6. Resolved: the agent's slot frees in the assignment service.
    staff
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: created.id.clone(),
                status: S::Resolved.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["status".into()],
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let channel = Channel::from_shared(stack.assignment.addr())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut roster =
        AssignmentServiceClient::with_interceptor(channel, Bearer::token(ADA, Role::Admin));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let agents = roster
            .list_agents(pb::ListAgentsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .agents;
        if agents.iter().all(|a| a.open_tickets == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot never freed: {agents:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    wait_told(
        &stack,
        ALICE,
        Role::User,
        &created,
        K::TicketResolved,
        Some("alice@example.com"),
    )
    .await;
    // Alice was told four times, each once in-app and once by email, and
    // never of the internal note.
    let to_alice = stack
        .mail
        .messages()
        .into_iter()
        .filter(|m| m.header("to").contains("alice@example.com"))
        .count();
    assert_eq!(to_alice, 4);

    // 6. Two days after the resolution the scheduler asks her to rate it.
    let resolved_at = wait_for(&mut alice, &created.id, |t| t.resolved_at.is_some())
        .await
        .resolved_at
        .and_then(|t| helpdesk_kit::clock::from_timestamp(&t))
        .expect("resolved");
    let too_early = run_job(
        &stack,
        "send_rating_requests",
        resolved_at + chrono::Duration::hours(47),
    )
    .await;
    assert_eq!(too_early, 0);
    let asked = run_job(
        &stack,
        "send_rating_requests",
        resolved_at + chrono::Duration::hours(49),
    )
    .await;
    assert_eq!(asked, 1);
    wait_told(
        &stack,
        ALICE,
        Role::User,
        &created,
        K::RatingRequested,
        Some("alice@example.com"),
    )
    .await;

    // 7. The user rates it.
    let rated = alice
        .rate_ticket(pb::RateTicketRequest {
            ticket_id: created.id.clone(),
            rating: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rated.rating, 5);

    // 8. Seven days after the resolution the scheduler closes it, and she
    // is told.
    assert_eq!(
        run_job(
            &stack,
            "auto_close_resolved_tickets",
            resolved_at + chrono::Duration::days(6)
        )
        .await,
        0
    );
    assert_eq!(
        run_job(
            &stack,
            "auto_close_resolved_tickets",
            resolved_at + chrono::Duration::days(8)
        )
        .await,
        1
    );
    wait_for(&mut alice, &created.id, |t| t.status == S::Closed as i32).await;
    wait_told(
        &stack,
        ALICE,
        Role::User,
        &created,
        K::TicketClosed,
        Some("alice@example.com"),
    )
    .await;

    // SIGTERM: every binary drains and exits cleanly.
    for process in [
        &mut stack.scheduler,
        &mut stack.notification,
        &mut stack.assignment,
        &mut stack.ticket,
        &mut stack.standin,
    ] {
        let status = process.terminate();
        assert!(status.success(), "exit status {status:?}");
    }
}

#[tokio::test]
async fn tickets_created_while_the_assignment_service_is_dead_are_all_assigned_when_it_returns() {
    let mut stack = Stack::start().await;
    let mut alice = tickets(stack.ticket.addr(), ALICE, Role::User).await;
    // Killed hard, mid-whatever: no goodbye to the broker or the database.
    stack.assignment.kill();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            alice
                .create_ticket(new_ticket(&format!("while down {i}")))
                .await
                .unwrap()
                .into_inner()
                .id,
        );
    }
    stack.assignment.start();
    stack.assignment.wait_serving().await;
    let mut agents = Vec::new();
    for id in &ids {
        agents.push(
            wait_for(&mut alice, id, |t| !t.assignee_id.is_empty())
                .await
                .assignee_id,
        );
    }
    // Four available agents in the demo roster: spread, nobody twice before everyone once.
    let mut distinct = agents.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{agents:?}");
}

#[tokio::test]
async fn each_binary_lists_exactly_what_it_serves_and_reports_its_health_by_name() {
    let stack = Stack::start().await;
    let standard = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    let expect = |own: &[&str]| {
        let mut all: Vec<String> = standard
            .iter()
            .chain(own)
            .map(|s| (*s).to_owned())
            .collect();
        all.sort();
        all
    };
    let listed = helpdesk_testkit::reflected_services(stack.ticket.addr())
        .await
        .unwrap();
    assert_eq!(
        listed,
        expect(&[
            "support.v1.CategoryService",
            "support.v1.OperationsService",
            "support.v1.StatisticsService",
            "support.v1.TicketJobsService",
            "support.v1.TicketService",
        ])
    );
    let listed = helpdesk_testkit::reflected_services(stack.assignment.addr())
        .await
        .unwrap();
    assert_eq!(listed, expect(&["support.v1.AssignmentService"]));
    let listed = helpdesk_testkit::reflected_services(stack.notification.addr())
        .await
        .unwrap();
    assert_eq!(listed, expect(&["support.v1.NotificationService"]));
    let listed = helpdesk_testkit::reflected_services(stack.scheduler.addr())
        .await
        .unwrap();
    assert_eq!(listed, expect(&["support.v1.SchedulerService"]));
    let listed = helpdesk_testkit::reflected_services(stack.standin.addr())
        .await
        .unwrap();
    assert_eq!(
        listed,
        expect(&[
            "platform.accounts.v1.AccountsService",
            "platform.rides.v1.RidesService"
        ])
    );

    // Readiness, liveness and the database each under their own name.
    for service in [
        &stack.ticket,
        &stack.assignment,
        &stack.notification,
        &stack.scheduler,
    ] {
        for name in ["", "liveness", "dependency.postgres"] {
            helpdesk_testkit::wait_for_health(
                service.addr(),
                name,
                ServingStatus::Serving,
                Duration::from_secs(20),
            )
            .await
            .unwrap();
        }
    }
}
