//! What the outbox carries: replies to customers and posts for the agent desk.
//!
//! These types live in the model, not in `outbox` or `desk`, because the pipeline, the desk
//! inbox and the file service all queue deliveries while the outbox and the desk courier carry
//! them out: keeping them here lets each of those depend on the model instead of on each other.

use serde::{Deserialize, Serialize};
use switchboard_api::{DeskNotice, FileRef, Outbound};

/// What an outbox entry delivers: a message to a customer, or a post to the agent desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Delivery {
    /// A reply to the customer on their channel.
    Customer(Outbound),
    /// A briefing, mirror or notice for the agents.
    Desk(DeskPost),
}

/// A delivery for the desk, queued in the outbox like customer replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskPost {
    /// The conversation it is about.
    pub conversation_id: String,
    /// What to do.
    pub action: DeskAction,
}

/// What a desk post does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeskAction {
    /// Post the briefing as a new thread; if the conversation has a thread, say it escalated again.
    OpenThread,
    /// Re-render the briefing (claimed, resolved, handed back).
    RefreshBriefing,
    /// Post a customer's message into the thread.
    Mirror {
        /// Who wrote it, as shown in the thread.
        author: String,
        /// The text.
        text: String,
        /// Files sent with it, uploaded into the thread (bytes read from the file store).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<FileRef>,
        /// The transcript entry it mirrors (absent on posts queued by earlier versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// Post a notice from the gateway into the thread; the desk words it.
    Notify {
        /// What to tell the agents.
        notice: DeskNotice,
    },
    /// A notice worded by an earlier version, still queued after an upgrade; posted as written.
    Notice {
        /// The text.
        text: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_travel_as_data() {
        let delivery = Delivery::Desk(DeskPost {
            conversation_id: "c1".into(),
            action: DeskAction::Notify {
                notice: DeskNotice::KnowledgeApproved { id: "kb-7".into() },
            },
        });
        let stored = serde_json::to_string(&delivery).expect("serializable");
        assert_eq!(
            stored,
            r#"{"to":"desk","conversation_id":"c1","action":{"kind":"notify","notice":{"notice":"knowledge_approved","id":"kb-7"}}}"#
        );
        let read: Delivery = serde_json::from_str(&stored).expect("reads back");
        assert_eq!(read, delivery);
    }

    #[test]
    fn stored_payloads_keep_their_shape() {
        // Entries queued before an upgrade must still parse after it.
        let stored =
            r#"{"to":"desk","conversation_id":"c1","action":{"kind":"notice","text":"hi"}}"#;
        let delivery: Delivery = serde_json::from_str(stored).expect("stored desk post");
        assert_eq!(
            delivery,
            Delivery::Desk(DeskPost {
                conversation_id: "c1".into(),
                action: DeskAction::Notice { text: "hi".into() },
            })
        );
        assert_eq!(
            serde_json::to_string(&delivery).ok().as_deref(),
            Some(stored)
        );
    }
}
