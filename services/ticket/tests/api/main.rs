//! The ticket service over real gRPC: the real server on a free port, a
//! fresh PostgreSQL database per test, the platform stand-in in-process.
//! One test binary (modules below) so it links once.

mod attachments;
mod auth_matrix;
mod bad_input;
mod batch;
mod callers;
mod categories;
mod events;
mod faq;
mod faults;
mod grpc_web;
mod helpers;
mod idempotency;
mod jobs;
mod messages;
mod platform;
mod search;
mod stats;
mod status_machine;
mod tickets;
