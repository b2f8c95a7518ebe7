//! The ways out of the building: SMTP email and the HTTP push gateway. Each
//! channel sends one thing and says how it failed; whether and when to try
//! again is the sender's business (app::sender).

pub mod email;
pub mod push;

/// Why a send did not go through, classified once, where the protocol is
/// understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// May clear by itself (a 4xx or 5xx that says "later", a timeout, a
    /// refused connection): try again within the retry budget.
    #[error("{0}")]
    Transient(String),
    /// Will not clear by retrying (an unknown mailbox, a refused payload):
    /// fail the delivery now.
    #[error("{0}")]
    Permanent(String),
}
