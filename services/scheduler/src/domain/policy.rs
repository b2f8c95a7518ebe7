//! What happens to the windows that became due since the last tick: which
//! run, which are skipped and why. A pure function of the windows, the time,
//! the job's policies and whether a run of it is still going, so every rule
//! is tested without a database.

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, Utc};

/// When a window is due while an earlier run of the job still runs (or
/// waits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// Record the new window as skipped.
    Skip,
    /// Queue it behind the earlier run.
    Queue,
}

/// What to do with windows missed while no scheduler ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Record them as skipped.
    Skip,
    /// Run the newest one (within the maximum lateness), skip the rest.
    Latest,
    /// Run every one within the maximum lateness, oldest first.
    All,
}

impl FromStr for Overlap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "skip" => Ok(Overlap::Skip),
            "queue" => Ok(Overlap::Queue),
            other => Err(format!("{other:?} is not an overlap policy (skip | queue)")),
        }
    }
}

impl FromStr for CatchUp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "skip" => Ok(CatchUp::Skip),
            "latest" => Ok(CatchUp::Latest),
            "all" => Ok(CatchUp::All),
            other => Err(format!(
                "{other:?} is not a catch-up policy (skip | latest | all)"
            )),
        }
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
        })
    }
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CatchUp::Skip => "skip",
            CatchUp::Latest => "latest",
            CatchUp::All => "all",
        })
    }
}

/// Why a run was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A window picked up on time.
    Schedule,
    /// A missed window run late under the catch-up policy.
    CatchUp,
    /// RunJobNow.
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::CatchUp => "catch_up",
            Trigger::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Trigger::Schedule, Trigger::CatchUp, Trigger::Manual]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// The fate of one window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    Run(Trigger),
    Skip(String),
}

/// The job's state and rules at planning time.
#[derive(Clone, Debug)]
pub struct Situation {
    pub now: DateTime<Utc>,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub max_lateness: Duration,
    /// A window picked up within this of its fire time is on time; later,
    /// it was missed (no scheduler ran then).
    pub grace: Duration,
    pub paused: bool,
    /// The earlier run still queued or running, if any (its window).
    pub busy_with: Option<DateTime<Utc>>,
}

