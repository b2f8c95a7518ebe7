//! Ticket status and priority, and the status machine (docs/status-machine.md).

use std::fmt;

/// Where a ticket is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Open,
    InProgress,
    WaitingUser,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::InProgress,
        Status::WaitingUser,
        Status::Resolved,
        Status::Closed,
    ];

    /// The stored (and logged) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::WaitingUser => "waiting_user",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether staff may move a ticket from `self` to `to` (UpdateTicket).
    /// Staying put is allowed and changes nothing.
    pub fn can_move_to(self, to: Status) -> bool {
        use Status::*;
        self == to
            || matches!(
                (self, to),
                (Open, InProgress | WaitingUser | Resolved | Closed)
                    | (InProgress, WaitingUser | Resolved | Closed)
                    | (WaitingUser, InProgress | Resolved | Closed)
                    | (Resolved, InProgress | Closed)
            )
    }

    /// Counts against an agent's workload and can still be worked on.
    pub fn is_active(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed)
    }

    /// The "open" group of ListTickets: every status not yet resolved.
    pub fn open_group() -> impl Iterator<Item = Status> {
        Self::ALL.into_iter().filter(|s| s.is_active())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a ticket is; drives SLAs and queue order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_terminal_and_resolved_only_reopens_or_closes() {
        for to in Status::ALL {
            assert_eq!(Status::Closed.can_move_to(to), to == Status::Closed);
        }
        let from_resolved: Vec<Status> = Status::ALL
            .into_iter()
            .filter(|to| Status::Resolved.can_move_to(*to))
            .collect();
        assert_eq!(
            from_resolved,
            vec![Status::InProgress, Status::Resolved, Status::Closed]
        );
        assert!(!Status::InProgress.can_move_to(Status::Open));
        assert!(!Status::WaitingUser.can_move_to(Status::Open));
    }

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(p));
        }
    }
}
