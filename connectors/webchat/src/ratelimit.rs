//! Rate limits: a token bucket per key, used per visitor (conversation key) and per client
//! IP (see `client_ip.rs`).
//!
//! A bucket holds up to `per_minute` tokens and refills evenly over a minute, so a visitor
//! may send a short burst but not a flood. Full buckets carry no information, so
//! [`RateLimiter::prune`] drops them to keep memory bounded by active visitors; a flood of
//! fresh keys (many sessions, many addresses) is capped at [`MAX_BUCKETS`] by evicting the
//! least recently used buckets.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most buckets kept. Reaching it prunes full buckets and, if that frees less than half, forgets
/// the least recently used down to half, so the work is amortized over many new keys.
/// Forgetting a bucket only forgives that key, and an attacker needs this many live keys.
pub const MAX_BUCKETS: usize = 100_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
    /// Last time the key asked for a token; pruning refills (and so moves `updated`) but
    /// must not make an idle key look recent.
    last_seen: Instant,
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
    #[cfg(test)]
    pub fn allow(&self, key: &str, now: Instant) -> bool {
        self.take(key, now).is_ok()
    }

    /// Takes one token for `key`, or says how long until the next token (for `Retry-After`).
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.lock();
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            self.prune_locked(&mut buckets, now);
            if buckets.len() > MAX_BUCKETS / 2 {
                evict_least_recent(&mut buckets, MAX_BUCKETS / 2);
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.per_minute,
            updated: now,
            last_seen: now,
        });
        self.refill(bucket, now);
        bucket.last_seen = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            Err(Duration::from_secs_f64(missing * 60.0 / self.per_minute))
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

/// Keeps the `keep` most recently updated buckets.
fn evict_least_recent(buckets: &mut HashMap<String, Bucket>, keep: usize) {
    let mut seen: Vec<Instant> = buckets.values().map(|bucket| bucket.last_seen).collect();
    let cut = seen.len().saturating_sub(keep);
    if cut == 0 {
        return;
    }
    let (_, &mut oldest_kept, _) = seen.select_nth_unstable(cut);
    buckets.retain(|_, bucket| bucket.last_seen >= oldest_kept);
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
    fn a_refusal_says_when_the_next_token_comes() {
        let limiter = RateLimiter::new(6);
        let start = Instant::now();
        for _ in 0..6 {
            assert!(limiter.take("ip:a", start).is_ok());
        }
        // One token every 10 s at 6 per minute; 4 s of it have passed.
        let wait = limiter
            .take("ip:a", start + Duration::from_secs(4))
            .unwrap_err();
        assert!(
            wait > Duration::from_millis(5900) && wait <= Duration::from_secs(6),
            "{wait:?}"
        );
    }

    #[test]
    fn a_flood_of_fresh_keys_stays_bounded() {
        let limiter = RateLimiter::new(1);
        let start = Instant::now();
        // Every key spends its only token, so pruning alone could not drop any of them.
        for n in 0..MAX_BUCKETS + 10_000 {
            let now = start + Duration::from_micros(n as u64);
            assert!(limiter.allow(&format!("ip:{n}"), now));
        }
        assert!(limiter.tracked() <= MAX_BUCKETS, "{}", limiter.tracked());
        // The newest keys are still limited; only the oldest were forgiven.
        let late = start + Duration::from_micros((MAX_BUCKETS + 10_000) as u64);
        assert!(!limiter.allow(&format!("ip:{}", MAX_BUCKETS + 9_999), late));
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
