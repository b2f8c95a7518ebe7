//! Workloads stay true: redistribution when an agent goes off shift,
//! manual reassignment by staff, reopened tickets, rebalancing, and the
//! reconciliation that corrects drift against the ticket service.

use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1::{self as pb, TicketStatus as S};

use crate::helpers::*;

#[tokio::test]
async fn an_agent_going_off_shift_hands_open_tickets_to_others_and_the_rest_wait() {
    let env = spawn().await;
    env.set_capacity(SUE, 3).await;
    let tickets = assigned_tickets(&env, 4).await;
    let held_by = |who: &str| tickets.iter().filter(|t| t.assignee_id == who).count();
    assert_eq!(
        (held_by(SAM), held_by(SUE)),
        (2, 2),
        "least-loaded alternates"
    );

    env.set_available(SAM, false).await;
    let mut now = Vec::new();
    for t in &tickets {
        now.push(env.assignee(&t.id).await);
    }
    assert_eq!(
        now.iter().filter(|a| *a == SUE).count(),
        3,
        "Sue fills up to capacity"
    );
    assert_eq!(
        now.iter().filter(|a| a.is_empty()).count(),
        1,
        "one waits, unassigned"
    );
    assert!(!now.iter().any(|a| a == SAM));
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (0, 3));
    assert_eq!(env.waiting().await.len(), 1);

    // Back on shift: the waiting ticket is Sam's again.
    env.set_available(SAM, true).await;
    env.wait_until("the waiting ticket is served", || async {
        env.waiting().await.is_empty() && env.pending_moves().await == 0
    })
    .await;
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (1, 3));
    assert!(env.stored_workloads_are_true().await);
}

