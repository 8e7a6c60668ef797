//! Work streams: consumer groups for the inbound work and the outbox, retries parked in a
//! sorted set, dead letters, and completing a delivery with its receipt in one step.

use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamReadReply};

use super::{keys, Store, StoreError, WorkItem};

/// How long a delivery hold outlives its retry's due time.
const HOLD_SLACK_MS: u64 = 2_000;

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
}

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

    /// Parks a failed outbox entry until `due_ms` (see `lua/retry.lua`). With `hold`, the
    /// recipient's later deliveries wait behind it until then (see [`Store::delivery_holds`]).
    pub async fn park_for_retry(
        &self,
        group: &str,
        entry_id: &str,
        due_ms: u64,
        member: &str,
        hold: Option<&DeliveryTarget>,
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
        if let Some(target) = hold {
            // The hold outlives the due time a little: the retry must be promoted and read
            // before the messages behind it.
            let ttl_ms = due_ms.saturating_sub(crate::model::now_ms()) + HOLD_SLACK_MS;
            invocation.key(target.hold_key()).arg(ttl_ms);
        }
        self.bounded(Duration::ZERO, invocation.invoke_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    /// Moves parked outbox entries whose time has come back into the stream; returns how many
    /// moved and how many are still parked.
    pub async fn promote_due(&self, now_ms: u64) -> Result<(usize, usize), StoreError> {
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.promote.prepare_invoke();
        invocation
            .key(keys::OUTBOX_DELAYED)
            .key(keys::OUTBOX)
            .arg(now_ms)
            .arg(100);
        self.bounded(Duration::ZERO, invocation.invoke_async(&mut conn))
            .await
    }

    /// Until when each target's deliveries must wait behind a parked earlier one (epoch ms),
    /// in the order of `targets`; `None` where nothing is parked.
    pub async fn delivery_holds(
        &self,
        targets: &[DeliveryTarget],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let hold_keys: Vec<String> = targets.iter().map(DeliveryTarget::hold_key).collect();
        let mut conn = self.conn.clone();
        self.bounded(
            Duration::ZERO,
            redis::cmd("MGET").arg(&hold_keys).query_async(&mut conn),
        )
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

    /// Acks and deletes delivered outbox entries in one round trip (their receipts were
    /// written when each was sent; see `crate::receipts`).
    pub async fn complete_deliveries(&self, entry_ids: &[&str]) -> Result<(), StoreError> {
        if entry_ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        self.bounded(
            Duration::ZERO,
            redis::pipe()
                .atomic()
                .xack(keys::OUTBOX, keys::OUTBOX_GROUP, entry_ids)
                .ignore()
                .xdel(keys::OUTBOX, entry_ids)
                .ignore()
                .query_async::<()>(&mut conn),
        )
        .await
    }
}
