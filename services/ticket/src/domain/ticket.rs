//! A ticket and the rules that change it. Every method either applies a
//! change and reports what happened as [`DomainEvent`]s, or refuses with a
//! [`RuleError`] and leaves the ticket untouched.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    AccountId, CategoryId, Priority, Rating, Status, Subject, Text, TicketNumber,
    commands::NewTicket,
};

#[derive(Clone, Debug, PartialEq)]
pub struct Ticket {
    pub id: Uuid,
    pub human_id: TicketNumber,
    pub user_id: AccountId,
    pub ride_id: Option<Uuid>,
    pub category_id: CategoryId,
    pub subject: Subject,
    pub description: Text,
    pub priority: Priority,
    pub status: Status,
    pub assignee_id: Option<AccountId>,
    pub rating: Option<Rating>,
    pub rating_feedback: Option<Text>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub rated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorRole {
    User,
    Staff,
}

impl AuthorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorRole::User => "user",
            AuthorRole::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(AuthorRole::User),
            "staff" => Some(AuthorRole::Staff),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author_id: AccountId,
    pub author_role: AuthorRole,
    pub body: Text,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

/// A staff edit: each `Some` field is to be set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Change {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub category_id: Option<CategoryId>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<AccountId>>,
}

/// What a change did, for the outbox.
#[derive(Clone, Debug, PartialEq)]
pub enum DomainEvent {
    StatusChanged {
        from: Status,
        to: Status,
    },
    PriorityChanged {
        from: Priority,
        to: Priority,
    },
    CategoryChanged {
        from: CategoryId,
        to: CategoryId,
    },
    Assigned {
        previous: Option<AccountId>,
        assignee: Option<AccountId>,
    },
}

/// Why a change is refused (FAILED_PRECONDITION).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("cannot move a ticket from {from} to {to}")]
    IllegalTransition { from: Status, to: Status },
    #[error("ticket is closed")]
    Closed,
    #[error("only resolved or closed tickets can be rated (ticket is {0})")]
    NotRateable(Status),
    #[error("ticket is already rated")]
    AlreadyRated,
}

