//! Every SQL statement of the ticket service, checked at compile time
//! against the migrations (offline data in `.sqlx/`). Functions take an
//! executor so handlers decide what runs in which transaction. `numbers`
//! reserves ticket numbers a block at a time; `objects`
//! holds attachment bytes in object storage.

pub mod attachments;
pub mod categories;
pub mod faqs;
pub mod jobs;
pub mod messages;
pub mod numbers;
pub mod objects;
pub mod search;
pub mod stats;
pub mod tickets;

/// Parses a stored value back into its domain type. One that does not parse
/// is corruption, i.e. a bug: a decode error, never a panic.
fn stored<T, E>(
    what: &str,
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> sqlx::Result<T> {
    parse(raw)
        .map_err(|_| sqlx::Error::Decode(format!("stored {what} {raw:?} is not valid").into()))
}
