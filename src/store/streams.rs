//! Work streams: consumer groups for the inbound work and the outbox, retries parked in a
//! sorted set, and completing deliveries (dead letters: see `dead_letters.rs`).
//!
//! Each partition has its own streams (see [`keys`]). On a single Redis a worker reads every
//! partition with one blocking XREADGROUP. A cluster refuses a command over keys of several
//! slots, so there each partition is read on its own, without blocking (a blocked read would
//! hold a node's shared connection): side by side, then a short wait that grows while there
//! is nothing to do, cut short when this instance queues work itself.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamRangeReply, StreamReadReply};
use serde::{Deserialize, Serialize};
use switchboard_api::Backoff;
use tokio::sync::Notify;

use super::{keys, Store, StoreError, WorkItem};

/// The first and the longest wait between polls of an idle cluster.
const CLUSTER_POLL_FIRST: Duration = Duration::from_millis(5);
const CLUSTER_POLL_LONGEST: Duration = Duration::from_millis(100);

/// The two kinds of work, each a stream per partition with its consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Customer messages waiting for triage or the desk.
    Inbound,
    /// Replies and desk posts waiting for delivery.
    Outbox,
}

impl Work {
    /// The partition's stream of this work.
    pub fn stream(self, partition: usize) -> String {
        match self {
            Work::Inbound => keys::inbound(partition),
            Work::Outbox => keys::outbox(partition),
        }
    }

    /// The consumer group that works it.
    pub fn group(self) -> &'static str {
        match self {
            Work::Inbound => keys::PIPELINE_GROUP,
            Work::Outbox => keys::OUTBOX_GROUP,
        }
    }
}

/// Wakes this instance's pollers when it queued work itself (only a cluster polls).
#[derive(Default)]
pub(super) struct NewWork {
    inbound: Notify,
    outbox: Notify,
}

impl NewWork {
    pub(super) fn arrived(&self, work: Work) {
        self.of(work).notify_waiters();
    }

    fn of(&self, work: Work) -> &Notify {
        match work {
            Work::Inbound => &self.inbound,
            Work::Outbox => &self.outbox,
        }
    }
}

/// How much work is where, summed over partitions: what an operator (and a test) checks to
/// see that everything accepted was done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkCounts {
    /// Inbound entries not yet acked (waiting or being worked).
    pub inbound: usize,
    /// Of those, read by a worker and not yet acked.
    pub inbound_pending: usize,
    /// Outbox entries not yet delivered.
    pub outbox: usize,
    /// Of those, read by a sender and not yet acked.
    pub outbox_pending: usize,
    /// Deliveries parked for a retry.
    pub parked: usize,
    /// Deliveries given up on.
    pub dead: usize,
    /// Escalations logged.
    pub escalations: usize,
}

/// A delivered outbox entry: what to ack, and the platform's receipt when it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The partition whose outbox holds the entry.
    pub partition: usize,
    /// The outbox entry id.
    pub entry_id: String,
    /// Where the platform shows the message, if it said.
    pub receipt: Option<Receipt>,
    /// Set when the entry had been held back by failures: it leaves its target's waiting set.
    pub held_back: Option<HeldBack>,
}

/// An entry held back by failures: in its target's waiting set (see [`keys::outbox_waiting`])
/// and in its conversation's line for that target (see [`keys::delivery_line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// The conversation.
    pub conversation_id: String,
    /// The target (a channel name, or `desk`).
    pub target: &'static str,
    /// The entry's first outbox id, its name in the set and the line.
    pub origin: String,
}

impl HeldBack {
    /// Adds the commands that take it out of its waiting set and line.
    pub(super) fn release(&self, pipe: &mut redis::Pipeline, partition: usize) {
        pipe.zrem(keys::outbox_waiting(partition, self.target), &self.origin)
            .ignore()
            .zrem(
                keys::delivery_line(&self.conversation_id, self.target),
                &self.origin,
            )
            .ignore();
    }
}

