//! The services this one calls: the ticket service, for every job's work.

pub mod tickets;
