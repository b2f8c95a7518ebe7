//! How callers name one ticket and select many: the inputs of reads, kept in
//! the domain so `api/` builds them from requests and `storage/` turns them
//! into SQL without either knowing the other.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AccountId, CategoryId, Priority, Status, TicketNumber};

/// How a caller names a ticket: by UUID or by human id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketKey {
    Id(Uuid),
    Number(TicketNumber),
}

impl TicketKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("is required".into());
        }
        if let Ok(id) = Uuid::parse_str(raw) {
            return Ok(Self::Id(id));
        }
        TicketNumber::parse(raw)
            .map(Self::Number)
            .ok_or_else(|| "must be a ticket UUID or a TKT- id".into())
    }
}

/// Filters of ListTickets; `None` (or no statuses) means "any".
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub user_id: Option<AccountId>,
    /// Any of these, each once, in [`Status::ALL`] order.
    pub statuses: Vec<Status>,
    pub priority: Option<Priority>,
    pub category_id: Option<CategoryId>,
    pub assignee_id: Option<AccountId>,
    pub ride_id: Option<Uuid>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

impl ListFilter {
    /// Adds statuses to the filter, keeping each once and in a fixed order.
    pub fn add_statuses(&mut self, more: impl IntoIterator<Item = Status>) {
        self.statuses.extend(more);
        self.statuses
            .sort_by_key(|s| Status::ALL.iter().position(|a| a == s));
        self.statuses.dedup();
    }
}