fn late_by(now: DateTime<Utc>, window: DateTime<Utc>) -> Duration {
    (now - window).to_std().unwrap_or_default()
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60) {
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// Decides every window in `windows` (oldest first, all due).
pub fn plan(windows: &[DateTime<Utc>], s: &Situation) -> Vec<(DateTime<Utc>, Disposition)> {
    if s.paused {
        return windows
            .iter()
            .map(|w| (*w, Disposition::Skip("job paused".into())))
            .collect();
    }
    // The newest window is current when it is on time; every other window
    // was missed.
    let current = windows
        .last()
        .filter(|w| late_by(s.now, **w) <= s.grace)
        .copied();
    let missed = &windows[..windows.len() - usize::from(current.is_some())];
    let too_old = |w: &DateTime<Utc>| late_by(s.now, *w) > s.max_lateness;
    let mut out = Vec::with_capacity(windows.len());
    match s.catch_up {
        CatchUp::Skip => {
            for w in missed {
                out.push((
                    *w,
                    Disposition::Skip(format!(
                        "missed while no scheduler ran (found {} late; catch-up policy skip)",
                        human(late_by(s.now, *w))
                    )),
                ));
            }
        }
        CatchUp::Latest => {
            let chosen = match current {
                Some(_) => None,
                None => missed.last().filter(|w| !too_old(w)).copied(),
            };
            let newer = current.or(chosen);
            for w in missed {
                let why = if Some(*w) == chosen {
                    out.push((*w, Disposition::Run(Trigger::CatchUp)));
                    continue;
                } else if let Some(newer) = newer {
                    format!(
                        "missed while no scheduler ran; superseded by the window at {newer} (catch-up policy latest)"
                    )
                } else {
                    format!(
                        "missed while no scheduler ran; {} late, more than the maximum lateness of {}",
                        human(late_by(s.now, *w)),
                        human(s.max_lateness)
                    )
                };
                out.push((*w, Disposition::Skip(why)));
            }
        }
        CatchUp::All => {
            for w in missed {
                if too_old(w) {
                    out.push((
                        *w,
                        Disposition::Skip(format!(
                            "missed while no scheduler ran; {} late, more than the maximum lateness of {}",
                            human(late_by(s.now, *w)),
                            human(s.max_lateness)
                        )),
                    ));
                } else {
                    out.push((*w, Disposition::Run(Trigger::CatchUp)));
                }
            }
        }
    }
    if let Some(w) = current {
        out.push((w, Disposition::Run(Trigger::Schedule)));
    }
    // Overlap: windows that would start while an earlier run still goes.
    if let (Some(busy), Overlap::Skip) = (s.busy_with, s.overlap) {
        for (_, d) in &mut out {
            if matches!(d, Disposition::Run(_)) {
                *d = Disposition::Skip(format!(
                    "the run of the window at {busy} was still going (overlap policy skip)"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0).unwrap()
    }

    fn situation(catch_up: CatchUp) -> Situation {
        Situation {
            now: at(5),
            overlap: Overlap::Skip,
            catch_up,
            max_lateness: Duration::from_secs(3 * 3600 + 1),
            grace: Duration::from_secs(60),
            paused: false,
            busy_with: None,
        }
    }

    fn runs(plan: &[(DateTime<Utc>, Disposition)]) -> Vec<(u32, Trigger)> {
        use chrono::Timelike;
        plan.iter()
            .filter_map(|(w, d)| match d {
                Disposition::Run(t) => Some((w.hour(), *t)),
                Disposition::Skip(_) => None,
            })
            .collect()
    }

    const HOURS: [u32; 5] = [1, 2, 3, 4, 5];

    fn windows() -> Vec<DateTime<Utc>> {
        HOURS.iter().map(|h| at(*h)).collect()
    }

    #[test]
    fn an_on_time_window_runs() {
        let p = plan(&[at(5)], &situation(CatchUp::Skip));
        assert_eq!(runs(&p), vec![(5, Trigger::Schedule)]);
    }

    #[test]
    fn catch_up_skip_runs_only_the_current_window() {
        let p = plan(&windows(), &situation(CatchUp::Skip));
        assert_eq!(runs(&p), vec![(5, Trigger::Schedule)]);
        assert_eq!(p.len(), 5);
        assert!(matches!(&p[0].1, Disposition::Skip(r) if r.contains("catch-up policy skip")));
    }

    #[test]
    fn catch_up_latest_runs_the_newest_missed_window_when_none_is_current() {
        let mut s = situation(CatchUp::Latest);
        s.now = at(5) + chrono::Duration::minutes(30);
        let p = plan(&windows(), &s);
        assert_eq!(runs(&p), vec![(5, Trigger::CatchUp)]);
        assert!(matches!(&p[0].1, Disposition::Skip(r) if r.contains("superseded")));
        // Too late for even the newest: everything skipped, saying why.
        s.now = at(12);
        let p = plan(&windows(), &s);
        assert!(runs(&p).is_empty());
        assert!(matches!(&p[4].1, Disposition::Skip(r) if r.contains("maximum lateness")));
    }

    #[test]
    fn catch_up_all_runs_every_window_within_the_maximum_lateness() {
        let p = plan(&windows(), &situation(CatchUp::All));
        assert_eq!(
            runs(&p),
            vec![
                (2, Trigger::CatchUp),
                (3, Trigger::CatchUp),
                (4, Trigger::CatchUp),
                (5, Trigger::Schedule)
            ]
        );
        assert!(matches!(&p[0].1, Disposition::Skip(r) if r.contains("maximum lateness")));
    }

    #[test]
    fn overlap_skip_skips_while_busy_and_queue_keeps_them() {
        let mut s = situation(CatchUp::Skip);
        s.busy_with = Some(at(4));
        let p = plan(&[at(5)], &s);
        assert!(matches!(&p[0].1, Disposition::Skip(r) if r.contains("overlap policy skip")));
        s.overlap = Overlap::Queue;
        assert_eq!(runs(&plan(&[at(5)], &s)), vec![(5, Trigger::Schedule)]);
    }

    #[test]
    fn a_paused_job_skips_every_window() {
        let mut s = situation(CatchUp::All);
        s.paused = true;
        let p = plan(&windows(), &s);
        assert!(
            p.iter()
                .all(|(_, d)| *d == Disposition::Skip("job paused".into()))
        );
    }

    #[test]
    fn policies_parse() {
        assert_eq!("queue".parse::<Overlap>().unwrap(), Overlap::Queue);
        assert_eq!("latest".parse::<CatchUp>().unwrap(), CatchUp::Latest);
        assert!("sometimes".parse::<CatchUp>().is_err());
    }
}