impl Ticket {
    /// A new, open ticket numbered `number`.
    pub fn open(id: Uuid, number: TicketNumber, new: NewTicket, now: DateTime<Utc>) -> Self {
        Self {
            id,
            human_id: number,
            user_id: new.owner.id(),
            ride_id: new.ride_id,
            category_id: new.category_id,
            subject: new.subject,
            description: new.description,
            priority: new.priority,
            status: Status::Open,
            assignee_id: None,
            rating: None,
            rating_feedback: None,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            rated_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Applies a staff edit. A field set to its current value changes nothing.
    pub fn apply(
        &mut self,
        change: &Change,
        now: DateTime<Utc>,
    ) -> Result<Vec<DomainEvent>, RuleError> {
        let status_changes = change.status.is_some_and(|s| s != self.status);
        let priority_changes = change.priority.is_some_and(|p| p != self.priority);
        let category_changes = change
            .category_id
            .as_ref()
            .is_some_and(|c| *c != self.category_id);
        let assignee_changes = change.assignee.is_some_and(|a| a != self.assignee_id);
        if !(status_changes || priority_changes || category_changes || assignee_changes) {
            return Ok(Vec::new());
        }
        if let Some(to) = change.status
            && !self.status.can_move_to(to)
        {
            return Err(RuleError::IllegalTransition {
                from: self.status,
                to,
            });
        }
        if self.status == Status::Closed {
            return Err(RuleError::Closed);
        }

        let mut events = Vec::new();
        if priority_changes && let Some(to) = change.priority {
            events.push(DomainEvent::PriorityChanged {
                from: self.priority,
                to,
            });
            self.priority = to;
        }
        if category_changes && let Some(to) = &change.category_id {
            events.push(DomainEvent::CategoryChanged {
                from: std::mem::replace(&mut self.category_id, to.clone()),
                to: to.clone(),
            });
        }
        if assignee_changes && let Some(to) = change.assignee {
            events.push(DomainEvent::Assigned {
                previous: self.assignee_id,
                assignee: to,
            });
            self.assignee_id = to;
        }
        if status_changes && let Some(to) = change.status {
            events.extend(self.move_to(to, now));
        }
        self.updated_at = now;
        Ok(events)
    }

    /// Moves the status and keeps the timestamps that depend on it.
    fn move_to(&mut self, to: Status, now: DateTime<Utc>) -> Option<DomainEvent> {
        let from = self.status;
        if from == to {
            return None;
        }
        self.status = to;
        match to {
            Status::Resolved => self.resolved_at = Some(now),
            Status::Closed => self.closed_at = Some(now),
            // Reopened: the last resolution no longer counts (auto-close uses it).
            _ if from == Status::Resolved => self.resolved_at = None,
            _ => {}
        }
        Some(DomainEvent::StatusChanged { from, to })
    }

    /// A message was posted. Staff replies answer the user (the first one is
    /// the first response); user replies put the ball back in staff's court.
    /// Internal notes change nothing. Returns the events and whether this
    /// was the first response.
    pub fn on_message(
        &mut self,
        role: AuthorRole,
        internal: bool,
        now: DateTime<Utc>,
    ) -> Result<(Vec<DomainEvent>, bool), RuleError> {
        if self.status == Status::Closed {
            return Err(RuleError::Closed);
        }
        if internal {
            return Ok((Vec::new(), false));
        }
        let mut first_response = false;
        let to = match (role, self.status) {
            (AuthorRole::Staff, status) => {
                if self.first_response_at.is_none() {
                    self.first_response_at = Some(now);
                    first_response = true;
                }
                matches!(status, Status::Open | Status::InProgress).then_some(Status::WaitingUser)
            }
            (AuthorRole::User, Status::WaitingUser | Status::Resolved) => Some(Status::InProgress),
            (AuthorRole::User, _) => None,
        };
        let events: Vec<DomainEvent> = to
            .and_then(|to| self.move_to(to, now))
            .into_iter()
            .collect();
        self.updated_at = now;
        Ok((events, first_response))
    }

    /// The owner rates the outcome, once.
    pub fn rate(
        &mut self,
        rating: Rating,
        feedback: Option<Text>,
        now: DateTime<Utc>,
    ) -> Result<(), RuleError> {
        if !matches!(self.status, Status::Resolved | Status::Closed) {
            return Err(RuleError::NotRateable(self.status));
        }
        if self.rating.is_some() {
            return Err(RuleError::AlreadyRated);
        }
        self.rating = Some(rating);
        self.rating_feedback = feedback;
        self.rated_at = Some(now);
        self.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(status: Status) -> Ticket {
        let now = Utc::now();
        Ticket {
            id: Uuid::now_v7(),
            human_id: TicketNumber::from_sequence(0),
            user_id: Uuid::now_v7().into(),
            ride_id: None,
            category_id: CategoryId::other(),
            subject: Subject::parse("s").unwrap(),
            description: Text::parse("d").unwrap(),
            priority: Priority::Medium,
            status,
            assignee_id: None,
            rating: None,
            rating_feedback: None,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            rated_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    fn to(status: Status) -> Change {
        Change {
            status: Some(status),
            ..Change::default()
        }
    }

    #[test]
    fn every_pair_follows_the_table() {
        for from in Status::ALL {
            for target in Status::ALL {
                let mut t = ticket(from);
                let result = t.apply(&to(target), Utc::now());
                if from.can_move_to(target) {
                    let events = result.unwrap();
                    assert_eq!(t.status, target);
                    assert_eq!(events.is_empty(), from == target);
                } else {
                    assert_eq!(
                        result,
                        Err(RuleError::IllegalTransition { from, to: target })
                    );
                    assert_eq!(t.status, from, "refused change must not apply");
                }
            }
        }
    }

    #[test]
    fn resolving_stamps_and_reopening_clears_resolved_at() {
        let mut t = ticket(Status::InProgress);
        t.apply(&to(Status::Resolved), Utc::now()).unwrap();
        assert!(t.resolved_at.is_some());
        t.apply(&to(Status::InProgress), Utc::now()).unwrap();
        assert!(t.resolved_at.is_none());
        t.apply(&to(Status::Closed), Utc::now()).unwrap();
        assert!(t.closed_at.is_some());
    }

    #[test]
    fn closed_tickets_take_no_edits_and_no_messages() {
        let mut t = ticket(Status::Closed);
        let change = Change {
            priority: Some(Priority::High),
            ..Change::default()
        };
        assert_eq!(t.apply(&change, Utc::now()), Err(RuleError::Closed));
        assert_eq!(t.priority, Priority::Medium);
        assert_eq!(
            t.on_message(AuthorRole::User, false, Utc::now()),
            Err(RuleError::Closed)
        );
    }

    #[test]
    fn replies_move_the_status_and_set_first_response_once() {
        let mut t = ticket(Status::Open);
        let (events, first) = t.on_message(AuthorRole::Staff, true, Utc::now()).unwrap();
        assert!(events.is_empty() && !first && t.first_response_at.is_none());
        let (events, first) = t.on_message(AuthorRole::Staff, false, Utc::now()).unwrap();
        assert!(first);
        assert_eq!(
            events,
            vec![DomainEvent::StatusChanged {
                from: Status::Open,
                to: Status::WaitingUser
            }]
        );
        let stamped = t.first_response_at;
        let (_, first) = t.on_message(AuthorRole::Staff, false, Utc::now()).unwrap();
        assert!(!first);
        assert_eq!(t.first_response_at, stamped);
        t.on_message(AuthorRole::User, false, Utc::now()).unwrap();
        assert_eq!(t.status, Status::InProgress);
    }

    #[test]
    fn rating_needs_a_resolution_and_happens_once() {
        let mut t = ticket(Status::InProgress);
        let stars = |n| Rating::parse(n).unwrap();
        assert_eq!(
            t.rate(stars(5), None, Utc::now()),
            Err(RuleError::NotRateable(Status::InProgress))
        );
        t.status = Status::Resolved;
        t.rate(stars(4), Text::parse_optional("ok").unwrap(), Utc::now())
            .unwrap();
        assert_eq!(
            t.rate(stars(5), None, Utc::now()),
            Err(RuleError::AlreadyRated)
        );
        assert_eq!(t.rating, Some(stars(4)));
    }
}
