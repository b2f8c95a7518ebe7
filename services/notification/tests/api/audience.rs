//! Who hears what, through the real flow: the ticket service's events for
//! each step of the original, and the scheduler's events published as it
//! will publish them.

use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1::{self as pb, NotificationKind as K};
use uuid::Uuid;

use crate::helpers::*;

/// Waits until `who` has `kind` about `ticket`.
async fn wait_for(env: &TestEnv, who: &str, ticket: &pb::Ticket, kind: K) {
    wait_until(&format!("{who} has {kind:?}"), || async {
        env.kinds(who, ticket).await.contains(&kind)
    })
    .await;
}

#[tokio::test]
async fn every_step_of_the_original_flow_tells_the_right_people_and_nobody_else() {
    let env = spawn().await;

    // Alice opens a ticket: her receipt, and every active staff member.
    let ticket = env.alice_opens("Charged twice").await;
    wait_for(&env, ALICE, &ticket, K::TicketCreated).await;
    for staff in [SAM, SUE, TOM, ADA] {
        wait_for(&env, staff, &ticket, K::NewTicket).await;
    }
    let receipt = &env.feed(ALICE).await[0];
    assert_eq!(receipt.title, format!("Ticket {} created", ticket.human_id));
    assert_eq!(
        receipt.link,
        format!("/support/tickets/{}", ticket.human_id)
    );
    assert_eq!(receipt.human_id, ticket.human_id);
    let new_ticket = &env.feed(SAM).await[0];
    assert_eq!(new_ticket.title, "New ticket from Alice Archer");

    // Sam gives it to Sue: Sue and Alice hear; Sam, who did it, does not.
    env.assign(&ticket, SAM, SUE).await;
    wait_for(&env, SUE, &ticket, K::TicketAssigned).await;
    wait_for(&env, ALICE, &ticket, K::AgentAssigned).await;
    assert_eq!(env.kinds(SAM, &ticket).await, [K::NewTicket]);
    let taken = &env.feed(ALICE).await[0];
    assert!(
        taken.body.starts_with("Sue Support is looking into"),
        "{}",
        taken.body
    );

    // Sue replies: Alice hears.
    env.post(&ticket, SUE, Role::Staff, "We are on it", false)
        .await;
    wait_for(&env, ALICE, &ticket, K::StaffReply).await;
    let reply = &env.feed(ALICE).await[0];
    assert_eq!(reply.body, "We are on it");

    // Alice replies: Sue, the assignee, hears; nobody else.
    env.post(&ticket, ALICE, Role::User, "Thanks!", false).await;
    wait_for(&env, SUE, &ticket, K::UserReply).await;

    // Sam writes an internal note: the other staff on the ticket (Sue)
    // hear; Alice never does, and Sam is not told of his own note.
    env.post(&ticket, SAM, Role::Staff, "Refund approved", true)
        .await;
    wait_for(&env, SUE, &ticket, K::InternalNote).await;
    let note = &env.feed(SUE).await[0];
    assert!(
        !note.body.contains("Refund approved"),
        "note text stays off the feed: {}",
        note.body
    );

    // Sue resolves, then closes: Alice hears of both.
    env.set_status(&ticket, SUE, pb::TicketStatus::Resolved)
        .await;
    wait_for(&env, ALICE, &ticket, K::TicketResolved).await;
    env.set_status(&ticket, SUE, pb::TicketStatus::Closed).await;
    wait_for(&env, ALICE, &ticket, K::TicketClosed).await;

    assert_eq!(
        env.kinds(ALICE, &ticket).await,
        [
            K::TicketCreated,
            K::AgentAssigned,
            K::StaffReply,
            K::TicketResolved,
            K::TicketClosed
        ]
    );
    assert_eq!(
        env.kinds(SUE, &ticket).await,
        [
            K::NewTicket,
            K::TicketAssigned,
            K::UserReply,
            K::InternalNote
        ]
    );
    assert_eq!(env.kinds(SAM, &ticket).await, [K::NewTicket]);
    assert_eq!(env.kinds(TOM, &ticket).await, [K::NewTicket]);
    // Bob, another user, hears nothing of Alice's ticket.
    assert!(env.feed(BOB).await.is_empty());
}

