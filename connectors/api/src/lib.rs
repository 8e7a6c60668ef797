//! The neutral message model and the one small trait every Switchboard channel implements.
//!
//! Connectors know their platform and nothing else; the core knows this model and no
//! platform. A connector turns platform events into [`Inbound`] messages, hands them to the
//! [`Gateway`], and delivers [`Outbound`] messages the core's outbox gives it.

mod backoff;
pub use backoff::Backoff;
mod build;
pub use build::{
    Broadcast, BroadcastHub, BroadcastReceiver, BuildContext, ConfigProblems, ConnectorConfig,
    DeskConfig, LeaseSource, SingleInstance,
};
mod desk;
mod files;
pub use desk::{
    suggestion_fingerprint, ActionOutcome, ActionRefusal, AgentAction, AgentCommand, Briefing,
    BriefingLine, Citation, Desk, DeskEvent, DeskNotice, DeskSink, ForgottenPosts, PreviousCase,
    RevealRequest, RevealedMessage, ThreadPost, ThreadRef, Waiting,
};
pub use files::{
    clean_content_type, clean_file_name, human_size, is_inline_image, text_with_links,
    too_large_message, Attachment, Fetched, FileRef,
};
mod lease;
pub use lease::{MemoryLease, PollLease};
mod pacer;
pub use pacer::KeyedPacer;
#[cfg(feature = "testkit")]
mod testkit;
#[cfg(feature = "testkit")]
pub use testkit::{MemoryGateway, RecordingConnector};
mod quota;
pub use quota::{QuotaRefusal, UploadQuota, UploadReservation};
mod redact;
pub use redact::{Redacted, RedactedKind, RedactionConfig, Redactor};
mod secret;
pub use secret::{read_secret, Secret};
mod shared;
pub use shared::{MemoryState, SharedState, SharedStateError};
#[cfg(feature = "standin")]
pub mod standin;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A customer channel's name (`webchat`, `email`, ...), as keys, config and logs spell it.
///
/// Open rather than an enum: each channel's crate names itself (its `CHANNEL` constant) and
/// the core's registry lists the channels a build has, so a new channel edits no shared type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKind(&'static str);

impl ChannelKind {
    /// A channel named `name`: lowercase ASCII letters, digits and `_`, starting with a letter.
    ///
    /// # Panics
    /// At compile time (in a `const`) or at once when `name` breaks that rule.
    pub const fn new(name: &'static str) -> ChannelKind {
        assert!(
            is_channel_name(name),
            "a channel name is 1 to 32 of [a-z0-9_], starting with a letter"
        );
        ChannelKind(name)
    }

    /// The stable lowercase name used in keys, config and logs.
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// The channel a stored or configured name spells, if it is a well-formed name. Whether
    /// this build has that channel is the core registry's question.
    pub fn parse(name: &str) -> Option<ChannelKind> {
        is_channel_name(name).then(|| ChannelKind(intern(name)))
    }
}

const fn is_channel_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 32 || !bytes[0].is_ascii_lowercase() {
        return false;
    }
    let mut at = 1;
    while at < bytes.len() {
        let byte = bytes[at];
        if !(byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_') {
            return false;
        }
        at += 1;
    }
    true
}

/// One `'static` copy per distinct name read back from storage, so `ChannelKind` stays `Copy`.
/// Bounded: only well-formed names the gateway itself wrote are ever read.
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

impl fmt::Debug for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelKind({})", self.0)
    }
}

impl Serialize for ChannelKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for ChannelKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        ChannelKind::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("`{name}` is not a channel name ([a-z][a-z0-9_]*)"))
        })
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who wrote a message, as the customer and the agents should see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Author {
    /// The customer.
    Customer,
    /// The AI answerer.
    Ai,
    /// A named human agent.
    Agent {
        /// The agent's display name, shown to the customer.
        name: String,
    },
    /// A notice from the gateway itself ("a person is joining").
    System,
}

impl Author {
    /// The short role name stored with each message.
    pub fn role(&self) -> &'static str {
        match self {
            Author::Customer => "customer",
            Author::Ai => "ai",
            Author::Agent { .. } => "agent",
            Author::System => "system",
        }
    }
}

/// What the customer sent: plain text, or a press of a platform button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundKind {
    /// A text message.
    Text,
    /// The customer pressed "Talk to a human".
    HumanRequest,
}

impl InboundKind {
    /// The stable name stored with each message.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundKind::Text => "text",
            InboundKind::HumanRequest => "human_request",
        }
    }
}

/// Where the customer was and what the site told us about them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerContext {
    /// The page the customer was on (web chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    /// The page's title (web chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_title: Option<String>,
    /// The customer's tier (e.g. `vip`), when the channel knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The customer's locale, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Free-form attributes the site or platform supplied (plan, user id, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Keys of `attributes` that are the customer's own word, vouched for by nobody (a web
    /// chat page's unsigned `data-attributes`): agents see them marked unverified, and
    /// routing and triage never read them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unverified: BTreeSet<String>,
}

