//! A day's support statistics: what the statistics job stores and
//! `GetDailyStats` serves. Computed by the ticket service (it owns the
//! tickets); this service keeps one snapshot per day in its own database.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DailyStats {
    pub created: i64,
    pub resolved: i64,
    pub closed: i64,
    /// Tickets created that day, by category id.
    pub created_by_category: Vec<(String, i64)>,
    /// Tickets created that day, by priority name.
    pub created_by_priority: Vec<(String, i64)>,
    pub first_response_median_seconds: i64,
    pub first_response_p90_seconds: i64,
    pub resolution_median_seconds: i64,
    pub resolution_p90_seconds: i64,
    pub average_rating: f64,
    pub rating_count: i64,
    pub agents: Vec<AgentDay>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentDay {
    pub agent_id: String,
    pub assigned: i64,
    pub resolved: i64,
    pub replies: i64,
}

/// The local calendar day a statistics run computes, and its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsDay {
    pub day: NaiveDate,
    /// The first instant of the day in the zone.
    pub from: DateTime<Utc>,
    /// The first instant of the next day.
    pub until: DateTime<Utc>,
}

/// The last complete local day before `as_of` in `zone` (a run at local
/// midnight computes the day that just ended). Days are 23 or 25 hours
/// long across DST changes; the bounds say so.
pub fn day_before(as_of: DateTime<Utc>, zone: Tz) -> StatsDay {
    let today = as_of.with_timezone(&zone).date_naive();
    let day = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    StatsDay {
        day,
        from: start_of(day, zone),
        until: start_of(today, zone),
    }
}

/// The first instant of `day` in `zone` (midnight, or the end of a DST gap
/// in the zones whose clocks jump at midnight).
fn start_of(day: NaiveDate, zone: Tz) -> DateTime<Utc> {
    (0..=2)
        .find_map(|hour| {
            zone.from_local_datetime(
                &day.and_time(NaiveTime::from_hms_opt(hour, 0, 0).expect("valid hour")),
            )
            .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| day.and_time(NaiveTime::MIN).and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_before_a_spring_forward_midnight_run_is_23_hours() {
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        // Midnight 2026-03-30 CEST = 2026-03-29 22:00 UTC.
        let as_of = Utc.with_ymd_and_hms(2026, 3, 29, 22, 0, 0).unwrap();
        let d = day_before(as_of, zone);
        assert_eq!(d.day, NaiveDate::from_ymd_opt(2026, 3, 29).unwrap());
        assert_eq!((d.until - d.from).num_hours(), 23);
    }
}
