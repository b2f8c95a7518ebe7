//! When a failed delivery is tried again: exponential backoff with full
//! jitter, within a budget counted from the delivery's creation; past the
//! budget it fails for good.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// `RETRY_FIRST_MS`, `RETRY_MAX_MS`, `RETRY_BUDGET_SECS`.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Delay before the second attempt (doubling after each failure).
    pub first: Duration,
    /// Longest delay between two attempts.
    pub max: Duration,
    /// How long after creation a delivery may still be retried (default 24 h).
    pub budget: Duration,
}

impl RetryPolicy {
    /// The next attempt after `attempts` failed ones, or `None` when it
    /// would fall outside the budget. `jitter` in `[0, 1)` spreads retries
    /// so a provider coming back is not hit by every delivery at once.
    pub fn next_attempt(
        &self,
        created: DateTime<Utc>,
        now: DateTime<Utc>,
        attempts: u32,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        let exp = self
            .first
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(30)))
            .min(self.max);
        // Half fixed, half jittered: never sooner than half the backoff.
        let delay = exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        let at = now + chrono::Duration::from_std(delay).ok()?;
        let deadline = created + chrono::Duration::from_std(self.budget).ok()?;
        (at <= deadline).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_up_to_the_cap_and_gives_up_after_the_budget() {
        let policy = RetryPolicy {
            first: Duration::from_secs(10),
            max: Duration::from_secs(3600),
            budget: Duration::from_secs(24 * 3600),
        };
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let first = policy.next_attempt(t0, t0, 1, 0.999).unwrap();
        assert!(first - t0 <= chrono::Duration::seconds(10));
        assert!(first - t0 >= chrono::Duration::seconds(5));
        let late = policy.next_attempt(t0, t0, 20, 0.999).unwrap();
        assert!(late - t0 <= chrono::Duration::seconds(3600));
        let past = t0 + chrono::Duration::hours(24);
        assert_eq!(policy.next_attempt(t0, past, 3, 0.0), None);
    }
}