/// How an outbox entry is parked (see [`Store::park_for_retry`]).
#[derive(Debug, Clone, Copy)]
pub struct Parking<'a> {
    /// When it is put back into the stream (epoch ms).
    pub due_ms: u64,
    /// The delayed-set member (json).
    pub member: &'a str,
    /// Its first outbox id: its name in the waiting set and its line.
    pub origin: &'a str,
    /// When it was first queued (epoch ms).
    pub queued_ms: u64,
    /// True when its attempt failed (it is the front of its line); false when it waits behind.
    pub failed: bool,
    /// How long past `due_ms` its line lives unless its front is retried again (see
    /// `lua/retry.lua`): longer than a retry may take to be sent or taken over.
    pub line_slack_ms: u64,
}

/// What waits for one target of a conversation (see [`keys::delivery_line`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryLine {
    /// The first outbox ids of the deliveries in line, in no particular order.
    pub origins: Vec<String>,
    /// When the front is tried again (epoch ms), if it failed recently.
    pub front_due_ms: Option<u64>,
}

/// The platform's id for a delivered transcript entry: what stops a resend after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The conversation.
    pub conversation_id: String,
    /// The transcript entry delivered.
    pub transcript_id: String,
    /// What the platform said it shows.
    pub stored: StoredReceipt,
}

/// A delivery receipt as the conversation's deliveries hash holds it: the channel, the
/// earlier ids and the id, space-separated (`telegram 11 12`); or, written before the other
/// fields were, the platform's message id alone. Every delivered reply keeps one for as long as
/// the conversation stays in Redis, so it is kept short rather than JSON (which an id holding
/// a space falls back to).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReceipt {
    /// The platform's id of the delivery's last (or only) message.
    pub id: String,
    /// The ids of the messages it showed before that one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<String>,
    /// The channel it went to (the conversation's key on it names the chat): a linked
    /// customer may have been answered on several.
    #[serde(default, rename = "ch", skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl StoredReceipt {
    /// Reads a deliveries hash value, any form.
    pub fn parse(text: &str) -> StoredReceipt {
        if text.starts_with('{') {
            if let Ok(receipt) = serde_json::from_str::<StoredReceipt>(text) {
                return receipt;
            }
        }
        let mut parts: Vec<&str> = text.split(' ').collect();
        let id = parts.pop().unwrap_or_default().to_owned();
        if parts.is_empty() {
            return StoredReceipt {
                id,
                ..StoredReceipt::default()
            };
        }
        let channel = Some(parts.remove(0)).filter(|channel| !channel.is_empty());
        StoredReceipt {
            id,
            earlier: parts.into_iter().map(str::to_owned).collect(),
            channel: channel.map(str::to_owned),
        }
    }

    /// The hash value.
    pub fn to_value(&self) -> String {
        if self.channel.is_none() && self.earlier.is_empty() {
            return self.id.clone();
        }
        let spaced = (self.ids().chain(self.channel.as_ref()))
            .any(|part| part.contains(' ') || part.is_empty());
        if spaced {
            return serde_json::to_string(self).unwrap_or_else(|_| self.id.clone());
        }
        let mut parts = vec![self.channel.as_deref().unwrap_or_default()];
        parts.extend(self.ids().map(String::as_str));
        parts.join(" ")
    }

    /// Every message id, oldest first.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.earlier.iter().chain(std::iter::once(&self.id))
    }
}

/// Where a delivery goes: one conversation's customer, or its desk thread. Deliveries to one
/// target arrive in order; different targets do not wait for each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryTarget {
    /// The conversation.
    pub conversation_id: String,
    /// The customer's channel name, or `desk`.
    pub target: &'static str,
}

impl DeliveryTarget {
    fn hold_key(&self) -> String {
        keys::delivery_hold(&self.conversation_id, self.target)
    }

    fn line_key(&self) -> String {
        keys::delivery_line(&self.conversation_id, self.target)
    }
}

