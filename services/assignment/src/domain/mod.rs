//! The assignment domain: agents, assignments, priorities and the pure rules
//! around them (valid values, who gets a ticket, deterministic request ids, rebalancing
//! steps, durable moves and operations).
//! It knows nothing of gRPC, SQL or protobuf; `api/` and `clients/`
//! translate to it, `storage/` persists it, `app/` decides with it.

pub mod agent;
pub mod assignment;
pub mod choice;
pub mod operation;
pub mod priority;
pub mod rebalance;

pub use agent::{Agent, Tier};
pub use assignment::{Assignment, request_id};
pub use choice::{Candidate, choose};
pub use helpdesk_kit::ticket_ref::TicketRef;
pub use operation::{Move, Operation, OperationKind};
pub use priority::Priority;
