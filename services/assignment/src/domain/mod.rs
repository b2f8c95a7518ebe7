//! The assignment domain: agents, assignments and the pure rules around them
//! (valid values, deterministic request ids, rebalancing steps). It knows
//! nothing of gRPC or SQL; `api/` and `engine` translate to it, `storage/`
//! persists it.

pub mod agent;
pub mod assignment;
pub mod rebalance;

pub use agent::{Agent, Tier};
pub use assignment::{Assignment, request_id};
