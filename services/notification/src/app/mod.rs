//! The work behind the API: intake of events, sending, the live feed.

pub mod feed;
pub mod intake;
pub mod metrics;
pub mod sender;