impl Store {
    /// Creates every partition's consumer groups (idempotent).
    pub async fn ensure_groups(&self) -> Result<(), StoreError> {
        let creations = [Work::Inbound, Work::Outbox]
            .into_iter()
            .flat_map(|work| keys::partitions().map(move |partition| (work, partition)))
            .map(|(work, partition)| async move {
                let mut conn = self.conn.clone();
                let created = self
                    .bounded(
                        Duration::ZERO,
                        redis::cmd("XGROUP")
                            .arg("CREATE")
                            .arg(work.stream(partition))
                            .arg(work.group())
                            .arg("0")
                            .arg("MKSTREAM")
                            .query_async::<()>(&mut conn),
                    )
                    .await;
                match created {
                    Err(StoreError::Redis(error)) if error.code() == Some("BUSYGROUP") => Ok(()),
                    other => other,
                }
            });
        futures_util::future::try_join_all(creations).await?;
        Ok(())
    }

    /// Work streams of the layout before partitions (`sb:inbound`, `sb:outbox`) that still
    /// hold entries: work this build never reads, to be named at start rather than ignored.
    pub async fn unpartitioned_work(&self) -> Result<Vec<(&'static str, usize)>, StoreError> {
        let mut left = Vec::new();
        for stream in ["sb:inbound", "sb:outbox"] {
            let mut conn = self.conn.clone();
            let length: usize = self
                .bounded(
                    Duration::ZERO,
                    redis::cmd("XLEN").arg(stream).query_async(&mut conn),
                )
                .await?;
            if length > 0 {
                left.push((stream, length));
            }
        }
        Ok(left)
    }

    /// Reads new entries of `partitions` for `consumer`, waiting up to `block` for some to
    /// arrive; at most `count` per partition.
    pub async fn read_work(
        &self,
        work: Work,
        consumer: &str,
        partitions: &[usize],
        count: usize,
        block: Duration,
    ) -> Result<Vec<WorkItem>, StoreError> {
        if !self.conn.is_cluster() {
            return self
                .read_partitions(work, consumer, partitions, count, block)
                .await;
        }
        let deadline = tokio::time::Instant::now() + block;
        let mut polls = Backoff::new(CLUSTER_POLL_FIRST, CLUSTER_POLL_LONGEST);
        let mut wait = polls.next_delay();
        loop {
            // Registered before polling, so work queued while the poll runs is not missed.
            let woken = self.new_work.of(work).notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let items = self
                .poll_each_partition(work, consumer, partitions, count)
                .await?;
            let now = tokio::time::Instant::now();
            if !items.is_empty() || now >= deadline {
                return Ok(items);
            }
            let _ = tokio::time::timeout_at(deadline.min(now + wait), woken).await;
            wait = polls.next_delay();
        }
    }

    async fn read_partitions(
        &self,
        work: Work,
        consumer: &str,
        partitions: &[usize],
        count: usize,
        block: Duration,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(work.group())
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS");
        let streams: Vec<String> = partitions.iter().map(|p| work.stream(*p)).collect();
        read.arg(&streams);
        for _ in partitions {
            read.arg(">");
        }
        let mut conn = self.conn.clone();
        let reply: Option<StreamReadReply> =
            self.bounded(block, read.query_async(&mut conn)).await?;
        let Some(reply) = reply else {
            return Ok(Vec::new());
        };
        Ok(reply
            .keys
            .into_iter()
            .flat_map(|stream| {
                let partition = streams
                    .iter()
                    .position(|name| *name == stream.key)
                    .map(|index| partitions[index])
                    .unwrap_or_default();
                stream
                    .ids
                    .into_iter()
                    .map(move |entry| WorkItem::from_stream(entry, partition))
            })
            .collect())
    }

