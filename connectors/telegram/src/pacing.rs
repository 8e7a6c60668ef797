//! Send pacing: at most one message per second per chat and thirty per second overall,
//! Telegram's documented limits; bursts wait their turn in arrival order.
//!
//! Telegram answers bursts with 429s and `retry_after`; pacing here keeps the outbox from
//! burning retries. The idea is the Slack desk's channel gate: each chat has its own FIFO
//! lock (tokio's `Mutex` is fair) held while waiting, so one chat's messages leave in the
//! order they came and other chats are not held up; a second, global gate spaces all sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Telegram's per-chat limit: about one message per second.
pub const PER_CHAT_INTERVAL: Duration = Duration::from_secs(1);
/// Telegram's global limit: about thirty messages per second.
pub const GLOBAL_INTERVAL: Duration = Duration::from_millis(34);

/// Spaces sends per chat and overall.
#[derive(Debug)]
pub struct SendPacing {
    per_chat: Duration,
    global_interval: Duration,
    /// When each chat may next be sent to.
    chats: SyncMutex<HashMap<i64, Arc<Mutex<Instant>>>>,
    /// When any chat may next be sent to.
    global: Mutex<Instant>,
}

impl SendPacing {
    /// A gate with Telegram's limits.
    pub fn telegram() -> SendPacing {
        SendPacing::new(PER_CHAT_INTERVAL, GLOBAL_INTERVAL)
    }

    /// A gate with the given spacing per chat and overall.
    pub fn new(per_chat: Duration, global_interval: Duration) -> SendPacing {
        SendPacing {
            per_chat,
            global_interval,
            chats: SyncMutex::new(HashMap::new()),
            global: Mutex::new(Instant::now()),
        }
    }

    fn slot(&self, chat: i64) -> Arc<Mutex<Instant>> {
        let mut chats = match self.chats.lock() {
            Ok(guard) => guard,
            // A panic elsewhere cannot corrupt a map of instants; keep pacing.
            Err(poisoned) => poisoned.into_inner(),
        };
        chats
            .entry(chat)
            .or_insert_with(|| Arc::new(Mutex::new(Instant::now())))
            .clone()
    }

    /// Waits for this chat's turn, then for a global slot, and books the next slots; unless
    /// the chat's turn is more than `limit` away (a 429's `retry_after`, a backlog): then it
    /// books nothing and says how long the wait would be, so the caller can hand the message
    /// back for later instead of holding a send open.
    pub async fn wait_turn_within(&self, chat: i64, limit: Duration) -> Result<(), Duration> {
        let slot = self.slot(chat);
        let mut next = slot.lock().await;
        let wait = next.saturating_duration_since(Instant::now());
        if wait > limit {
            return Err(wait);
        }
        tokio::time::sleep_until(*next).await;
        {
            let mut global = self.global.lock().await;
            tokio::time::sleep_until(*global).await;
            *global = Instant::now() + self.global_interval;
        }
        *next = Instant::now() + self.per_chat;
        Ok(())
    }

    /// Holds a chat back for `delay` (Telegram's `retry_after`), so queued sends wait too.
    pub async fn hold(&self, chat: i64, delay: Duration) {
        let slot = self.slot(chat);
        let mut next = slot.lock().await;
        *next = (*next).max(Instant::now() + delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_to_one_chat_leaves_one_per_second_in_order() {
        let pacing = Arc::new(SendPacing::telegram());
        let start = Instant::now();
        let order = Arc::new(SyncMutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..3 {
            let pacing = pacing.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                pacing.wait_turn_within(7, Duration::MAX).await.unwrap();
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
        assert_eq!(ids, [0, 1, 2]);
        assert!(order[2].1 >= Duration::from_secs(2), "{order:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_too_far_away_is_refused_with_the_wait_and_books_nothing() {
        let pacing = SendPacing::telegram();
        pacing.hold(7, Duration::from_secs(30)).await;
        let start = Instant::now();
        let refused = pacing
            .wait_turn_within(7, Duration::from_secs(3))
            .await
            .expect_err("30 s away");
        assert!(refused > Duration::from_secs(29), "{refused:?}");
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "refused at once, not after waiting"
        );
        // Other chats are not held, and the held chat's turn did not move.
        assert_eq!(
            pacing.wait_turn_within(8, Duration::from_secs(3)).await,
            Ok(())
        );
        let again = pacing
            .wait_turn_within(7, Duration::from_secs(3))
            .await
            .expect_err("still held");
        assert!(
            again > Duration::from_secs(29) && again <= refused,
            "{again:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn many_chats_share_the_global_rate() {
        let pacing = SendPacing::telegram();
        let start = Instant::now();
        for chat in 0..31 {
            pacing.wait_turn_within(chat, Duration::MAX).await.unwrap();
        }
        // 31 sends to different chats take at least 30 global intervals (~1 s), not 0.
        assert!(
            start.elapsed() >= GLOBAL_INTERVAL * 30,
            "{:?}",
            start.elapsed()
        );
        assert!(start.elapsed() < Duration::from_millis(1100));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_the_chat_back() {
        let pacing = SendPacing::telegram();
        let start = Instant::now();
        pacing.hold(1, Duration::from_secs(5)).await;
        pacing.wait_turn_within(2, Duration::MAX).await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(100));
        pacing.wait_turn_within(1, Duration::MAX).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(5));
    }
}
