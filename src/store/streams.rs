//! Work streams: consumer groups for the inbound work and the outbox, retries parked in a
//! sorted set, dead letters, and completing a delivery with its receipt in one step.

use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamReadReply};

use super::{keys, Store, StoreError, WorkItem};

impl Store {
    /// Creates the consumer groups the workers read from (idempotent).
    pub async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let created = self
            .bounded(
                Duration::ZERO,
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(stream)
                    .arg(group)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async::<()>(&mut conn),
            )
            .await;
        match created {
            Err(StoreError::Redis(error)) if error.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Acks and deletes a work item without writing anything else.
    pub async fn ack(&self, stream: &str, group: &str, entry_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(
            Duration::ZERO,
            redis::pipe()
                .atomic()
                .xack(stream, group, &[entry_id])
                .ignore()
                .xdel(stream, &[entry_id])
                .ignore()
                .query_async::<()>(&mut conn),
        )
        .await
    }

    /// Reads new entries for `consumer`, waiting up to `block` for some to arrive.
    pub async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Option<StreamReadReply> = self
            .bounded(
                block,
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(group)
                    .arg(consumer)
                    .arg("COUNT")
                    .arg(count)
                    .arg("BLOCK")
                    .arg(block.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(stream)
                    .arg(">")
                    .query_async(&mut conn),
            )
            .await?;
        Ok(reply
            .map(|reply| {
                reply
                    .keys
                    .into_iter()
                    .flat_map(|key| key.ids)
                    .map(WorkItem::from_stream)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Takes over entries another consumer left unacked for longer than `min_idle` (it died).
    pub async fn claim_stale(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: StreamAutoClaimReply = self
            .bounded(
                Duration::ZERO,
                redis::cmd("XAUTOCLAIM")
                    .arg(stream)
                    .arg(group)
                    .arg(consumer)
                    .arg(min_idle.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut conn),
            )
            .await?;
        Ok(reply
            .claimed
            .into_iter()
            .map(WorkItem::from_stream)
            .collect())
    }

    /// Parks a failed outbox entry until `due_ms` (see `lua/retry.lua`).
    pub async fn park_for_retry(
        &self,
        group: &str,
        entry_id: &str,
        due_ms: u64,
        member: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.retry.prepare_invoke();
        invocation
            .key(keys::OUTBOX)
            .key(keys::OUTBOX_DELAYED)
            .arg(group)
            .arg(entry_id)
            .arg(due_ms)
            .arg(member);
        self.bounded(Duration::ZERO, invocation.invoke_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    /// Moves parked outbox entries whose time has come back into the stream.
    pub async fn promote_due(&self, now_ms: u64) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.promote.prepare_invoke();
        invocation
            .key(keys::OUTBOX_DELAYED)
            .key(keys::OUTBOX)
            .arg(now_ms)
            .arg(100);
        self.bounded(Duration::ZERO, invocation.invoke_async::<usize>(&mut conn))
            .await
    }

    /// Records an undeliverable outbox entry in the dead-letter stream and removes it.
    pub async fn dead_letter(
        &self,
        group: &str,
        entry_id: &str,
        payload: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(
            Duration::ZERO,
            redis::pipe()
                .atomic()
                .xadd(
                    keys::OUTBOX_DEAD,
                    "*",
                    &[("p", payload), ("reason", reason)],
                )
                .ignore()
                .xack(keys::OUTBOX, group, &[entry_id])
                .ignore()
                .xdel(keys::OUTBOX, &[entry_id])
                .ignore()
                .query_async::<()>(&mut conn),
        )
        .await
    }

    /// Completes a delivered outbox entry in one round trip: records where it landed on its
    /// platform (for threads and edits), then acks and deletes it. The receipt goes first, so a
    /// connection lost midway leaves the entry to be redelivered (connectors dedupe) rather
    /// than delivered without its receipt.
    pub async fn complete_delivery(
        &self,
        entry_id: &str,
        receipt: Option<(&str, &str, &str)>,
    ) -> Result<(), StoreError> {
        self.complete_deliveries(&[(entry_id, receipt)]).await
    }

    /// Completes several delivered outbox entries in one atomic round trip (see
    /// [`Store::complete_delivery`]).
    pub async fn complete_deliveries(
        &self,
        done: &[(&str, Option<(&str, &str, &str)>)],
    ) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (_, receipt) in done {
            if let Some((conversation_id, message_id, platform_message_id)) = receipt {
                pipe.hset(
                    keys::deliveries(conversation_id),
                    *message_id,
                    *platform_message_id,
                )
                .ignore();
            }
        }
        let entry_ids: Vec<&str> = done.iter().map(|(entry_id, _)| *entry_id).collect();
        pipe.xack(keys::OUTBOX, keys::OUTBOX_GROUP, &entry_ids)
            .ignore()
            .xdel(keys::OUTBOX, &entry_ids)
            .ignore();
        let mut conn = self.conn.clone();
        self.bounded(Duration::ZERO, pipe.query_async::<()>(&mut conn))
            .await
    }
}
