//! Durable outbound delivery: a Redis stream with a consumer group.
//!
//! An entry is acked only after its connector reported the platform accepted it. A failed
//! attempt is parked in a sorted set until its backoff has passed (or the platform's
//! `Retry-After`), then put back; an entry whose worker died is taken over after
//! `claim_idle_ms`. Delivery is therefore at least once; connectors dedupe on `Outbound::id`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use serde::{Deserialize, Serialize};
use switchboard_api::{ChannelKind, Connector, ConnectorError, Outbound};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::config::OutboxConfig;
use crate::desk::{DeskCourier, DeskPost};
use crate::files::Files;
use crate::metrics::Metrics;
use crate::model::now_ms;
use crate::periodic::Periodic;
use crate::receipts::ReceiptWriter;
use crate::store::DeliveryTarget;
use crate::store::{keys, Delivered, Receipt, Store, StoreError, Work, WorkItem};

/// What an outbox entry delivers: a message to a customer, or a post to the agent desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Delivery {
    /// A reply to the customer on their channel.
    Customer(Outbound),
    /// A briefing, mirror or notice for the agents.
    Desk(DeskPost),
}

/// A parked delivery, as stored in the delayed set.
#[derive(Debug, Serialize, Deserialize)]
struct Parked<'a> {
    id: &'a str,
    p: &'a str,
    attempt: u32,
}

/// Entries read per round; their acks are one round trip.
const BATCH: usize = 64;

/// An outbox entry's payload, parsed once for grouping and for delivery.
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
}

impl Attempt {
    fn finished(target: &'static str, outcome: DeliveryOutcome) -> Attempt {
        Attempt { target, outcome }
    }
}

fn delivered(item: &WorkItem, receipt: Option<Receipt>) -> Delivered {
    Delivered {
        partition: item.partition,
        entry_id: item.entry_id.clone(),
        receipt,
    }
}

