//! The headline guarantee under load: 1,000 tickets created concurrently,
//! 10 agents on shift, two assignment replicas consuming one queue. Every
//! ticket is assigned exactly once, workloads end within one of each other,
//! nobody is over capacity, and the stored workloads are the real counts.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream};
use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1::{self as pb, TicketPriority as P};

use crate::helpers::*;

const TICKETS: usize = 1000;
const AGENTS: usize = 10;
/// Exactly full: 10 × 100 = 1,000, so a single over-assignment, double
/// assignment or lost ticket fails the test.
const CAPACITY: i32 = 100;

#[tokio::test]
async fn a_thousand_concurrent_tickets_are_each_assigned_once_and_evenly_across_two_replicas() {
    let staff: Vec<(String, String)> = (1..=AGENTS)
        .map(|n| {
            (
                format!("0e000000-0000-4000-8000-{n:012}"),
                format!("Agent {n:02}"),
            )
        })
        .collect();
    let env = spawn_with(Setup {
        staff: staff.clone(),
        replicas: 2,
        default_capacity: CAPACITY,
        // Events handled side by side, as in production.
        consumer_concurrency: 4,
        ..Setup::default()
    })
    .await;
    let mut assigned_tap = env.tap("ticket.assigned").await;
    let started = Instant::now();

    let created: Vec<pb::Ticket> = stream::iter(0..TICKETS)
        .map(|i| {
            let mut tickets = env.tickets_as(SAM, Role::Staff);
            let category = ["ride_issue", "payment_issue", "lost_item", "account"][i % 4];
            async move {
                tickets
                    .create_ticket(new_ticket(category, P::Medium))
                    .await
                    .expect("create ticket")
                    .into_inner()
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    assert_eq!(created.len(), TICKETS);

    // Exactly one `ticket.assigned` per ticket, and nothing more.
    let mut per_ticket: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while per_ticket.values().sum::<usize>() < TICKETS {
        assert!(
            Instant::now() < deadline,
            "only {} assignments arrived",
            per_ticket.len()
        );
        if let Some(event) = assigned_tap.next(Duration::from_secs(10)).await {
            let assigned: pb::TicketAssigned = event.decode();
            assert!(
                !assigned.assignee_id.is_empty(),
                "nothing is unassigned under load"
            );
            *per_ticket
                .entry(assigned.ticket.unwrap().ticket_id)
                .or_default() += 1;
        }
    }
    // Nothing more will come: no move is pending, and the ticket service's
    // own record holds exactly one assignment per ticket.
    env.moves_settled().await;
    assert_eq!(env.assigned_events_total().await, TICKETS as i64);
    assert_eq!(per_ticket.len(), TICKETS);
    assert!(
        per_ticket.values().all(|n| *n == 1),
        "a ticket was assigned twice"
    );
    eprintln!(
        "{TICKETS} tickets created and assigned in {:?}",
        started.elapsed()
    );

    // The ticket service agrees: every ticket has an assignee, evenly spread.
    let mut held: HashMap<String, i32> = HashMap::new();
    let mut service = env.tickets_as("test", Role::Service);
    let mut page_token = String::new();
    let mut seen = 0;
    loop {
        let page = service
            .list_tickets(pb::ListTicketsRequest {
                page_size: 100,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for t in &page.tickets {
            assert!(!t.assignee_id.is_empty(), "{} has no assignee", t.human_id);
            *held.entry(t.assignee_id.clone()).or_default() += 1;
            seen += 1;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, TICKETS);
    let counts: Vec<i32> = staff
        .iter()
        .map(|(id, _)| held.get(id).copied().unwrap_or(0))
        .collect();
    let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
    assert!(max - min <= 1, "uneven workloads: {counts:?}");
    assert!(max <= CAPACITY);
    assert!(
        counts.iter().all(|n| *n == CAPACITY),
        "everyone exactly full: {counts:?}"
    );

    // The stored workloads are the real counts.
    let agents = env.agents().await;
    for agent in &agents {
        assert_eq!(
            Some(&agent.open_tickets),
            held.get(&agent.id),
            "stored workload of {}",
            agent.display_name
        );
        assert!(agent.open_tickets <= agent.capacity);
    }
    assert!(env.stored_workloads_are_true().await);
    assert!(env.waiting().await.is_empty());
    let report = assignment_service::app::reconcile::once(
        env.engine(),
        assignment_service::app::reconcile::PAGE_SIZE,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            report.open_tickets,
            report.tickets_corrected,
            report.drift.len()
        ),
        (TICKETS, 0, 0)
    );
}
