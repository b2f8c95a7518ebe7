//! An agent (a staff member as the assignment service sees them) and the
//! validated values an admin may set on one.

use chrono::{DateTime, Utc};
use std::fmt;
use uuid::Uuid;

/// Most open tickets anyone may be given (a typo guard, not a policy).
pub const MAX_CAPACITY: i32 = 1000;
/// Most skills one agent may list.
pub const MAX_SKILLS: usize = 50;

/// Support line: L1 takes first contact, L2 receives escalations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    L1,
    L2,
}

impl Tier {
    /// The stored (and configured) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::L1 => "l1",
            Tier::L2 => "l2",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "l1" => Some(Tier::L1),
            "l2" => Some(Tier::L2),
            _ => None,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::parse(&s.to_ascii_lowercase()).ok_or_else(|| format!("unknown tier {s:?} (l1, l2)"))
    }
}

/// One agent and their current workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub account_id: Uuid,
    pub display_name: String,
    /// Still staff in the accounts service.
    pub active: bool,
    /// On shift.
    pub available: bool,
    /// Most open tickets the automatic assignment gives them.
    pub capacity: i32,
    /// Category ids they are preferred for.
    pub skills: Vec<String>,
    pub tier: Tier,
    /// Open tickets held now.
    pub open_tickets: i32,
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Agent {
    /// Whether automatic assignment may give them another ticket.
    pub fn takes_work(&self) -> bool {
        self.active && self.available && self.open_tickets < self.capacity
    }
}

/// A capacity an admin may set.
pub fn capacity(raw: i32) -> Result<i32, String> {
    if (0..=MAX_CAPACITY).contains(&raw) {
        Ok(raw)
    } else {
        Err(format!("must be between 0 and {MAX_CAPACITY}"))
    }
}

/// A skill list: category ids (lowercase slugs), deduplicated, order kept.
pub fn skills(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > MAX_SKILLS {
        return Err(format!("must list at most {MAX_SKILLS} categories"));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, skill) in raw.iter().enumerate() {
        if !is_category_id(skill) {
            return Err(format!(
                "[{i}] {skill:?} is not a category id (1-64 characters of a-z, 0-9 and _)"
            ));
        }
        if !out.contains(skill) {
            out.push(skill.clone());
        }
    }
    Ok(out)
}

/// The ticket service's category id rule: a lowercase slug.
pub fn is_category_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_round_trip_and_reject_unknown_names() {
        for tier in [Tier::L1, Tier::L2] {
            assert_eq!(Tier::parse(tier.as_str()), Some(tier));
        }
        assert_eq!("L2".parse::<Tier>(), Ok(Tier::L2));
        assert!("l3".parse::<Tier>().is_err());
    }

    #[test]
    fn capacities_and_skills_are_bounded() {
        assert_eq!(capacity(0), Ok(0));
        assert_eq!(capacity(MAX_CAPACITY), Ok(MAX_CAPACITY));
        assert!(capacity(-1).is_err());
        assert!(capacity(MAX_CAPACITY + 1).is_err());
        let given = vec![
            "payment_issue".to_owned(),
            "lost_item".into(),
            "payment_issue".into(),
        ];
        assert_eq!(skills(&given).unwrap(), vec!["payment_issue", "lost_item"]);
        assert!(skills(&["Payment".to_owned()]).is_err());
        assert!(skills(&[String::new()]).is_err());
        assert!(skills(&vec!["a".to_owned(); MAX_SKILLS + 1]).is_err());
    }
}
