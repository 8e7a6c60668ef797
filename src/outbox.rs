//! Durable outbound delivery: a Redis stream with a consumer group.
//!
//! An entry is acked only after its connector reported the platform accepted it. A failed
//! attempt is parked in a sorted set until its backoff has passed (or the platform's
//! `Retry-After`), then put back; an entry whose worker died is taken over after
//! `claim_idle_ms`. Delivery is therefore at least once; connectors dedupe on `Outbound::id`.
//!
//! A platform that is merely down is waited for: an entry is given up on (dead-lettered) only
//! after `give_up_after_ms` of failing, counted from its own first failed attempt, however many
//! attempts that took; one that can never succeed (a revoked token, an unknown chat) at once.
//! Dead letters are for an admin (see [`admin`]); [`health`] tells `/readyz` and `/metrics`.

pub mod admin;
pub mod health;
mod history;
mod order;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use switchboard_api::{Backoff, ChannelKind, Connector, ConnectorError};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::config::OutboxConfig;
use crate::desk::DeskCourier;
use crate::files::Files;
use crate::metrics::Metrics;
use crate::model::{now_ms, Delivery};
use crate::periodic::Periodic;
use crate::receipts::ReceiptWriter;
use crate::store::{
    keys, DeadLetter, Delivered, DeliveryTarget, HeldBack, Parking, Receipt, Store, StoreError,
    StoredReceipt, Work, WorkItem,
};
use history::History;
pub(crate) use history::Parked;
use order::{Line, Turn};

/// Entries read per round; their acks are one round trip.
const BATCH: usize = 64;

/// How often a worker reads the waiting sets of its partitions: the gauges' resolution.
const WAITING_READ_PERIOD: Duration = Duration::from_secs(2);

/// An outbox entry's payload, parsed once for grouping and for delivery.
// A batch holds at most `BATCH` of these for one round, nearly all deliveries: boxing them
// to shrink the rare malformed case would add an allocation per entry and save nothing.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Delivery(Delivery),
    Malformed(serde_json::Error),
}

impl Parsed {
    fn from_item(item: &WorkItem) -> Parsed {
        let payload = item.fields.get("p").map(String::as_str).unwrap_or_default();
        match serde_json::from_str(payload) {
            Ok(delivery) => Parsed::Delivery(delivery),
            Err(error) => Parsed::Malformed(error),
        }
    }

    /// Where it goes; deliveries to one target are kept in order.
    fn target(&self) -> Option<DeliveryTarget> {
        match self {
            Parsed::Delivery(Delivery::Customer(outbound)) => Some(DeliveryTarget {
                conversation_id: outbound.conversation_id.clone(),
                target: outbound.channel.as_str(),
            }),
            Parsed::Delivery(Delivery::Desk(post)) => Some(DeliveryTarget {
                conversation_id: post.conversation_id.clone(),
                target: "desk",
            }),
            Parsed::Malformed(_) => None,
        }
    }

    fn conversation_id(&self) -> Option<&str> {
        match self {
            Parsed::Delivery(Delivery::Customer(outbound)) => Some(&outbound.conversation_id),
            Parsed::Delivery(Delivery::Desk(post)) => Some(&post.conversation_id),
            Parsed::Malformed(_) => None,
        }
    }
}

/// One tried entry: where it went and what happened (already written to Redis).
struct Attempt {
    target: &'static str,
    outcome: DeliveryOutcome,
    /// What the platform said when a retryable attempt failed.
    failure: Option<String>,
}

impl Attempt {
    fn finished(target: &'static str, outcome: DeliveryOutcome) -> Attempt {
        Attempt {
            target,
            outcome,
            failure: None,
        }
    }
}

fn delivered(item: &WorkItem, receipt: Option<Receipt>, held_back: Option<HeldBack>) -> Delivered {
    Delivered {
        partition: item.partition,
        entry_id: item.entry_id.clone(),
        receipt,
        held_back,
    }
}

