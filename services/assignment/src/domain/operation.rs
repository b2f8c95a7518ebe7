//! Durable work: moves (one decided change of holder, still to be told to
//! the ticket service) and operations (an intent recorded by an RPC that a
//! worker carries out one decision at a time).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A decided change of a ticket's holder, pending until the ticket service
/// answers. Its `request_id` is fixed when decided, so every attempt is the
/// same request and the ticket service applies it once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub id: i64,
    pub ticket_id: Uuid,
    pub from: Option<Uuid>,
    /// `None`: leave the ticket unassigned.
    pub to: Option<Uuid>,
    pub request_id: Uuid,
}

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationKind {
    /// Hand an agent's open tickets to others (off shift or gone).
    Redistribute(Uuid),
    /// Even out workloads across agents on shift.
    Rebalance,
}

/// An operation and how far it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub id: Uuid,
    pub kind: OperationKind,
    /// No decision is left to make (its moves may still be pending).
    pub decided: bool,
    /// Moves decided so far.
    pub moved: i32,
    /// Moves decided but not yet answered by the ticket service.
    pub pending: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Operation {
    /// Finished: nothing left to decide and every move answered.
    pub fn done(&self) -> bool {
        self.decided && self.pending == 0
    }
}
