//! Events from elsewhere: escalations (published here by hand, as the
//! scheduler will) and duplicate deliveries.

use helpdesk_proto::support::v1::{self as pb, TicketPriority as P};
use prost::Message;
use uuid::Uuid;

use crate::helpers::*;

async fn escalations(env: &TestEnv, ticket: &str) -> Vec<(Option<Uuid>, Option<Uuid>, String)> {
    sqlx::query_as::<_, (Option<Uuid>, Option<Uuid>, String)>(
        "SELECT from_agent, to_agent, reason FROM escalations WHERE ticket_id = $1::uuid ORDER BY id",
    )
    .bind(ticket)
    .fetch_all(&env.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_escalated_ticket_moves_from_l1_to_a_free_l2_agent_and_both_are_recorded() {
    let env = spawn().await;
    let (sam, sue) = (Uuid::parse_str(SAM).unwrap(), Uuid::parse_str(SUE).unwrap());
    env.update_agent(
        pb::Agent {
            id: SUE.into(),
            tier: pb::AgentTier::L2.into(),
            available: false,
            ..Default::default()
        },
        &["tier", "available"],
    )
    .await;
    let t = env.create_ticket("driver_issue", P::High).await;
    env.wait_assignee(&t.id, SAM).await;

    // No L2 agent on shift: recorded without a target; Sam keeps it.
    let (first, event) = escalated(&env.ticket(&t.id).await, "open for more than 48 hours");
    env.publish(&first, &event).await;
    env.wait_until("the failed escalation is recorded", || async {
        escalations(&env, &t.id).await.len() == 1
    })
    .await;
    assert_eq!(
        escalations(&env, &t.id).await,
        vec![(Some(sam), None, "open for more than 48 hours".to_owned())]
    );
    assert_eq!(env.assignee(&t.id).await, SAM);

    // Sue on shift: the next escalation moves the ticket to her.
    env.set_available(SUE, true).await;
    assert_eq!(
        env.assignee(&t.id).await,
        SAM,
        "coming on shift moves nothing by itself"
    );
    let (second, event) = escalated(&env.ticket(&t.id).await, "customer asked for a supervisor");
    env.publish(&second, &event).await;
    env.wait_assignee(&t.id, SUE).await;
    env.wait_until("the escalation is recorded", || async {
        escalations(&env, &t.id).await.len() == 2
    })
    .await;
    assert_eq!(
        escalations(&env, &t.id).await[1],
        (
            Some(sam),
            Some(sue),
            "customer asked for a supervisor".to_owned()
        )
    );
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (0, 1));
    assert!(env.stored_workloads_are_true().await);
}

#[tokio::test]
async fn a_duplicate_ticket_created_delivery_assigns_nothing_twice() {
    let env = spawn().await;
    let mut created_tap = env.tap("ticket.created").await;
    let mut assigned_tap = env.tap("ticket.assigned").await;
    let t = env.create_ticket("lost_item", P::Low).await;
    let original = created_tap.take(1).await.remove(0);
    let first: pb::TicketAssigned = assigned_tap.take(1).await[0].decode();
    assert_eq!(first.assignee_id, SAM);

    // The broker delivers the very same event twice more.
    for _ in 0..2 {
        env.publish_raw(
            &original.routing_key,
            &original.message_type,
            &original.message_id,
            original.payload.clone(),
        )
        .await;
    }
    // A later event proves the duplicates were consumed: it is handled after them.
    let probe = env.create_ticket("lost_item", P::Low).await;
    let second: pb::TicketAssigned = assigned_tap.take(1).await[0].decode();
    assert_eq!(second.ticket.unwrap().ticket_id, probe.id);
    env.moves_settled().await;
    assert_eq!(env.assigned_events(&t.id).await, 1);

    assert_eq!(env.assignee(&t.id).await, SAM);
    assert_eq!((env.workload(SAM).await, env.workload(SUE).await), (1, 1));
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = $1::uuid")
            .bind(&original.message_id)
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 1);
    let decoded = pb::TicketCreated::decode(original.payload.as_slice()).unwrap();
    assert_eq!(decoded.ticket.unwrap().ticket_id, t.id);
}

#[tokio::test]
async fn a_duplicate_escalation_delivery_is_recorded_once() {
    // Nobody is L2: every escalation is recorded without a target, so each
    // delivery that got through would add a row (not harmless to repeat).
    let env = spawn().await;
    let t = env.create_ticket("driver_issue", P::High).await;
    env.wait_assignee(&t.id, SAM).await;
    let (event_id, event) = escalated(&env.ticket(&t.id).await, "open for more than 48 hours");
    for _ in 0..3 {
        env.publish(&event_id, &event).await;
    }
    // A later event proves the duplicates were consumed (one consumer, in order).
    let (probe, event) = escalated(&env.ticket(&t.id).await, "probe");
    env.publish(&probe, &event).await;
    env.wait_until("the probe is processed", || async {
        env.processed(&probe).await
    })
    .await;
    let sam = Uuid::parse_str(SAM).unwrap();
    assert_eq!(
        escalations(&env, &t.id).await,
        vec![
            (Some(sam), None, "open for more than 48 hours".to_owned()),
            (Some(sam), None, "probe".to_owned()),
        ]
    );
    assert_eq!(env.assignee(&t.id).await, SAM);
    assert_eq!(env.dead_letters().await, 0);
}
