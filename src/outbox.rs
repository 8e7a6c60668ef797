//! Durable outbound delivery: a Redis stream with a consumer group.
//!
//! An entry is acked only after its connector reported the platform accepted it. A failed
//! attempt is parked in a sorted set until its backoff has passed (or the platform's
//! `Retry-After`), then put back; an entry whose worker died is taken over after
//! `claim_idle_ms`. Delivery is therefore at least once; connectors dedupe on `Outbound::id`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_api::{ChannelKind, Connector, ConnectorError, Outbound};
use tracing::{error, warn};

use crate::config::OutboxConfig;
use crate::desk::{DeskCourier, DeskPost};
use crate::metrics::Metrics;
use crate::model::now_ms;
use crate::store::{keys, Store, StoreError, WorkItem};

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

/// Delivers the outbox through the enabled connectors.
pub struct OutboxWorker {
    store: Store,
    connectors: HashMap<ChannelKind, Arc<dyn Connector>>,
    desk: Option<Arc<DeskCourier>>,
    config: OutboxConfig,
    consumer: String,
    metrics: Arc<Metrics>,
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
}

impl OutboxWorker {
    /// A worker named `consumer`; `store` should be a dedicated connection.
    pub fn new(
        store: Store,
        connectors: HashMap<ChannelKind, Arc<dyn Connector>>,
        config: OutboxConfig,
        consumer: String,
    ) -> Self {
        OutboxWorker {
            store,
            connectors,
            desk: None,
            config,
            consumer,
            metrics: Arc::default(),
        }
    }

    /// Counts into `metrics` (shared with the rest of the gateway).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Delivers desk posts through `courier`.
    pub fn with_desk(mut self, courier: Arc<DeskCourier>) -> Self {
        self.desk = Some(courier);
        self
    }

    /// Delivers until the task is dropped; Redis errors are logged and retried.
    pub async fn run(self) {
        let mut failures = 0u32;
        loop {
            match self.work_once(Duration::from_millis(250)).await {
                Ok(_) => failures = 0,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = Duration::from_millis((100u64 << failures.min(4)).min(1_000));
                    warn!(%error, retry_in = ?pause, "outbox: redis unavailable");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// One round: put back due retries, take over stale entries, deliver new ones.
    pub async fn work_once(&self, block: Duration) -> Result<Vec<DeliveryOutcome>, StoreError> {
        self.store.promote_due(now_ms()).await?;
        let mut outcomes = Vec::new();
        let stale = self
            .store
            .claim_stale(
                keys::OUTBOX,
                keys::OUTBOX_GROUP,
                &self.consumer,
                Duration::from_millis(self.config.claim_idle_ms),
                64,
            )
            .await?;
        for item in stale {
            outcomes.push(self.deliver(item).await?);
        }
        let fresh = self
            .store
            .read_group(keys::OUTBOX, keys::OUTBOX_GROUP, &self.consumer, 64, block)
            .await?;
        for item in fresh {
            outcomes.push(self.deliver(item).await?);
        }
        Ok(outcomes)
    }

    async fn deliver(&self, item: WorkItem) -> Result<DeliveryOutcome, StoreError> {
        let (target, outcome) = self.attempt(item).await?;
        let label = match &outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retrying { .. } => "retry",
            DeliveryOutcome::DeadLettered(_) => "dead",
        };
        self.metrics
            .outbox_deliveries
            .get_or_create(&vec![("target", target.into()), ("outcome", label.into())])
            .inc();
        Ok(outcome)
    }

    /// Tries one entry; returns the target (channel or `desk`) with the outcome.
    async fn attempt(&self, item: WorkItem) -> Result<(&'static str, DeliveryOutcome), StoreError> {
        let payload = item.fields.get("p").cloned().unwrap_or_default();
        let transcript_id = item.fields.get("id").cloned().unwrap_or_default();
        let attempt: u32 = item
            .fields
            .get("attempt")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
            + 1;
        let delivery: Delivery = match serde_json::from_str(&payload) {
            Ok(delivery) => delivery,
            Err(parse_error) => {
                let reason = format!("malformed outbox entry: {parse_error}");
                return Ok(("unknown", self.dead_letter(&item, &payload, reason).await?));
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
                    return Ok((
                        connector_name,
                        self.dead_letter(&item, &payload, reason).await?,
                    ));
                };
                tokio::time::timeout(send_timeout, connector.send(&outbound))
                    .await
                    .map(|sent| sent.map(|receipt| receipt.platform_message_id))
            }
            Delivery::Desk(post) => {
                let Some(courier) = &self.desk else {
                    let reason = "no agent desk is enabled".to_owned();
                    return Ok((
                        connector_name,
                        self.dead_letter(&item, &payload, reason).await?,
                    ));
                };
                tokio::time::timeout(send_timeout, courier.deliver(&post))
                    .await
                    .map(|sent| sent.map(|()| None))
            }
        };
        let failure = match attempt_result {
            Ok(Ok(platform_id)) => {
                let receipt = platform_id
                    .as_deref()
                    .filter(|_| !transcript_id.is_empty())
                    .map(|platform_id| (conversation_id.as_str(), transcript_id.as_str(), platform_id));
                self.store
                    .complete_delivery(&item.entry_id, receipt)
                    .await?;
                return Ok((connector_name, DeliveryOutcome::Delivered));
            }
            Ok(Err(failure)) => failure,
            Err(_) => ConnectorError::Transient {
                connector: connector_name,
                detail: format!("no answer within {send_timeout:?}"),
            },
        };
        if !failure.is_retryable() {
            let reason = failure.to_string();
            return Ok((
                connector_name,
                self.dead_letter(&item, &payload, reason).await?,
            ));
        }
        if attempt >= self.config.max_attempts {
            let reason = format!("gave up after {attempt} attempts: {failure}");
            return Ok((
                connector_name,
                self.dead_letter(&item, &payload, reason).await?,
            ));
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
        let member = serde_json::to_string(&Parked {
            id: &transcript_id,
            p: &payload,
            attempt,
        })
        .unwrap_or_default();
        let due = now_ms() + after.as_millis() as u64;
        self.store
            .park_for_retry(keys::OUTBOX_GROUP, &item.entry_id, due, &member)
            .await?;
        Ok((connector_name, DeliveryOutcome::Retrying { attempt, after }))
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
        self.store
            .dead_letter(keys::OUTBOX_GROUP, &item.entry_id, payload, &reason)
            .await?;
        Ok(DeliveryOutcome::DeadLettered(reason))
    }
}
