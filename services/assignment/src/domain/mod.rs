//! The assignment domain: agents, assignments, priorities and the pure rules
//! around them (valid values, deterministic request ids, rebalancing steps).
//! It knows nothing of gRPC, SQL or protobuf; `api/` and `clients/`
//! translate to it, `storage/` persists it, `app/` decides with it.

pub mod agent;
pub mod assignment;
pub mod priority;
pub mod rebalance;
pub mod ticket_ref;

pub use agent::{Agent, Tier};
pub use assignment::{Assignment, request_id};
pub use priority::Priority;
pub use ticket_ref::TicketRef;
