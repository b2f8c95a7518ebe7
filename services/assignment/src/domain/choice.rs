//! Who gets a ticket, as a pure rule over the agents who can take work.
//! The engine loads the candidates once and makes several decisions against
//! them in one transaction, updating them as it goes, so a batch chooses
//! exactly as the same decisions made one by one would.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tier;

/// An agent who may take work (active, on shift), as the choice sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: Uuid,
    pub skills: Vec<String>,
    pub tier: Tier,
    pub open_tickets: i32,
    pub capacity: i32,
    pub last_assigned_at: Option<DateTime<Utc>>,
}

/// The rule of docs/assignment.md: under capacity (of `tier` when given,
/// never `exclude`), preferring the category's skill, then the lowest
/// workload, then whoever waited longest since their last assignment, then
/// the lowest id. `None` when nobody has room.
pub fn choose<'a>(
    candidates: &'a mut [Candidate],
    category: &str,
    tier: Option<Tier>,
    exclude: Option<Uuid>,
) -> Option<&'a mut Candidate> {
    candidates
        .iter_mut()
        .filter(|c| c.open_tickets < c.capacity)
        .filter(|c| tier.is_none_or(|t| c.tier == t) && Some(c.id) != exclude)
        .min_by(|a, b| {
            let skilled = |c: &Candidate| !c.skills.iter().any(|s| s == category);
            skilled(a)
                .cmp(&skilled(b))
                .then(a.open_tickets.cmp(&b.open_tickets))
                // `None` (never assigned) sorts first.
                .then(a.last_assigned_at.cmp(&b.last_assigned_at))
                .then(a.id.cmp(&b.id))
        })
}

impl Candidate {
    /// Records that this candidate was just given a ticket.
    pub fn take(&mut self, at: DateTime<Utc>) -> Uuid {
        self.open_tickets += 1;
        self.last_assigned_at = Some(at);
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u128, open: i32, capacity: i32, skills: &[&str]) -> Candidate {
        Candidate {
            id: Uuid::from_u128(n),
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            tier: Tier::L1,
            open_tickets: open,
            capacity,
            last_assigned_at: None,
        }
    }

    #[test]
    fn skill_then_load_then_fairness_then_id() {
        let now = Utc::now();
        let mut all = vec![c(1, 0, 5, &[]), c(2, 3, 5, &["lost_item"]), c(3, 0, 5, &[])];
        assert_eq!(
            choose(&mut all, "lost_item", None, None).unwrap().id,
            Uuid::from_u128(2)
        );
        assert_eq!(
            choose(&mut all, "other", None, None).unwrap().id,
            Uuid::from_u128(1)
        );
        choose(&mut all, "other", None, None).unwrap().take(now);
        // 1 and 3 now both hold... 1 holds one, so 3 (fewer) goes next.
        assert_eq!(
            choose(&mut all, "other", None, None).unwrap().id,
            Uuid::from_u128(3)
        );
        all[2].take(now);
        all[0].last_assigned_at = Some(now + chrono::Duration::seconds(1));
        // Equal loads: whoever was assigned longer ago.
        assert_eq!(
            choose(&mut all, "other", None, None).unwrap().id,
            Uuid::from_u128(3)
        );
    }

    #[test]
    fn never_past_capacity_nor_the_excluded_nor_another_tier() {
        let mut all = vec![c(1, 5, 5, &[]), c(2, 0, 5, &[])];
        assert_eq!(choose(&mut all, "x", None, Some(Uuid::from_u128(2))), None);
        assert_eq!(choose(&mut all, "x", Some(Tier::L2), None), None);
        all[1].tier = Tier::L2;
        assert_eq!(
            choose(&mut all, "x", Some(Tier::L2), None).unwrap().id,
            Uuid::from_u128(2)
        );
        for _ in 0..5 {
            choose(&mut all, "x", None, None).unwrap().take(Utc::now());
        }
        assert_eq!(choose(&mut all, "x", None, None), None);
    }
}
