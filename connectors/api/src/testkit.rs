//! Test doubles for both sides of the connector boundary (the `testkit` feature, for tests
//! only): [`MemoryGateway`], the core as a connector sees it, and [`RecordingConnector`], a
//! channel as the core sees it. Every connector's tests drive the same two, so they cannot
//! drift apart from each other or from the core's contract.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{
    Accepted, Author, Capabilities, ChannelKind, Connector, ConnectorError, ConversationView,
    DeliveryReceipt, Gateway, Health, Inbound, IngestError, Outbound, StoredMessage,
};

struct Conversation {
    id: String,
    messages: Vec<(u64, StoredMessage)>,
}

#[derive(Default)]
struct GatewayState {
    /// (channel, conversation key) -> conversation.
    conversations: HashMap<(ChannelKind, String), Conversation>,
    /// Channel message id -> (channel, conversation key, stored id): the dedupe index.
    seen: HashMap<String, (ChannelKind, String, String)>,
    next_seq: u64,
    accepted: Vec<Inbound>,
    attempts: Vec<String>,
    replays: usize,
    refusals: usize,
    unavailable: bool,
    crash_after_store: bool,
}

/// The core as a connector sees it, in memory: it stores each channel message id once (a
/// replay answers `is_new: false` with the first copy's ids), maps each conversation key to
/// one conversation (`conv-1`, `conv-2`, ...; stored ids `1-0`, `2-0`, ...), and shows a
/// conversation's customer messages through `history`, as the real intake does.
#[derive(Default)]
pub struct MemoryGateway {
    state: Mutex<GatewayState>,
    changed: Notify,
}

impl MemoryGateway {
    fn state(&self) -> MutexGuard<'_, GatewayState> {
        // A test that panicked mid-call (a simulated crash) leaves consistent data behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every inbound that was new (replays and refusals excluded), in arrival order.
    pub fn accepted(&self) -> Vec<Inbound> {
        self.state().accepted.clone()
    }

    /// The message id of every `accept` call, replays and refusals included.
    pub fn attempts(&self) -> Vec<String> {
        self.state().attempts.clone()
    }

    /// How many replays were answered as already stored.
    pub fn replays(&self) -> usize {
        self.state().replays
    }

    /// How many accepts were refused while storage was down.
    pub fn refusals(&self) -> usize {
        self.state().refusals
    }

    /// How many conversations the accepted messages opened.
    pub fn conversations(&self) -> usize {
        self.state().conversations.len()
    }

    /// Storage goes down (every call fails as `Unavailable`) or comes back.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state().unavailable = unavailable;
    }

    /// While set, `accept` panics right after storing a new message, as a process that dies
    /// between storing and acknowledging its platform would.
    pub fn set_crash_after_store(&self, crash: bool) {
        self.state().crash_after_store = crash;
    }

    /// Waits until `n` new messages were stored or `timeout` passed; returns them all.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> Vec<Inbound> {
        self.wait_until(timeout, |state| {
            (state.accepted.len() >= n, state.accepted.clone())
        })
        .await
    }

    /// Waits until `n` replays were answered or `timeout` passed; returns the count.
    pub async fn wait_for_replays(&self, n: usize, timeout: Duration) -> usize {
        self.wait_until(timeout, |state| (state.replays >= n, state.replays))
            .await
    }

    /// Waits until `n` accepts were refused for storage being down, or `timeout` passed.
    pub async fn wait_for_refusals(&self, n: usize, timeout: Duration) -> usize {
        self.wait_until(timeout, |state| (state.refusals >= n, state.refusals))
            .await
    }

    /// Waits until `accept` was called for `message_id` `n` times, or `timeout` passed.
    pub async fn wait_for_attempts(&self, message_id: &str, n: usize, timeout: Duration) -> usize {
        self.wait_until(timeout, |state| {
            let count = state.attempts.iter().filter(|id| *id == message_id).count();
            (count >= n, count)
        })
        .await
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        check: impl Fn(&GatewayState) -> (bool, T),
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the check, so a change in between still wakes it.
            let changed = self.changed.notified();
            let (done, value) = check(&self.state());
            if done || tokio::time::Instant::now() >= deadline {
                return value;
            }
            let _ = tokio::time::timeout_at(deadline, changed).await;
        }
    }

    fn store(state: &mut GatewayState, inbound: Inbound) -> Accepted {
        let place = (inbound.channel, inbound.conversation_key.clone());
        if let Some((channel, key, stored)) = state.seen.get(&inbound.message_id).cloned() {
            state.replays += 1;
            return Accepted {
                conversation_id: state.conversations[&(channel, key)].id.clone(),
                message_id: stored,
                is_new: false,
            };
        }
        state.next_seq += 1;
        let stored = format!("{}-0", state.next_seq);
        let count = state.conversations.len();
        let conversation =
            state
                .conversations
                .entry(place.clone())
                .or_insert_with(|| Conversation {
                    id: format!("conv-{}", count + 1),
                    messages: Vec::new(),
                });
        conversation.messages.push((
            state.next_seq,
            StoredMessage {
                id: stored.clone(),
                author: Author::Customer,
                text: inbound.text.clone(),
                at_ms: now_ms(),
                channel_message_id: Some(inbound.message_id.clone()),
                files: Vec::new(),
            },
        ));
        let conversation_id = conversation.id.clone();
        state.seen.insert(
            inbound.message_id.clone(),
            (place.0, place.1, stored.clone()),
        );
        state.accepted.push(inbound);
        Accepted {
            conversation_id,
            message_id: stored,
            is_new: true,
        }
    }
}

