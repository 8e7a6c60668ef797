//! The polling lease: a platform that must be read by one client at a time (Telegram's
//! `getUpdates` answers a second poller with 409 Conflict; an IMAP mailbox read by every
//! instance is read, fetched and flagged N times) is read only by the instance holding it.
//!
//! The lease lives in the core's Redis, which connectors cannot reach: the core implements
//! [`PollLease`] and hands it to each polling connector (`with_lease`). [`MemoryLease`] is
//! the in-process version for tests and single-instance setups.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// A named, expiring lease that at most one gateway instance holds.
///
/// Implementations answer `false` when they cannot tell (storage down): not polling is
/// safe, polling twice is not.
#[async_trait]
pub trait PollLease: Send + Sync {
    /// Takes the lease `name` for `ttl` when it is free (or already ours); true when held.
    async fn acquire(&self, name: &str, ttl: Duration) -> bool;

    /// Extends our lease by `ttl`; false when it expired and another instance took it.
    async fn renew(&self, name: &str, ttl: Duration) -> bool;

    /// Gives our lease up, so another instance can take over at once.
    async fn release(&self, name: &str);
}

/// An in-memory [`PollLease`]; handles made by [`MemoryLease::another_instance`] compete
/// for the same leases, as gateway instances sharing one Redis would.
#[derive(Debug, Clone)]
pub struct MemoryLease {
    holders: Arc<Mutex<HashMap<String, (u64, Instant)>>>,
    next_instance: Arc<AtomicU64>,
    instance: u64,
    /// This instance's refused `acquire` calls (shared by its clones).
    refused: Arc<AtomicU64>,
}

impl Default for MemoryLease {
    fn default() -> Self {
        MemoryLease {
            holders: Arc::default(),
            next_instance: Arc::new(AtomicU64::new(1)),
            instance: 0,
            refused: Arc::default(),
        }
    }
}

impl MemoryLease {
    /// A handle for another instance, competing for the same leases.
    pub fn another_instance(&self) -> MemoryLease {
        MemoryLease {
            holders: Arc::clone(&self.holders),
            next_instance: Arc::clone(&self.next_instance),
            instance: self.next_instance.fetch_add(1, Ordering::SeqCst),
            refused: Arc::default(),
        }
    }

    /// How often this instance asked for a lease another instance held: a test waits on it
    /// to know the loser asked (and stayed away) instead of waiting on the clock.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    fn with_holders<T>(&self, f: impl FnOnce(&mut HashMap<String, (u64, Instant)>) -> T) -> T {
        let mut holders = match self.holders.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut holders)
    }
}

#[async_trait]
impl PollLease for MemoryLease {
    async fn acquire(&self, name: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        self.with_holders(|holders| match holders.get(name) {
            Some((holder, expiry)) if *holder != self.instance && *expiry > now => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                false
            }
            _ => {
                holders.insert(name.to_string(), (self.instance, now + ttl));
                true
            }
        })
    }

    async fn renew(&self, name: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        self.with_holders(|holders| match holders.get_mut(name) {
            Some((holder, expiry)) if *holder == self.instance && *expiry > now => {
                *expiry = now + ttl;
                true
            }
            _ => false,
        })
    }

    async fn release(&self, name: &str) {
        self.with_holders(|holders| {
            if holders
                .get(name)
                .is_some_and(|(holder, _)| *holder == self.instance)
            {
                holders.remove(name);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_instance_holds_the_lease_until_it_lets_go() {
        let first = MemoryLease::default();
        let second = first.another_instance();
        let ttl = Duration::from_secs(30);
        assert!(first.acquire("telegram:poll:1", ttl).await);
        assert!(!second.acquire("telegram:poll:1", ttl).await);
        assert_eq!((first.refused(), second.refused()), (0, 1));
        assert!(
            second.acquire("telegram:poll:2", ttl).await,
            "other bots are free"
        );
        assert!(first.renew("telegram:poll:1", ttl).await);
        assert!(!second.renew("telegram:poll:1", ttl).await);
        first.release("telegram:poll:1").await;
        assert!(second.acquire("telegram:poll:1", ttl).await);
        assert!(
            !first.renew("telegram:poll:1", ttl).await,
            "lost, not renewed"
        );
    }

    #[tokio::test]
    async fn an_expired_lease_can_be_taken_over() {
        let first = MemoryLease::default();
        let second = first.another_instance();
        assert!(first.acquire("l", Duration::from_millis(1)).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(second.acquire("l", Duration::from_secs(30)).await);
        assert!(!first.renew("l", Duration::from_secs(30)).await);
    }
}
