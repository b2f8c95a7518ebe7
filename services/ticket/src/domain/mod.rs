//! The ticket domain: states, rules and validated values. It knows nothing
//! of gRPC or SQL; `api/` translates to it and `storage/` persists it.

pub mod fields;
pub mod status;
pub mod ticket;
pub mod ticket_number;

pub use status::{Priority, Status};
pub use ticket::{Change, DomainEvent, Message, Ticket};
