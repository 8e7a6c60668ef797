//! The conversation model the core works on: statuses and the conversation record.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_api::{ChannelKind, CustomerContext, Identity};

/// Where a conversation stands; decides who answers the next customer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The AI answers.
    Bot,
    /// Waiting for a person; the AI stays silent.
    Escalated,
    /// A person is answering.
    Human,
    /// Done; a new message reopens it for the AI.
    Resolved,
}

impl Status {
    /// The name stored in Redis.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Bot => "bot",
            Status::Escalated => "escalated",
            Status::Human => "human",
            Status::Resolved => "resolved",
        }
    }

    /// Parses a stored name; unknown names are treated as `bot` so the customer is answered.
    pub fn parse(name: &str) -> Status {
        match name {
            "escalated" => Status::Escalated,
            "human" => Status::Human,
            "resolved" => Status::Resolved,
            _ => Status::Bot,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The conversation id for a channel's conversation key.
///
/// Derived rather than allocated so that ingest needs no lookup key outside the
/// conversation's own hash slot: one script, one round trip, Redis Cluster ready.
pub fn conversation_id(channel: ChannelKind, conversation_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(channel.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(conversation_key.as_bytes());
    let digest = hasher.finalize();
    hex::encode(&digest[..10])
}

/// A conversation's record, read from its Redis hash.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// The gateway's id.
    pub id: String,
    /// Current status.
    pub status: Status,
    /// The channel the customer writes on.
    pub channel: ChannelKind,
    /// The channel's key for it (where replies go).
    pub conversation_key: String,
    /// Who the customer is.
    pub contact: Identity,
    /// Page, tier and attributes from the customer's latest message.
    pub context: CustomerContext,
    /// Every other stored field (timestamps, last decision, escalation reason).
    pub fields: HashMap<String, String>,
}

impl Conversation {
    /// Builds the record from a hash; `None` when the hash is empty or lacks its channel.
    pub fn from_fields(id: &str, mut fields: HashMap<String, String>) -> Option<Conversation> {
        let channel = ChannelKind::parse(fields.get("channel")?)?;
        let conversation_key = fields.remove("key")?;
        let status = Status::parse(fields.get("status").map(String::as_str).unwrap_or("bot"));
        let contact = fields
            .get("contact")
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        let context = fields
            .get("context")
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        Some(Conversation {
            id: id.to_owned(),
            status,
            channel,
            conversation_key,
            contact,
            context,
            fields,
        })
    }
}

impl Conversation {
    /// The desk thread this conversation is mirrored into, once opened.
    pub fn desk_thread(&self) -> Option<switchboard_api::ThreadRef> {
        Some(switchboard_api::ThreadRef {
            channel: self.fields.get("desk_channel")?.clone(),
            ts: self.fields.get("desk_ts")?.clone(),
        })
    }

    /// The name to show agents for the customer.
    pub fn customer_name(&self) -> String {
        self.contact
            .display_name
            .clone()
            .or_else(|| self.context.attributes.get("name").cloned())
            .or_else(|| self.contact.email.clone())
            .unwrap_or_else(|| self.contact.id.clone())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
