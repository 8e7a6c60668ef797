//! The file store: the bytes of files customers and agents sent, one hash per file under
//! the conversation's hash tag, expiring after the configured retention.
//!
//! Transcript entries and outbox payloads keep only [`FileRef`]s; the bytes are written
//! here before the message that refers to them, so a reference never points at nothing
//! (until the retention has passed, which the download route reports as gone).
//!
//! Also the counters behind the web chat's upload quotas (`lua/upload_quota.lua`), and what
//! Redis says about its memory, so files stop before Redis is full.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use redis::Script;
use switchboard_api::FileRef;

use super::{keys, Store, StoreError};

static COUNT_UPLOAD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/upload_quota.lua")));
static UNCOUNT_UPLOAD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/upload_release.lua")));

/// The total's counters span this many buckets at most, whatever the retention.
const MAX_TOTAL_BUCKETS: u64 = 32;
const DAY_SECS: u64 = 86_400;

/// One upload's bytes, and whose counters they go in.
#[derive(Debug, Clone, Copy)]
pub struct UploadCount<'a> {
    /// The web chat conversation key.
    pub conversation_key: &'a str,
    /// The client address, when known.
    pub client: Option<&'a str>,
    /// The file's size.
    pub bytes: u64,
    /// The UTC day (days since the Unix epoch) it is counted on.
    pub day: u64,
}

/// The limits an upload is counted against (`files.*`).
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// `max_bytes_per_conversation`.
    pub per_conversation: u64,
    /// `max_bytes_per_address_per_day`.
    pub per_address_per_day: u64,
    /// `max_bytes_total`.
    pub total: u64,
    /// `retention_days`: how long counted bytes stay stored.
    pub retention_days: u32,
}

/// The limit an upload would have gone over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOver {
    /// The conversation's.
    Conversation,
    /// The client address's, today.
    Address,
    /// Every visitor's together.
    Total,
}

/// One Redis server's memory, from `INFO memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisMemory {
    /// `used_memory`, in bytes.
    pub used: u64,
    /// `maxmemory`, in bytes; 0 when Redis has no limit.
    pub max: u64,
}

impl UploadLimits {
    /// How many days one bucket of the total covers: one, unless the retention is long.
    fn bucket_days(&self) -> u64 {
        u64::from(self.retention_days)
            .div_ceil(MAX_TOTAL_BUCKETS)
            .max(1)
    }

    /// The total's buckets that may still hold stored files on `day`, the current one first.
    fn total_buckets(&self, day: u64) -> Vec<String> {
        let width = self.bucket_days();
        let oldest = day.saturating_sub(u64::from(self.retention_days)) / width;
        (oldest..=day / width)
            .rev()
            .map(keys::upload_quota_total)
            .collect()
    }
}

/// A file to store: its reference and its bytes.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// What messages will record.
    pub file: FileRef,
    /// The content.
    pub bytes: Bytes,
}

/// A stored file read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The file name.
    pub name: String,
    /// The MIME type.
    pub content_type: String,
    /// The content.
    pub bytes: Bytes,
}

impl Store {
    /// Stores files of conversation `id` in one round trip, each expiring after `retention`.
    pub async fn put_files(
        &self,
        id: &str,
        files: &[NewFile],
        retention: Duration,
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        let ttl = retention.as_secs().max(1);
        for file in files {
            let key = keys::file(id, &file.file.id);
            pipe.cmd("HSET")
                .arg(&key)
                .arg("name")
                .arg(&file.file.name)
                .arg("type")
                .arg(&file.file.content_type)
                .arg("data")
                .arg(file.bytes.as_ref())
                .ignore()
                .expire(&key, ttl as i64)
                .ignore();
        }
        let mut conn = self.conn.clone();
        // Writing megabytes may take longer than a small command; allow a second per 10 MB.
        let size: usize = files.iter().map(|file| file.bytes.len()).sum();
        let extra = Duration::from_millis((size / 10_000) as u64);
        self.bounded(extra, pipe.query_async::<()>(&mut conn)).await
    }

    /// One stored file, or `None` when it does not exist (never stored, or expired).
    pub async fn file(&self, id: &str, file_id: &str) -> Result<Option<StoredFile>, StoreError> {
        let mut conn = self.conn.clone();
        let (name, content_type, data): (Option<String>, Option<String>, Option<Vec<u8>>) = self
            .bounded(
                Duration::from_secs(2),
                redis::cmd("HMGET")
                    .arg(keys::file(id, file_id))
                    .arg("name")
                    .arg("type")
                    .arg("data")
                    .query_async(&mut conn),
            )
            .await?;
        Ok(match (name, content_type, data) {
            (Some(name), Some(content_type), Some(data)) => Some(StoredFile {
                name,
                content_type,
                bytes: Bytes::from(data),
            }),
            _ => None,
        })
    }

