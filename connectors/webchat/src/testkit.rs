//! Test-only: an in-memory [`Gateway`] and a helper that serves the web chat router on a
//! free port, so tests talk to the connector exactly as a browser would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use switchboard_api::{
    Accepted, Author, ChannelKind, Connector, ConversationView, Gateway, Inbound, IngestError,
    Outbound, StoredMessage,
};

use crate::{WebchatConfig, WebchatConnector};

#[derive(Default)]
struct Conversation {
    id: String,
    status: String,
    messages: Vec<(u64, StoredMessage)>,
}

#[derive(Default)]
struct State {
    conversations: HashMap<String, Conversation>,
    /// Channel message id -> (conversation key, stored id): the dedupe index.
    seen: HashMap<String, (String, String)>,
    next_seq: u64,
    accepted: Vec<Inbound>,
}

/// An in-memory gateway with the core's dedupe semantics.
#[derive(Default)]
pub struct FakeGateway {
    state: Mutex<State>,
    /// When set, every call fails with `Unavailable` (storage down).
    pub unavailable: AtomicBool,
}

impl FakeGateway {
    /// Every inbound that was new (replays excluded).
    pub fn accepted(&self) -> Vec<Inbound> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// Appends a message as the core would, returning the outbound that delivers it.
    fn append(state: &mut State, key: &str, author: Author, text: &str) -> Outbound {
        state.next_seq += 1;
        let seq = state.next_seq;
        let conversation = state
            .conversations
            .get_mut(key)
            .expect("conversation exists");
        let id = format!("{seq}-0");
        conversation.messages.push((
            seq,
            StoredMessage {
                id: id.clone(),
                author: author.clone(),
                text: text.to_owned(),
                at_ms: crate::connector::now_ms(),
                channel_message_id: None,
                files: Vec::new(),
            },
        ));
        Outbound {
            id,
            conversation_id: conversation.id.clone(),
            channel: crate::CHANNEL,
            conversation_key: key.to_owned(),
            author,
            text: text.to_owned(),
            actions: Vec::new(),
            reply_context: Default::default(),
            files: Vec::new(),
            maybe_sent: false,
        }
    }
}

#[async_trait]
impl Gateway for FakeGateway {
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, IngestError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(IngestError::Unavailable("redis is down".to_owned()));
        }
        let mut state = self.state.lock().unwrap();
        let key = inbound.conversation_key.clone();
        if let Some((seen_key, message_id)) = state.seen.get(&inbound.message_id).cloned() {
            let conversation_id = state.conversations[&seen_key].id.clone();
            return Ok(Accepted {
                conversation_id,
                message_id,
                is_new: false,
            });
        }
        let count = state.conversations.len();
        let conversation = state
            .conversations
            .entry(key.clone())
            .or_insert_with(|| Conversation {
                id: format!("conv-{}", count + 1),
                status: "bot".to_owned(),
                messages: Vec::new(),
            });
        let conversation_id = conversation.id.clone();
        let stored = Self::append(&mut state, &key, Author::Customer, &inbound.text);
        if let Some(conversation) = state.conversations.get_mut(&key) {
            if let Some((_, last)) = conversation.messages.last_mut() {
                last.channel_message_id = Some(inbound.message_id.clone());
            }
        }
        state
            .seen
            .insert(inbound.message_id.clone(), (key.clone(), stored.id.clone()));
        state.accepted.push(inbound.clone());
        Ok(Accepted {
            conversation_id,
            message_id: stored.id,
            is_new: true,
        })
    }

    async fn history(
        &self,
        _channel: ChannelKind,
        conversation_key: &str,
        after: Option<&str>,
    ) -> Result<Option<ConversationView>, IngestError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(IngestError::Unavailable("redis is down".to_owned()));
        }
        let after: u64 = after
            .and_then(|id| id.split('-').next())
            .and_then(|seq| seq.parse().ok())
            .unwrap_or(0);
        let state = self.state.lock().unwrap();
        Ok(state
            .conversations
            .get(conversation_key)
            .map(|conversation| ConversationView {
                conversation_id: conversation.id.clone(),
                status: conversation.status.clone(),
                messages: conversation
                    .messages
                    .iter()
                    .filter(|(seq, _)| *seq > after)
                    .map(|(_, message)| message.clone())
                    .collect(),
            }))
    }
}

/// The web chat router served on a free local port.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The connector, for `send`.
    pub connector: Arc<WebchatConnector>,
    /// The fake core behind it.
    pub gateway: Arc<FakeGateway>,
}

impl TestServer {
    /// Serves a connector built from `config` in front of a fresh fake core.
    pub async fn start(config: WebchatConfig) -> TestServer {
        let connector = Arc::new(WebchatConnector::new(config));
        let gateway = Arc::new(FakeGateway::default());
        let router = connector
            .routes(Arc::clone(&gateway) as Arc<dyn Gateway>)
            .expect("webchat is enabled");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        TestServer {
            addr,
            connector,
            gateway,
        }
    }
}
