//! Every SQL statement of the assignment service, checked at compile time
//! against the migrations (offline data in `.sqlx/`). Writers take the
//! caller's connection, so the engine decides what commits together; every
//! write runs inside a transaction holding the decision lock (`engine`).

pub mod agents;
pub mod assignments;
pub mod escalations;
pub mod moves;
pub mod operations;

/// A stored value that does not parse back is corruption, i.e. a bug.
fn corrupt(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored {what} {value:?} is not valid").into())
}
