//! The notification rules, free of gRPC, SQL and protobuf: kinds and
//! channels, who hears what, preferences, retry timing, feed cursors.

pub mod audience;
pub mod kind;
pub mod preferences;
pub mod retry;

pub use kind::{Audience, Channel, Kind};
