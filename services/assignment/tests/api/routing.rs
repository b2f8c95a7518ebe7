//! Who gets a new ticket: skills first, then the lowest workload, only
//! agents on shift and under capacity; the rest wait in a queue served
//! most urgent and oldest first.

use helpdesk_proto::support::v1::{self as pb, TicketPriority as P};

use crate::helpers::*;

#[tokio::test]
async fn the_skilled_agent_gets_the_category_even_when_busier_and_others_go_to_the_least_loaded() {
    let env = spawn().await;
    env.update_agent(
        pb::Agent {
            id: SUE.into(),
            skills: vec!["payment_issue".into()],
            ..Default::default()
        },
        &["skills"],
    )
    .await;
    // Sue takes two ride tickets while Sam is off shift: she is the busier one.
    env.set_available(SAM, false).await;
    for _ in 0..2 {
        let t = env.create_ticket("ride_issue", P::Medium).await;
        env.wait_assignee(&t.id, SUE).await;
    }
    env.set_available(SAM, true).await;
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (0, 2));

    let payment = env.create_ticket("payment_issue", P::Medium).await;
    env.wait_assignee(&payment.id, SUE).await;
    let ride = env.create_ticket("ride_issue", P::Medium).await;
    env.wait_assignee(&ride.id, SAM).await;
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (1, 3));
    assert!(env.stored_workloads_are_true().await);
}

#[tokio::test]
async fn capacity_is_never_exceeded_and_agents_off_shift_are_skipped() {
    let env = spawn().await;
    env.set_available(SUE, false).await;
    env.set_capacity(SAM, 2).await;
    let mut tickets = Vec::new();
    for _ in 0..3 {
        tickets.push(env.create_ticket("ride_issue", P::Medium).await);
    }
    let third = tickets[2].id.clone();
    env.wait_until("the third ticket waits", || async {
        env.waiting().await == vec![third.clone()]
    })
    .await;
    env.wait_assignee(&tickets[0].id, SAM).await;
    env.wait_assignee(&tickets[1].id, SAM).await;
    assert_eq!(env.assignee(&third).await, "", "nobody may take it");
    let (sam, sue) = (env.agent(SAM).await, env.agent(SUE).await);
    assert_eq!((sam.open_tickets, sam.capacity), (2, 2));
    assert_eq!(sue.open_tickets, 0, "Sue is idle but off shift");
}

#[tokio::test]
async fn the_queue_drains_most_urgent_then_oldest_first_as_room_appears() {
    let env = spawn_with(Setup {
        staff: vec![(SAM.into(), "Sam Support".into())],
        ..Setup::default()
    })
    .await;
    env.set_available(SAM, false).await;
    let mut created = Vec::new();
    for priority in [P::Low, P::High, P::Urgent, P::Urgent] {
        created.push(env.create_ticket("ride_issue", priority).await.id);
        env.clock.advance(chrono::Duration::minutes(1));
    }
    let (low, high, urgent_old, urgent_new) = (
        created[0].clone(),
        created[1].clone(),
        created[2].clone(),
        created[3].clone(),
    );
    let order = vec![
        urgent_old.clone(),
        urgent_new.clone(),
        high.clone(),
        low.clone(),
    ];
    env.wait_until("all four wait in order", || async {
        env.waiting().await == order
    })
    .await;

    // On shift with room for one: the oldest urgent ticket.
    env.update_agent(
        pb::Agent {
            id: SAM.into(),
            available: true,
            capacity: 1,
            ..Default::default()
        },
        &["available", "capacity"],
    )
    .await;
    env.wait_assignee(&urgent_old, SAM).await;
    assert_eq!(
        env.waiting().await,
        vec![urgent_new.clone(), high.clone(), low.clone()]
    );
    env.set_capacity(SAM, 2).await;
    env.wait_assignee(&urgent_new, SAM).await;
    env.set_capacity(SAM, 3).await;
    env.wait_assignee(&high, SAM).await;
    assert_eq!(env.waiting().await, vec![low.clone()]);

    // Resolving a ticket frees a slot: the last one is served.
    env.tickets_as(SAM, helpdesk_kit::auth::Role::Staff)
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: high.clone(),
                status: pb::TicketStatus::Resolved.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["status".into()],
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    env.wait_assignee(&low, SAM).await;
    assert!(env.waiting().await.is_empty());
    assert_eq!(env.workload(SAM).await, 3);
    assert!(env.stored_workloads_are_true().await);
}
