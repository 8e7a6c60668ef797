//! The agent desk: where escalated conversations are shown to people and answered.
//!
//! The core decides what a briefing says and what an agent's message means (reply, note,
//! command); a [`Desk`] implementation (the Slack desk) only renders and transports. Events
//! from agents come back as neutral [`DeskEvent`]s through a [`DeskSink`].

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Attachment, ChannelKind, ConnectorError, FileRef, Health, IngestError};

/// Where a conversation's thread lives on the desk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ThreadRef {
    /// The desk channel id (Slack channel id).
    pub channel: String,
    /// The thread's parent message id (Slack `ts` of the briefing).
    pub ts: String,
}

/// One line of the transcript shown in a briefing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BriefingLine {
    /// `customer`, `ai`, `agent` or `system`.
    pub role: String,
    /// A name to show (customer or agent name, "AI").
    pub author: String,
    /// The text.
    pub text: String,
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// Files sent with the message, with their signed links when the gateway has a public
    /// URL (agents open them from the briefing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
}

/// Everything an agent needs to take over without the customer repeating a word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Briefing {
    /// The gateway's conversation id.
    pub conversation_id: String,
    /// The customer's name, or their id when no name is known.
    pub customer_name: String,
    /// The customer's id on their channel.
    pub customer_id: String,
    /// True when the channel verified the id.
    pub verified: bool,
    /// The customer's email, when known.
    pub email: Option<String>,
    /// The customer's channel.
    pub channel: ChannelKind,
    /// The customer's tier, when known.
    pub tier: Option<String>,
    /// The page the customer was on (web chat).
    pub page_url: Option<String>,
    /// That page's title.
    pub page_title: Option<String>,
    /// Other attributes the site sent (plan, ...).
    pub attributes: Vec<(String, String)>,
    /// Why it escalated, as a stable reason (`human_requested`, `low_confidence`, ...).
    pub reason: String,
    /// The reason in words, with the evidence.
    pub reason_detail: String,
    /// The AI's confidence in its best answer, 0..1.
    pub confidence: f32,
    /// A two-line summary of what the customer wants.
    pub summary: String,
    /// The transcript so far, oldest first.
    pub transcript: Vec<BriefingLine>,
    /// A reply the agent may send or adapt.
    pub suggested_reply: Option<String>,
    /// The agent who claimed the conversation.
    pub claimed_by: Option<String>,
    /// `escalated`, `human` or `resolved`.
    pub status: String,
}

/// Something an agent did on the desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeskEvent {
    /// A message in a conversation's thread (a reply, a note or a command: the core decides).
    AgentMessage {
        /// The platform's event id (Slack `event_id`), for retry dedupe.
        event_id: String,
        /// The thread it was posted in.
        thread: ThreadRef,
        /// The message's own id (Slack `ts`).
        message_ts: String,
        /// The agent's platform user id.
        agent_id: String,
        /// The agent's display name, shown to the customer.
        agent_name: String,
        /// The text as written.
        text: String,
        /// Files attached to the message (over-limit ones without their bytes).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<Attachment>,
    },
    /// An agent edited a message in a thread.
    AgentEdited {
        /// The platform's event id.
        event_id: String,
        /// The thread.
        thread: ThreadRef,
        /// The edited message's id.
        message_ts: String,
        /// The agent's display name.
        agent_name: String,
        /// The new text.
        text: String,
    },
    /// An agent deleted a message in a thread.
    AgentDeleted {
        /// The platform's event id.
        event_id: String,
        /// The thread.
        thread: ThreadRef,
        /// The deleted message's id.
        message_ts: String,
    },
    /// An agent reacted to a conversation's briefing (the thread parent).
    Reaction {
        /// The platform's event id.
        event_id: String,
        /// The thread whose parent got the reaction.
        thread: ThreadRef,
        /// The agent's platform user id.
        agent_id: String,
        /// The agent's display name.
        agent_name: String,
        /// The reaction's name without colons (`white_check_mark`).
        reaction: String,
    },
}

/// Where a desk sends agents' actions; the core implements it.
#[async_trait]
pub trait DeskSink: Send + Sync {
    /// Handles one event durably; an error asks the platform to redeliver (HTTP 503 / no ack).
    async fn handle(&self, event: DeskEvent) -> Result<(), IngestError>;
}

/// The agent desk: renders briefings and thread messages, and reports agents' actions.
#[async_trait]
pub trait Desk: Send + Sync {
    /// HTTP routes the desk serves (the Events API endpoint), if any.
    fn routes(&self, _sink: Arc<dyn DeskSink>) -> Option<axum::Router> {
        None
    }

    /// Receives agents' actions until the connection ends (Socket Mode); network work starts here.
    async fn run(&self, sink: Arc<dyn DeskSink>) -> Result<(), ConnectorError>;

    /// Posts a briefing as the parent of a new thread in `channel` (the routed desk channel).
    async fn open_thread(
        &self,
        channel: &str,
        briefing: &Briefing,
    ) -> Result<ThreadRef, ConnectorError>;

    /// Re-renders a thread's briefing (claimed, resolved).
    async fn update_briefing(
        &self,
        thread: &ThreadRef,
        briefing: &Briefing,
    ) -> Result<(), ConnectorError>;

    /// Posts a message into a thread; returns its id.
    async fn post_in_thread(
        &self,
        thread: &ThreadRef,
        text: &str,
    ) -> Result<String, ConnectorError>;

    /// Puts a customer's file (bytes filled in) into a thread, with `comment` above it;
    /// returns the post's id. Desks that cannot upload post the file's link instead.
    async fn upload_in_thread(
        &self,
        thread: &ThreadRef,
        file: &FileRef,
        comment: &str,
    ) -> Result<String, ConnectorError> {
        let text = crate::text_with_links(comment, std::slice::from_ref(file));
        self.post_in_thread(thread, &text).await
    }

    /// Tells whether the desk currently works.
    async fn health(&self) -> Health;

    /// Checks the desk can post in `channel` (a routing rule's target): an error says why not.
    async fn check_channel(&self, _channel: &str) -> Result<(), ConnectorError> {
        Ok(())
    }
}