#[tokio::test]
async fn scheduler_events_reach_the_user_or_the_agent_and_the_escalation_group() {
    let env = spawn().await;
    let ticket = env.alice_opens("Lost phone").await;
    env.assign(&ticket, SAM, SUE).await;
    wait_for(&env, SUE, &ticket, K::TicketAssigned).await;
    let ticket = env
        .tickets_as(SAM, Role::Staff)
        .get_ticket(pb::GetTicketRequest {
            id: ticket.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    for reminder in [0, 1] {
        let (id, header, snapshot) = header_and_snapshot(&ticket);
        env.publish(
            &id,
            &pb::RatingRequested {
                header: Some(header),
                ticket: Some(snapshot),
                reminder,
            },
        )
        .await;
    }
    wait_for(&env, ALICE, &ticket, K::RatingRequested).await;
    wait_for(&env, ALICE, &ticket, K::RatingReminder).await;

    let (id, header, snapshot) = header_and_snapshot(&ticket);
    env.publish(
        &id,
        &pb::TicketOverdue {
            header: Some(header),
            ticket: Some(snapshot),
            due_at: Some(helpdesk_kit::clock::to_timestamp(chrono::Utc::now())),
        },
    )
    .await;
    let (id, header, snapshot) = header_and_snapshot(&ticket);
    env.publish(
        &id,
        &pb::TicketEscalated {
            header: Some(header),
            ticket: Some(snapshot),
            reason: "open for 48 hours".into(),
        },
    )
    .await;
    // The assignee and Tom (the escalation group).
    for who in [SUE, TOM] {
        wait_for(&env, who, &ticket, K::TicketOverdue).await;
        wait_for(&env, who, &ticket, K::TicketEscalated).await;
    }
    let escalated = &env.feed(TOM).await[0];
    assert!(
        escalated.body.contains("open for 48 hours"),
        "{}",
        escalated.body
    );
    assert!(!env.kinds(SAM, &ticket).await.contains(&K::TicketOverdue));
    assert!(!env.kinds(ALICE, &ticket).await.contains(&K::TicketOverdue));
}

#[tokio::test]
async fn a_triage_group_replaces_all_staff_for_new_tickets_and_unassigned_replies() {
    let env = spawn_with(Setup {
        new_ticket: notification_service::domain::audience::StaffAudience::Triage,
        triage: vec![Uuid::parse_str(TOM).unwrap()],
        ..Setup::default()
    })
    .await;
    let ticket = env.alice_opens("Driver was rude").await;
    wait_for(&env, TOM, &ticket, K::NewTicket).await;
    env.post(&ticket, ALICE, Role::User, "Any news?", false)
        .await;
    wait_for(&env, TOM, &ticket, K::UserReply).await;
    assert!(env.feed(SAM).await.is_empty());
    assert!(env.feed(SUE).await.is_empty());
}

#[tokio::test]
async fn the_same_event_delivered_twice_creates_nothing_new() {
    let env = spawn().await;
    let ticket = env.alice_opens("Charged twice").await;
    wait_for(&env, ALICE, &ticket, K::TicketCreated).await;
    let (id, header, snapshot) = header_and_snapshot(&ticket);
    let event = pb::RatingRequested {
        header: Some(header),
        ticket: Some(snapshot),
        reminder: 0,
    };
    env.publish(&id, &event).await;
    env.publish(&id, &event).await;
    wait_for(&env, ALICE, &ticket, K::RatingRequested).await;
    // A later event proves both copies were consumed before we count.
    let (later, header, snapshot) = header_and_snapshot(&ticket);
    env.publish(
        &later,
        &pb::RatingRequested {
            header: Some(header),
            ticket: Some(snapshot),
            reminder: 1,
        },
    )
    .await;
    wait_for(&env, ALICE, &ticket, K::RatingReminder).await;
    let (event_id, pool) = (Uuid::parse_str(&id).unwrap(), &env.db.pool);
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(event_id)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(
        count("SELECT count(*) FROM notifications WHERE event_id = $1").await,
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM deliveries d JOIN notifications n ON n.id = d.notification_id
             WHERE n.event_id = $1"
        )
        .await,
        2
    );
}