/// Delivers the outbox through the enabled connectors.
pub struct OutboxWorker {
    store: Store,
    connectors: HashMap<ChannelKind, Arc<dyn Connector>>,
    desk: Option<Arc<DeskCourier>>,
    files: Option<Arc<Files>>,
    config: OutboxConfig,
    consumer: String,
    /// The partitions this worker delivers (see `keys::partitions_of_worker`).
    partitions: Vec<usize>,
    metrics: Arc<Metrics>,
    receipts: ReceiptWriter,
    /// Whether any delivery was parked at the last look (then holds must be read).
    something_parked: AtomicBool,
    promote_chore: Periodic,
    claim_chore: Periodic,
    /// Reading what waits per target, for the gauges and `/readyz`.
    waiting_chore: Periodic,
}

/// What happened to one outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The platform accepted it.
    Delivered,
    /// It failed and will be tried again later.
    Retrying {
        /// The attempt that failed, counting from 1.
        attempt: u32,
        /// When the next attempt may happen.
        after: Duration,
    },
    /// It can never be delivered; it is in the dead-letter stream.
    DeadLettered(String),
    /// An earlier message to the same recipient waits for a retry; this one waits behind it,
    /// so the customer (or the thread) reads them in the order they were written.
    Waiting,
}

impl OutboxWorker {
    /// A worker named `consumer`; `store` should be a dedicated connection.
    pub fn new(
        store: Store,
        connectors: HashMap<ChannelKind, Arc<dyn Connector>>,
        config: OutboxConfig,
        consumer: String,
    ) -> Self {
        let claim_chore = Periodic::for_claims(Duration::from_millis(config.claim_idle_ms));
        OutboxWorker {
            receipts: ReceiptWriter::new(store.clone()),
            something_parked: AtomicBool::new(true),
            store,
            connectors,
            desk: None,
            files: None,
            config,
            consumer,
            partitions: keys::partitions().collect(),
            metrics: Arc::default(),
            // Retries are parked for at least the initial backoff; looking five times a
            // second returns them close to their due time.
            promote_chore: Periodic::every(Duration::from_millis(200)),
            claim_chore,
            waiting_chore: Periodic::every(WAITING_READ_PERIOD),
        }
    }

