//! When a job fires: a cron expression read in an IANA time zone.
//!
//! Evaluated with `croner`, whose DST rules are the ones operators expect
//! of a daily job: a fixed local time that falls into a spring-forward gap
//! fires once, right after the gap; a fixed local time in the repeated
//! fall-back hour fires once, at its first occurrence. Interval patterns
//! (`0 */6 * * *`) follow real time. Every instant leaves this module in UTC,
//! so the rest of the service never compares local times.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::{
    Cron,
    parser::{CronParser, Seconds},
};

/// A parsed schedule: only valid expressions and zones can be held.
#[derive(Clone, Debug)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    zone: Tz,
}

impl Schedule {
    /// Parses `expression` (5 fields, or 6 with leading seconds) in `zone`
    /// (an IANA name such as `Europe/Berlin`).
    pub fn parse(expression: &str, zone: &str) -> Result<Self, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression.trim())
            .map_err(|e| format!("{expression:?} is not a cron expression: {e}"))?;
        let zone =
            Tz::from_str(zone.trim()).map_err(|_| format!("{zone:?} is not an IANA time zone"))?;
        Ok(Self {
            expression: expression.trim().to_owned(),
            cron,
            zone,
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first fire time strictly after `after`; `None` when the pattern
    /// never fires again (e.g. a year field in the past).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Fire times in `(after, until]`, oldest first, at most `limit`.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        // Feed each result back in as the next start (croner's advice: the
        // exact value it returned keeps a search on the right pass of a
        // repeated hour).
        let mut at = after.with_timezone(&self.zone);
        while out.len() < limit {
            match self.cron.find_next_occurrence(&at, false) {
                Ok(next) if next.with_timezone(&Utc) <= until => {
                    out.push(next.with_timezone(&Utc));
                    at = next;
                }
                _ => break,
            }
        }
        out
    }

    /// The next `n` fire times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.between(after, DateTime::<Utc>::MAX_UTC, n)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn a_daily_0230_job_fires_once_on_the_spring_forward_day_right_after_the_gap() {
        // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST.
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fires = s.between(utc(2026, 3, 27, 12, 0), utc(2026, 3, 31, 12, 0), 10);
        assert_eq!(
            fires,
            vec![
                utc(2026, 3, 28, 1, 30), // 02:30 CET
                utc(2026, 3, 29, 1, 0),  // 03:00 CEST, right after the gap
                utc(2026, 3, 30, 0, 30), // 02:30 CEST
                utc(2026, 3, 31, 0, 30),
            ]
        );
    }

    #[test]
    fn a_daily_0230_job_fires_once_on_the_fall_back_day() {
        // Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET, so
        // 02:30 happens twice.
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fires = s.between(utc(2026, 10, 23, 12, 0), utc(2026, 10, 27, 12, 0), 10);
        assert_eq!(
            fires,
            vec![
                utc(2026, 10, 24, 0, 30), // 02:30 CEST
                utc(2026, 10, 25, 0, 30), // the first 02:30 (CEST) only
                utc(2026, 10, 26, 1, 30), // 02:30 CET
                utc(2026, 10, 27, 1, 30),
            ]
        );
    }

    #[test]
    fn interval_schedules_follow_real_time() {
        let s = Schedule::parse("0 */6 * * *", "UTC").unwrap();
        assert_eq!(
            s.upcoming(utc(2026, 3, 1, 5, 0), 3),
            vec![
                utc(2026, 3, 1, 6, 0),
                utc(2026, 3, 1, 12, 0),
                utc(2026, 3, 1, 18, 0)
            ]
        );
    }

    #[test]
    fn between_is_open_at_the_start_and_closed_at_the_end() {
        let s = Schedule::parse("0 * * * *", "UTC").unwrap();
        let fires = s.between(utc(2026, 3, 1, 1, 0), utc(2026, 3, 1, 3, 0), 10);
        assert_eq!(fires, vec![utc(2026, 3, 1, 2, 0), utc(2026, 3, 1, 3, 0)]);
        assert_eq!(
            s.between(utc(2026, 3, 1, 1, 0), utc(2026, 3, 1, 9, 0), 2)
                .len(),
            2
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        assert!(Schedule::parse("61 * * * *", "UTC").is_err());
        assert!(Schedule::parse("every day", "UTC").is_err());
        assert!(Schedule::parse("0 0 * * *", "Mars/Olympus").is_err());
    }
}
