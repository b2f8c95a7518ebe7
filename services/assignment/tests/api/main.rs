//! The assignment service over real gRPC, PostgreSQL and RabbitMQ, with the
//! real ticket service (and its outbox relay) and the platform stand-in
//! in-process. One test binary (modules below) so it links once.

mod access;
mod durable;
mod events;
mod faults;
mod helpers;
mod load;
mod roster;
mod routing;
mod workload;
