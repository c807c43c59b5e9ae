//! How long failed logins make the next attempt wait: per (username, client address) pair
//! with exponential backoff, so a guesser from one address slows down while the real user
//! from their own address is not locked out; and per address over every name (spraying).

use chrono::{DateTime, Duration, Utc};

/// The rule, from `auth.*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures of one username from one address before waits begin (`auth.max_failed_logins`).
    pub free_per_pair: i64,
    /// Failures from one address over every name before waits begin (four times the above).
    pub free_per_address: i64,
    /// The first wait (`auth.backoff_base_seconds`); each further failure doubles it.
    pub base_seconds: i64,
    /// The longest wait (`auth.lockout_seconds`).
    pub max_seconds: i64,
}

/// Failures older than this (with none since) are forgotten.
pub const MEMORY_SECONDS: i64 = 24 * 3600;

impl Backoff {
    pub fn new(max_failed_logins: u32, base_seconds: i64, max_seconds: i64) -> Self {
        let free = i64::from(max_failed_logins.max(1));
        let max_seconds = max_seconds.max(1);
        Self {
            free_per_pair: free,
            free_per_address: free.saturating_mul(4),
            base_seconds: base_seconds.clamp(1, max_seconds),
            max_seconds,
        }
    }

    /// The wait after the `failures`-th failure when `free` come without one: none before,
    /// then base, 2·base, 4·base, … up to the longest wait.
    pub fn wait_seconds(&self, failures: i64, free: i64) -> Option<i64> {
        let past = failures.checked_sub(free)?;
        if past < 0 {
            return None;
        }
        // 2^k overflows past 62; far beyond any cap anyway.
        let factor = 1i64.checked_shl(past.min(62) as u32).unwrap_or(i64::MAX);
        Some(
            self.base_seconds
                .saturating_mul(factor)
                .min(self.max_seconds),
        )
    }

    /// Until when a row is blocked after its latest failure at `at`, if at all.
    pub fn blocked_until(
        &self,
        failures: i64,
        free: i64,
        at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.wait_seconds(failures, free)
            .map(|s| at + Duration::seconds(s))
    }
}

/// Whole seconds until `until` (at least 1): what `Retry-After` says.
pub fn retry_after(until: DateTime<Utc>, now: DateTime<Utc>) -> Option<u64> {
    let ms = (until - now).num_milliseconds();
    (ms > 0).then(|| ((ms + 999) / 1000).max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_begin_after_the_free_failures_and_double_up_to_the_cap() {
        let b = Backoff::new(5, 60, 900);
        assert_eq!(b.free_per_address, 20);
        let waits: Vec<_> = (1..=10).map(|n| b.wait_seconds(n, 5)).collect();
        assert_eq!(
            waits,
            [
                None,
                None,
                None,
                None,
                Some(60),
                Some(120),
                Some(240),
                Some(480),
                Some(900),
                Some(900)
            ]
        );
        assert_eq!(b.wait_seconds(i64::MAX, 5), Some(900));
        assert_eq!(b.wait_seconds(19, b.free_per_address), None);
        assert_eq!(b.wait_seconds(20, b.free_per_address), Some(60));
    }

    #[test]
    fn settings_out_of_range_still_give_a_sane_rule() {
        let b = Backoff::new(0, 0, 0);
        assert_eq!((b.free_per_pair, b.base_seconds, b.max_seconds), (1, 1, 1));
        assert_eq!(b.wait_seconds(1, 1), Some(1));
        let b = Backoff::new(5, 5000, 900);
        assert_eq!(b.wait_seconds(5, 5), Some(900));
    }

    #[test]
    fn retry_after_rounds_up_and_is_none_once_passed() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap_or_default();
        assert_eq!(retry_after(now + Duration::milliseconds(1), now), Some(1));
        assert_eq!(
            retry_after(now + Duration::milliseconds(60_001), now),
            Some(61)
        );
        assert_eq!(retry_after(now + Duration::seconds(60), now), Some(60));
        assert_eq!(retry_after(now, now), None);
        assert_eq!(retry_after(now - Duration::seconds(5), now), None);
    }
}
