//! Per-session rate limit: a token bucket per conversation key.
//!
//! A bucket holds up to `per_minute` tokens and refills evenly over a minute, so a visitor
//! may send a short burst but not a flood. Full buckets carry no information, so
//! [`RateLimiter::prune`] drops them to keep memory bounded by active visitors.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// Buckets kept before an inline prune, so a flood of fresh sessions can not grow the map forever.
const PRUNE_ABOVE: usize = 100_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets keyed by conversation key.
pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` messages per key and minute.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; false when the bucket is empty.
    pub fn allow(&self, key: &str, now: Instant) -> bool {
        let mut buckets = self.lock();
        if buckets.len() > PRUNE_ABOVE {
            self.prune_locked(&mut buckets, now);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.per_minute,
            updated: now,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives back the token of a message that did not count: storage was down (the widget
    /// retries it) or it was a resend of a message already stored.
    pub fn refund(&self, key: &str) {
        if let Some(bucket) = self.lock().get_mut(key) {
            bucket.tokens = (bucket.tokens + 1.0).min(self.per_minute);
        }
    }

    /// Drops buckets that have refilled completely.
    pub fn prune(&self, now: Instant) {
        let mut buckets = self.lock();
        self.prune_locked(&mut buckets, now);
    }

    /// How many buckets are kept, for tests.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn prune_locked(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| {
            self.refill(bucket, now);
            bucket.tokens < self.per_minute
        });
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_minute / 60.0).min(self.per_minute);
        bucket.updated = now;
    }

    // Every edit is a single assignment, so a poisoned map is still consistent.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_refills_over_the_minute() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        assert!(limiter.allow("s:a", start));
        assert!(limiter.allow("s:a", start));
        assert!(limiter.allow("s:a", start));
        assert!(!limiter.allow("s:a", start));
        // Another visitor has their own bucket.
        assert!(limiter.allow("s:b", start));
        // One token comes back every 20 s at 3 per minute.
        assert!(!limiter.allow("s:a", start + Duration::from_secs(19)));
        assert!(limiter.allow("s:a", start + Duration::from_secs(40)));
    }

    #[test]
    fn prune_forgets_idle_visitors() {
        let limiter = RateLimiter::new(2);
        let start = Instant::now();
        assert!(limiter.allow("s:a", start));
        limiter.prune(start);
        assert_eq!(limiter.tracked(), 1);
        limiter.prune(start + Duration::from_secs(61));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn a_refunded_token_can_be_spent_again() {
        let limiter = RateLimiter::new(2);
        let now = Instant::now();
        assert!(limiter.allow("s:a", now));
        assert!(limiter.allow("s:a", now));
        assert!(!limiter.allow("s:a", now));
        limiter.refund("s:a");
        assert!(
            limiter.allow("s:a", now),
            "a refunded retry is not rate limited"
        );
        assert!(!limiter.allow("s:a", now));
        limiter.refund("s:a");
        limiter.refund("s:a");
        limiter.refund("s:a");
        assert!(limiter.allow("s:a", now) && limiter.allow("s:a", now));
        assert!(
            !limiter.allow("s:a", now),
            "refunds never exceed the bucket"
        );
    }
}