/// The customer's identity on a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// A stable id on the channel (a verified user id, chat id, email address).
    pub id: String,
    /// A name to show agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// An email address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// True when the channel proved the id (a signed web chat user id, a platform account).
    #[serde(default)]
    pub verified: bool,
    /// True when the channel vouches that `email` is this customer's: the sender of a mail, a
    /// workspace account's profile address, a site's signed claim. Only such an address links
    /// the customer's conversations across channels; a typed-in address never does.
    #[serde(default)]
    pub email_verified: bool,
}

/// A message from a customer, already mapped out of its platform's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    /// The channel it came from.
    pub channel: ChannelKind,
    /// The channel's key for the conversation (web chat session, Telegram chat id, email thread).
    pub conversation_key: String,
    /// The channel's id for this message; a replay with the same id is stored once.
    pub message_id: String,
    /// What kind of message this is.
    pub kind: InboundKind,
    /// Who wrote it.
    pub author: Identity,
    /// The text, already trimmed of quoted history where the channel has any.
    pub text: String,
    /// Page, tier and other context.
    #[serde(default)]
    pub context: CustomerContext,
    /// Files sent with the message (the text may then be empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<Attachment>,
}

/// What the outbox asks a connector to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    /// The gateway's id for this outbound message; connectors use it to deliver once.
    pub id: String,
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// The channel to deliver on.
    pub channel: ChannelKind,
    /// The channel's key for the conversation (where to deliver).
    pub conversation_key: String,
    /// Who is speaking.
    pub author: Author,
    /// The text to show.
    pub text: String,
    /// Actions the customer may take next (e.g. "Talk to a human").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<CustomerAction>,
    /// The attributes of the customer's latest message (`CustomerContext::attributes`), so a
    /// connector can thread its reply (e.g. `email.message_id`, `email.subject`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reply_context: BTreeMap<String, String>,
    /// Files to deliver with the text. Each carries its signed link; its bytes are filled in
    /// only for connectors whose [`Capabilities::files`] is set (the others get the links
    /// appended to `text` by the gateway before `send`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
    /// Set on a resend of a delivery whose first attempt may have reached the platform (its
    /// sender died between the platform's accept and the receipt): connectors that can look
    /// for the earlier copy do so before sending again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub maybe_sent: bool,
}

/// A button the channel may show under a message, when it has buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerAction {
    /// Offer a way to reach a person.
    TalkToHuman,
    /// Offer 1-5 rating buttons; a press is sent as a message with the number as its text.
    RateService,
}

/// What a channel can show; data, not methods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The channel's customers open links relative to the gateway's own address (a page the
    /// gateway serves, like the web chat widget); elsewhere file links need
    /// `files.public_base_url`.
    pub opens_relative_links: bool,
    /// The connector delivers `Outbound::files` itself (natively, or as links it renders);
    /// when false the gateway appends each file's signed link to the text instead.
    pub files: bool,
}

/// Proof that the platform accepted an outbound message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReceipt {
    /// The platform's id for the delivered message, when it has one.
    pub platform_message_id: Option<String>,
    /// The platform's ids of the messages the delivery showed before the last one, when it
    /// took several (a long text split, files sent apart): an erasure deletes them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_message_ids: Vec<String>,
}

/// A message the gateway delivered in a customer's chat, as its receipt recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// The platform's id for it.
    pub platform_message_id: String,
    /// When it was sent, ms since the epoch (some platforms delete only recent messages).
    pub sent_ms: u64,
}

/// What [`Connector::forget_sent`] did with the gateway's messages, in counts (never content).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgottenSent {
    /// Deleted from the customer's chat (or found gone already).
    pub deleted: u64,
    /// The platform refused to delete them (too old, or not allowed): still shown.
    pub left: u64,
    /// The channel cannot take a message back once sent (email).
    pub not_erasable: u64,
}

impl ForgottenSent {
    /// Adds `more` to these counts.
    pub fn add(&mut self, more: ForgottenSent) {
        self.deleted += more.deleted;
        self.left += more.left;
        self.not_erasable += more.not_erasable;
    }
}

/// Why a connector failed, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A network blip, an outage or a 5xx: retry with backoff.
    #[error("{connector}: transient failure: {detail}")]
    Transient {
        /// The connector's name.
        connector: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The platform asked us to slow down.
    #[error("{connector}: rate limited, retry after {retry_after:?}")]
    RateLimited {
        /// The connector's name.
        connector: &'static str,
        /// How long the platform asked us to wait.
        retry_after: Duration,
    },
    /// Credentials were refused: stop this connector, keep the others.
    #[error("{connector}: credentials rejected: {detail}")]
    Auth {
        /// The connector's name.
        connector: &'static str,
        /// What the platform said.
        detail: String,
    },
    /// The message can never be delivered (unknown recipient, bad payload): do not retry.
    #[error("{connector}: permanent failure: {detail}")]
    Permanent {
        /// The connector's name.
        connector: &'static str,
        /// What went wrong.
        detail: String,
    },
}

