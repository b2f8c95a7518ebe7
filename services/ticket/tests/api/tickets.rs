//! Create, get and list: the success paths, filters and keyset pages.

use chrono::Duration;
use helpdesk_kit::{auth::Role, clock::Clock};
use helpdesk_proto::support::v1 as pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn a_user_creates_a_ticket_and_reads_it_back_by_either_id() {
    let app = spawn().await;
    let created = app.alice_ticket().await;
    assert_eq!(created.user_id, ALICE);
    assert_eq!(created.ride_id, ALICE_RIDE);
    assert_eq!(created.status, pb::TicketStatus::Open as i32);
    assert_eq!(created.priority, pb::TicketPriority::High as i32);
    assert!(
        created.human_id.starts_with("TKT-") && created.human_id.len() == 10,
        "{}",
        created.human_id
    );
    assert_eq!(created.etag, "1");
    assert!(created.create_time.is_some());

    let mut alice = app.alice();
    for id in [&created.id, &created.human_id] {
        let got = alice
            .tickets
            .get_ticket(pb::GetTicketRequest { id: id.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got, created);
    }
    assert_eq!(app.outbox_keys().await, vec!["ticket.created"]);
}

#[tokio::test]
async fn staff_and_services_create_on_behalf_of_a_user_with_defaults() {
    let app = spawn().await;
    for who in [app.sam(), app.service()] {
        let mut who = who;
        let t = who
            .tickets
            .create_ticket(pb::CreateTicketRequest {
                user_id: BOB.into(),
                // Bob's own ride: nobody may attach someone else's (platform.rs).
                ride_id: BOB_RIDE.into(),
                category_id: String::new(),
                subject: "  Payment failed  ".into(),
                description: "Card declined".into(),
                priority: 0,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(t.user_id, BOB);
        assert_eq!(t.category_id, "other");
        assert_eq!(t.priority, pb::TicketPriority::Medium as i32);
        assert_eq!(t.subject, "Payment failed", "text is trimmed");
    }
    // Bob sees them as his own.
    let list = app
        .bob()
        .tickets
        .list_tickets(pb::ListTicketsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.tickets.len(), 2);
}

#[tokio::test]
async fn human_ids_are_unique_across_many_tickets() {
    let app = spawn().await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..30 {
        let t = app.alice_ticket().await;
        assert!(ids.insert(t.human_id));
    }
}

/// Creates `n` tickets for `user` one clock second apart; returns them oldest first.
async fn create_many(app: &TestApp, user: &str, n: usize) -> Vec<pb::Ticket> {
    let mut sam = app.sam();
    let mut out = Vec::new();
    for i in 0..n {
        app.clock.advance(Duration::seconds(1));
        let mut req = ticket_for(user);
        req.subject = format!("ticket {i}");
        out.push(sam.tickets.create_ticket(req).await.unwrap().into_inner());
    }
    out
}

#[tokio::test]
async fn pages_walk_newest_first_without_gaps_or_repeats() {
    let app = spawn().await;
    let created = create_many(&app, ALICE, 7).await;
    let mut alice = app.alice();
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = alice
            .tickets
            .list_tickets(pb::ListTicketsRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.tickets.len() <= 3);
        seen.extend(page.tickets.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = created.iter().rev().map(|t| t.id.clone()).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn staff_filter_by_every_field() {
    let app = spawn().await;
    let start = app.clock.now();
    let alice_tickets = create_many(&app, ALICE, 3).await;
    let bob_tickets = create_many(&app, BOB, 2).await;
    let mut sam = app.sam();

    // Make the first of Alice's distinct: assigned, urgent, resolved, payment.
    let target = &alice_tickets[0];
    let mut update = pb::UpdateTicketRequest {
        ticket: Some(pb::Ticket {
            id: target.id.clone(),
            status: pb::TicketStatus::Resolved.into(),
            priority: pb::TicketPriority::Urgent.into(),
            category_id: "payment_issue".into(),
            assignee_id: SUE.into(),
            ..Default::default()
        }),
        update_mask: mask(&["status", "priority", "category_id", "assignee_id"]),
        request_id: String::new(),
    };
    sam.tickets.update_ticket(update.clone()).await.unwrap();
    // Bob's first one is about Bob's ride.
    let mut with_ride = ticket_for(BOB);
    with_ride.ride_id = BOB_RIDE.into();
    let bob_ride_ticket = sam
        .tickets
        .create_ticket(with_ride)
        .await
        .unwrap()
        .into_inner();

    let ids = |r: pb::ListTicketsResponse| r.tickets.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let list = |req: pb::ListTicketsRequest| {
        let mut client = sam.tickets.clone();
        async move { ids(client.list_tickets(req).await.unwrap().into_inner()) }
    };
    assert_eq!(list(pb::ListTicketsRequest::default()).await.len(), 6);
    let only_target = vec![target.id.clone()];
    assert_eq!(
        list(pb::ListTicketsRequest {
            statuses: vec![pb::TicketStatus::Resolved.into()],
            ..Default::default()
        })
        .await,
        only_target
    );
    assert_eq!(
        list(pb::ListTicketsRequest {
            priority: pb::TicketPriority::Urgent.into(),
            ..Default::default()
        })
        .await,
        only_target
    );
    assert_eq!(
        list(pb::ListTicketsRequest {
            category_id: "payment_issue".into(),
            ..Default::default()
        })
        .await,
        only_target
    );
    assert_eq!(
        list(pb::ListTicketsRequest {
            assignee_id: SUE.into(),
            ..Default::default()
        })
        .await,
        only_target
    );
    assert_eq!(
        list(pb::ListTicketsRequest {
            ride_id: BOB_RIDE.into(),
            ..Default::default()
        })
        .await,
        vec![bob_ride_ticket.id.clone()]
    );
    assert_eq!(
        list(pb::ListTicketsRequest {
            user_id: BOB.into(),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    // Created range: Alice's three were created in the first three seconds.
    let cutoff = helpdesk_kit::clock::to_timestamp(
        start + Duration::seconds(3) + Duration::milliseconds(500),
    );
    let before = list(pb::ListTicketsRequest {
        created_before: Some(cutoff),
        ..Default::default()
    })
    .await;
    let mut expected: Vec<String> = alice_tickets.iter().rev().map(|t| t.id.clone()).collect();
    assert_eq!(before, expected);
    let after = list(pb::ListTicketsRequest {
        created_after: Some(cutoff),
        ..Default::default()
    })
    .await;
    assert_eq!(after.len(), 3);
    assert!(bob_tickets.iter().all(|t| after.contains(&t.id)));
    // Combined filters narrow further.
    expected.clear();
    assert_eq!(
        list(pb::ListTicketsRequest {
            user_id: BOB.into(),
            statuses: vec![pb::TicketStatus::Resolved.into()],
            ..Default::default()
        })
        .await,
        expected
    );

    // The same update again is a no-op: same etag, no new events.
    let events_before = app.outbox_keys().await.len();
    update.request_id = String::new();
    let again = sam
        .tickets
        .update_ticket(update)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.etag, "2");
    assert_eq!(app.outbox_keys().await.len(), events_before);
}

#[tokio::test]
async fn update_changes_fields_emits_one_event_each_and_bumps_the_etag() {
    let app = spawn().await;
    let t = app.alice_ticket().await;
    let mut sam = app.sam();
    let updated = sam
        .tickets
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: t.human_id.clone(),
                etag: t.etag.clone(),
                status: pb::TicketStatus::InProgress.into(),
                priority: pb::TicketPriority::Low.into(),
                category_id: "driver_issue".into(),
                assignee_id: SAM.into(),
                // Not in the mask: ignored.
                subject: "changed?".into(),
                ..Default::default()
            }),
            update_mask: mask(&["status", "priority", "category_id", "assignee_id"]),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.status, pb::TicketStatus::InProgress as i32);
    assert_eq!(updated.priority, pb::TicketPriority::Low as i32);
    assert_eq!(updated.category_id, "driver_issue");
    assert_eq!(updated.assignee_id, SAM);
    assert_eq!(updated.subject, t.subject);
    assert_eq!(updated.etag, "2");
    assert_eq!(
        app.outbox_keys().await,
        vec![
            "ticket.created",
            "ticket.priority_changed",
            "ticket.category_changed",
            "ticket.assigned",
            "ticket.status_changed"
        ]
    );
    // Unassigning with an empty assignee.
    let unassigned = sam
        .tickets
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: t.id.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["assignee_id"]),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unassigned.assignee_id, "");
}

#[tokio::test]
async fn assignment_is_idempotent_and_checks_the_assignee_is_active_staff() {
    let app = spawn().await;
    let t = app.alice_ticket().await;
    let mut service = app.service();
    let assign = |assignee: &str| pb::AssignTicketRequest {
        ticket_id: t.id.clone(),
        assignee_id: assignee.into(),
        request_id: String::new(),
    };
    let first = service
        .tickets
        .assign_ticket(assign(SAM))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.assignee_id, SAM);
    let again = service
        .tickets
        .assign_ticket(assign(SAM))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.etag, first.etag,
        "assigning the same agent changes nothing"
    );
    assert_eq!(
        app.outbox_keys().await,
        vec!["ticket.created", "ticket.assigned"]
    );

    expect_violation(
        service.tickets.assign_ticket(assign(ALICE)).await,
        "assignee_id",
    );
    expect_violation(
        service
            .tickets
            .assign_ticket(assign(UMA_INACTIVE_STAFF))
            .await,
        "assignee_id",
    );
    expect_violation(
        service.tickets.assign_ticket(assign(UNKNOWN)).await,
        "assignee_id",
    );
    let reassigned = service
        .tickets
        .assign_ticket(assign(SUE))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reassigned.assignee_id, SUE);
}

