//! Test-only: an in-memory [`Gateway`] with the core's dedupe on `Inbound.message_id`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_api::{Accepted, ChannelKind, ConversationView, Gateway, Inbound, IngestError};
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// Conversation key -> conversation id.
    conversations: HashMap<String, String>,
    /// Channel message id -> stored id: the dedupe index.
    seen: HashMap<String, String>,
    accepted: Vec<Inbound>,
    replays: usize,
    /// Storage is down: every accept fails as Unavailable.
    down: bool,
    /// Accepts refused while down.
    refusals: usize,
}

/// An in-memory core: stores each channel message id once.
#[derive(Default)]
pub struct FakeGateway {
    state: Mutex<State>,
    changed: Notify,
}

impl FakeGateway {
    /// Every inbound that was new (replays excluded), in arrival order.
    pub fn accepted(&self) -> Vec<Inbound> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// Storage goes down (every accept fails as Unavailable) or comes back.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// How many replays were refused as duplicates.
    pub fn replays(&self) -> usize {
        self.state.lock().unwrap().replays
    }

    /// Waits until `n` new messages were stored or `timeout` passed.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> Vec<Inbound> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let accepted = self.accepted();
            if accepted.len() >= n || tokio::time::Instant::now() >= deadline {
                return accepted;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits until `n` accepts were refused for storage being down, or `timeout` passed.
    pub async fn wait_for_refusals(&self, n: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let refusals = self.state.lock().unwrap().refusals;
            if refusals >= n || tokio::time::Instant::now() >= deadline {
                return refusals;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits until `n` replays were refused or `timeout` passed.
    pub async fn wait_for_replays(&self, n: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let replays = self.replays();
            if replays >= n || tokio::time::Instant::now() >= deadline {
                return replays;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

#[async_trait]
impl Gateway for FakeGateway {
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, IngestError> {
        let mut state = self.state.lock().unwrap();
        if state.down {
            state.refusals += 1;
            drop(state);
            self.changed.notify_waiters();
            return Err(IngestError::Unavailable("redis is down".into()));
        }
        let count = state.conversations.len();
        let conversation_id = state
            .conversations
            .entry(inbound.conversation_key.clone())
            .or_insert_with(|| format!("conv-{}", count + 1))
            .clone();
        let accepted = if let Some(stored) = state.seen.get(&inbound.message_id).cloned() {
            state.replays += 1;
            Accepted {
                conversation_id,
                message_id: stored,
                is_new: false,
            }
        } else {
            let stored = format!("{}-0", state.seen.len() + 1);
            state
                .seen
                .insert(inbound.message_id.clone(), stored.clone());
            state.accepted.push(inbound);
            Accepted {
                conversation_id,
                message_id: stored,
                is_new: true,
            }
        };
        drop(state);
        self.changed.notify_waiters();
        Ok(accepted)
    }

    async fn history(
        &self,
        _channel: ChannelKind,
        _conversation_key: &str,
        _after: Option<&str>,
    ) -> Result<Option<ConversationView>, IngestError> {
        Ok(None)
    }
}
