//! The scheduler's moving parts: [`jobs`] turns a run of each job into its
//! ticket-service calls; [`scheduler`] plans windows, claims runs and
//! executes them under leases, in a supervised tick loop.

pub mod jobs;
pub mod metrics;
pub mod scheduler;
