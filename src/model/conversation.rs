//! A conversation's record, parsed once from its Redis hash.
//!
//! The hash layout is the store's (see `src/store/lua/ingest.lua` and `commit.lua`); this is
//! the one place that reads it. Fields this version does not know are ignored, and a field
//! that does not parse reads as absent (with a warning for the ones decisions depend on), so
//! a record written by another version never stops a conversation.

use std::collections::HashMap;

use switchboard_api::{Author, ChannelKind, CustomerContext, Identity, Outbound, ThreadRef};
use tracing::warn;

use super::{CaseState, DecisionRecord, EscalationReason, Status};

/// The names of the conversation hash's fields, as stored.
pub mod field {
    /// The customer's channel (`webchat`, `email`, ...).
    pub const CHANNEL: &str = "channel";
    /// The channel's conversation key.
    pub const KEY: &str = "key";
    /// The [`super::Status`] name.
    pub const STATUS: &str = "status";
    /// The customer's identity, json.
    pub const CONTACT: &str = "contact";
    /// Page, tier and attributes, json.
    pub const CONTEXT: &str = "context";
    /// Creation time, ms.
    pub const CREATED_MS: &str = "created_ms";
    /// Last activity, ms.
    pub const UPDATED_MS: &str = "updated_ms";
    /// The last triage decision record, json.
    pub const LAST_DECISION: &str = "last_decision";
    /// The latest escalation's reason name.
    pub const ESCALATION_REASON: &str = "escalation_reason";
    /// The latest escalation's time, ms.
    pub const ESCALATED_MS: &str = "escalated_ms";
    /// The agent who claimed it.
    pub const CLAIMED_BY: &str = "claimed_by";
    /// The first agent reply's time, ms.
    pub const FIRST_HUMAN_REPLY_MS: &str = "first_human_reply_ms";
    /// The resolution's time, ms.
    pub const RESOLVED_MS: &str = "resolved_ms";
    /// `1` while the satisfaction question awaits an answer.
    pub const CSAT_PENDING: &str = "csat_pending";
    /// Since when the customer's latest messages wait for an agent's reply, ms; empty once
    /// an agent answered.
    pub const CUSTOMER_WAITING_MS: &str = "customer_waiting_ms";
    /// The desk thread's channel.
    pub const DESK_CHANNEL: &str = "desk_channel";
    /// The desk thread's timestamp.
    pub const DESK_TS: &str = "desk_ts";
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
    /// When the conversation started, ms since the epoch.
    pub created_ms: Option<u64>,
    /// When it last changed, ms since the epoch.
    pub updated_ms: Option<u64>,
    /// The last triage decision, with its evidence.
    pub last_decision: Option<DecisionRecord>,
    /// Why it was last escalated.
    pub escalation_reason: Option<EscalationReason>,
    /// When it was last escalated; absent if it never was.
    pub escalated_ms: Option<u64>,
    /// The agent who claimed it.
    pub claimed_by: Option<String>,
    /// When an agent first replied; absent if none has.
    pub first_human_reply_ms: Option<u64>,
    /// When it was last resolved.
    pub resolved_ms: Option<u64>,
    /// True while the satisfaction question awaits the customer's rating.
    pub csat_pending: bool,
    /// Since when the customer has waited for an agent's reply, while they do.
    pub customer_waiting_ms: Option<u64>,
    /// The desk thread it is mirrored into, once opened.
    pub desk_thread: Option<ThreadRef>,
    /// The current support case.
    pub case: CaseState,
}

impl Conversation {
    /// A message from `author` for the customer, to the chat they wrote from last (no buttons,
    /// no files; set them on the result).
    pub fn outbound(&self, author: Author, text: &str) -> Outbound {
        Outbound {
            id: String::new(),
            conversation_id: self.id.clone(),
            channel: self.channel,
            conversation_key: self.conversation_key.clone(),
            author,
            text: text.to_owned(),
            actions: Vec::new(),
            reply_context: self.context.attributes.clone(),
            files: Vec::new(),
            maybe_sent: false,
        }
    }

