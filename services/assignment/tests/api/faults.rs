//! Faults and disorder: the ticket service away while tickets wait, and
//! events that arrive late.

use std::collections::HashMap;

use helpdesk_kit::clock::{Clock, to_timestamp};
use helpdesk_proto::support::v1::{self as pb, TicketPriority as P, TicketStatus as S};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn tickets_wait_out_a_ticket_service_outage_without_dead_letters_then_are_assigned_once() {
    let env = spawn_with(Setup {
        ticket_proxy: true,
        ..Setup::default()
    })
    .await;
    let mut assigned_tap = env.tap("ticket.assigned").await;
    let proxy = env.ticket_proxy.as_ref().unwrap();

    // The assignment service cannot reach the ticket service; tickets are
    // still created there (the test calls it directly) and their events
    // still arrive.
    proxy.down().await;
    let mut created = Vec::new();
    for _ in 0..6 {
        created.push(env.create_ticket("ride_issue", P::Medium).await.id);
    }
    // Every event was handled (none needs the ticket service): the six
    // tickets are decided here, their moves pending until it is back.
    env.wait_until("all six tickets are decided", || async {
        env.pending_moves().await == 6
    })
    .await;
    env.wait_until("the mover has tried each move", || async {
        env.attempted_moves().await == 6
    })
    .await;
    assert_eq!(env.dead_letters().await, 0, "no event is dead-lettered");
    assert!(env.waiting().await.is_empty());
    for id in &created {
        assert_eq!(env.assignee(id).await, "");
    }

    // Back: the moves are retried with their own request ids, each ticket
    // assigned exactly once. The retry delay is driven, not waited for.
    proxy.up();
    env.moves_due_now().await;
    let mut per_ticket: HashMap<String, usize> = HashMap::new();
    for event in assigned_tap.take(6).await {
        let assigned: pb::TicketAssigned = event.decode();
        *per_ticket
            .entry(assigned.ticket.unwrap().ticket_id)
            .or_default() += 1;
    }
    env.moves_settled().await;
    assert_eq!(env.assigned_events_total().await, 6);
    assert_eq!(per_ticket.len(), 6);
    assert!(per_ticket.values().all(|n| *n == 1), "{per_ticket:?}");
    let mut held: HashMap<String, i32> = HashMap::new();
    for id in &created {
        *held.entry(env.assignee(id).await).or_default() += 1;
    }
    assert_eq!(held.get(SAM), Some(&3), "{held:?}");
    assert_eq!(held.get(SUE), Some(&3), "{held:?}");
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (3, 3));
    assert!(env.stored_workloads_are_true().await);
    assert!(env.waiting().await.is_empty());
    assert_eq!(env.dead_letters().await, 0);
}

/// A `TicketStatusChanged` for `ticket` (as it was) moving to `to`, at `at`.
fn status_changed(
    ticket: &pb::Ticket,
    to: S,
    at: chrono::DateTime<chrono::Utc>,
) -> (String, pb::TicketStatusChanged) {
    let event_id = Uuid::now_v7().to_string();
    let mut snap = snapshot(ticket);
    snap.status = to.into();
    let event = pb::TicketStatusChanged {
        header: Some(pb::EventHeader {
            event_id: event_id.clone(),
            occurred_at: Some(to_timestamp(at)),
            actor_id: SAM.into(),
            actor_role: "staff".into(),
        }),
        ticket: Some(snap),
        from: ticket.status,
        to: to.into(),
    };
    (event_id, event)
}

#[tokio::test]
async fn an_older_status_change_delivered_after_a_newer_one_is_ignored() {
    let env = spawn().await;
    let t = env.create_ticket("ride_issue", P::Medium).await;
    env.wait_assignee(&t.id, SAM).await;
    let before = env.ticket(&t.id).await;
    let then = env.clock.now();

    // Resolved a minute later: Sam's slot is free.
    env.clock.advance(chrono::Duration::minutes(1));
    set_status(&env, &t.id, S::Resolved).await;
    env.wait_until("resolving frees Sam's slot", || async {
        env.workload(SAM).await == 0
    })
    .await;

    // A change to in progress from before the resolution, retried and
    // delivered only now: stale, ignored.
    let (stale, event) = status_changed(&before, S::InProgress, then);
    env.publish(&stale, &event).await;
    env.wait_until("the stale event is processed", || async {
        env.processed(&stale).await
    })
    .await;
    assert_eq!(
        env.workload(SAM).await,
        0,
        "the older event changed nothing"
    );
    assert!(env.stored_workloads_are_true().await);

    // A genuinely newer reopening still counts.
    env.clock.advance(chrono::Duration::minutes(1));
    let (newer, event) = status_changed(&before, S::InProgress, env.clock.now());
    env.publish(&newer, &event).await;
    env.wait_until("the newer event reopens the ticket", || async {
        env.workload(SAM).await == 1
    })
    .await;
    assert_eq!(env.dead_letters().await, 0);
}
