//! An assignment: the service's projection of one ticket (who holds it,
//! whether it still counts toward a workload), and the request ids it sends
//! the ticket service.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Priority;

/// One ticket as the assignment service tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub ticket_id: Uuid,
    pub human_id: String,
    pub category_id: String,
    pub priority: Priority,
    pub ticket_created_at: DateTime<Utc>,
    /// `None` while the ticket waits for a free agent.
    pub agent_id: Option<Uuid>,
    /// Not resolved or closed: counts toward its agent's workload.
    pub open: bool,
    pub assigned_at: Option<DateTime<Utc>>,
}

impl Assignment {
    /// In the waiting queue.
    pub fn waiting(&self) -> bool {
        self.open && self.agent_id.is_none()
    }
}

/// The `request_id` of a call to the ticket service about `ticket` and
/// `agent` (`None`: unassign), derived from `seed` (an event id, or a fresh
/// id per decision). A retried event makes the same decision with the same
/// id, so the ticket service replays its answer instead of acting twice.
pub fn request_id(seed: Uuid, ticket: Uuid, agent: Option<Uuid>) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(seed.as_bytes());
    hasher.update(ticket.as_bytes());
    hasher.update(agent.unwrap_or(Uuid::nil()).as_bytes());
    let digest = hasher.finalize();
    let bytes: [u8; 16] = digest[..16].try_into().expect("sha256 has 32 bytes");
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_deterministic_and_distinct_per_decision() {
        let (seed, ticket, agent) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let id = request_id(seed, ticket, Some(agent));
        assert_eq!(id, request_id(seed, ticket, Some(agent)));
        assert_eq!(id.get_version_num(), 4);
        assert_ne!(id, request_id(seed, ticket, None));
        assert_ne!(id, request_id(seed, Uuid::new_v4(), Some(agent)));
        assert_ne!(id, request_id(Uuid::new_v4(), ticket, Some(agent)));
    }
}