#[tokio::test]
async fn concurrent_updates_with_the_same_etag_one_wins_one_is_aborted() {
    let app = spawn().await;
    let t = app.alice_ticket().await;
    let update = |priority: pb::TicketPriority| pb::UpdateTicketRequest {
        ticket: Some(pb::Ticket {
            id: t.id.clone(),
            etag: t.etag.clone(),
            priority: priority.into(),
            ..Default::default()
        }),
        update_mask: mask(&["priority"]),
        request_id: String::new(),
    };
    let mut a = app.sam().tickets;
    let mut b = app.as_(SUE, Role::Staff).tickets;
    let (ra, rb) = tokio::join!(
        a.update_ticket(update(pb::TicketPriority::Low)),
        b.update_ticket(update(pb::TicketPriority::Urgent))
    );
    let codes = [
        ra.as_ref().err().map(|s| s.code()),
        rb.as_ref().err().map(|s| s.code()),
    ];
    assert!(
        codes.contains(&None) && codes.contains(&Some(Code::Aborted)),
        "one must win and one must be ABORTED: {codes:?}"
    );
    let winner = ra.or(rb).unwrap().into_inner();
    let stored = app
        .sam()
        .tickets
        .get_ticket(pb::GetTicketRequest { id: t.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.priority, winner.priority, "the loser wrote nothing");
    assert_eq!(stored.etag, "2");
    // A stale etag is refused later too.
    expect_code(
        app.sam()
            .tickets
            .update_ticket(update(pb::TicketPriority::Low))
            .await,
        Code::Aborted,
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_calls_finish() {
    let mut app = spawn_with(Setup {
        standin_delay: std::time::Duration::from_millis(300),
        ..Setup::default()
    })
    .await;
    let mut alice = app.alice();
    let call = tokio::spawn(async move { alice.tickets.create_ticket(new_ticket("")).await });
    // Once the stand-in sees the call, the server is in the middle of it.
    app.standin_arrivals.notified().await;
    app.begin_shutdown();
    let created = call.await.unwrap();
    assert!(created.is_ok(), "in-flight call failed: {created:?}");
    app.shutdown().await.unwrap();
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 1);
}
