//! Leases in Redis for singleton pollers (Telegram's `getUpdates`, an IMAP mailbox).
//!
//! Only the holder polls; a holder that dies stops renewing and the lease expires, so another
//! instance takes over within one TTL. Any Redis error reads as "not held": not polling is
//! safe, polling twice is not.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use switchboard_api::{LeaseSource, PollLease};
use tracing::{info, warn};

use crate::store::Store;

/// A [`PollLease`] held in Redis under `sb:{lease:<name>}`.
pub struct RedisPollLease {
    store: Store,
    holder: String,
    script: Script,
    /// The leases this handle holds, so a shutting-down instance can give them all up.
    held: Mutex<BTreeSet<String>>,
}

impl RedisPollLease {
    /// Leases taken in the name of `holder` (this instance's consumer name).
    pub fn new(store: Store, holder: String) -> Self {
        RedisPollLease {
            store,
            holder,
            script: Script::new(include_str!("store/lua/lease.lua")),
            held: Mutex::default(),
        }
    }

    /// Gives up every lease this handle holds, so another instance takes over at once instead
    /// of after the TTL (a shutdown, after the pollers were stopped).
    pub async fn release_all(&self) {
        let names = std::mem::take(&mut *self.held_names());
        for name in names {
            self.call(&name, Duration::ZERO, "release").await;
            info!(lease = %name, "lease released");
        }
    }

    fn held_names(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn note(&self, name: &str, held: bool) -> bool {
        if held {
            self.held_names().insert(name.to_owned());
        } else {
            self.held_names().remove(name);
        }
        held
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
        let held = self.call(name, ttl, "acquire").await;
        self.note(name, held)
    }

    async fn renew(&self, name: &str, ttl: Duration) -> bool {
        let held = self.call(name, ttl, "renew").await;
        self.note(name, held)
    }

    async fn release(&self, name: &str) {
        self.call(name, Duration::ZERO, "release").await;
        self.note(name, false);
    }
}

/// Makes a [`RedisPollLease`] for each polling connector the gateway builds, and keeps them
/// so a shutting-down instance can give every one up.
pub struct RedisLeases {
    store: Store,
    holder: String,
    made: Mutex<Vec<Arc<RedisPollLease>>>,
}

impl RedisLeases {
    /// Leases in the name of `holder` (this instance's consumer name).
    pub fn new(store: Store, holder: String) -> Self {
        RedisLeases {
            store,
            holder,
            made: Mutex::default(),
        }
    }

    /// Every lease handed out so far.
    pub fn made(&self) -> Vec<Arc<RedisPollLease>> {
        self.made
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl LeaseSource for RedisLeases {
    fn lease(&self) -> Arc<dyn PollLease> {
        let lease = Arc::new(RedisPollLease::new(self.store.clone(), self.holder.clone()));
        self.made
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(lease.clone());
        lease
    }
}
