//! Deliveries held back by failures: the waiting sets, the dead-letter streams, and what an
//! admin does with dead letters (replay, drop).
//!
//! Each partition keeps one waiting set per target (see [`keys::outbox_waiting`]): an entry
//! joins it the first time it is parked and leaves it when it is delivered or dead-lettered,
//! so the oldest waiting delivery per target is one cheap read, however many are parked.

use std::time::Duration;

use redis::streams::StreamRangeReply;

use super::{keys, HeldBack, Store, StoreError, WorkItem};

/// Why and after what an entry is given up on: what the dead-letter stream keeps for an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why it can never be delivered (or why it was given up on).
    pub reason: String,
    /// Its target (a channel name, or `desk`), when its payload said.
    pub target: Option<&'static str>,
    /// Set when it had been held back: it leaves its waiting set and its line.
    pub held_back: Option<HeldBack>,
    /// Attempts made (0 when it failed before any, e.g. a malformed payload).
    pub attempts: u32,
    /// When its first attempt failed (epoch ms), if one did before this one.
    pub first_failure_ms: Option<u64>,
    /// Its first outbox id: a replay takes its place in line again from there.
    pub origin: String,
    /// When it was first queued (epoch ms).
    pub queued_ms: u64,
}

/// A delivery that was given up on, as read back from a dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadEntry {
    /// The partition whose dead-letter stream holds it.
    pub partition: usize,
    /// Its id in that stream.
    pub entry_id: String,
    /// The transcript entry it delivers (empty for desk posts without one).
    pub transcript_id: String,
    /// The outbox payload (a `Delivery` as json).
    pub payload: String,
    /// Why it was given up on.
    pub reason: String,
    /// Its target, when recorded (entries dead-lettered by earlier builds do not say).
    pub target: Option<String>,
    /// Attempts made, when recorded.
    pub attempts: Option<u32>,
    /// When its first attempt failed (epoch ms), when recorded.
    pub first_failure_ms: Option<u64>,
    /// When it was first queued (epoch ms), when recorded.
    pub queued_ms: Option<u64>,
}

impl DeadEntry {
    /// When it was dead-lettered (epoch ms): the time part of its stream id.
    pub fn dead_ms(&self) -> u64 {
        stream_id_ms(&self.entry_id).unwrap_or_default()
    }
}

/// The epoch ms part of a stream id (`1718000000000-0`).
pub fn stream_id_ms(entry_id: &str) -> Option<u64> {
    entry_id.split('-').next()?.parse().ok()
}

/// How many deliveries to one target of one partition are held back, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingCount {
    /// The partition.
    pub partition: usize,
    /// The target (a channel name, or `desk`).
    pub target: &'static str,
    /// How many wait.
    pub count: usize,
    /// When the oldest of them was queued (epoch ms); `None` when none waits.
    pub oldest_queued_ms: Option<u64>,
}

