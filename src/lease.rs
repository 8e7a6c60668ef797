//! Leases in Redis for singleton pollers (Telegram's `getUpdates`, an IMAP mailbox).
//!
//! Only the holder polls; a holder that dies stops renewing and the lease expires, so another
//! instance takes over within one TTL. Any Redis error reads as "not held": not polling is
//! safe, polling twice is not.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use switchboard_api::PollLease;
use tracing::warn;

use crate::store::Store;

/// A [`PollLease`] held in Redis under `sb:{lease:<name>}`.
pub struct RedisPollLease {
    store: Store,
    holder: String,
    script: Script,
}

impl RedisPollLease {
    /// Leases taken in the name of `holder` (this instance's consumer name).
    pub fn new(store: Store, holder: String) -> Self {
        RedisPollLease {
            store,
            holder,
            script: Script::new(include_str!("store/lua/lease.lua")),
        }
    }

    async fn call(&self, name: &str, ttl: Duration, mode: &str) -> bool {
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(format!("sb:{{lease:{name}}}"))
            .arg(&self.holder)
            .arg(ttl.as_millis() as u64)
            .arg(mode);
        let held = self
            .store
            .run(|mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await })
            .await;
        match held {
            Ok(held) => held == 1,
            Err(error) => {
                warn!(%error, lease = name, "lease unavailable; not polling");
                false
            }
        }
    }
}

#[async_trait]
impl PollLease for RedisPollLease {
    async fn acquire(&self, name: &str, ttl: Duration) -> bool {
        self.call(name, ttl, "acquire").await
    }

    async fn renew(&self, name: &str, ttl: Duration) -> bool {
        self.call(name, ttl, "renew").await
    }

    async fn release(&self, name: &str) {
        self.call(name, Duration::ZERO, "release").await;
    }
}
