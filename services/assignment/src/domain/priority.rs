//! A ticket's priority as the waiting queue orders it. The ticket service
//! owns the scale; we keep our own type so the domain and storage do not
//! depend on a protobuf enum number (the API and clients translate).

/// How urgent a ticket is; later variants are served first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    /// The stored rank: higher is more urgent (`ORDER BY priority DESC`).
    pub fn rank(self) -> i16 {
        match self {
            Priority::Low => 1,
            Priority::Medium => 2,
            Priority::High => 3,
            Priority::Urgent => 4,
        }
    }

    /// The priority of a stored rank; `None` for anything else.
    pub fn from_rank(rank: i16) -> Option<Self> {
        match rank {
            1 => Some(Priority::Low),
            2 => Some(Priority::Medium),
            3 => Some(Priority::High),
            4 => Some(Priority::Urgent),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_round_trip_and_order_by_urgency() {
        for p in [
            Priority::Low,
            Priority::Medium,
            Priority::High,
            Priority::Urgent,
        ] {
            assert_eq!(Priority::from_rank(p.rank()), Some(p));
        }
        assert!(Priority::Urgent.rank() > Priority::Low.rank());
        assert!(Priority::Urgent > Priority::High);
        assert_eq!(Priority::from_rank(0), None);
        assert_eq!(Priority::from_rank(5), None);
    }
}