impl ConnectorError {
    /// True when the same delivery may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ConnectorError::Transient { .. } | ConnectorError::RateLimited { .. }
        )
    }
}

/// A stored message as a channel shows it to its customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The gateway's id (a Redis stream id, ordered in time).
    pub id: String,
    /// Who wrote it.
    pub author: Author,
    /// The text.
    pub text: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The channel's message id, for the customer's own messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_message_id: Option<String>,
    /// Files sent with the message, with their signed links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
}

/// A conversation as a channel may show it to the customer who owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    /// The gateway's conversation id.
    pub conversation_id: String,
    /// `bot`, `escalated`, `human` or `resolved`.
    pub status: String,
    /// Messages after the cursor the caller gave, oldest first (customer-visible only).
    pub messages: Vec<StoredMessage>,
}

/// The result of handing an inbound message to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The conversation it was stored in.
    pub conversation_id: String,
    /// The stored message's id.
    pub message_id: String,
    /// False when this was a replay of a message already stored.
    pub is_new: bool,
}

/// Why the gateway refused an inbound message.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The message itself is unacceptable; tell the sender, do not retry.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Storage is down; the platform should retry later (HTTP 503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// What the core offers connectors: durable intake and the customer's view of a conversation.
#[async_trait]
pub trait Gateway: Send + Sync {
    /// Stores an inbound message durably; returns once it is safe to ack the platform.
    async fn accept(&self, inbound: Inbound) -> Result<Accepted, IngestError>;

    /// The customer-visible messages of the conversation a channel key maps to, after `after`.
    async fn history(
        &self,
        channel: ChannelKind,
        conversation_key: &str,
        after: Option<&str>,
    ) -> Result<Option<ConversationView>, IngestError>;
}

/// Health of one connector, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Health {
    /// Connected and working.
    Up,
    /// Not working, with the reason.
    Down(String),
}

/// One channel: receives platform events into the gateway and delivers outbound messages.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The channel this connector serves.
    fn channel(&self) -> ChannelKind;

    /// What the channel can show.
    fn capabilities(&self) -> Capabilities;

    /// HTTP routes the connector serves on the gateway's listener (webhooks, widget), if any.
    fn routes(&self, _gateway: Arc<dyn Gateway>) -> Option<axum::Router> {
        None
    }

    /// Receives events until the platform connection ends; network work starts here, never at build.
    async fn run(&self, gateway: Arc<dyn Gateway>) -> Result<(), ConnectorError>;

    /// Delivers one outbound message; `Ok` means the platform accepted it.
    async fn send(&self, outbound: &Outbound) -> Result<DeliveryReceipt, ConnectorError>;

    /// Tells whether the connector currently works.
    async fn health(&self) -> Health;

    /// Asks the platform what of the channel's set-up is missing (permissions the app was not
    /// granted), one line per problem with what it breaks; empty when nothing is, or when the
    /// platform cannot tell. `check-config --online` prints them.
    async fn check_setup(&self) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }

    /// Deletes messages the gateway itself delivered in the customer's chat `conversation_key`
    /// (an erasure, `switchboard contact forget`): `sent` holds what their receipts recorded.
    /// Deleting one already gone counts as deleted, so a re-run after a failure is safe. By
    /// default the channel cannot take messages back: all count as not erasable.
    async fn forget_sent(
        &self,
        _conversation_key: &str,
        sent: &[SentMessage],
    ) -> Result<ForgottenSent, ConnectorError> {
        Ok(ForgottenSent {
            not_erasable: sent.len() as u64,
            ..ForgottenSent::default()
        })
    }

    /// The gateway is shutting down and `run` has been stopped: let go of what another
    /// instance can take over at once (open customer sockets, told to reconnect elsewhere).
    async fn stop(&self) {}
}

/// Checks a configured platform API URL (a connector's `api_url`, pointed at a proxy or a
/// stand-in): it must be http, or https when the connector `crate_name` was built with its `tls`
/// feature (`tls_enabled`). Each connector passes its own `cfg!(feature = "tls")`.
pub fn check_api_url(url: &str, crate_name: &str, tls_enabled: bool) -> Result<(), String> {
    if url.starts_with("http://") {
        Ok(())
    } else if url.starts_with("https://") {
        if tls_enabled {
            Ok(())
        } else {
            Err(format!("https:// needs {crate_name}'s `tls` feature"))
        }
    } else {
        Err(format!("must start with http:// or https://, got {url:?}"))
    }
}
