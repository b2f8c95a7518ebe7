//! Who may call what, and what bad input gets back: the ticket service's
//! conventions (PERMISSION_DENIED for roles, INVALID_ARGUMENT with every
//! field violation at once, NOT_FOUND for unknown ids).

use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1::{self as pb, TicketPriority as P};
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn users_are_denied_everything() {
    let env = spawn().await;
    let t = env.create_ticket("other", P::Low).await;
    let mut user = env.assignments_as(ALICE, Role::User);
    let denied = Code::PermissionDenied;
    expect_code(
        user.list_agents(pb::ListAgentsRequest::default()).await,
        denied,
    );
    expect_code(
        user.get_agent(pb::GetAgentRequest { id: SAM.into() }).await,
        denied,
    );
    expect_code(
        user.update_agent(update(
            pb::Agent {
                id: ALICE.into(),
                ..Default::default()
            },
            &["available"],
        ))
        .await,
        denied,
    );
    expect_code(
        user.list_unassigned_tickets(pb::ListUnassignedTicketsRequest::default())
            .await,
        denied,
    );
    expect_code(
        user.assign_ticket(pb::AssignmentServiceAssignTicketRequest {
            ticket_id: t.id.clone(),
            auto: true,
            ..Default::default()
        })
        .await,
        denied,
    );
    expect_code(user.rebalance(pb::RebalanceRequest {}).await, denied);
}

#[tokio::test]
async fn staff_toggle_only_their_own_availability_and_admins_change_anything() {
    let env = spawn().await;
    let mut sam = env.assignments_as(SAM, Role::Staff);
    let own = sam
        .update_agent(update(
            pb::Agent {
                id: SAM.into(),
                available: false,
                ..Default::default()
            },
            &["available"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!own.available);
    assert!(!env.agent(SAM).await.available);

    for (agent, paths) in [
        (
            pb::Agent {
                id: SUE.into(),
                available: false,
                ..Default::default()
            },
            &["available"][..],
        ),
        (
            pb::Agent {
                id: SAM.into(),
                capacity: 50,
                ..Default::default()
            },
            &["capacity"][..],
        ),
        (
            pb::Agent {
                id: SAM.into(),
                tier: pb::AgentTier::L2.into(),
                ..Default::default()
            },
            &["tier"][..],
        ),
        (
            pb::Agent {
                id: SAM.into(),
                available: true,
                skills: vec!["account".into()],
                ..Default::default()
            },
            &["available", "skills"][..],
        ),
    ] {
        expect_code(
            sam.update_agent(update(agent, paths)).await,
            Code::PermissionDenied,
        );
    }
    // Services read but do not manage the roster.
    expect_code(
        env.assignments_as("scheduler", Role::Service)
            .update_agent(update(
                pb::Agent {
                    id: SAM.into(),
                    available: true,
                    ..Default::default()
                },
                &["available"],
            ))
            .await,
        Code::PermissionDenied,
    );

    let changed = env
        .update_agent(
            pb::Agent {
                id: SUE.into(),
                capacity: 25,
                skills: vec!["account".into(), "lost_item".into(), "account".into()],
                tier: pb::AgentTier::L2.into(),
                ..Default::default()
            },
            &["capacity", "skills", "tier"],
        )
        .await;
    assert_eq!(changed.capacity, 25);
    assert_eq!(changed.skills, vec!["account", "lost_item"]);
    assert_eq!(changed.tier, pb::AgentTier::L2 as i32);
    assert!(
        changed.available && changed.active,
        "fields outside the mask are kept"
    );
    assert_eq!(env.agent(SUE).await, changed);

    // Staff read the roster and the queue.
    let agents = sam
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert_eq!(agents.len(), 2);
    assert_eq!(agents[0].display_name, "Sam Support");
    sam.list_unassigned_tickets(pb::ListUnassignedTicketsRequest::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_input_gets_every_field_violation_and_unknown_ids_are_not_found() {
    let env = spawn().await;
    let mut admin = env.admin();

    expect_violations(
        admin
            .update_agent(update(
                pb::Agent {
                    id: "not-a-uuid".into(),
                    capacity: 1001,
                    skills: vec!["payment_issue".into(), "Payments!".into()],
                    tier: pb::AgentTier::Unspecified.into(),
                    ..Default::default()
                },
                &["capacity", "skills", "tier", "display_name"],
            ))
            .await,
        &[
            "agent.id",
            "agent.capacity",
            "agent.skills",
            "agent.tier",
            "update_mask",
        ],
    );
    expect_violations(
        admin
            .update_agent(update(
                pb::Agent {
                    id: SAM.into(),
                    capacity: -1,
                    ..Default::default()
                },
                &["capacity"],
            ))
            .await,
        &["agent.capacity"],
    );
    expect_violations(
        admin
            .update_agent(update(
                pb::Agent {
                    id: SAM.into(),
                    ..Default::default()
                },
                &[],
            ))
            .await,
        &["update_mask"],
    );
    expect_violations(
        admin
            .update_agent(pb::UpdateAgentRequest {
                agent: None,
                update_mask: None,
            })
            .await,
        &["agent"],
    );
    expect_code(
        admin
            .update_agent(update(
                pb::Agent {
                    id: "0f000000-0000-4000-8000-000000000099".into(),
                    available: true,
                    ..Default::default()
                },
                &["available"],
            ))
            .await,
        Code::NotFound,
    );
    expect_violations(
        admin
            .get_agent(pb::GetAgentRequest { id: "nope".into() })
            .await,
        &["id"],
    );
    expect_code(
        admin
            .get_agent(pb::GetAgentRequest {
                id: "0f000000-0000-4000-8000-000000000099".into(),
            })
            .await,
        Code::NotFound,
    );
    // AIP-158: above the maximum is served as the maximum; negative is wrong.
    admin
        .list_unassigned_tickets(pb::ListUnassignedTicketsRequest { page_size: 10_000 })
        .await
        .expect("an oversized page is coerced");
    expect_violations(
        admin
            .list_unassigned_tickets(pb::ListUnassignedTicketsRequest { page_size: -1 })
            .await,
        &["page_size"],
    );
    for (ticket_id, assignee_id, auto, request_id, fields) in [
        ("", "", false, "", &["ticket_id", "assignee_id"][..]),
        ("x", SAM, true, "", &["ticket_id", "assignee_id"][..]),
        (
            "TKT-AB12",
            SAM,
            false,
            "r",
            &["ticket_id", "request_id"][..],
        ),
        (
            "0f000000-0000-4000-8000-000000000099",
            "sam",
            false,
            "",
            &["assignee_id"][..],
        ),
    ] {
        expect_violations(
            admin
                .assign_ticket(pb::AssignmentServiceAssignTicketRequest {
                    ticket_id: ticket_id.into(),
                    assignee_id: assignee_id.into(),
                    auto,
                    request_id: request_id.into(),
                })
                .await,
            fields,
        );
    }
    for unknown in ["0f000000-0000-4000-8000-000000000099", "tkt-zzz999"] {
        expect_code(
            admin
                .assign_ticket(pb::AssignmentServiceAssignTicketRequest {
                    ticket_id: unknown.into(),
                    assignee_id: SAM.into(),
                    ..Default::default()
                })
                .await,
            Code::NotFound,
        );
    }
}