#[async_trait]
impl Gateway for MemoryGateway {
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, IngestError> {
        let (result, crash) = {
            let mut state = self.state();
            state.attempts.push(inbound.message_id.clone());
            if state.unavailable {
                state.refusals += 1;
                (
                    Err(IngestError::Unavailable("storage is down".into())),
                    false,
                )
            } else {
                let accepted = Self::store(&mut state, inbound);
                let crash = state.crash_after_store && accepted.is_new;
                (Ok(accepted), crash)
            }
        };
        self.changed.notify_waiters();
        if crash {
            panic!("simulated crash after the gateway stored the message");
        }
        result
    }

    async fn history(
        &self,
        channel: ChannelKind,
        conversation_key: &str,
        after: Option<&str>,
    ) -> Result<Option<ConversationView>, IngestError> {
        let state = self.state();
        if state.unavailable {
            return Err(IngestError::Unavailable("storage is down".into()));
        }
        let after: u64 = after
            .and_then(|id| id.split('-').next())
            .and_then(|seq| seq.parse().ok())
            .unwrap_or(0);
        Ok(state
            .conversations
            .get(&(channel, conversation_key.to_owned()))
            .map(|conversation| ConversationView {
                conversation_id: conversation.id.clone(),
                status: "bot".into(),
                messages: conversation
                    .messages
                    .iter()
                    .filter(|(seq, _)| *seq > after)
                    .map(|(_, message)| message.clone())
                    .collect(),
            }))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

struct ConnectorState {
    sent: Vec<Outbound>,
    attempts: usize,
    /// Sends that fail before the first success, and how.
    failing_first: usize,
    failure: fn(ChannelKind) -> ConnectorError,
    down: bool,
    runs: u32,
    /// Errors the next runs end with, first first; then a run lasts until it is dropped.
    run_failures: Vec<ConnectorError>,
}

/// A channel as the core sees it: records every outbound the core asked it to send, and can
/// be scripted to fail sends (its first ones, or while it is down) and runs.
pub struct RecordingConnector {
    channel: ChannelKind,
    capabilities: Capabilities,
    state: Mutex<ConnectorState>,
    changed: Notify,
}

impl RecordingConnector {
    /// A working channel named `channel` that delivers every send.
    pub fn new(channel: ChannelKind) -> RecordingConnector {
        RecordingConnector {
            channel,
            capabilities: Capabilities::default(),
            state: Mutex::new(ConnectorState {
                sent: Vec::new(),
                attempts: 0,
                failing_first: 0,
                failure: transient,
                down: false,
                runs: 0,
                run_failures: Vec::new(),
            }),
            changed: Notify::new(),
        }
    }

    /// Reports `capabilities` to the core.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> RecordingConnector {
        self.capabilities = capabilities;
        self
    }

    /// Fails its first `sends` sends (`usize::MAX`: all of them) with what `failure` makes.
    pub fn failing_first(
        self,
        sends: usize,
        failure: fn(ChannelKind) -> ConnectorError,
    ) -> RecordingConnector {
        {
            let mut state = self.state();
            state.failing_first = sends;
            state.failure = failure;
        }
        self
    }

    /// Its runs end with `errors`, one run each in order; later runs last until dropped.
    pub fn with_run_failures(self, errors: Vec<ConnectorError>) -> RecordingConnector {
        self.state().run_failures = errors;
        self
    }

    /// The platform goes down (every send fails as a transient HTTP 503) or comes back.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// Every outbound delivered, in order.
    pub fn sent(&self) -> Vec<Outbound> {
        self.state().sent.clone()
    }

    /// The text of every outbound delivered, in order.
    pub fn sent_texts(&self) -> Vec<String> {
        self.state()
            .sent
            .iter()
            .map(|outbound| outbound.text.clone())
            .collect()
    }

    /// How many sends were tried, failed ones included.
    pub fn attempts(&self) -> usize {
        self.state().attempts
    }

    /// How many times `run` was called.
    pub fn runs(&self) -> u32 {
        self.state().runs
    }

    /// Waits until `n` outbounds were delivered or `timeout` passed; returns them all.
    pub async fn wait_for_sent(&self, n: usize, timeout: Duration) -> Vec<Outbound> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            let sent = self.sent();
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            let _ = tokio::time::timeout_at(deadline, changed).await;
        }
    }

    fn state(&self) -> MutexGuard<'_, ConnectorState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The failure a send makes by default: a transient one, retried by the outbox.