#[tokio::test]
async fn manual_reassignment_resolution_and_reopening_move_the_workload() {
    let env = spawn().await;
    let t = assigned_tickets(&env, 1).await.remove(0);
    assert_eq!(t.assignee_id, SAM);

    // Staff hand it to Sue in the ticket service: the workload follows.
    env.tickets_as(SAM, Role::Staff)
        .assign_ticket(pb::AssignTicketRequest {
            ticket_id: t.id.clone(),
            assignee_id: SUE.into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    env.wait_until("Sue holds the reassigned ticket", || async {
        env.workload(SUE).await == 1 && env.workload(SAM).await == 0
    })
    .await;

    set_status(&env, &t.id, S::Resolved).await;
    env.wait_until("resolving frees Sue's slot", || async {
        env.workload(SUE).await == 0
    })
    .await;
    set_status(&env, &t.id, S::InProgress).await;
    env.wait_until("reopening gives it back to Sue", || async {
        env.workload(SUE).await == 1
    })
    .await;
    assert_eq!(env.assignee(&t.id).await, SUE);
    assert!(env.stored_workloads_are_true().await);
}

#[tokio::test]
async fn reconciliation_pages_through_open_tickets_and_corrects_the_projection() {
    let env = spawn().await;
    let tickets = assigned_tickets(&env, 4).await;
    // One resolved ticket, whose row we then corrupt back to open: absent
    // from every page, it is confirmed with GetTicket and closed again.
    set_status(&env, &tickets[3].id, S::Resolved).await;
    env.wait_until("the resolution is applied", || async {
        env.workload(SAM).await + env.workload(SUE).await == 3
    })
    .await;
    let (sam, sue) = (env.workload(SAM).await, env.workload(SUE).await);

    // Corrupt the cached count and the projection behind it both ways.
    sqlx::query("UPDATE agents SET open_tickets = 42 WHERE account_id = $1::uuid")
        .bind(SAM)
        .execute(&env.db.pool)
        .await
        .unwrap();
    for (ticket, open) in [(&tickets[1].id, false), (&tickets[3].id, true)] {
        sqlx::query("UPDATE assignments SET open = $2 WHERE ticket_id = $1::uuid")
            .bind(ticket)
            .bind(open)
            .execute(&env.db.pool)
            .await
            .unwrap();
    }
    assert_eq!(env.workload(SAM).await, 42);

    // One ticket per page: every page is applied on its own, and what no
    // page listed is still found.
    let report = assignment_service::app::reconcile::once(env.engine(), 1)
        .await
        .unwrap();
    assert_eq!(report.open_tickets, 3);
    assert_eq!(report.tickets_corrected, 2);
    let sam_drift = report
        .drift
        .iter()
        .find(|d| d.agent.to_string() == SAM)
        .expect("Sam's drift reported");
    assert_eq!((sam_drift.stored, sam_drift.actual), (42, sam));
    assert_eq!(
        (env.workload(SAM).await, env.workload(SUE).await),
        (sam, sue)
    );
    assert!(env.stored_workloads_are_true().await);
    let scratch: i64 = sqlx::query_scalar("SELECT count(*) FROM reconcile_seen")
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    assert_eq!(scratch, 0, "a pass leaves no scratch rows");

    // A second pass finds nothing left to fix.
    let again = assignment_service::app::reconcile::once(env.engine(), 1)
        .await
        .unwrap();
    assert_eq!((again.tickets_corrected, again.drift.len()), (0, 0));
}

#[tokio::test]
async fn rebalance_evens_workloads_and_is_for_admins_only() {
    let env = spawn().await;
    env.set_available(SUE, false).await;
    let tickets = assigned_tickets(&env, 5).await;
    assert!(tickets.iter().all(|t| t.assignee_id == SAM));
    // Back on shift with nothing waiting: Sam keeps all five until rebalanced.
    env.set_available(SUE, true).await;
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (5, 0));

    expect_code(
        env.assignments_as(SAM, Role::Staff)
            .rebalance(pb::RebalanceRequest {})
            .await,
        tonic::Code::PermissionDenied,
    );
    let started = env
        .admin()
        .rebalance(pb::RebalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.kind, pb::AssignmentOperationKind::Rebalance as i32);
    let finished = env.wait_operation(&started.id).await;
    assert_eq!((finished.moved, finished.pending_moves), (2, 0));
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (3, 2));
    let mut sue_holds = 0;
    for t in &tickets {
        if env.assignee(&t.id).await == SUE {
            sue_holds += 1;
        }
    }
    assert_eq!(sue_holds, 2, "the ticket service agrees");
    let again = env
        .admin()
        .rebalance(pb::RebalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(env.wait_operation(&again.id).await.moved, 0);
}

#[tokio::test]
async fn manual_assignment_names_an_agent_even_over_capacity_or_picks_automatically() {
    let env = spawn().await;
    env.set_capacity(SUE, 0).await;
    let t = assigned_tickets(&env, 1).await.remove(0);
    assert_eq!(t.assignee_id, SAM);
    let staff = || env.assignments_as(SAM, Role::Staff);

    // By human id, in the case someone reads it off a phone call.
    let moved = staff()
        .assign_ticket(pb::AssignmentServiceAssignTicketRequest {
            ticket_id: t.human_id.to_lowercase(),
            assignee_id: SUE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.assignee_id, SUE);
    assert_eq!(env.assignee(&t.id).await, SUE);
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (0, 1));

    // Auto: anyone but the holder who has room (Sam).
    let auto_request = || pb::AssignmentServiceAssignTicketRequest {
        ticket_id: t.id.clone(),
        auto: true,
        request_id: "0e000000-0000-4000-8000-000000000042".into(),
        ..Default::default()
    };
    let auto = staff()
        .assign_ticket(auto_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(auto.assignee_id, SAM);
    let events = env.assigned_events(&t.id).await;
    // The same request again (a client retry) is recognised: it does not
    // move the ticket on to the next choice.
    let retried = staff()
        .assign_ticket(auto_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.assignee_id, SAM);
    assert_eq!(env.assigned_events(&t.id).await, events);
    env.set_available(SUE, false).await;
    let none = staff()
        .assign_ticket(pb::AssignmentServiceAssignTicketRequest {
            ticket_id: t.id.clone(),
            auto: true,
            ..Default::default()
        })
        .await;
    let status = expect_code(none, tonic::Code::FailedPrecondition);
    assert!(status.message().contains("no agent available"));
    assert!(env.stored_workloads_are_true().await);
}
