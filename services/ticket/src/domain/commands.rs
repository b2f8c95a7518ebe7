//! What callers ask for, parsed: each command holds only valid values. `api/`
//! builds one from each request (every field violation at once); the code
//! after that cannot hold an invalid subject, rating or id.

use uuid::Uuid;

use super::{
    AccountId, CategoryDescription, CategoryId, CategoryName, Change, Priority, Rating, Subject,
    Text, TicketKey,
};

/// Whose ticket a new one is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The caller's own account (a user filing for themselves): problems
    /// with it are theirs, not a request field's.
    Caller(AccountId),
    /// An account named in `user_id` by staff or a service.
    Named(AccountId),
}

impl Owner {
    pub fn id(self) -> AccountId {
        match self {
            Owner::Caller(id) | Owner::Named(id) => id,
        }
    }
}

/// CreateTicket.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTicket {
    pub owner: Owner,
    pub ride_id: Option<Uuid>,
    pub category_id: CategoryId,
    pub subject: Subject,
    pub description: Text,
    pub priority: Priority,
}

/// UpdateTicket or AssignTicket: a staff edit of one ticket.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketEdit {
    pub key: TicketKey,
    pub change: Change,
    /// The version the caller read; `None` means "whatever it is now".
    pub etag: Option<i64>,
}

/// PostMessage.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    pub key: TicketKey,
    pub body: Text,
    pub internal: bool,
    /// Uploaded attachments to link, each once, in request order.
    pub attachments: Vec<Uuid>,
}

/// RateTicket.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRating {
    pub key: TicketKey,
    pub rating: Rating,
    pub feedback: Option<Text>,
}

/// UpdateCategory: each `Some` is to be set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CategoryEdit {
    pub name: Option<CategoryName>,
    /// `Some(None)` clears it.
    pub description: Option<Option<CategoryDescription>>,
    pub active: Option<bool>,
    pub sort_order: Option<i32>,
}
