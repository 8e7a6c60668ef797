//! How long to wait before trying again: one exponential backoff for every retry loop of the
//! gateway and its connectors (a Redis outage, a lost IMAP session, a failing poll, a crashed
//! connector), so each loop states its first wait and its cap instead of its own arithmetic.

use std::time::Duration;

/// Exponential backoff: `first`, doubling with each failure in a row up to `cap`; `reset`
/// after a success starts afresh.
///
/// With [`Backoff::with_jitter`] each wait is drawn from the lower `fraction` below the
/// exponential value, so instances that lost the same dependency at the same moment do not
/// all come back at the same moment; the cap stays an upper bound.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    jitter: f64,
    failures: u32,
}

impl Backoff {
    /// Waits `first`, then twice as long after each further failure, never more than `cap`.
    pub const fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            jitter: 0.0,
            failures: 0,
        }
    }

    /// Shortens each wait by a random part of up to `fraction` (clamped to 0..=1).
    pub fn with_jitter(mut self, fraction: f64) -> Backoff {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The wait after one more failure; the next call waits longer, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.delay_for_attempt(self.failures)
    }

    /// The wait after failed attempt number `attempt` (1 for the first failure), for loops
    /// that keep the attempt count elsewhere (a delivery's attempts live in Redis).
    pub fn delay_for_attempt(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let exponential = self
            .first
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap);
        if self.jitter == 0.0 {
            return exponential;
        }
        exponential.mul_f64(1.0 - self.jitter * rand::random::<f64>())
    }

    /// A success: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The first wait.
    pub fn first(&self) -> Duration {
        self.first
    }

    /// The longest wait.
    pub fn cap(&self) -> Duration {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn waits_double_up_to_the_cap_and_start_afresh_after_a_reset() {
        let mut backoff = Backoff::new(200 * MS, 1000 * MS);
        let waits: Vec<Duration> = (0..6).map(|_| backoff.next_delay()).collect();
        assert_eq!(
            waits,
            [
                200 * MS,
                400 * MS,
                800 * MS,
                1000 * MS,
                1000 * MS,
                1000 * MS
            ]
        );
        assert_eq!(backoff.failures(), 6);
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.next_delay(), 200 * MS);
    }

    #[test]
    fn an_attempt_number_gives_the_same_schedule_without_state() {
        let backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(3600));
        assert_eq!(backoff.delay_for_attempt(1), Duration::from_secs(5));
        assert_eq!(backoff.delay_for_attempt(3), Duration::from_secs(20));
        assert_eq!(
            backoff.delay_for_attempt(u32::MAX),
            Duration::from_secs(3600),
            "huge attempt counts stay at the cap instead of overflowing"
        );
        assert_eq!(backoff.delay_for_attempt(0), Duration::from_secs(5));
    }

    #[test]
    fn jitter_only_shortens_a_wait_and_never_beyond_its_fraction() {
        let mut backoff = Backoff::new(100 * MS, 1000 * MS).with_jitter(0.5);
        let mut spread = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let wait = backoff.delay_for_attempt(4);
            assert!(wait >= 400 * MS && wait <= 800 * MS, "{wait:?}");
            spread.insert(wait);
        }
        assert!(spread.len() > 1, "jittered waits differ");
        for _ in 0..10 {
            assert!(
                backoff.next_delay() <= 1000 * MS,
                "the cap stays an upper bound"
            );
        }
    }
}
