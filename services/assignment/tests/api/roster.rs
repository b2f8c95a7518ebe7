//! The roster follows the accounts service's staff directory: new staff
//! join with the defaults, settings made here survive a sync, and staff
//! who leave or are deactivated stop receiving tickets and hand theirs on.

use helpdesk_proto::support::v1::{self as pb, TicketPriority as P};

use crate::helpers::*;

#[tokio::test]
async fn leavers_hand_their_tickets_on_and_newcomers_join_with_the_defaults() {
    let mut env = spawn_with(Setup {
        staff: vec![
            (SAM.into(), "Sam Support".into()),
            (SUE.into(), "Sue Support".into()),
            (TOM.into(), "Tom Support".into()),
        ],
        ..Setup::default()
    })
    .await;
    env.set_capacity(SAM, 7).await;
    let mut tickets = Vec::new();
    for _ in 0..3 {
        let t = env.create_ticket("account", P::Medium).await;
        env.wait_until("the ticket is assigned", || async {
            !env.assignee(&t.id).await.is_empty()
        })
        .await;
        tickets.push(t.id);
    }
    assert_eq!(
        (
            env.workload(SAM).await,
            env.workload(SUE).await,
            env.workload(TOM).await
        ),
        (1, 1, 1)
    );

    // Tom left the company, Sue's account was deactivated, Vic joined, and
    // Sam was renamed.
    let mut sue = staff_user(SUE, "Sue Support");
    sue.active = false;
    env.restart_standin(vec![
        staff_user(SAM, "Sam Senior"),
        sue,
        staff_user(VIC, "Vic Support"),
    ])
    .await;
    let report = env.roster().sync().await.expect("roster sync");
    assert_eq!(
        (
            report.staff,
            report.added,
            report.deactivated,
            report.handing_on
        ),
        (3, 1, 2, 2)
    );
    // The hand-over runs in the background, one decision at a time, and the
    // ticket service is told after each.
    env.wait_until("the leavers' tickets are handed on", || async {
        env.workload(SUE).await == 0
            && env.workload(TOM).await == 0
            && env.pending_moves().await == 0
    })
    .await;

    let on_roster = env
        .assignments_as("test", helpdesk_kit::auth::Role::Service)
        .list_agents(pb::ListAgentsRequest {
            show_inactive: false,
        })
        .await
        .unwrap()
        .into_inner()
        .agents;
    let names: Vec<&str> = on_roster.iter().map(|a| a.display_name.as_str()).collect();
    assert_eq!(names, vec!["Sam Senior", "Vic Support"]);
    let vic = env.agent(VIC).await;
    assert_eq!(
        (vic.capacity, vic.available, vic.tier),
        (10, true, pb::AgentTier::L1 as i32)
    );
    assert_eq!(
        env.agent(SAM).await.capacity,
        7,
        "settings made here survive a sync"
    );

    for t in &tickets {
        let assignee = env.assignee(t).await;
        assert!(
            assignee == SAM || assignee == VIC,
            "{t} still held by {assignee:?}"
        );
    }
    assert_eq!((env.workload(SUE).await, env.workload(TOM).await), (0, 0));

    // Sue is no longer staff: she does not show as taking tickets, and she
    // cannot be put back on shift here.
    let sue = env.agent(SUE).await;
    assert_eq!((sue.active, sue.available), (false, false));
    let back = env
        .admin()
        .update_agent(update(
            pb::Agent {
                id: SUE.into(),
                available: true,
                ..pb::Agent::default()
            },
            &["available"],
        ))
        .await;
    expect_code(back, tonic::Code::FailedPrecondition);
    assert_eq!(env.workload(SAM).await + env.workload(VIC).await, 3);
    assert!(env.waiting().await.is_empty());
    assert!(env.stored_workloads_are_true().await);

    // Replicas stop cleanly: the server drains, the consumer and tasks end.
    env.stop_replicas().await;
}
