//! Upload quotas and the Redis memory guard: why an anonymous visitor cannot fill Redis.
//!
//! Files live in Redis, so uploads from anyone on the web are the one input that could fill
//! it. Three byte quotas hold across every gateway instance, because the counts live in Redis
//! and one script checks and counts them (`store/lua/upload_quota.lua`):
//! `files.max_bytes_per_conversation` (while its files live), `max_bytes_per_address_per_day`
//! (UTC days, per client address as the web chat sees it) and `max_bytes_total` (every
//! visitor's files still stored). Behind them, a guard for whatever the quotas do not
//! foresee: no file is taken while Redis uses more than `max_redis_memory_fraction` of its
//! `maxmemory`, so chat messages keep the rest. `INFO memory` is read at most once a second.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchboard_api::{QuotaRefusal, UploadQuota, UploadReservation};
use tracing::warn;

use super::{unix_now, Files};
use crate::store::{RedisMemory, Store, StoreError, UploadCount, UploadOver};

/// How long a reading of Redis's memory is trusted.
const MEMORY_FRESH_FOR: Duration = Duration::from_secs(1);
const DAY_SECS: u64 = 86_400;

/// Whether Redis has room for more files.
pub(crate) struct MemoryGuard {
    fraction: f64,
    last: Mutex<Option<(Instant, Vec<RedisMemory>)>>,
    warned_unlimited: AtomicBool,
}

impl MemoryGuard {
    pub(crate) fn new(fraction: f64) -> Self {
        MemoryGuard {
            fraction,
            last: Mutex::new(None),
            warned_unlimited: AtomicBool::new(false),
        }
    }

    /// True when `bytes` more would take a Redis server (any master of a cluster: the file
    /// may land on any) past the fraction of its `maxmemory`.
    pub(crate) async fn would_overfill(
        &self,
        store: &Store,
        bytes: u64,
    ) -> Result<bool, StoreError> {
        let memory = self.memory(store).await?;
        if memory.iter().any(|node| node.max == 0)
            && !self.warned_unlimited.swap(true, Ordering::Relaxed)
        {
            warn!(
                "Redis has no maxmemory: files are bounded only by the files.max_bytes_* quotas; \
                 set maxmemory and maxmemory-policy noeviction (see the README)"
            );
        }
        let ceiling = |node: &RedisMemory| self.fraction * node.max as f64;
        Ok(memory
            .iter()
            .any(|node| node.max > 0 && node.used.saturating_add(bytes) as f64 > ceiling(node)))
    }

    async fn memory(&self, store: &Store) -> Result<Vec<RedisMemory>, StoreError> {
        if let Ok(last) = self.last.lock() {
            if let Some((at, memory)) = last.as_ref() {
                if at.elapsed() < MEMORY_FRESH_FOR {
                    return Ok(memory.clone());
                }
            }
        }
        let memory = store.memory().await?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), memory.clone()));
        }
        Ok(memory)
    }
}

#[async_trait]
impl UploadQuota for Files {
    async fn reserve(
        &self,
        conversation_key: &str,
        client: Option<&str>,
        bytes: u64,
    ) -> Result<UploadReservation, QuotaRefusal> {
        let unavailable = |error: StoreError| QuotaRefusal::Unavailable(error.to_string());
        if self
            .memory
            .would_overfill(&self.store, bytes)
            .await
            .map_err(unavailable)?
        {
            warn!(
                fraction = self.memory.fraction,
                "web chat upload refused: Redis is near its maxmemory"
            );
            return Err(QuotaRefusal::RedisNearlyFull);
        }
        let now = unix_now();
        let day = now / DAY_SECS;
        let count = UploadCount {
            conversation_key,
            client,
            bytes,
            day,
        };
        let over = self
            .store
            .count_upload(&count, &self.limits)
            .await
            .map_err(unavailable)?;
        match over {
            None => Ok(UploadReservation {
                conversation_key: conversation_key.to_owned(),
                client: client.map(str::to_owned),
                bytes,
                day,
            }),
            Some(UploadOver::Conversation) => Err(QuotaRefusal::Conversation {
                limit: self.limits.per_conversation,
            }),
            Some(UploadOver::Address) => Err(QuotaRefusal::Address {
                limit: self.limits.per_address_per_day,
                retry_after: Duration::from_secs(DAY_SECS - now % DAY_SECS),
            }),
            Some(UploadOver::Total) => {
                warn!(
                    limit = self.limits.total,
                    "web chat upload refused: visitors' files reached files.max_bytes_total"
                );
                Err(QuotaRefusal::Total)
            }
        }
    }

    async fn release(&self, reservation: UploadReservation) {
        let count = UploadCount {
            conversation_key: &reservation.conversation_key,
            client: reservation.client.as_deref(),
            bytes: reservation.bytes,
            day: reservation.day,
        };
        if let Err(error) = self.store.uncount_upload(&count, &self.limits).await {
            warn!(%error, "upload quota not given back; those bytes count until the counters expire");
        }
    }
}
