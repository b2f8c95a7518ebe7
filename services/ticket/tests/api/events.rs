//! Every state change reaches RabbitMQ as the right protobuf event, through
//! the outbox and the relay, in order, even across a broker outage.

use std::{collections::HashMap, time::Duration};

use helpdesk_proto::support::v1::{self as pb, TicketStatus as S};

use crate::helpers::*;

#[tokio::test]
async fn each_change_is_published_as_its_event_with_the_envelope_consumers_need() {
    let app = spawn().await;
    let mut tap = app.tap().await;
    let (mut alice, mut sam) = (app.alice(), app.sam());

    let t = app.alice_ticket().await;
    let created = tap.take(1).await.remove(0);
    assert_eq!(created.routing_key, "ticket.created");
    assert_eq!(created.content_type, "application/x-protobuf");
    assert!(created.persistent);
    let event: pb::TicketCreated = created.decode();
    let header = event.header.clone().unwrap();
    assert_eq!(header.event_id, created.message_id);
    assert_eq!(
        uuid::Uuid::parse_str(&header.event_id)
            .unwrap()
            .get_version_num(),
        7
    );
    assert_eq!(
        (header.actor_id.as_str(), header.actor_role.as_str()),
        (ALICE, "user")
    );
    assert!(header.occurred_at.is_some());
    let snapshot = event.ticket.unwrap();
    assert_eq!(snapshot.ticket_id, t.id);
    assert_eq!(snapshot.human_id, t.human_id);
    assert_eq!(snapshot.user_id, ALICE);
    assert_eq!(snapshot.ride_id, ALICE_RIDE);
    assert_eq!(snapshot.category_id, "ride_issue");
    assert_eq!(snapshot.priority, pb::TicketPriority::High as i32);
    assert_eq!(snapshot.status, S::Open as i32);

    // Assignment.
    sam.tickets
        .assign_ticket(pb::AssignTicketRequest {
            ticket_id: t.id.clone(),
            assignee_id: SAM.into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let assigned: pb::TicketAssigned = tap.take(1).await[0].decode();
    assert_eq!(
        (
            assigned.previous_assignee_id.as_str(),
            assigned.assignee_id.as_str()
        ),
        ("", SAM)
    );
    assert_eq!(assigned.ticket.unwrap().assignee_id, SAM);

    // A staff reply: the message, then the status it caused.
    sam.tickets
        .post_message(pb::PostMessageRequest {
            ticket_id: t.id.clone(),
            body: "We refunded the difference. ".repeat(20),
            internal: false,
            request_id: String::new(),
            attachment_ids: Vec::new(),
        })
        .await
        .unwrap();
    let got = tap.take(2).await;
    let posted: pb::MessagePosted = got[0].decode();
    assert_eq!(posted.author_role, pb::AuthorRole::Staff as i32);
    assert!(!posted.internal && posted.first_response);
    assert_eq!(posted.excerpt.chars().count(), 200);
    let moved: pb::TicketStatusChanged = got[1].decode();
    assert_eq!(
        (moved.from, moved.to),
        (S::Open as i32, S::WaitingUser as i32)
    );
    assert_eq!(moved.header.unwrap().actor_role, "staff");

    // An internal note is published (for staff notifications), flagged.
    sam.tickets
        .post_message(pb::PostMessageRequest {
            ticket_id: t.id.clone(),
            body: "note".into(),
            internal: true,
            request_id: String::new(),
            attachment_ids: Vec::new(),
        })
        .await
        .unwrap();
    let note: pb::MessagePosted = tap.take(1).await[0].decode();
    assert!(note.internal && !note.first_response);

    // Priority and category edits, then resolution.
    sam.tickets
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: t.id.clone(),
                priority: pb::TicketPriority::Urgent.into(),
                category_id: "payment_issue".into(),
                status: S::Resolved.into(),
                ..Default::default()
            }),
            update_mask: mask(&["priority", "category_id", "status"]),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let got = tap.take(3).await;
    let priority: pb::TicketPriorityChanged = got[0].decode();
    assert_eq!(
        (priority.from, priority.to),
        (
            pb::TicketPriority::High as i32,
            pb::TicketPriority::Urgent as i32
        )
    );
    let category: pb::TicketCategoryChanged = got[1].decode();
    assert_eq!(
        (category.from.as_str(), category.to.as_str()),
        ("ride_issue", "payment_issue")
    );
    let resolved: pb::TicketStatusChanged = got[2].decode();
    assert_eq!(resolved.to, S::Resolved as i32);
    assert_eq!(resolved.ticket.unwrap().category_id, "payment_issue");

    // The owner rates it.
    alice
        .tickets
        .rate_ticket(pb::RateTicketRequest {
            ticket_id: t.id.clone(),
            rating: 5,
            feedback: "great".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let rated: pb::TicketRated = tap.take(1).await[0].decode();
    assert_eq!((rated.rating, rated.feedback.as_str()), (5, "great"));

    // Reads and refused writes publish nothing: they add nothing to the
    // outbox, the only source of events (no waiting for silence).
    let enqueued = app.count("SELECT count(*) FROM outbox").await;
    alice
        .tickets
        .get_ticket(pb::GetTicketRequest { id: t.id.clone() })
        .await
        .unwrap();
    let _ = alice
        .tickets
        .rate_ticket(pb::RateTicketRequest {
            ticket_id: t.id.clone(),
            rating: 4,
            feedback: String::new(),
            request_id: String::new(),
        })
        .await;
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, enqueued);
}

async fn outbox_status(app: &TestApp) -> pb::OutboxStatus {
    app.ada()
        .operations
        .get_outbox_status(pb::GetOutboxStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_broker_outage_loses_nothing_and_keeps_order_per_ticket() {
    let app = spawn_with(Setup {
        broker_proxy: true,
        ..Setup::default()
    })
    .await;
    let mut tap = app.tap().await;
    // Wait until the relay is connected (the first event goes through) and
    // has marked it sent: a cut between delivery and confirm would (rightly)
    // publish it again, which is not what this test is about.
    app.alice_ticket().await;
    tap.take(1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while outbox_status(&app).await.unsent > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "first event never marked sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    app.broker.as_ref().unwrap().down().await;
    let mut sam = app.sam();
    let mut tickets = Vec::new();
    for _ in 0..10 {
        let t = sam
            .tickets
            .create_ticket(ticket_for(BOB))
            .await
            .expect("writes keep working without the broker")
            .into_inner();
        sam.tickets
            .update_ticket(set_status(&t.id, S::InProgress))
            .await
            .unwrap();
        sam.tickets
            .update_ticket(set_status(&t.id, S::Resolved))
            .await
            .unwrap();
        tickets.push(t.id);
    }
    // Nothing was confirmed while the broker was away: all 30 wait.
    let status = outbox_status(&app).await;
    assert_eq!(status.unsent, 30, "the backlog is visible");
    assert!(status.oldest_unsent_time.is_some());

    app.broker.as_ref().unwrap().up();
    let arrived = tap.take(30).await;
    let mut per_ticket: HashMap<String, Vec<String>> = HashMap::new();
    for event in &arrived {
        let ticket_id = match event.routing_key.as_str() {
            "ticket.created" => {
                event
                    .decode::<pb::TicketCreated>()
                    .ticket
                    .unwrap()
                    .ticket_id
            }
            "ticket.status_changed" => {
                let e: pb::TicketStatusChanged = event.decode();
                e.ticket.unwrap().ticket_id
            }
            other => panic!("unexpected {other}"),
        };
        let label = match event.routing_key.as_str() {
            "ticket.created" => "created".to_owned(),
            _ => {
                let e: pb::TicketStatusChanged = event.decode();
                format!("to {}", e.to)
            }
        };
        per_ticket.entry(ticket_id).or_default().push(label);
    }
    for id in &tickets {
        assert_eq!(
            per_ticket[id],
            vec![
                "created".to_owned(),
                format!("to {}", S::InProgress as i32),
                format!("to {}", S::Resolved as i32)
            ]
        );
    }
    // Exactly those 30 (and the first) were ever enqueued.
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 31);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = outbox_status(&app).await;
        if status.unsent == 0 {
            assert_eq!(status.oldest_unsent_age_ms, 0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "backlog never drained: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
