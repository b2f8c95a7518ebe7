//! A run's lifecycle states, as stored.
//!
//! `queued` → `running` (claimed under a lease and a fencing token) →
//! `succeeded` | `failed` | `skipped`; `running` → `queued` again when a
//! replica stops gracefully or a transient failure waits for a retry. A
//! `running` run whose lease expired is claimed again as it is, checkpoint
//! included. `skipped` rows are also written directly for windows that never
//! run, with their reason.

use std::{fmt, str::FromStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Skipped => "skipped",
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            RunState::Queued,
            RunState::Running,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Skipped,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| format!("unknown run state {s:?}"))
    }
}
