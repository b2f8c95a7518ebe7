//! Every SQL statement of the ticket service, checked at compile time
//! against the migrations (offline data in `.sqlx/`). Functions take an
//! executor so handlers decide what runs in which transaction.

pub mod categories;
pub mod messages;
pub mod tickets;

/// A stored value that does not parse back is corruption, i.e. a bug.
fn corrupt(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored {what} {value:?} is not valid").into())
}