    /// Builds the record from a hash; `None` when the hash is empty or lacks its channel.
    pub fn from_fields(id: &str, mut fields: HashMap<String, String>) -> Option<Conversation> {
        let channel = ChannelKind::parse(fields.get(field::CHANNEL)?)?;
        let conversation_key = fields.remove(field::KEY)?;
        let status = Status::parse(
            fields
                .get(field::STATUS)
                .map(String::as_str)
                .unwrap_or("bot"),
        );
        let ms = |name: &str| fields.get(name).and_then(|text| text.trim().parse().ok());
        let last_decision = fields.get(field::LAST_DECISION).and_then(|text| {
            serde_json::from_str(text)
                .inspect_err(|error| {
                    warn!(conversation = id, %error, "stored last decision unreadable; ignored")
                })
                .ok()
        });
        let desk_thread = match (fields.get(field::DESK_CHANNEL), fields.get(field::DESK_TS)) {
            (Some(channel), Some(ts)) => Some(ThreadRef {
                channel: channel.clone(),
                ts: ts.clone(),
            }),
            _ => None,
        };
        Some(Conversation {
            id: id.to_owned(),
            status,
            channel,
            conversation_key,
            contact: json_or_default(&fields, field::CONTACT),
            context: json_or_default(&fields, field::CONTEXT),
            created_ms: ms(field::CREATED_MS),
            updated_ms: ms(field::UPDATED_MS),
            last_decision,
            escalation_reason: fields
                .get(field::ESCALATION_REASON)
                .map(|name| EscalationReason::parse(name)),
            escalated_ms: ms(field::ESCALATED_MS),
            claimed_by: fields.get(field::CLAIMED_BY).cloned(),
            first_human_reply_ms: ms(field::FIRST_HUMAN_REPLY_MS),
            resolved_ms: ms(field::RESOLVED_MS),
            csat_pending: fields.get(field::CSAT_PENDING).map(String::as_str) == Some("1"),
            customer_waiting_ms: ms(field::CUSTOMER_WAITING_MS),
            desk_thread,
            case: CaseState::from_fields(&fields),
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

    /// The current case's id, once one opened.
    pub fn case_id(&self) -> Option<String> {
        self.case.id(&self.id)
    }

    /// The category triage last detected, if any.
    pub fn category(&self) -> Option<&str> {
        self.last_decision.as_ref()?.category.as_deref()
    }
}

/// A json field, or the type's default when absent or unreadable (an old record's shape).
fn json_or_default<T: serde::de::DeserializeOwned + Default>(
    fields: &HashMap<String, String>,
    name: &str,
) -> T {
    fields
        .get(name)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn a_record_is_read_into_typed_fields() {
        let record = Conversation::from_fields(
            "c1",
            hash(&[
                ("channel", "email"),
                ("key", "alice@example.org"),
                ("status", "escalated"),
                ("created_ms", "1000"),
                ("escalated_ms", "2000"),
                ("escalation_reason", "negative_sentiment"),
                ("claimed_by", "Dana"),
                ("csat_pending", "1"),
                ("desk_channel", "C1"),
                ("desk_ts", "17.1"),
                ("some_future_field", "tolerated"),
            ]),
        )
        .expect("a whole record");
        assert_eq!(record.status, Status::Escalated);
        assert_eq!(record.channel, switchboard_email::CHANNEL);
        assert_eq!(record.created_ms, Some(1000));
        assert_eq!(record.escalated_ms, Some(2000));
        assert_eq!(
            record.escalation_reason,
            Some(EscalationReason::NegativeSentiment)
        );
        assert_eq!(record.claimed_by.as_deref(), Some("Dana"));
        assert!(record.csat_pending);
        assert_eq!(
            record.desk_thread.map(|thread| thread.ts).as_deref(),
            Some("17.1")
        );
        assert_eq!(record.first_human_reply_ms, None);
    }

    #[test]
    fn unknown_stored_values_load_without_panic() {
        let record = Conversation::from_fields(
            "c2",
            hash(&[
                ("channel", "webchat"),
                ("key", "s:1"),
                ("status", "snoozed"),
                ("escalation_reason", "legal_hold"),
                ("escalated_ms", "not a number"),
                ("last_decision", "{not json"),
                ("desk_channel", "C1"),
            ]),
        )
        .expect("loads despite unknown values");
        assert_eq!(record.status, Status::Bot, "an unknown status is answered");
        assert_eq!(
            record.escalation_reason,
            Some(EscalationReason::Other("legal_hold".into()))
        );
        assert_eq!(record.escalated_ms, None);
        assert!(record.last_decision.is_none());
        assert!(record.desk_thread.is_none(), "half a thread is no thread");
        assert!(!record.csat_pending);
    }
}