    /// Counts into `metrics` (shared with the rest of the gateway).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        metrics
            .delivery_health
            .set_unhealthy_after(Duration::from_millis(self.config.unhealthy_after_ms));
        self.metrics = metrics;
        self
    }

    /// Delivers only `partitions` (every one by default): one of several workers.
    pub fn with_partitions(mut self, partitions: Vec<usize>) -> Self {
        self.partitions = partitions;
        self
    }

    /// Fills in files' links (and bytes, for connectors that send files) at delivery time.
    pub fn with_files(mut self, files: Arc<Files>) -> Self {
        self.files = Some(files);
        self
    }

    /// Delivers desk posts through `courier`.
    pub fn with_desk(mut self, courier: Arc<DeskCourier>) -> Self {
        self.desk = Some(courier);
        self
    }

    /// Delivers until `shutdown` is cancelled, then returns once the deliveries in hand are
    /// done (what is left stays pending, for another instance to take over); Redis errors are
    /// logged and retried.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = crate::pipeline::redis_outage_backoff();
        while !shutdown.is_cancelled() {
            match self.work_once(Duration::from_millis(250)).await {
                Ok(_) => backoff.reset(),
                Err(error) => {
                    let pause = backoff.next_delay();
                    warn!(%error, retry_in = ?pause, "outbox: redis unavailable");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    /// One round: put back due retries and take over stale entries (each when due), then
    /// deliver new ones.
    pub async fn work_once(&self, block: Duration) -> Result<Vec<DeliveryOutcome>, StoreError> {
        if self.promote_chore.is_due() {
            let (_, still_parked) = self.store.promote_due(&self.partitions, now_ms()).await?;
            // Another instance may park an entry at any time; holds are checked again as soon
            // as a promotion round sees it.
            self.something_parked
                .store(still_parked > 0, Ordering::Relaxed);
        }
        if self.waiting_chore.is_due() {
            self.read_waiting().await?;
        }
        let mut outcomes = Vec::new();
        let claim_idle = Duration::from_millis(self.config.claim_idle_ms);
        if self.claim_chore.is_due() {
            let stale = self
                .store
                .claim_stale(
                    Work::Outbox,
                    &self.consumer,
                    &self.partitions,
                    claim_idle,
                    BATCH,
                )
                .await?;
            if stale.len() >= BATCH {
                self.claim_chore.again();
            }
            outcomes.extend(self.deliver_batch(stale, true).await?);
            self.store.trim_done(Work::Outbox, &self.partitions).await?;
        }
        let fresh = self
            .store
            .read_work(Work::Outbox, &self.consumer, &self.partitions, BATCH, block)
            .await?;
        outcomes.extend(self.deliver_batch(fresh, false).await?);
        Ok(outcomes)
    }

    /// Delivers a batch: conversations side by side (a slow platform call for one customer
    /// does not hold up the others), each conversation's entries in order. Each delivered
    /// entry's receipt and ack are written the moment it is sent (see `crate::receipts`).
    ///
    /// `reclaimed` entries were taken over from an instance that may have delivered them
    /// before it died.
    async fn deliver_batch(
        &self,
        items: Vec<WorkItem>,
        reclaimed: bool,
    ) -> Result<Vec<DeliveryOutcome>, StoreError> {
        // Another instance takes over entries idle for `claim_idle_ms`, even while this one is
        // still working through a slow batch (platform pacing); a send started after this
        // deadline could land twice. What is left stays pending and is reclaimed in order.
        // (With a send timeout near the claim idle time, half of it is the best we can do.)
        let claim_idle = Duration::from_millis(self.config.claim_idle_ms);
        let send_timeout = Duration::from_millis(self.config.send_timeout_ms);
        let deadline = Instant::now() + claim_idle.saturating_sub(send_timeout).max(claim_idle / 2);
        let mut by_conversation: Vec<Vec<(WorkItem, Parsed)>> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for item in items {
            let parsed = Parsed::from_item(&item);
            let key = parsed.conversation_id().unwrap_or_default().to_owned();
            let index = *group_of.entry(key).or_insert_with(|| {
                by_conversation.push(Vec::new());
                by_conversation.len() - 1
            });
            by_conversation[index].push((item, parsed));
        }
        let lines = self.lines_of(&by_conversation).await?;
        let lines = &lines;
        let attempted =
            futures_util::future::join_all(by_conversation.into_iter().map(|group| async move {
                let mut results = Vec::with_capacity(group.len());
                // Each target's line, kept up to date as the batch goes.
                let mut batch_lines: HashMap<DeliveryTarget, Line> = HashMap::new();
                for (item, parsed) in group {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let Some(target) = parsed.target() else {
                        results.push(self.attempt(item, parsed, reclaimed).await);
                        continue;
                    };
                    let line = batch_lines
                        .entry(target.clone())
                        .or_insert_with(|| lines.get(&target).cloned().unwrap_or_default());
                    let origin = History::of(&item).origin;
                    if let Turn::WaitUntil(due) = line.turn(&origin, now_ms()) {
                        results.push(self.wait_behind(&item, due, &target).await);
                        continue;
                    }
                    let result = self.attempt(item, parsed, reclaimed).await;
                    match &result {
                        Ok(Attempt {
                            outcome: DeliveryOutcome::Retrying { after, .. },
                            ..
                        }) => line.failed(now_ms() + after.as_millis() as u64),
                        Ok(_) => line.left(&origin),
                        Err(_) => {}
                    }
                    results.push(result);
                }
                results
            }))
            .await;
        let mut counted = Vec::new();
        let mut first_error = None;
        for result in attempted.into_iter().flatten() {
            match result {
                Ok(attempt) => counted.push(attempt),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        let mut outcomes = Vec::with_capacity(counted.len());
        for attempt in counted {
            let label = match &attempt.outcome {
                DeliveryOutcome::Delivered => "delivered",
                DeliveryOutcome::Retrying { .. } => "retry",
                DeliveryOutcome::DeadLettered(_) => "dead",
                DeliveryOutcome::Waiting => "waiting",
            };
            self.metrics
                .outbox_deliveries
                .get_or_create(&vec![
                    ("target", attempt.target.into()),
                    ("outcome", label.into()),
                ])
                .inc();
            let health = &self.metrics.delivery_health;
            match (&attempt.outcome, &attempt.failure) {
                (DeliveryOutcome::Delivered, _) => health.delivered(attempt.target),
                (DeliveryOutcome::Retrying { .. }, Some(failure)) => {
                    health.failed(attempt.target, failure, now_ms())
                }
                _ => {}
            }
            outcomes.push(attempt.outcome);
        }
        Ok(outcomes)
    }

    /// Tries one entry; a delivered entry comes back with its ack still to write.
    async fn attempt(
        &self,
        item: WorkItem,
        parsed: Parsed,
        reclaimed: bool,
    ) -> Result<Attempt, StoreError> {
        let payload = item.fields.get("p").cloned().unwrap_or_default();
        let transcript_id = item.fields.get("id").cloned().unwrap_or_default();
        let history = History::of(&item);
        let attempt = history.attempts + 1;
        // Taken over from an instance that may have sent it, or put back by an admin after an
        // attempt that may have reached the platform: look for its receipt first.
        let maybe_sent = reclaimed || history.replayed;
        let delivery = match parsed {
            Parsed::Delivery(delivery) => delivery,
            Parsed::Malformed(parse_error) => {
                let reason = format!("malformed outbox entry: {parse_error}");
                let dead = history.dead_letter(reason, None, history.attempts, None);
                let outcome = self.dead_letter(&item, &payload, dead).await?;
                return Ok(Attempt::finished("unknown", outcome));
            }
        };
        let (conversation_id, connector_name) = match &delivery {
            Delivery::Customer(outbound) => {
                (outbound.conversation_id.clone(), outbound.channel.as_str())
            }
            Delivery::Desk(post) => (post.conversation_id.clone(), "desk"),
        };
        let target = DeliveryTarget {
            conversation_id: conversation_id.clone(),
            target: connector_name,
        };
        let give_up_now = |reason: String| {
            history.dead_letter(
                reason,
                Some(&target),
                history.attempts,
                history.first_failure_ms,
            )
        };
        let send_timeout = Duration::from_millis(self.config.send_timeout_ms);
        let attempt_result = match delivery {
            Delivery::Customer(mut outbound) => {
                outbound.id = transcript_id.clone();
                let Some(connector) = self.connectors.get(&outbound.channel) else {
                    let reason = format!("no {} connector is enabled", outbound.channel);
                    let outcome = self
                        .dead_letter(&item, &payload, give_up_now(reason))
                        .await?;
                    return Ok(Attempt::finished(connector_name, outcome));
                };
                if maybe_sent
                    && self
                        .receipt_exists(&conversation_id, &transcript_id)
                        .await?
                {
                    // It reached the customer before (its first owner delivered it and died
                    // before the ack, or an earlier copy got through): sending again would show
                    // the customer the message twice.
                    let held_back = history.held_back_as(&target);
                    self.receipts
                        .record(delivered(&item, None, held_back))
                        .await;
                    return Ok(Attempt::finished(
                        connector_name,
                        DeliveryOutcome::Delivered,
                    ));
                }
                // A missing receipt does not mean it was never delivered: the first owner may
                // have died between the platform's accept and the receipt, so the connector
                // looks for that copy before it sends again.
                outbound.maybe_sent = maybe_sent;
                if let (false, Some(files)) = (outbound.files.is_empty(), &self.files) {
                    files
                        .prepare(&mut outbound, connector.capabilities().files)
                        .await?;
                }
                tokio::time::timeout(send_timeout, connector.send(&outbound))
                    .await
                    .map(|sent| sent.map(Some))
            }
            Delivery::Desk(post) => {
                let Some(courier) = &self.desk else {
                    let reason = "no agent desk is enabled".to_owned();
                    let outcome = self
                        .dead_letter(&item, &payload, give_up_now(reason))
                        .await?;
                    return Ok(Attempt::finished(connector_name, outcome));
                };
                tokio::time::timeout(send_timeout, courier.deliver(&post))
                    .await
                    .map(|sent| sent.map(|()| None))
            }
        };
        let failure = match attempt_result {
            Ok(Ok(sent)) => {
                let receipt = sent.filter(|_| !transcript_id.is_empty()).and_then(|sent| {
                    Some(Receipt {
                        conversation_id,
                        transcript_id,
                        stored: StoredReceipt {
                            id: sent.platform_message_id?,
                            earlier: sent.earlier_message_ids,
                            channel: Some(connector_name.to_owned()),
                        },
                    })
                });
                let held_back = history.held_back_as(&target);
                self.receipts
                    .record(delivered(&item, receipt, held_back))
                    .await;
                return Ok(Attempt::finished(
                    connector_name,
                    DeliveryOutcome::Delivered,
                ));
            }
            Ok(Err(failure)) => failure,
            Err(_) => ConnectorError::Transient {
                connector: connector_name,
                detail: format!("no answer within {send_timeout:?}"),
            },
        };
        if !failure.is_retryable() {
            let dead = history.dead_letter(
                failure.to_string(),
                Some(&target),
                attempt,
                history.first_failure_ms,
            );
            let outcome = self.dead_letter(&item, &payload, dead).await?;
            return Ok(Attempt::finished(connector_name, outcome));
        }
        let now = now_ms();
        let first_failure = history.first_failure_ms.unwrap_or(now);
        let failing_for = Duration::from_millis(now.saturating_sub(first_failure));
        if failing_for >= Duration::from_millis(self.config.give_up_after_ms) {
            let reason = format!(
                "gave up after {} of failures ({attempt} attempts): {failure}",
                humane_duration(failing_for)
            );
            let dead = history.dead_letter(reason, Some(&target), attempt, Some(first_failure));
            let outcome = self.dead_letter(&item, &payload, dead).await?;
            return Ok(Attempt::finished(connector_name, outcome));
        }
        let after = match &failure {
            ConnectorError::RateLimited { retry_after, .. } => *retry_after,
            _ => self.backoff(attempt),
        };
        warn!(
            error = %failure,
            conversation = %conversation_id,
            attempt,
            failing_for = ?failing_for,
            retry_in = ?after,
            "reply not delivered; will retry"
        );
        let member = history.parked_member(&item, attempt, Some(first_failure));
        let parking = Parking {
            due_ms: now + after.as_millis() as u64,
            member: &member,
            origin: &history.origin,
            queued_ms: history.queued_ms(),
            failed: true,
            line_slack_ms: self.line_slack_ms(),
        };
        self.store.park_for_retry(&item, &target, parking).await?;
        self.something_parked.store(true, Ordering::Relaxed);
        Ok(Attempt {
            target: connector_name,
            outcome: DeliveryOutcome::Retrying { attempt, after },
            failure: Some(failure.to_string()),
        })
    }

    /// The targets this worker delivers to: its connectors' channels, and the desk if any.
    fn targets(&self) -> Vec<&'static str> {
        let mut targets: Vec<&'static str> = self
            .connectors
            .keys()
            .map(|channel| channel.as_str())
            .collect();
        if self.desk.is_some() {
            targets.push("desk");
        }
        targets.sort_unstable();
        targets
    }

    /// Reads how many deliveries wait per target in this worker's partitions and since when;
    /// sets the gauges from what every worker of the instance read.
    async fn read_waiting(&self) -> Result<(), StoreError> {
        let read_at = now_ms();
        let counts = self
            .store
            .waiting_counts(&self.partitions, &self.targets())
            .await?;
        let health = &self.metrics.delivery_health;
        let now = now_ms();
        for (target, oldest) in health.waiting(&counts, read_at) {
            let age = oldest.map_or(0, |queued| now.saturating_sub(queued));
            self.metrics
                .outbox_oldest_waiting
                .get_or_create(&Metrics::label("target", target))
                .set(age as f64 / 1000.0);
        }
        for (target, failing_for) in health.failing_for(now) {
            self.metrics
                .outbox_failing
                .get_or_create(&Metrics::label("target", target))
                .set(failing_for.as_secs_f64());
        }
        Ok(())
    }

    async fn receipt_exists(&self, conversation: &str, message: &str) -> Result<bool, StoreError> {
        if message.is_empty() {
            return Ok(false);
        }
        let key = keys::deliveries(conversation);
        self.store
            .run(|mut conn| async move { conn.hexists(key, message).await })
            .await
    }

    /// Reads the lines of the batch's targets, unless nothing is parked (the common case):
    /// then there is no line and the round trip is saved.
    async fn lines_of(
        &self,
        groups: &[Vec<(WorkItem, Parsed)>],
    ) -> Result<HashMap<DeliveryTarget, Line>, StoreError> {
        if !self.something_parked.load(Ordering::Relaxed) {
            return Ok(HashMap::new());
        }
        let targets: Vec<DeliveryTarget> = groups
            .iter()
            .flatten()
            .filter_map(|(_, parsed)| parsed.target())
            .collect::<std::collections::HashSet<_>>()
            .into_iter()
            .collect();
        let lines = self.store.delivery_lines(&targets).await?;
        Ok(targets
            .into_iter()
            .zip(lines)
            .filter(|(_, line)| !line.origins.is_empty())
            .map(|(target, line)| (target, Line::from_store(line)))
            .collect())
    }

    /// How long a line outlives its front's due time unless the front is retried again:
    /// longer than the retry can take to be read, sent, or taken over from a dead instance.
    fn line_slack_ms(&self) -> u64 {
        self.config.claim_idle_ms + self.config.send_timeout_ms + 2_000
    }

    /// Parks an entry, unattempted, until `due`: it waits in its target's line behind an
    /// earlier one. Waiting is not failing: its attempts and first failure stay as they were.
    async fn wait_behind(
        &self,
        item: &WorkItem,
        due: u64,
        target: &DeliveryTarget,
    ) -> Result<Attempt, StoreError> {
        let history = History::of(item);
        let member = history.parked_member(item, history.attempts, history.first_failure_ms);
        let parking = Parking {
            due_ms: due,
            member: &member,
            origin: &history.origin,
            queued_ms: history.queued_ms(),
            failed: false,
            line_slack_ms: self.line_slack_ms(),
        };
        self.store.park_for_retry(item, target, parking).await?;
        Ok(Attempt::finished(target.target, DeliveryOutcome::Waiting))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        Backoff::new(
            Duration::from_millis(self.config.initial_backoff_ms),
            Duration::from_millis(self.config.max_backoff_ms),
        )
        .delay_for_attempt(attempt)
    }

    async fn dead_letter(
        &self,
        item: &WorkItem,
        payload: &str,
        dead: DeadLetter,
    ) -> Result<DeliveryOutcome, StoreError> {
        error!(entry = %item.entry_id, reason = %dead.reason, "reply cannot be delivered; moved to dead letters");
        self.store.dead_letter(item, payload, &dead).await?;
        Ok(DeliveryOutcome::DeadLettered(dead.reason))
    }
}

/// A duration as an admin reads it: `72h`, `5m 12s`, `850ms`.
pub fn humane_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0 => format!("{}ms", duration.as_millis()),
        1..60 => format!("{seconds}s"),
        60..3600 => match seconds % 60 {
            0 => format!("{}m", seconds / 60),
            rest => format!("{}m {rest}s", seconds / 60),
        },
        _ => match (seconds % 3600) / 60 {
            0 => format!("{}h", seconds / 3600),
            minutes => format!("{}h {minutes}m", seconds / 3600),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_an_admin_would_write_them() {
        assert_eq!(humane_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(humane_duration(Duration::from_secs(42)), "42s");
        assert_eq!(humane_duration(Duration::from_secs(312)), "5m 12s");
        assert_eq!(humane_duration(Duration::from_secs(600)), "10m");
        assert_eq!(humane_duration(Duration::from_secs(72 * 3600)), "72h");
        assert_eq!(humane_duration(Duration::from_secs(3600 + 180)), "1h 3m");
    }
}