impl Store {
    /// Records an undeliverable outbox entry in the dead-letter stream and removes it from the
    /// outbox (and from its waiting set and line, when it was held back), in one step.
    pub async fn dead_letter(
        &self,
        item: &WorkItem,
        payload: &str,
        dead: &DeadLetter,
    ) -> Result<(), StoreError> {
        let outbox = keys::outbox(item.partition);
        let transcript_id = item.fields.get("id").map(String::as_str).unwrap_or("");
        let attempts = dead.attempts.to_string();
        let queued = dead.queued_ms.to_string();
        let first_failure = dead.first_failure_ms.map(|ms| ms.to_string());
        let mut fields = vec![
            ("id", transcript_id),
            ("p", payload),
            ("reason", dead.reason.as_str()),
            ("attempts", attempts.as_str()),
            ("queued_at", queued.as_str()),
            ("origin", dead.origin.as_str()),
        ];
        if let Some(target) = dead.target {
            fields.push(("target", target));
        }
        if let Some(first_failure) = &first_failure {
            fields.push(("first_failure", first_failure.as_str()));
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .xadd(keys::outbox_dead(item.partition), "*", &fields)
            .ignore()
            .xack(&outbox, keys::OUTBOX_GROUP, &[&item.entry_id])
            .ignore()
            .xdel(&outbox, &[&item.entry_id])
            .ignore();
        if let Some(held) = &dead.held_back {
            held.release(&mut pipe, item.partition);
        }
        let mut conn = self.conn.clone();
        self.bounded(Duration::ZERO, pipe.query_async::<()>(&mut conn))
            .await
    }

    /// Every dead letter of `partitions`, oldest first within each partition.
    pub async fn dead_entries(&self, partitions: &[usize]) -> Result<Vec<DeadEntry>, StoreError> {
        let replies = self
            .pipelined_by_partition(partitions, None, false, |pipe, item| {
                pipe.xrange_all(keys::outbox_dead(partitions[item]));
                1
            })
            .await?;
        let mut entries = Vec::new();
        for (partition, replies) in partitions.iter().copied().zip(replies) {
            for reply in replies {
                let range: StreamRangeReply =
                    redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
                for entry in range.ids {
                    let text = |name: &str| entry.get::<String>(name);
                    let ms = |name: &str| text(name).and_then(|value| value.parse::<u64>().ok());
                    entries.push(DeadEntry {
                        partition,
                        transcript_id: text("id").unwrap_or_default(),
                        payload: text("p").unwrap_or_default(),
                        reason: text("reason").unwrap_or_default(),
                        target: text("target"),
                        attempts: text("attempts").and_then(|value| value.parse().ok()),
                        first_failure_ms: ms("first_failure"),
                        queued_ms: ms("queued_at"),
                        entry_id: entry.id,
                    });
                }
            }
        }
        Ok(entries)
    }

    /// Puts a dead letter back into its partition's outbox, removing it from the dead-letter
    /// stream in the same step (see `lua/replay.lua`). Returns the new outbox entry id, or
    /// `None` when there is no such dead letter (already replayed or dropped).
    pub async fn replay_dead(
        &self,
        partition: usize,
        entry_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.replay.prepare_invoke();
        invocation
            .key(keys::outbox_dead(partition))
            .key(keys::outbox(partition))
            .arg(entry_id);
        let queued: Option<String> = self
            .bounded(Duration::ZERO, invocation.invoke_async(&mut conn))
            .await?;
        if queued.is_some() {
            self.new_work.arrived(super::Work::Outbox);
        }
        Ok(queued)
    }

    /// Deletes a dead letter for good; false when there was no such entry.
    pub async fn drop_dead(&self, partition: usize, entry_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let deleted: usize = self
            .bounded(
                Duration::ZERO,
                redis::cmd("XDEL")
                    .arg(keys::outbox_dead(partition))
                    .arg(entry_id)
                    .query_async(&mut conn),
            )
            .await?;
        Ok(deleted > 0)
    }

    /// How many deliveries to each of `targets` wait in each of `partitions`, and since when.
    pub async fn waiting_counts(
        &self,
        partitions: &[usize],
        targets: &[&'static str],
    ) -> Result<Vec<WaitingCount>, StoreError> {
        let replies = self
            .pipelined_by_partition(partitions, None, false, |pipe, item| {
                for target in targets {
                    let key = keys::outbox_waiting(partitions[item], target);
                    pipe.zcard(&key).zrange_withscores(&key, 0, 0);
                }
                2 * targets.len()
            })
            .await?;
        let mut counts = Vec::with_capacity(partitions.len() * targets.len());
        for (partition, replies) in partitions.iter().copied().zip(replies) {
            let mut replies = replies.into_iter();
            for target in targets {
                let mut next = || replies.next().unwrap_or(redis::Value::Nil);
                let count: usize =
                    redis::from_redis_value(next()).map_err(redis::RedisError::from)?;
                let oldest: Vec<(String, f64)> =
                    redis::from_redis_value(next()).map_err(redis::RedisError::from)?;
                counts.push(WaitingCount {
                    partition,
                    target,
                    count,
                    oldest_queued_ms: oldest.first().map(|(_, score)| *score as u64),
                });
            }
        }
        Ok(counts)
    }

    /// The members of `partitions`' delayed sets (json, see `lua/promote.lua`), for an admin's
    /// look at what waits: a full read, not for the delivery path.
    pub async fn parked_members(
        &self,
        partitions: &[usize],
    ) -> Result<Vec<(usize, String)>, StoreError> {
        let replies = self
            .pipelined_by_partition(partitions, None, false, |pipe, item| {
                pipe.zrange(keys::outbox_delayed(partitions[item]), 0, -1);
                1
            })
            .await?;
        let mut members = Vec::new();
        for (partition, replies) in partitions.iter().copied().zip(replies) {
            for reply in replies {
                let parked: Vec<String> =
                    redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
                members.extend(parked.into_iter().map(|member| (partition, member)));
            }
        }
        Ok(members)
    }
}
