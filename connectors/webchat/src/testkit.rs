//! Test-only: an in-memory [`Gateway`] and a helper that serves the web chat router on a
//! free port, so tests talk to the connector exactly as a browser would.
//!
//! With `scripted` on, the fake plays the core's part for the browser test: a text message
//! gets an AI answer offering "Talk to a human", and a human request escalates with a
//! system notice, both delivered through the connector's real `send`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use switchboard_api::{
    Accepted, Author, ChannelKind, Connector, ConversationView, CustomerAction, Gateway, Inbound,
    InboundKind, IngestError, Outbound, StoredMessage,
};
use tokio::sync::mpsc;

use crate::{WebchatConfig, WebchatConnector};

/// What the fake AI answers to a password question.
pub const PASSWORD_ANSWER: &str = "To reset your Acme Cloud password, open the sign-in page and choose \"Forgot password\". We email you a reset link that works for 30 minutes.";
/// The escalation notice the fake core sends.
pub const ESCALATION_NOTICE: &str =
    "A person from our team will join this conversation shortly. You can keep typing here.";

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
    replies: Option<mpsc::UnboundedSender<Outbound>>,
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
            },
        ));
        Outbound {
            id,
            conversation_id: conversation.id.clone(),
            channel: ChannelKind::Webchat,
            conversation_key: key.to_owned(),
            author,
            text: text.to_owned(),
            actions: Vec::new(),
            reply_context: Default::default(),
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
        if let Some(replies) = &self.replies {
            let reply = match inbound.kind {
                InboundKind::Text => {
                    let text = if inbound.text.to_lowercase().contains("password") {
                        PASSWORD_ANSWER
                    } else {
                        "Here is what I found in the Acme Cloud help center."
                    };
                    let mut reply = Self::append(&mut state, &key, Author::Ai, text);
                    reply.actions = vec![CustomerAction::TalkToHuman];
                    reply
                }
                InboundKind::HumanRequest => {
                    if let Some(conversation) = state.conversations.get_mut(&key) {
                        conversation.status = "escalated".to_owned();
                    }
                    Self::append(&mut state, &key, Author::System, ESCALATION_NOTICE)
                }
            };
            let _ = replies.send(reply);
        }
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
    /// Serves a connector built from `config`; `scripted` makes the fake core answer.
    pub async fn start(config: WebchatConfig, scripted: bool) -> TestServer {
        let connector = Arc::new(WebchatConnector::new(config));
        let (replies, mut outbox) = mpsc::unbounded_channel::<Outbound>();
        let gateway = Arc::new(FakeGateway {
            replies: scripted.then_some(replies),
            ..FakeGateway::default()
        });
        let router = connector
            .routes(Arc::clone(&gateway) as Arc<dyn Gateway>)
            .expect("webchat is enabled");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        // The fake outbox: delivers replies a little later, as the real pipeline would.
        let delivering = Arc::clone(&connector);
        tokio::spawn(async move {
            while let Some(outbound) = outbox.recv().await {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let _ = delivering.send(&outbound).await;
            }
        });
        TestServer {
            addr,
            connector,
            gateway,
        }
    }
}
