//! The agent desk, core side: what escalations post, and what agents' actions mean.
//!
//! Escalations queue an [`DeskAction::OpenThread`] in the outbox; later customer messages
//! queue [`DeskAction::Mirror`]. The [`DeskCourier`] carries them out through a
//! [`Desk`] (the Slack desk), rendering briefings from the conversation's state at delivery
//! time so a retried or refreshed briefing is never stale. Agents' actions come back through
//! [`inbox::DeskInbox`].

pub mod briefing;
pub mod inbox;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard_api::{ConnectorError, Desk};
use tracing::info;

use crate::store::{Store, StoreError};

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
    },
    /// Post a notice from the gateway into the thread.
    Notice {
        /// The text.
        text: String,
    },
}

/// Carries desk posts out through the configured desk.
pub struct DeskCourier {
    store: Store,
    desk: Arc<dyn Desk>,
    default_channel: String,
}

fn store_failure(error: StoreError) -> ConnectorError {
    ConnectorError::Transient {
        connector: "desk",
        detail: error.to_string(),
    }
}

impl DeskCourier {
    /// A courier posting new threads to `default_channel`.
    pub fn new(store: Store, desk: Arc<dyn Desk>, default_channel: String) -> Self {
        DeskCourier {
            store,
            desk,
            default_channel,
        }
    }

    /// Carries out one post; `Ok` once the desk accepted it.
    pub async fn deliver(&self, post: &DeskPost) -> Result<(), ConnectorError> {
        let Some((conversation, transcript)) = self
            .store
            .conversation_with_recent(&post.conversation_id, 200)
            .await
            .map_err(store_failure)?
        else {
            return Err(ConnectorError::Permanent {
                connector: "desk",
                detail: format!("conversation {} does not exist", post.conversation_id),
            });
        };
        let thread = conversation.desk_thread();
        match (&post.action, thread) {
            (DeskAction::OpenThread, None) => {
                let briefing = briefing::compose(&conversation, &transcript);
                let thread = self
                    .desk
                    .open_thread(&self.default_channel, &briefing)
                    .await?;
                self.store
                    .link_thread(&conversation.id, &thread)
                    .await
                    .map_err(store_failure)?;
                info!(conversation = %conversation.id, thread = %thread.ts, "briefing posted");
                Ok(())
            }
            (DeskAction::OpenThread, Some(thread)) => {
                let reason = conversation
                    .fields
                    .get("escalation_reason")
                    .map(String::as_str)
                    .unwrap_or("");
                let text = format!(
                    ":rotating_light: Escalated again: {}.",
                    briefing::reason_in_words(reason)
                );
                self.desk.post_in_thread(&thread, &text).await?;
                let briefing = briefing::compose(&conversation, &transcript);
                self.desk.update_briefing(&thread, &briefing).await
            }
            (DeskAction::RefreshBriefing, Some(thread)) => {
                let briefing = briefing::compose(&conversation, &transcript);
                self.desk.update_briefing(&thread, &briefing).await
            }
            (DeskAction::Mirror { author, text }, Some(thread)) => {
                let line = format!("*{author}:* {text}");
                self.desk.post_in_thread(&thread, &line).await.map(|_| ())
            }
            (DeskAction::Notice { text }, Some(thread)) => {
                self.desk.post_in_thread(&thread, text).await.map(|_| ())
            }
            (_, None) => Err(ConnectorError::Transient {
                connector: "desk",
                detail: "the conversation's thread is not open yet".into(),
            }),
        }
    }
}