fn transient(channel: ChannelKind) -> ConnectorError {
    ConnectorError::Transient {
        connector: channel.as_str(),
        detail: "HTTP 503".into(),
    }
}

#[async_trait]
impl Connector for RecordingConnector {
    fn channel(&self) -> ChannelKind {
        self.channel
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn run(&self, _gateway: std::sync::Arc<dyn Gateway>) -> Result<(), ConnectorError> {
        let failure = {
            let mut state = self.state();
            state.runs += 1;
            (!state.run_failures.is_empty()).then(|| state.run_failures.remove(0))
        };
        match failure {
            Some(error) => Err(error),
            None => std::future::pending().await,
        }
    }

    async fn send(&self, outbound: &Outbound) -> Result<DeliveryReceipt, ConnectorError> {
        let result = {
            let mut state = self.state();
            state.attempts += 1;
            if state.down {
                Err(transient(self.channel))
            } else if state.attempts <= state.failing_first {
                Err((state.failure)(self.channel))
            } else {
                state.sent.push(outbound.clone());
                Ok(DeliveryReceipt {
                    platform_message_id: Some(format!("platform-{}", outbound.id)),
                    ..DeliveryReceipt::default()
                })
            }
        };
        self.changed.notify_waiters();
        result
    }

    async fn health(&self) -> Health {
        Health::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, InboundKind};

    const CHAT: ChannelKind = ChannelKind::new("chat");

    fn inbound(key: &str, id: &str, text: &str) -> Inbound {
        Inbound {
            channel: CHAT,
            conversation_key: key.into(),
            message_id: id.into(),
            kind: InboundKind::Text,
            author: Identity::default(),
            text: text.into(),
            context: Default::default(),
            files: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_replay_is_stored_once_and_history_shows_what_came_after_a_cursor() {
        let gateway = MemoryGateway::default();
        let first = gateway.accept(inbound("k1", "m1", "hello")).await.unwrap();
        let replay = gateway.accept(inbound("k1", "m1", "hello")).await.unwrap();
        let second = gateway.accept(inbound("k1", "m2", "again")).await.unwrap();
        let other = gateway
            .accept(inbound("k2", "m3", "elsewhere"))
            .await
            .unwrap();
        assert_eq!((first.is_new, replay.is_new), (true, false));
        assert_eq!(replay.message_id, first.message_id);
        assert_eq!(second.conversation_id, first.conversation_id);
        assert_ne!(other.conversation_id, first.conversation_id);
        assert_eq!((gateway.replays(), gateway.conversations()), (1, 2));
        assert_eq!(gateway.attempts(), ["m1", "m1", "m2", "m3"]);
        let view = gateway
            .history(CHAT, "k1", Some(&first.message_id))
            .await
            .unwrap()
            .expect("k1 has a conversation");
        let texts: Vec<&str> = view.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["again"]);
        assert!(gateway
            .history(CHAT, "nobody", None)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn while_storage_is_down_nothing_is_stored_and_refusals_are_counted() {
        let gateway = MemoryGateway::default();
        gateway.set_unavailable(true);
        let refused = gateway.accept(inbound("k", "m1", "hi")).await;
        assert!(
            matches!(refused, Err(IngestError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(gateway.history(CHAT, "k", None).await.is_err());
        assert_eq!(gateway.wait_for_refusals(1, Duration::ZERO).await, 1);
        gateway.set_unavailable(false);
        gateway.accept(inbound("k", "m1", "hi")).await.unwrap();
        assert_eq!(
            gateway
                .wait_for_accepted(1, Duration::from_secs(1))
                .await
                .len(),
            1
        );
        assert_eq!(gateway.wait_for_attempts("m1", 2, Duration::ZERO).await, 2);
    }

    #[tokio::test]
    async fn a_recording_connector_fails_as_scripted_and_records_what_it_delivered() {
        let permanent = |channel: ChannelKind| ConnectorError::Permanent {
            connector: channel.as_str(),
            detail: "unknown recipient".into(),
        };
        let connector = RecordingConnector::new(CHAT).failing_first(1, permanent);
        let outbound = Outbound {
            id: "o1".into(),
            conversation_id: "conv-1".into(),
            channel: CHAT,
            conversation_key: "k".into(),
            author: Author::Ai,
            text: "answer".into(),
            actions: Vec::new(),
            reply_context: Default::default(),
            files: Vec::new(),
            maybe_sent: false,
        };
        let first = connector.send(&outbound).await;
        assert!(
            matches!(first, Err(ConnectorError::Permanent { .. })),
            "{first:?}"
        );
        connector.set_down(true);
        assert!(connector.send(&outbound).await.unwrap_err().is_retryable());
        connector.set_down(false);
        let receipt = connector.send(&outbound).await.unwrap();
        assert_eq!(receipt.platform_message_id.as_deref(), Some("platform-o1"));
        assert_eq!(
            (connector.attempts(), connector.sent_texts()),
            (3, vec!["answer".to_owned()])
        );
    }
}
