//! The notification service over real gRPC, PostgreSQL and RabbitMQ, fed by
//! the real ticket service (and its outbox relay), with the platform
//! stand-in in process. One test binary (modules below) so it links once.

mod access;
mod audience;
mod feed;
mod helpers;
mod preferences;
