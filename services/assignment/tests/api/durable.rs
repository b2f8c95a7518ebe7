//! Long work made durable: decisions are committed before the ticket
//! service is told, a move retried after a lost answer is the same move,
//! and a restart resumes what was under way.

use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1::{self as pb, TicketPriority as P};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn a_move_retried_after_a_lost_answer_is_not_a_second_move() {
    let env = spawn_with(Setup {
        ticket_proxy: true,
        ..Setup::default()
    })
    .await;
    let proxy = env.ticket_proxy.as_ref().unwrap();
    proxy.down().await;
    let t = env.create_ticket("ride_issue", P::Medium).await;
    env.wait_until("the move was tried", || async {
        env.attempted_moves().await == 1
    })
    .await;

    // The first attempt reached the ticket service but its answer was
    // lost: the ticket service applied the move under the move's request id.
    let (request_id, agent): (Uuid, Uuid) = sqlx::query_as(
        "SELECT request_id, to_agent FROM moves WHERE ticket_id = $1::uuid AND done_at IS NULL",
    )
    .bind(&t.id)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    env.tickets_as(
        assignment_service::clients::tickets::SERVICE_SUBJECT,
        Role::Service,
    )
    .assign_ticket(pb::AssignTicketRequest {
        ticket_id: t.id.clone(),
        assignee_id: agent.to_string(),
        request_id: request_id.to_string(),
    })
    .await
    .expect("the first attempt");
    assert_eq!(env.assigned_events(&t.id).await, 1);

    // The retry sends the same request id: answered from the ticket
    // service's record, not applied again.
    proxy.up();
    env.moves_due_now().await;
    env.wait_until("the move is confirmed", || async {
        env.pending_moves().await == 0
    })
    .await;
    assert_eq!(env.assignee(&t.id).await, agent.to_string());
    assert_eq!(env.assigned_events(&t.id).await, 1, "one assignment");
    assert!(env.stored_workloads_are_true().await);
}

#[tokio::test]
async fn a_restart_mid_operation_resumes_it() {
    let mut env = spawn_with(Setup {
        ticket_proxy: true,
        ..Setup::default()
    })
    .await;
    env.set_available(SUE, false).await;
    let tickets = assigned_tickets(&env, 4).await;
    env.set_available(SUE, true).await;

    // Rebalance while the ticket service is away: the operation decides its
    // moves and returns at once; they wait for the ticket service.
    env.ticket_proxy.as_ref().unwrap().down().await;
    let op = env
        .admin()
        .rebalance(pb::RebalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    let get = |env: &TestEnv| {
        let (admin, id) = (env.admin(), op.id.clone());
        async move {
            let mut admin = admin;
            admin
                .get_assignment_operation(pb::GetAssignmentOperationRequest { id })
                .await
                .unwrap()
                .into_inner()
        }
    };
    env.wait_until("both moves are decided", || async {
        let o = get(&env).await;
        o.moved == 2 && o.pending_moves == 2
    })
    .await;
    assert!(!get(&env).await.done);
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (2, 2));

    // A redistribution recorded by a process that died before its first
    // step (its lease lapsed).
    let before_restart = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO operations (id, kind, agent_id, created_at, updated_at)
         VALUES ($1, 'redistribute', $2::uuid, now(), now())",
    )
    .bind(before_restart)
    .bind(SAM)
    .execute(&env.db.pool)
    .await
    .unwrap();

    env.restart_replicas().await;
    env.ticket_proxy.as_ref().unwrap().up();
    env.moves_due_now().await;
    env.wait_operation(&op.id).await;
    let mut sue_holds = 0;
    for t in &tickets {
        if env.assignee(&t.id).await == SUE {
            sue_holds += 1;
        }
        assert_eq!(
            env.assigned_events(&t.id).await,
            1 + i64::from(env.assignee(&t.id).await == SUE)
        );
    }
    assert_eq!(sue_holds, 2, "the ticket service agrees");
    // Sam is on shift, so the dead process's redistribution has nothing to do.
    let resumed = env.wait_operation(&before_restart.to_string()).await;
    assert_eq!(resumed.moved, 0);
    assert!(env.stored_workloads_are_true().await);
}
