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
#[derive(Clone, Debug, Default, PartialEq)]
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
    /// The user, when the filter names one and nothing else: a rider's own
    /// list, the most frequent listing by far (storage::tickets::list_own).
    pub fn only_user(&self) -> Option<AccountId> {
        let others = ListFilter {
            user_id: None,
            ..self.clone()
        };
        self.user_id.filter(|_| others == ListFilter::default())
    }

    /// Adds statuses to the filter, keeping each once and in a fixed order.
    pub fn add_statuses(&mut self, more: impl IntoIterator<Item = Status>) {
        self.statuses.extend(more);
        self.statuses
            .sort_by_key(|s| Status::ALL.iter().position(|a| a == s));
        self.statuses.dedup();
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn only_a_user_with_no_other_filter_is_an_own_list() {
        let user = AccountId::from(Uuid::from_u128(7));
        let own = ListFilter {
            user_id: Some(user),
            ..Default::default()
        };
        assert_eq!(own.only_user(), Some(user));
        assert_eq!(ListFilter::default().only_user(), None);
        let mut open = own.clone();
        open.add_statuses([Status::Open]);
        assert_eq!(open.only_user(), None);
        let since = ListFilter {
            created_after: Some(DateTime::<Utc>::MIN_UTC),
            ..own
        };
        assert_eq!(since.only_user(), None);
    }
}
