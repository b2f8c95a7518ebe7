//! The service-level targets (`SLA_TARGETS`): how soon a ticket of each
//! priority must get its first staff reply and be resolved. Read by the
//! scheduler (overdue alerts) and the ticket service (the dashboard's
//! "within target" shares), so both parse one format with one default.

use std::time::Duration;

/// `SLA_TARGETS` default: first response / resolution hours per priority.
pub const DEFAULT: &str = "urgent=1/4,high=4/24,medium=8/48,low=24/72";

/// First-response and resolution targets per priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaTargets {
    /// (priority name, first response within, resolution within), in the
    /// order given.
    pub by_priority: Vec<(String, Duration, Duration)>,
}

impl SlaTargets {
    /// Parses `urgent=1/4,high=4/24,...` (whole hours). Priorities not named
    /// have no target.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut by_priority: Vec<(String, Duration, Duration)> = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let malformed = || format!("{part:?}: expected priority=first/resolution");
            let (priority, targets) = part.split_once('=').ok_or_else(malformed)?;
            let (first, resolution) = targets.split_once('/').ok_or_else(malformed)?;
            let h = |s: &str| {
                s.trim()
                    .parse::<u64>()
                    .map(|h| Duration::from_secs(h * 3600))
                    .map_err(|_| format!("{part:?}: {s:?} is not a whole number of hours"))
            };
            let priority = priority.trim().to_ascii_lowercase();
            if !["urgent", "high", "medium", "low"].contains(&priority.as_str()) {
                return Err(format!(
                    "{priority:?} is not a priority (urgent, high, medium, low)"
                ));
            }
            if by_priority.iter().any(|(p, ..)| *p == priority) {
                return Err(format!("{priority:?} is named twice"));
            }
            by_priority.push((priority, h(first)?, h(resolution)?));
        }
        if by_priority.is_empty() {
            return Err("name at least one priority".into());
        }
        Ok(Self { by_priority })
    }

    /// The (first response, resolution) targets of `priority`, if it has any.
    pub fn of(&self, priority: &str) -> Option<(Duration, Duration)> {
        self.by_priority
            .iter()
            .find(|(p, ..)| p == priority)
            .map(|(_, first, resolution)| (*first, *resolution))
    }
}

impl Default for SlaTargets {
    fn default() -> Self {
        Self::parse(DEFAULT).expect("the default SLA parses")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_parses_and_bad_forms_are_refused() {
        let sla = SlaTargets::default();
        assert_eq!(sla.by_priority.len(), 4);
        assert_eq!(
            sla.of("urgent"),
            Some((Duration::from_secs(3600), Duration::from_secs(4 * 3600)))
        );
        assert_eq!(SlaTargets::parse("high=2/8").unwrap().of("low"), None);
        assert!(SlaTargets::parse("urgent=1").is_err());
        assert!(SlaTargets::parse("critical=1/2").is_err());
        assert!(SlaTargets::parse("low=1/2,low=3/4").is_err());
        assert!(SlaTargets::parse("").is_err());
    }
}