/// How many times the entry was tried before (promoted retries carry the count).
fn attempts_so_far(item: &WorkItem) -> u32 {
    item.fields
        .get("attempt")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The delayed-set member that brings `item` back with `attempt` tries counted.
fn parked_member(item: &WorkItem, attempt: u32) -> String {
    let field = |name: &str| {
        item.fields
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    };
    serde_json::to_string(&Parked {
        id: field("id"),
        p: field("p"),
        attempt,
    })
    .unwrap_or_default()
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
        }
    }

    /// Counts into `metrics` (shared with the rest of the gateway).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
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
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            match self.work_once(Duration::from_millis(250)).await {
                Ok(_) => failures = 0,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = Duration::from_millis((100u64 << failures.min(4)).min(1_000));
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
        let holds = self.holds_of(&by_conversation).await?;
        let holds = &holds;
        let attempted =
            futures_util::future::join_all(by_conversation.into_iter().map(|group| async move {
                let mut results = Vec::with_capacity(group.len());
                // Within the batch, a failure holds the same target's later entries too.
                let mut waiting: HashMap<DeliveryTarget, u64> = HashMap::new();
                for (item, parsed) in group {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let target = parsed.target();
                    let held = target
                        .as_ref()
                        .and_then(|t| waiting.get(t).or_else(|| holds.get(t)).copied());
                    if let (Some(target), Some(until)) = (target.clone(), held) {
                        // Strictly after the entry it waits for, and after each other.
                        let behind = until + 1;
                        results.push(self.wait_behind(&item, behind, &target).await);
                        waiting.insert(target, behind);
                        continue;
                    }
                    let result = self.attempt(item, parsed, reclaimed).await;
                    if let (
                        Some(target),
                        Ok(Attempt {
                            outcome: DeliveryOutcome::Retrying { after, .. },
                            ..
                        }),
                    ) = (target, &result)
                    {
                        waiting.insert(target, now_ms() + after.as_millis() as u64);
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
        let attempt = attempts_so_far(&item) + 1;
        let delivery = match parsed {
            Parsed::Delivery(delivery) => delivery,
            Parsed::Malformed(parse_error) => {
                let reason = format!("malformed outbox entry: {parse_error}");
                let outcome = self.dead_letter(&item, &payload, reason).await?;
                return Ok(Attempt::finished("unknown", outcome));
            }
        };
        let (conversation_id, connector_name) = match &delivery {
            Delivery::Customer(outbound) => {
                (outbound.conversation_id.clone(), outbound.channel.as_str())
            }
            Delivery::Desk(post) => (post.conversation_id.clone(), "desk"),
        };
        let send_timeout = Duration::from_millis(self.config.send_timeout_ms);
        let attempt_result = match delivery {
            Delivery::Customer(mut outbound) => {
                outbound.id = transcript_id.clone();
                let Some(connector) = self.connectors.get(&outbound.channel) else {
                    let reason = format!("no {} connector is enabled", outbound.channel);
                    let outcome = self.dead_letter(&item, &payload, reason).await?;
                    return Ok(Attempt::finished(connector_name, outcome));
                };
                if reclaimed
                    && self
                        .receipt_exists(&conversation_id, &transcript_id)
                        .await?
                {
                    // Its first owner delivered it and died before the ack: sending again
                    // would show the customer the message twice.
                    self.receipts.record(delivered(&item, None)).await;
                    return Ok(Attempt::finished(
                        connector_name,
                        DeliveryOutcome::Delivered,
                    ));
                }
                // A missing receipt does not mean it was never delivered: the first owner may
                // have died between the platform's accept and the receipt, so the connector
                // looks for that copy before it sends again.
                outbound.maybe_sent = reclaimed;
                if let (false, Some(files)) = (outbound.files.is_empty(), &self.files) {
                    files
                        .prepare(&mut outbound, connector.capabilities().files)
                        .await?;
                }
                tokio::time::timeout(send_timeout, connector.send(&outbound))
                    .await
                    .map(|sent| sent.map(|receipt| receipt.platform_message_id))
            }
            Delivery::Desk(post) => {
                let Some(courier) = &self.desk else {
                    let reason = "no agent desk is enabled".to_owned();
                    let outcome = self.dead_letter(&item, &payload, reason).await?;
                    return Ok(Attempt::finished(connector_name, outcome));
                };
                tokio::time::timeout(send_timeout, courier.deliver(&post))
                    .await
                    .map(|sent| sent.map(|()| None))
            }
        };
        let failure = match attempt_result {
            Ok(Ok(platform_id)) => {
                let receipt =
                    platform_id
                        .filter(|_| !transcript_id.is_empty())
                        .map(|platform_message_id| Receipt {
                            conversation_id,
                            transcript_id,
                            platform_message_id,
                        });
                self.receipts.record(delivered(&item, receipt)).await;
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
            let reason = failure.to_string();
            let outcome = self.dead_letter(&item, &payload, reason).await?;
            return Ok(Attempt::finished(connector_name, outcome));
        }
        if attempt >= self.config.max_attempts {
            let reason = format!("gave up after {attempt} attempts: {failure}");
            let outcome = self.dead_letter(&item, &payload, reason).await?;
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
            retry_in = ?after,
            "reply not delivered; will retry"
        );
        let member = parked_member(&item, attempt);
        let due = now_ms() + after.as_millis() as u64;
        let target = DeliveryTarget {
            conversation_id,
            target: connector_name,
        };
        self.store
            .park_for_retry(&item, due, &member, Some(&target))
            .await?;
        self.something_parked.store(true, Ordering::Relaxed);
        Ok(Attempt::finished(
            connector_name,
            DeliveryOutcome::Retrying { attempt, after },
        ))
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

    /// Reads the holds of the batch's targets, unless nothing is parked (the common case):
    /// then no target can be held and the round trip is saved.
    async fn holds_of(
        &self,
        groups: &[Vec<(WorkItem, Parsed)>],
    ) -> Result<HashMap<DeliveryTarget, u64>, StoreError> {
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
        let until = self.store.delivery_holds(&targets).await?;
        let now = now_ms();
        Ok(targets
            .into_iter()
            .zip(until)
            .filter_map(|(target, until)| until.filter(|due| *due > now).map(|due| (target, due)))
            .collect())
    }

    /// Parks an entry, unattempted, until `due`: it waits behind an earlier one to its
    /// target, and becomes the one the next waits behind (the hold moves to `due`).
    async fn wait_behind(
        &self,
        item: &WorkItem,
        due: u64,
        target: &DeliveryTarget,
    ) -> Result<Attempt, StoreError> {
        let member = parked_member(item, attempts_so_far(item));
        self.store
            .park_for_retry(item, due, &member, Some(target))
            .await?;
        Ok(Attempt::finished(target.target, DeliveryOutcome::Waiting))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .config
            .initial_backoff_ms
            .saturating_mul(1u64 << (attempt - 1).min(20));
        Duration::from_millis(doubled.min(self.config.max_backoff_ms))
    }

    async fn dead_letter(
        &self,
        item: &WorkItem,
        payload: &str,
        reason: String,
    ) -> Result<DeliveryOutcome, StoreError> {
        error!(entry = %item.entry_id, %reason, "reply cannot be delivered; moved to dead letters");
        self.store.dead_letter(item, payload, &reason).await?;
        Ok(DeliveryOutcome::DeadLettered(reason))
    }
}
