//! The jobs this service runs and the settings each one has. The list is
//! fixed in code (each job needs code behind it); schedules, policies and
//! thresholds come from configuration.

use std::{fmt, str::FromStr, time::Duration};

use super::{
    policy::{CatchUp, Overlap},
    schedule::Schedule,
};

/// One of the periodic jobs (the original's Celery beat tasks, plus the
/// rating request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    AutoCloseResolvedTickets,
    SendOverdueTicketAlerts,
    EscalateOldOpenTickets,
    SendRatingRequests,
    SendUnratedTicketReminders,
    GenerateSupportStatistics,
    UpdateFaqAnalytics,
}

impl JobKind {
    pub const ALL: [JobKind; 7] = [
        JobKind::AutoCloseResolvedTickets,
        JobKind::SendOverdueTicketAlerts,
        JobKind::EscalateOldOpenTickets,
        JobKind::SendRatingRequests,
        JobKind::SendUnratedTicketReminders,
        JobKind::GenerateSupportStatistics,
        JobKind::UpdateFaqAnalytics,
    ];

    /// The name in the database, the API and the environment
    /// (`JOB_<NAME>_SCHEDULE`, upper-cased).
    pub fn name(self) -> &'static str {
        match self {
            JobKind::AutoCloseResolvedTickets => "auto_close_resolved_tickets",
            JobKind::SendOverdueTicketAlerts => "send_overdue_ticket_alerts",
            JobKind::EscalateOldOpenTickets => "escalate_old_open_tickets",
            JobKind::SendRatingRequests => "send_rating_requests",
            JobKind::SendUnratedTicketReminders => "send_unrated_ticket_reminders",
            JobKind::GenerateSupportStatistics => "generate_support_statistics",
            JobKind::UpdateFaqAnalytics => "update_faq_analytics",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            JobKind::AutoCloseResolvedTickets => {
                "Closes tickets resolved more than AUTO_CLOSE_AFTER_HOURS before the run's as-of time."
            }
            JobKind::SendOverdueTicketAlerts => {
                "Emits one TicketOverdue per ticket per breach of its priority's first-response or resolution target."
            }
            JobKind::EscalateOldOpenTickets => {
                "Raises the priority of tickets open longer than ESCALATE_AFTER_HOURS by one level and emits TicketEscalated."
            }
            JobKind::SendRatingRequests => {
                "Asks once for a rating of tickets resolved RATING_REQUEST_AFTER_HOURS ago and still unrated."
            }
            JobKind::SendUnratedTicketReminders => {
                "Reminds users asked for a rating RATING_REMINDER_AFTER_HOURS ago, at most RATING_REMINDERS_MAX times."
            }
            JobKind::GenerateSupportStatistics => {
                "Stores the previous day's statistics snapshot (STATS_TIME_ZONE), served by GetDailyStats."
            }
            JobKind::UpdateFaqAnalytics => {
                "Per-FAQ views and helpful / not-helpful votes over the 7 and 30 whole days (UTC) before the as-of, through ComputeFaqAnalytics."
            }
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for JobKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("{s:?} is not a job of this service"))
    }
}

/// How one job is scheduled.
#[derive(Clone, Debug)]
pub struct JobSpec {
    pub kind: JobKind,
    pub schedule: Schedule,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    /// Missed windows older than this are never run.
    pub max_lateness: Duration,
}
