//! What the service does, between the API and storage: the decision engine
//! and the long-running work around it (drainer, mover, operations, event
//! consumer, roster sync, reconciliation). Here, and only here, transactions are opened and
//! the decision lock is taken, so every rule about what commits together
//! lives in one layer.

pub mod consumer;
pub mod drainer;
pub mod engine;
pub mod metrics;
pub mod mover;
pub mod operations;
pub mod reconcile;
pub mod roster;
