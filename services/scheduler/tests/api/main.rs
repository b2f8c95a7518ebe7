//! The scheduler over real gRPC and PostgreSQL, with a manual clock and a
//! recording stand-in for the ticket-service work; `jobs` runs the real
//! ticket service in process instead (`world`). Replicas share one
//! database as separate schedulers would. One test binary (modules below)
//! so it links once.

mod access;
mod catch_up;
mod claims;
mod helpers;
mod jobs;
mod operations;
mod timezones;
mod world;
