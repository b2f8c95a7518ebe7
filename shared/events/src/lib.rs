//! Helpdesk's asynchronous facts, written once for every service.
//!
//! A change and its event commit in one transaction (the outbox); a relay
//! publishes committed events to RabbitMQ in order; consumers apply each
//! event once in their own transaction. Only services that produce or
//! consume events link this crate (and so lapin).
//!
//! - [`outbox`]: events written in the same transaction as the change.
//! - [`relay`]: publishes the outbox to RabbitMQ, in order, at least once.
//! - [`consumer`]: the consumer loop: dedup, retries, dead letters.
//! - [`amqp`]: connection, exchange, headers and backoff shared by both.
//! - [`metrics`]: the Prometheus series of the relay and the consumers.
//! - [`ops`]: the outbox backlog over gRPC for operators.

#![warn(missing_docs, unreachable_pub)]

pub mod amqp;
pub mod consumer;
pub mod metrics;
pub mod ops;
pub mod outbox;
pub mod relay;
