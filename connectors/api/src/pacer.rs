//! Send pacing per key (a Slack channel, a Telegram chat): platforms answer bursts to one
//! place with 429s, and pacing here keeps the outbox from burning retries on them.
//!
//! Each key has its own FIFO lock (tokio's `Mutex` is fair) held while waiting, so one key's
//! sends leave in the order they came and other keys are not held up; an optional global gate
//! spaces all sends for platforms that also limit the whole bot.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Keys kept before idle ones (no turn booked ahead, nobody waiting) are forgotten, so a bot
/// that talks to many chats over months does not keep one entry per chat forever.
const KEYS_BEFORE_PRUNING: usize = 4096;

/// Spaces sends to each key at least `interval` apart, and optionally all sends
/// `global_interval` apart.
#[derive(Debug)]
pub struct KeyedPacer<K> {
    interval: Duration,
    /// When each key may next be sent to.
    keys: SyncMutex<HashMap<K, Arc<Mutex<Instant>>>>,
    /// The spacing of all sends, and when any key may next be sent to.
    global: Option<(Duration, Mutex<Instant>)>,
}

impl<K: Hash + Eq> KeyedPacer<K> {
    /// Sends to one key at least `interval` apart.
    pub fn new(interval: Duration) -> KeyedPacer<K> {
        KeyedPacer {
            interval,
            keys: SyncMutex::new(HashMap::new()),
            global: None,
        }
    }

    /// At most `per_second` sends per second per key (non-positive or not finite: no pacing).
    pub fn per_second(per_second: f64) -> KeyedPacer<K> {
        let interval = if per_second.is_finite() && per_second > 0.0 {
            Duration::from_secs_f64(1.0 / per_second)
        } else {
            Duration::ZERO
        };
        KeyedPacer::new(interval)
    }

    /// Also spaces all sends, whatever their key, `interval` apart.
    pub fn with_global_interval(mut self, interval: Duration) -> KeyedPacer<K> {
        self.global = Some((interval, Mutex::new(Instant::now())));
        self
    }

    /// The spacing per key.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    fn slot<Q>(&self, key: &Q) -> Arc<Mutex<Instant>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // A panic elsewhere cannot corrupt a map of instants; keep pacing.
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = keys.get(key) {
            return Arc::clone(slot);
        }
        if keys.len() >= KEYS_BEFORE_PRUNING {
            let now = Instant::now();
            keys.retain(|_, slot| {
                Arc::strong_count(slot) > 1 || slot.try_lock().map_or(true, |next| *next > now)
            });
        }
        Arc::clone(
            keys.entry(key.to_owned())
                .or_insert_with(|| Arc::new(Mutex::new(Instant::now()))),
        )
    }

    /// Waits for this key's turn (and a global slot), then books the next ones.
    pub async fn wait_turn<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let _ = self.wait_turn_within(key, Duration::MAX).await;
    }

    /// Waits for this key's turn, then for a global slot, and books the next slots; unless the
    /// key's turn is more than `limit` away (a 429's `retry_after`, a backlog): then it books
    /// nothing and says how long the wait would be, so the caller can hand the message back
    /// for later instead of holding a send open.
    pub async fn wait_turn_within<Q>(&self, key: &Q, limit: Duration) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let slot = self.slot(key);
        let mut next = slot.lock().await;
        let wait = next.saturating_duration_since(Instant::now());
        if wait > limit {
            return Err(wait);
        }
        tokio::time::sleep_until(*next).await;
        if let Some((interval, global)) = &self.global {
            let mut global = global.lock().await;
            tokio::time::sleep_until(*global).await;
            *global = Instant::now() + *interval;
        }
        *next = Instant::now() + self.interval;
        Ok(())
    }

    /// Holds a key back for `delay` (the platform's `Retry-After`), so queued sends wait too.
    pub async fn hold<Q>(&self, key: &Q, delay: Duration)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let slot = self.slot(key);
        let mut next = slot.lock().await;
        *next = (*next).max(Instant::now() + delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_to_one_key_leaves_one_per_interval_in_order() {
        let pacer = Arc::new(KeyedPacer::<String>::per_second(2.0));
        let start = Instant::now();
        let order = Arc::new(SyncMutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let pacer = pacer.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                pacer.wait_turn("C1").await;
                order.lock().unwrap().push((i, start.elapsed()));
            }));
            // Spawned in order; let each reach the gate before the next.
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.expect("task");
        }
        let order = order.lock().unwrap().clone();
        let ids: Vec<i32> = order.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        assert!(order[3].1 >= Duration::from_millis(1500), "{order:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn keys_do_not_wait_for_each_other() {
        let pacer = KeyedPacer::<String>::per_second(1.0);
        let start = Instant::now();
        pacer.wait_turn("C1").await;
        pacer.wait_turn("C2").await;
        assert!(start.elapsed() < Duration::from_millis(10));
        pacer.hold("C1", Duration::from_secs(5)).await;
        pacer.wait_turn("C1").await;
        assert!(start.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_keys_are_forgotten_once_there_are_many_but_held_ones_are_kept() {
        let pacer = KeyedPacer::<u32>::new(Duration::from_millis(10));
        pacer.hold(&0, Duration::from_secs(3600)).await;
        for key in 1..KEYS_BEFORE_PRUNING as u32 + 10 {
            pacer.wait_turn(&key).await;
            tokio::time::advance(Duration::from_millis(20)).await;
        }
        assert!(pacer.keys.lock().unwrap().len() < KEYS_BEFORE_PRUNING);
        let refused = pacer.wait_turn_within(&0, Duration::from_secs(1)).await;
        assert!(refused.is_err(), "the held key still waits: {refused:?}");
    }
}
