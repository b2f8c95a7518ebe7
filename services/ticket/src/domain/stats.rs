//! The staff dashboard's figures (`GetTicketStats`): what is asked (a time
//! range of ticket creation, optionally one category or one agent) and what
//! comes back. Every figure is over the range's cohort, the tickets created
//! in it, so a range's numbers describe one set of tickets and can be
//! checked against it. The SQL that computes them is `storage/stats.rs`.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{AccountId, CategoryId};

/// The longest range the dashboard serves in one call.
pub const LONGEST_RANGE_DAYS: i64 = 366;
/// The range when the caller names no start.
pub const DEFAULT_RANGE_DAYS: i64 = 30;

/// A checked request: `from < until`, at most [`LONGEST_RANGE_DAYS`] apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsQuery {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub category: Option<CategoryId>,
    pub agent: Option<AccountId>,
}

impl StatsQuery {
    /// Fills the defaults (`until` now, `from` 30 days before `until`) and
    /// checks the range; the error names the field at fault.
    pub fn new(
        from: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        category: Option<CategoryId>,
        agent: Option<AccountId>,
    ) -> Result<Self, (&'static str, String)> {
        let until = until.unwrap_or(now);
        let from = from.unwrap_or(until - Duration::days(DEFAULT_RANGE_DAYS));
        if from >= until {
            return Err(("end_time", "must be after start_time".into()));
        }
        if until - from > Duration::days(LONGEST_RANGE_DAYS) {
            return Err((
                "end_time",
                format!("must be at most {LONGEST_RANGE_DAYS} days after start_time"),
            ));
        }
        Ok(Self {
            from,
            until,
            category,
            agent,
        })
    }
}

/// Figures over a span of time from creation (first reply, resolution).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DurationFigures {
    /// Tickets that have the span.
    pub count: i64,
    /// `None` when `count` is 0.
    pub median: Option<Duration>,
    pub p90: Option<Duration>,
    /// Tickets whose outcome against their target is known: they have the
    /// span, or are already past the target without it.
    pub target_known: i64,
    /// Of those, the ones that met the target.
    pub within_target: i64,
}

impl DurationFigures {
    /// The share that met the target, when any outcome is known.
    pub fn within_target_share(&self) -> Option<f64> {
        (self.target_known > 0).then(|| self.within_target as f64 / self.target_known as f64)
    }
}

/// One agent's tickets of the range.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentFigures {
    pub agent: Uuid,
    pub assigned: i64,
    pub resolved: i64,
    pub first_response_median: Option<Duration>,
    pub average_rating: Option<f64>,
    pub rating_count: i64,
}

/// Everything the dashboard shows for one query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TicketFigures {
    pub total: i64,
    /// (key, count), keys with no ticket left out, sorted by key.
    pub by_status: Vec<(String, i64)>,
    pub by_priority: Vec<(String, i64)>,
    pub by_category: Vec<(String, i64)>,
    pub first_response: DurationFigures,
    pub resolution: DurationFigures,
    pub average_rating: Option<f64>,
    /// Tickets rated 1..=5 stars.
    pub rating_distribution: [i64; 5],
    /// Most assigned first, then by agent id.
    pub agents: Vec<AgentFigures>,
}

impl TicketFigures {
    pub fn rating_count(&self) -> i64 {
        self.rating_distribution.iter().sum()
    }
}

/// Seconds as a span, rounded to the millisecond (percentiles interpolate).
pub fn seconds(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    #[test]
    fn defaults_fill_a_thirty_day_range_ending_now() {
        let q = StatsQuery::new(None, None, at(1000), None, None).unwrap();
        assert_eq!((q.from, q.until), (at(1000 - 30 * 24), at(1000)));
        let q = StatsQuery::new(None, Some(at(500)), at(1000), None, None).unwrap();
        assert_eq!(q.from, at(500 - 30 * 24));
    }

    #[test]
    fn empty_backwards_and_overlong_ranges_are_refused() {
        assert_eq!(
            StatsQuery::new(Some(at(5)), Some(at(5)), at(9), None, None)
                .unwrap_err()
                .0,
            "end_time"
        );
        assert!(StatsQuery::new(Some(at(6)), Some(at(5)), at(9), None, None).is_err());
        assert!(StatsQuery::new(Some(at(0)), Some(at(367 * 24)), at(9), None, None).is_err());
        assert!(StatsQuery::new(Some(at(0)), Some(at(366 * 24)), at(9), None, None).is_ok());
    }

    #[test]
    fn the_share_is_over_known_outcomes_only() {
        let mut f = DurationFigures::default();
        assert_eq!(f.within_target_share(), None);
        f.target_known = 4;
        f.within_target = 3;
        assert_eq!(f.within_target_share(), Some(0.75));
    }
}
