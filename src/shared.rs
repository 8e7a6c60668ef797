//! [`SharedState`] over the gateway's Redis, for connectors and desks: every key lives under
//! `sb:shared:` so nothing they write can meet the core's own keys.

use std::time::Duration;

use async_trait::async_trait;
use switchboard_api::{SharedState, SharedStateError};

use crate::store::Store;

/// Connectors' and desks' shared state in Redis.
pub struct RedisShared {
    store: Store,
}

impl RedisShared {
    /// Shared state in `store`'s Redis.
    pub fn new(store: Store) -> RedisShared {
        RedisShared { store }
    }
}

fn key(key: &str) -> String {
    format!("sb:shared:{key}")
}

fn millis(duration: Duration) -> u64 {
    // Redis refuses a zero expiry; the shortest it takes is one millisecond.
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[async_trait]
impl SharedState for RedisShared {
    async fn get(&self, name: &str) -> Result<Option<String>, SharedStateError> {
        let name = key(name);
        (self.store)
            .run(|mut conn| async move {
                redis::cmd("GET")
                    .arg(name)
                    .query_async::<Option<String>>(&mut conn)
                    .await
            })
            .await
            .map_err(|error| error.to_string())
    }

    async fn set(
        &self,
        name: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<(), SharedStateError> {
        let mut command = redis::cmd("SET");
        command.arg(key(name)).arg(value);
        if let Some(ttl) = ttl {
            command.arg("PX").arg(millis(ttl));
        }
        (self.store)
            .run(|mut conn| async move { command.query_async::<()>(&mut conn).await })
            .await
            .map_err(|error| error.to_string())
    }

    async fn take(&self, name: &str) -> Result<bool, SharedStateError> {
        let name = key(name);
        (self.store)
            .run(|mut conn| async move {
                redis::cmd("DEL")
                    .arg(name)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(|removed| removed > 0)
            .map_err(|error| error.to_string())
    }

    async fn count(&self, name: &str, window: Duration) -> Result<u64, SharedStateError> {
        let name = key(name);
        let window = millis(window);
        (self.store)
            .run(|mut conn| async move {
                // One script, so a crash between INCR and PEXPIRE never leaves a counter that
                // lasts forever (and locks an agent out for good).
                redis::Script::new(
                    "local n = redis.call('INCR', KEYS[1]) \
                     if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n",
                )
                .key(name)
                .arg(window)
                .invoke_async::<u64>(&mut conn)
                .await
            })
            .await
            .map_err(|error| error.to_string())
    }

    async fn set_add(&self, name: &str, member: &str, score: f64) -> Result<(), SharedStateError> {
        let name = key(name);
        (self.store)
            .run(|mut conn| async move {
                redis::cmd("ZADD")
                    .arg(name)
                    .arg(score)
                    .arg(member)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
            .map_err(|error| error.to_string())
    }

    async fn set_remove(&self, name: &str, member: &str) -> Result<(), SharedStateError> {
        let name = key(name);
        (self.store)
            .run(|mut conn| async move {
                redis::cmd("ZREM")
                    .arg(name)
                    .arg(member)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
            .map_err(|error| error.to_string())
    }

    async fn set_members(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<(String, f64)>, SharedStateError> {
        let name = key(name);
        let last = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
        (self.store)
            .run(|mut conn| async move {
                redis::cmd("ZRANGE")
                    .arg(name)
                    .arg(0)
                    .arg(last)
                    .arg("WITHSCORES")
                    .query_async::<Vec<(String, f64)>>(&mut conn)
                    .await
            })
            .await
            .map_err(|error| error.to_string())
    }

    async fn append(&self, name: &str, value: &str) -> Result<(), SharedStateError> {
        let name = key(name);
        (self.store)
            .run(|mut conn| async move {
                redis::cmd("RPUSH")
                    .arg(name)
                    .arg(value)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
            .map_err(|error| error.to_string())
    }

    async fn tail(&self, name: &str, limit: usize) -> Result<Vec<String>, SharedStateError> {
        let name = key(name);
        let first = -isize::try_from(limit).unwrap_or(isize::MAX);
        (self.store)
            .run(|mut conn| async move {
                redis::cmd("LRANGE")
                    .arg(name)
                    .arg(first)
                    .arg(-1)
                    .query_async::<Vec<String>>(&mut conn)
                    .await
            })
            .await
            .map_err(|error| error.to_string())
    }
}