    async fn poll_each_partition(
        &self,
        work: Work,
        consumer: &str,
        partitions: &[usize],
        count: usize,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let replies = self
            .pipelined_by_partition(partitions, None, false, |pipe, item| {
                let partition = partitions[item];
                pipe.cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(work.group())
                    .arg(consumer)
                    .arg("COUNT")
                    .arg(count)
                    .arg("STREAMS")
                    .arg(work.stream(partition))
                    .arg(">");
                1
            })
            .await?;
        let mut items = Vec::new();
        for (partition, replies) in partitions.iter().copied().zip(replies) {
            for reply in replies {
                let reply: Option<StreamReadReply> =
                    redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
                items.extend(
                    reply
                        .into_iter()
                        .flat_map(|reply| reply.keys)
                        .flat_map(|stream| {
                            stream
                                .ids
                                .into_iter()
                                .map(move |entry| WorkItem::from_stream(entry, partition))
                        }),
                );
            }
        }
        Ok(items)
    }

    /// Takes over entries of `partitions` another consumer left unacked for longer than
    /// `min_idle` (it died); at most `count` per partition.
    pub async fn claim_stale(
        &self,
        work: Work,
        consumer: &str,
        partitions: &[usize],
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let replies = self
            .pipelined_by_partition(partitions, None, false, |pipe, item| {
                let partition = partitions[item];
                pipe.cmd("XAUTOCLAIM")
                    .arg(work.stream(partition))
                    .arg(work.group())
                    .arg(consumer)
                    .arg(min_idle.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(count);
                1
            })
            .await?;
        let mut items = Vec::new();
        for (partition, replies) in partitions.iter().copied().zip(replies) {
            for reply in replies {
                let reply: StreamAutoClaimReply =
                    redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
                items.extend(
                    reply
                        .claimed
                        .into_iter()
                        .map(|entry| WorkItem::from_stream(entry, partition)),
                );
            }
        }
        Ok(items)
    }

    /// Parks an outbox entry that failed, or waits behind one that did, until `due_ms` (see
    /// `lua/retry.lua`): it joins `target`'s waiting set and its conversation's line for
    /// `target`, where later deliveries wait behind it.
    pub async fn park_for_retry(
        &self,
        item: &WorkItem,
        target: &DeliveryTarget,
        parking: Parking<'_>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.retry.prepare_invoke();
        let ttl_ms = parking.due_ms.saturating_sub(crate::model::now_ms()) + parking.line_slack_ms;
        invocation
            .key(keys::outbox(item.partition))
            .key(keys::outbox_delayed(item.partition))
            .key(keys::outbox_waiting(item.partition, target.target))
            .key(target.line_key())
            .key(target.hold_key())
            .arg(keys::OUTBOX_GROUP)
            .arg(&item.entry_id)
            .arg(parking.due_ms)
            .arg(parking.member)
            .arg(parking.origin)
            .arg(parking.queued_ms)
            .arg(ttl_ms)
            .arg(if parking.failed { "1" } else { "0" });
        self.bounded(Duration::ZERO, invocation.invoke_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    /// Moves parked outbox entries of `partitions` whose time has come back into their
    /// streams; returns how many moved and how many are still parked.
    pub async fn promote_due(
        &self,
        partitions: &[usize],
        now_ms: u64,
    ) -> Result<(usize, usize), StoreError> {
        let replies = self
            .pipelined_by_partition(
                partitions,
                Some(&self.scripts.promote),
                false,
                |pipe, item| {
                    let partition = partitions[item];
                    let mut invocation = self.scripts.promote.prepare_invoke();
                    invocation
                        .key(keys::outbox_delayed(partition))
                        .key(keys::outbox(partition))
                        .arg(now_ms)
                        .arg(100);
                    pipe.invoke_script(&invocation);
                    1
                },
            )
            .await?;
        let mut totals = (0, 0);
        for reply in replies.into_iter().flatten() {
            let (moved, parked): (usize, usize) =
                redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
            totals = (totals.0 + moved, totals.1 + parked);
        }
        if totals.0 > 0 {
            self.new_work.arrived(Work::Outbox);
        }
        Ok(totals)
    }

    /// The line of each of `targets` (what waits, and when its front is due), in order.
    pub async fn delivery_lines(
        &self,
        targets: &[DeliveryTarget],
    ) -> Result<Vec<DeliveryLine>, StoreError> {
        let partitions: Vec<usize> = targets
            .iter()
            .map(|target| keys::partition(&target.conversation_id))
            .collect();
        let replies = self
            .pipelined_by_partition(&partitions, None, false, |pipe, item| {
                pipe.zrange(targets[item].line_key(), 0, -1)
                    .get(targets[item].hold_key());
                2
            })
            .await?;
        replies
            .into_iter()
            .map(|replies| {
                let mut replies = replies.into_iter();
                let mut next = || replies.next().unwrap_or(redis::Value::Nil);
                Ok(DeliveryLine {
                    origins: redis::from_redis_value(next()).map_err(redis::RedisError::from)?,
                    front_due_ms: redis::from_redis_value(next())
                        .map_err(redis::RedisError::from)?,
                })
            })
            .collect()
    }

    /// Records delivered outbox entries: each one's receipt (when the platform gave an id)
    /// and its ack, atomically per partition, in one round trip on a single Redis.
    pub async fn complete_deliveries(&self, delivered: &[Delivered]) -> Result<(), StoreError> {
        let mut by_partition: BTreeMap<usize, Vec<&Delivered>> = BTreeMap::new();
        for entry in delivered {
            by_partition.entry(entry.partition).or_default().push(entry);
        }
        let groups: Vec<(usize, Vec<&Delivered>)> = by_partition.into_iter().collect();
        let partitions: Vec<usize> = groups.iter().map(|(partition, _)| *partition).collect();
        self.pipelined_by_partition(&partitions, None, true, |pipe, group| {
            let (partition, entries) = &groups[group];
            for receipt in entries.iter().filter_map(|entry| entry.receipt.as_ref()) {
                pipe.hset(
                    keys::deliveries(&receipt.conversation_id),
                    &receipt.transcript_id,
                    receipt.stored.to_value(),
                )
                .ignore();
            }
            for held in entries.iter().filter_map(|entry| entry.held_back.as_ref()) {
                held.release(pipe, *partition);
            }
            let outbox = keys::outbox(*partition);
            let entry_ids: Vec<&str> = entries
                .iter()
                .map(|entry| entry.entry_id.as_str())
                .collect();
            pipe.xack(&outbox, keys::OUTBOX_GROUP, &entry_ids).ignore();
            0
        })
        .await
        .map(|_| ())
    }

    /// Trims the entries of `partitions`' `work` streams that the group has acked (see
    /// `lua/trim.lua`); returns how many went.
    pub async fn trim_done(&self, work: Work, partitions: &[usize]) -> Result<usize, StoreError> {
        let replies = self
            .pipelined_by_partition(partitions, Some(&self.scripts.trim), false, |pipe, item| {
                let mut invocation = self.scripts.trim.prepare_invoke();
                invocation
                    .key(work.stream(partitions[item]))
                    .arg(work.group());
                pipe.invoke_script(&invocation);
                1
            })
            .await?;
        let mut trimmed = 0;
        for reply in replies.into_iter().flatten() {
            trimmed += redis::from_redis_value::<usize>(reply).map_err(redis::RedisError::from)?;
        }
        Ok(trimmed)
    }

    /// How much work is queued, pending, parked and dead, over every partition.
    pub async fn work_counts(&self) -> Result<WorkCounts, StoreError> {
        let partitions: Vec<usize> = keys::partitions().collect();
        let replies = self
            .pipelined_by_partition(&partitions, None, false, |pipe, partition| {
                pipe.cmd("XINFO")
                    .arg("GROUPS")
                    .arg(keys::inbound(partition))
                    .cmd("XINFO")
                    .arg("GROUPS")
                    .arg(keys::outbox(partition))
                    .zcard(keys::outbox_delayed(partition))
                    .xlen(keys::outbox_dead(partition))
                    .xlen(keys::escalations(partition));
                5
            })
            .await?;
        let mut counts = WorkCounts::default();
        for (partition, replies) in replies.into_iter().enumerate() {
            let mut replies = replies.into_iter();
            let mut next = || replies.next().unwrap_or(redis::Value::Nil);
            let inbound_group = next();
            let outbox_group = next();
            let (inbound, inbound_pending) = self
                .group_backlog(inbound_group, Work::Inbound, partition)
                .await?;
            let (outbox, outbox_pending) = self
                .group_backlog(outbox_group, Work::Outbox, partition)
                .await?;
            counts.inbound += inbound;
            counts.inbound_pending += inbound_pending;
            counts.outbox += outbox;
            counts.outbox_pending += outbox_pending;
            counts.parked +=
                redis::from_redis_value::<usize>(next()).map_err(redis::RedisError::from)?;
            counts.dead +=
                redis::from_redis_value::<usize>(next()).map_err(redis::RedisError::from)?;
            counts.escalations +=
                redis::from_redis_value::<usize>(next()).map_err(redis::RedisError::from)?;
        }
        Ok(counts)
    }

    /// A group's (entries not yet acked, entries delivered and not yet acked), from its XINFO
    /// GROUPS record: acked entries stay in the stream until trimmed, so the stream's length
    /// says nothing about work left.
    async fn group_backlog(
        &self,
        reply: redis::Value,
        work: Work,
        partition: usize,
    ) -> Result<(usize, usize), StoreError> {
        let groups: redis::streams::StreamInfoGroupsReply =
            redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
        let Some(info) = groups
            .groups
            .into_iter()
            .find(|info| info.name == work.group())
        else {
            return Ok((0, 0));
        };
        let waiting = match info.lag {
            Some(lag) => lag,
            // The server cannot always tell (after some deletions): count what was not
            // delivered yet.
            None => {
                let mut conn = self.conn.clone();
                let undelivered: StreamRangeReply = self
                    .bounded(
                        Duration::ZERO,
                        redis::cmd("XRANGE")
                            .arg(work.stream(partition))
                            .arg(format!("({}", info.last_delivered_id))
                            .arg("+")
                            .query_async(&mut conn),
                    )
                    .await?;
                undelivered.ids.len()
            }
        };
        Ok((waiting + info.pending, info.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_reads_back_and_one_written_before_its_fields_reads_as_its_id() {
        let receipt = StoredReceipt {
            id: "12".into(),
            earlier: vec!["11".into()],
            channel: Some("telegram".into()),
        };
        assert_eq!(receipt.to_value(), "telegram 11 12");
        assert_eq!(StoredReceipt::parse(&receipt.to_value()), receipt);
        let spaced = StoredReceipt {
            id: "<a b@example.com>".into(),
            earlier: Vec::new(),
            channel: Some("email".into()),
        };
        assert_eq!(StoredReceipt::parse(&spaced.to_value()), spaced);
        let unnamed = StoredReceipt {
            channel: None,
            ..receipt.clone()
        };
        assert_eq!(StoredReceipt::parse(&unnamed.to_value()), unnamed);
        let json = r#"{"id":"12","earlier":["11"],"ch":"telegram"}"#;
        assert_eq!(
            StoredReceipt::parse(json),
            receipt,
            "the JSON form reads too"
        );
        let ids: Vec<&String> = receipt.ids().collect();
        assert_eq!(ids, ["11", "12"]);
        let legacy = StoredReceipt::parse("1700000000.000100");
        assert_eq!(
            (legacy.id.as_str(), legacy.channel),
            ("1700000000.000100", None)
        );
        assert_eq!(
            StoredReceipt::parse("42").id,
            "42",
            "a bare number is an id"
        );
    }
}
