//! The scheduler's batch jobs as the domain sees them: what a page is asked
//! to do and what it touched. The rules themselves are state predicates
//! evaluated set-based in SQL (`storage/jobs.rs`), because a page acts on
//! hundreds of tickets in one statement; this module names their parts.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{Priority, Status};

/// Which scheduler run a page works for, under which claim, and where it
/// starts (the cursor is the sort key of the last ticket the run passed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub run_id: Uuid,
    pub fencing_token: i64,
    pub limit: i64,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

/// A priority's SLA, measured from the ticket's creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaTarget {
    pub priority: Priority,
    pub first_response: Duration,
    pub resolution: Duration,
}

/// Which target a ticket missed. Each is alerted once per ticket, ever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Breach {
    /// No staff reply within the first-response target.
    FirstResponse,
    /// Not resolved within the resolution target.
    Resolution,
}

impl Breach {
    pub fn as_str(self) -> &'static str {
        match self {
            Breach::FirstResponse => "first_response",
            Breach::Resolution => "resolution",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Breach::FirstResponse, Breach::Resolution]
            .into_iter()
            .find(|b| b.as_str() == s)
    }
}

/// The next priority up; urgent stays urgent (escalation stops there).
pub fn raised(p: Priority) -> Priority {
    match p {
        Priority::Low => Priority::Medium,
        Priority::Medium => Priority::High,
        Priority::High | Priority::Urgent => Priority::Urgent,
    }
}

/// A ticket a page touched, as its events describe it (after the change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touched {
    pub id: Uuid,
    pub human_id: String,
    pub user_id: Uuid,
    pub ride_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    pub category_id: String,
    pub subject: String,
    pub priority: Priority,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

/// What one page did: the tickets acted on (with what was done to each) and
/// the sort key of the last ticket it passed, acted on or not.
#[derive(Clone, Debug, PartialEq)]
pub struct PageDone<T> {
    pub acted: Vec<(Touched, T)>,
    /// How many tickets the page selected (a full page means more may follow).
    pub selected: usize,
    pub last: Option<(DateTime<Utc>, Uuid)>,
}

/// A day's figures (the scheduler's `DailyStats`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayFigures {
    pub created: i64,
    pub resolved: i64,
    pub closed: i64,
    pub created_by_category: Vec<(String, i64)>,
    pub created_by_priority: Vec<(String, i64)>,
    pub first_response_median_seconds: i64,
    pub first_response_p90_seconds: i64,
    pub resolution_median_seconds: i64,
    pub resolution_p90_seconds: i64,
    pub average_rating: f64,
    pub rating_count: i64,
    /// (agent, tickets created that day now assigned to them, tickets they
    /// resolved that day, public replies they posted that day).
    pub agents: Vec<(Uuid, i64, i64, i64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_climbs_one_level_and_stops_at_urgent() {
        assert_eq!(raised(Priority::Low), Priority::Medium);
        assert_eq!(raised(Priority::Medium), Priority::High);
        assert_eq!(raised(Priority::High), Priority::Urgent);
        assert_eq!(raised(Priority::Urgent), Priority::Urgent);
    }

    #[test]
    fn breach_names_round_trip() {
        for b in [Breach::FirstResponse, Breach::Resolution] {
            assert_eq!(Breach::parse(b.as_str()), Some(b));
        }
    }
}
