//! Domain ↔ protobuf conversions, for the API and for the clients and
//! event consumer that read the ticket service's messages.

use helpdesk_kit::clock::to_timestamp;
use helpdesk_proto::support::v1 as pb;

use uuid::Uuid;

use crate::domain::{Agent, Assignment, Operation, OperationKind, Priority, Tier};

pub fn tier_to_pb(t: Tier) -> pb::AgentTier {
    match t {
        Tier::L1 => pb::AgentTier::L1,
        Tier::L2 => pb::AgentTier::L2,
    }
}

/// A wire tier; `Err` for UNSPECIFIED or an unknown number.
pub fn tier_from_pb(raw: i32) -> Result<Tier, String> {
    match pb::AgentTier::try_from(raw) {
        Ok(pb::AgentTier::L1) => Ok(Tier::L1),
        Ok(pb::AgentTier::L2) => Ok(Tier::L2),
        Ok(pb::AgentTier::Unspecified) => Err("must be specified".into()),
        Err(_) => Err(format!("unknown tier {raw}")),
    }
}

/// `redistribution`: the operation handing their tickets on, if any.
pub fn agent(a: &Agent, redistribution: Option<Uuid>) -> pb::Agent {
    pb::Agent {
        id: a.account_id.to_string(),
        display_name: a.display_name.clone(),
        active: a.active,
        // Someone no longer staff takes no tickets, whatever their shift.
        available: a.active && a.available,
        capacity: a.capacity,
        skills: a.skills.clone(),
        tier: tier_to_pb(a.tier).into(),
        open_tickets: a.open_tickets,
        last_assigned_time: a.last_assigned_at.map(to_timestamp),
        redistribution_operation_id: redistribution.map(|u| u.to_string()).unwrap_or_default(),
    }
}

pub fn assignment(a: &Assignment) -> pb::Assignment {
    pb::Assignment {
        ticket_id: a.ticket_id.to_string(),
        human_id: a.human_id.clone(),
        assignee_id: a.agent_id.map(|u| u.to_string()).unwrap_or_default(),
        category_id: a.category_id.clone(),
        priority: priority_to_pb(a.priority).into(),
        ticket_create_time: Some(to_timestamp(a.ticket_created_at)),
        assign_time: a.assigned_at.map(to_timestamp),
    }
}

pub fn priority_to_pb(p: Priority) -> pb::TicketPriority {
    match p {
        Priority::Low => pb::TicketPriority::Low,
        Priority::Medium => pb::TicketPriority::Medium,
        Priority::High => pb::TicketPriority::High,
        Priority::Urgent => pb::TicketPriority::Urgent,
    }
}

/// A wire priority; `None` for UNSPECIFIED or an unknown number (the
/// ticket service always sets one).
pub fn priority_from_pb(raw: i32) -> Option<Priority> {
    match pb::TicketPriority::try_from(raw).ok()? {
        pb::TicketPriority::Low => Some(Priority::Low),
        pb::TicketPriority::Medium => Some(Priority::Medium),
        pb::TicketPriority::High => Some(Priority::High),
        pb::TicketPriority::Urgent => Some(Priority::Urgent),
        pb::TicketPriority::Unspecified => None,
    }
}

pub fn operation(o: &Operation) -> pb::AssignmentOperation {
    let (kind, agent) = match o.kind {
        OperationKind::Redistribute(agent) => {
            (pb::AssignmentOperationKind::Redistribute, agent.to_string())
        }
        OperationKind::Rebalance => (pb::AssignmentOperationKind::Rebalance, String::new()),
    };
    pb::AssignmentOperation {
        id: o.id.to_string(),
        kind: kind.into(),
        agent_id: agent,
        done: o.done(),
        moved: o.moved,
        pending_moves: o.pending,
        create_time: Some(to_timestamp(o.created_at)),
        update_time: Some(to_timestamp(o.updated_at)),
    }
}
