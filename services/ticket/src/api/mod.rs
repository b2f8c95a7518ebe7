//! gRPC handlers: protobuf in, authorization, domain calls, protobuf out.
//! `domain/` and `storage/` never see a protobuf type, so events are built
//! here too, from domain events. Each handler validates the whole request
//! first (all field violations at once), calls dependencies before opening a
//! transaction, then does its writes, its outbox events and its idempotency
//! record in one transaction.

mod access;
pub mod categories;
mod convert;
mod events;
pub mod jobs;
mod requests;
pub mod stats;
pub mod tickets;
