//! The scheduler's rules, free of gRPC, SQL and protobuf: schedules and
//! their DST behaviour, the jobs, the overlap and catch-up policies, run
//! states, statistics days.

pub mod job;
pub mod policy;
pub mod run;
pub mod schedule;
pub mod stats;

pub use job::{JobKind, JobSpec};
pub use policy::{CatchUp, Disposition, Overlap, Situation, Trigger};
pub use run::RunState;
pub use schedule::Schedule;
