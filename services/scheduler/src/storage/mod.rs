//! Every query of the scheduler, checked against `.sqlx/` at compile time.

pub mod jobs;
pub mod runs;
pub mod stats;
