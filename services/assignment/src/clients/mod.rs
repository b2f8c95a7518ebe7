//! The services we call, each behind a small client that speaks domain
//! terms: protobuf and status codes stop here. Every call carries a service
//! token and a deadline; what may pass with time becomes UNAVAILABLE.

pub mod accounts;
pub mod tickets;
