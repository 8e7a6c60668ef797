//! Test-only: an in-memory [`Gateway`] with the core's dedupe on `Inbound.message_id`, and
//! helpers to run the connector against the stand-in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_api::{Accepted, ChannelKind, ConversationView, Gateway, Inbound, IngestError};
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// Channel message id -> stored message id: the dedupe index.
    seen: HashMap<String, String>,
    /// Every inbound that was new.
    stored: Vec<Inbound>,
    /// Every `accept` call's message id, replays included.
    attempts: Vec<String>,
}

/// An in-memory gateway that stores each channel message id once.
#[derive(Default)]
pub struct FakeGateway {
    state: Mutex<State>,
    changed: Notify,
    /// When set, `accept` fails with `Unavailable` (storage down).
    pub unavailable: AtomicBool,
}

impl FakeGateway {
    /// Every inbound that was stored (replays excluded).
    pub fn stored(&self) -> Vec<Inbound> {
        self.state.lock().unwrap().stored.clone()
    }

    /// The message id of every `accept` call, replays and refusals included.
    pub fn attempts(&self) -> Vec<String> {
        self.state.lock().unwrap().attempts.clone()
    }

    /// Waits until `n` inbounds are stored (or `timeout` passed); returns them all.
    pub async fn wait_for_stored(&self, n: usize, timeout: Duration) -> Vec<Inbound> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let stored = self.stored();
            if stored.len() >= n || tokio::time::Instant::now() >= deadline {
                return stored;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits until `accept` was called for `message_id` `n` times (or `timeout` passed).
    pub async fn wait_for_attempts(&self, message_id: &str, n: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let count = self
                .attempts()
                .iter()
                .filter(|id| *id == message_id)
                .count();
            if count >= n || tokio::time::Instant::now() >= deadline {
                return count;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

#[async_trait]
impl Gateway for FakeGateway {
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, IngestError> {
        let result = {
            let mut state = self.state.lock().unwrap();
            state.attempts.push(inbound.message_id.clone());
            if self.unavailable.load(Ordering::SeqCst) {
                Err(IngestError::Unavailable("redis is down".to_owned()))
            } else if let Some(stored_id) = state.seen.get(&inbound.message_id).cloned() {
                Ok(Accepted {
                    conversation_id: format!("conv-{}", inbound.conversation_key),
                    message_id: stored_id,
                    is_new: false,
                })
            } else {
                let stored_id = format!("{}-0", state.stored.len() + 1);
                state
                    .seen
                    .insert(inbound.message_id.clone(), stored_id.clone());
                let conversation_id = format!("conv-{}", inbound.conversation_key);
                state.stored.push(inbound);
                Ok(Accepted {
                    conversation_id,
                    message_id: stored_id,
                    is_new: true,
                })
            }
        };
        self.changed.notify_waiters();
        result
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

/// Shared handle type the tests pass around.
pub type Fake = Arc<FakeGateway>;