    /// Counts an upload against `limits`, or says which one it would go over (then nothing
    /// is counted); atomic over every gateway instance.
    pub async fn count_upload(
        &self,
        count: &UploadCount<'_>,
        limits: &UploadLimits,
    ) -> Result<Option<UploadOver>, StoreError> {
        let retention_secs = u64::from(limits.retention_days) * DAY_SECS;
        let mut invocation = COUNT_UPLOAD.prepare_invoke();
        invocation
            .key(keys::upload_quota_conversation(count.conversation_key))
            .key(keys::upload_quota_address(
                count.day,
                count.client.unwrap_or("-"),
            ));
        for bucket in limits.total_buckets(count.day) {
            invocation.key(bucket);
        }
        invocation
            .arg(count.bytes)
            .arg(limits.per_conversation)
            .arg(if count.client.is_some() {
                limits.per_address_per_day
            } else {
                0
            })
            .arg(limits.total)
            .arg(retention_secs.max(1))
            .arg(2 * DAY_SECS)
            .arg(retention_secs + limits.bucket_days() * DAY_SECS);
        let mut conn = self.conn.clone();
        let over: i64 = self
            .bounded(Duration::ZERO, invocation.invoke_async(&mut conn))
            .await?;
        Ok(match over {
            0 => None,
            1 => Some(UploadOver::Conversation),
            2 => Some(UploadOver::Address),
            _ => Some(UploadOver::Total),
        })
    }

    /// Gives back an upload counted by [`Store::count_upload`] with the same arguments.
    pub async fn uncount_upload(
        &self,
        count: &UploadCount<'_>,
        limits: &UploadLimits,
    ) -> Result<(), StoreError> {
        let mut invocation = UNCOUNT_UPLOAD.prepare_invoke();
        invocation.key(keys::upload_quota_conversation(count.conversation_key));
        if let Some(client) = count.client {
            invocation.key(keys::upload_quota_address(count.day, client));
        }
        let current = limits.total_buckets(count.day).into_iter().next();
        if let Some(bucket) = current {
            invocation.key(bucket);
        }
        invocation.arg(count.bytes);
        let mut conn = self.conn.clone();
        self.bounded(Duration::ZERO, invocation.invoke_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    /// What each Redis server (each master of a cluster) says about its memory.
    pub async fn memory(&self) -> Result<Vec<RedisMemory>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: redis::Value = self
            .bounded(
                Duration::ZERO,
                redis::cmd("INFO").arg("memory").query_async(&mut conn),
            )
            .await?;
        // A cluster answers with one reply per node, keyed by its address.
        let replies = match reply {
            redis::Value::Map(nodes) => nodes.into_iter().map(|(_, info)| info).collect(),
            single => vec![single],
        };
        replies
            .into_iter()
            .map(|info| {
                let text: String = redis::from_redis_value(info)
                    .map_err(|error| StoreError::Corrupt(format!("INFO memory: {error}")))?;
                Ok(parse_memory(&text))
            })
            .collect()
    }

    /// The key download links are signed with: created once, then the same for every instance.
    pub async fn file_link_secret(&self) -> Result<String, StoreError> {
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        let mut conn = self.conn.clone();
        let existing: Option<String> = self
            .bounded(
                Duration::ZERO,
                redis::cmd("SET")
                    .arg(keys::FILE_LINK_SECRET)
                    .arg(&fresh)
                    .arg("NX")
                    .arg("GET")
                    .query_async(&mut conn),
            )
            .await?;
        Ok(existing.unwrap_or(fresh))
    }
}

/// `used_memory` and `maxmemory` out of `INFO memory` (missing fields count as 0).
fn parse_memory(info: &str) -> RedisMemory {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    RedisMemory {
        used: field("used_memory"),
        max: field("maxmemory"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_fields_are_read_from_info() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:33554432\r\nmaxmemory_policy:noeviction\r\n";
        assert_eq!(
            parse_memory(info),
            RedisMemory {
                used: 1_048_576,
                max: 33_554_432
            }
        );
        assert_eq!(parse_memory(""), RedisMemory { used: 0, max: 0 });
    }

    #[test]
    fn the_total_sums_the_buckets_of_the_retention() {
        let limits = |retention_days| UploadLimits {
            per_conversation: 1,
            per_address_per_day: 1,
            total: 1,
            retention_days,
        };
        let month = limits(30).total_buckets(20_000);
        assert_eq!(month.len(), 31);
        assert_eq!(month[0], keys::upload_quota_total(20_000));
        assert_eq!(month[30], keys::upload_quota_total(19_970));
        // A ten-year retention still sums a few dozen counters.
        assert!(limits(3650).total_buckets(20_000).len() <= 34);
    }
}
