//! gRPC handlers: protobuf in, domain calls, protobuf out. Each handler
//! validates the whole request first (all field violations at once), calls
//! dependencies before opening a transaction, then does its writes, its
//! outbox events and its idempotency record in one transaction.

pub mod categories;
mod convert;
mod events;
pub mod tickets;
