//! Send pacing: at most one message per second per chat and thirty per second overall,
//! Telegram's documented limits; bursts wait their turn in arrival order.
//!
//! Telegram answers bursts with 429s and `retry_after`; pacing keeps the outbox from burning
//! retries. The gate is the api crate's [`KeyedPacer`], keyed by chat, with a global gate
//! for the bot-wide limit.

use std::time::Duration;

use switchboard_api::KeyedPacer;

/// Telegram's per-chat limit: about one message per second.
pub const PER_CHAT_INTERVAL: Duration = Duration::from_secs(1);
/// Telegram's global limit: about thirty messages per second.
pub const GLOBAL_INTERVAL: Duration = Duration::from_millis(34);

/// A gate with Telegram's limits, keyed by chat id.
pub fn telegram_pacer() -> KeyedPacer<i64> {
    KeyedPacer::new(PER_CHAT_INTERVAL).with_global_interval(GLOBAL_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as SyncMutex};
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_burst_to_one_chat_leaves_one_per_second_in_order() {
        let pacing = Arc::new(telegram_pacer());
        let start = Instant::now();
        let order = Arc::new(SyncMutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..3 {
            let pacing = pacing.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                pacing.wait_turn_within(&7, Duration::MAX).await.unwrap();
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
        let pacing = telegram_pacer();
        pacing.hold(&7, Duration::from_secs(30)).await;
        let start = Instant::now();
        let refused = pacing
            .wait_turn_within(&7, Duration::from_secs(3))
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
            pacing.wait_turn_within(&8, Duration::from_secs(3)).await,
            Ok(())
        );
        let again = pacing
            .wait_turn_within(&7, Duration::from_secs(3))
            .await
            .expect_err("still held");
        assert!(
            again > Duration::from_secs(29) && again <= refused,
            "{again:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn many_chats_share_the_global_rate() {
        let pacing = telegram_pacer();
        let start = Instant::now();
        for chat in 0..31 {
            pacing.wait_turn_within(&chat, Duration::MAX).await.unwrap();
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
        let pacing = telegram_pacer();
        let start = Instant::now();
        pacing.hold(&1, Duration::from_secs(5)).await;
        pacing.wait_turn_within(&2, Duration::MAX).await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(100));
        pacing.wait_turn_within(&1, Duration::MAX).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(5));
    }
}
