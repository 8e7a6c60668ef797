//! A per-channel pacing gate: at most N posts per second per Slack channel, bursts wait
//! their turn in arrival order.
//!
//! Slack allows about one message per second per channel and answers bursts with 429s;
//! pacing here keeps the outbox from burning retries. Each channel has its own FIFO lock
//! (tokio's `Mutex` is fair), held while waiting, so the posts of one channel leave in the
//! order they came and other channels are never held up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces posts to each channel at least `interval` apart.
#[derive(Debug)]
pub struct ChannelPacing {
    interval: Duration,
    /// When each channel may next be posted to.
    channels: SyncMutex<HashMap<String, Arc<Mutex<Instant>>>>,
}

impl ChannelPacing {
    /// A gate for `per_second` posts per second per channel (non-positive means no pacing).
    pub fn new(per_second: f64) -> ChannelPacing {
        let interval = if per_second.is_finite() && per_second > 0.0 {
            Duration::from_secs_f64(1.0 / per_second)
        } else {
            Duration::ZERO
        };
        ChannelPacing {
            interval,
            channels: SyncMutex::new(HashMap::new()),
        }
    }

    fn slot(&self, channel: &str) -> Arc<Mutex<Instant>> {
        let mut channels = match self.channels.lock() {
            Ok(guard) => guard,
            // A panic elsewhere cannot corrupt a map of instants; keep pacing.
            Err(poisoned) => poisoned.into_inner(),
        };
        channels
            .entry(channel.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(Instant::now())))
            .clone()
    }

    /// Waits for this channel's turn, then books the next slot `interval` later.
    pub async fn wait_turn(&self, channel: &str) {
        let slot = self.slot(channel);
        let mut next = slot.lock().await;
        tokio::time::sleep_until(*next).await;
        *next = Instant::now() + self.interval;
    }

    /// Holds the channel back for `delay` (Slack's `Retry-After`), so queued posts wait too.
    pub async fn hold(&self, channel: &str, delay: Duration) {
        let slot = self.slot(channel);
        let mut next = slot.lock().await;
        *next = (*next).max(Instant::now() + delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_to_one_channel_leaves_one_per_interval_in_order() {
        let pacing = Arc::new(ChannelPacing::new(2.0));
        let start = Instant::now();
        let order = Arc::new(SyncMutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let pacing = pacing.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                pacing.wait_turn("C1").await;
                if let Ok(mut order) = order.lock() {
                    order.push((i, start.elapsed()));
                }
            }));
            // Spawned in order; let each reach the gate before the next.
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.expect("task");
        }
        let order = order.lock().expect("lock").clone();
        let ids: Vec<i32> = order.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        assert!(order[3].1 >= Duration::from_millis(1500), "{order:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn channels_do_not_wait_for_each_other() {
        let pacing = ChannelPacing::new(1.0);
        let start = Instant::now();
        pacing.wait_turn("C1").await;
        pacing.wait_turn("C2").await;
        assert!(start.elapsed() < Duration::from_millis(10));
        pacing.hold("C1", Duration::from_secs(5)).await;
        pacing.wait_turn("C1").await;
        assert!(start.elapsed() >= Duration::from_secs(5));
    }
}
