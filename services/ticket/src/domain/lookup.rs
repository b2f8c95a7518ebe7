//! How callers name one ticket and select many: the inputs of reads, kept in
//! the domain so `api/` builds them from requests and `storage/` turns them
//! into SQL without either knowing the other.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Priority, Status};

impl ListFilter {
    /// Adds statuses to the filter, keeping each once and in a fixed order.
    pub fn add_statuses(&mut self, more: impl IntoIterator<Item = Status>) {
        self.statuses.extend(more);
        self.statuses
            .sort_by_key(|s| Status::ALL.iter().position(|a| a == s));
        self.statuses.dedup();
    }
}

/// How a caller names a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketKey {
    Id(Uuid),
    HumanId(String),
}

/// Filters of ListTickets; `None` (or no statuses) means "any".
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub user_id: Option<Uuid>,
    /// Any of these, each once, in [`Status::ALL`] order.
    pub statuses: Vec<Status>,
    pub priority: Option<Priority>,
    pub category_id: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub ride_id: Option<Uuid>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}
