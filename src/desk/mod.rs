//! The agent desk, core side: what escalations post, and what agents' actions mean.
//!
//! Escalations queue an [`DeskAction::OpenThread`] in the outbox; later customer messages
//! queue [`DeskAction::Mirror`]. The [`DeskCourier`] carries them out through a [`Desk`],
//! handing it data (a briefing, a [`ThreadPost`]) that the desk words and formats. Briefings
//! are composed from the conversation's state at delivery time so a retried or refreshed
//! briefing is never stale. Agents' actions come back through [`inbox::DeskInbox`].

pub mod beside;
pub mod briefing;
pub mod channels;
pub mod inbox;
pub mod reminders;

use std::sync::Arc;

use switchboard_api::{ConnectorError, Desk, DeskNotice, FileRef, ThreadPost, ThreadRef};
use tracing::{info, warn};

use crate::config::DeskRoute;
use crate::files::Files;
use crate::model::{Conversation, DeskAction, DeskPost};
use crate::store::{Store, StoreError};

/// Transcript entries a briefing is composed from (the latest ones).
pub const BRIEFING_ENTRIES: usize = 200;

/// Carries desk posts out through the configured desk.
pub struct DeskCourier {
    store: Store,
    desk: Arc<dyn Desk>,
    default_channel: String,
    routes: Vec<DeskRoute>,
    files: Option<Arc<Files>>,
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
            routes: Vec::new(),
            files: None,
        }
    }

    /// Uploads customers' files into threads (without it, only their names are posted).
    pub fn with_files(mut self, files: Arc<Files>) -> Self {
        self.files = Some(files);
        self
    }

    /// Puts a customer's files into the thread: uploaded with their bytes where the file store
    /// still has them, named otherwise.
    async fn upload_files(
        &self,
        conversation_id: &str,
        thread: &ThreadRef,
        author: &str,
        files: &[FileRef],
    ) -> Result<(), ConnectorError> {
        for file in files {
            let mut file = file.clone();
            let stored = match &self.files {
                Some(service) => {
                    service.with_links(conversation_id, std::slice::from_mut(&mut file));
                    service
                        .load(conversation_id, &mut file)
                        .await
                        .map_err(store_failure)?
                }
                None => false,
            };
            if stored {
                self.desk.upload_in_thread(thread, author, &file).await?;
            } else {
                let gone = ThreadPost::CustomerFileGone {
                    author: author.to_owned(),
                    file_name: file.name.clone(),
                };
                self.desk.post_in_thread(thread, &gone).await?;
            }
        }
        Ok(())
    }

    /// Routes new threads by category, tier, customer channel or reason; first match wins.
    pub fn with_routes(mut self, routes: Vec<DeskRoute>) -> Self {
        self.routes = routes;
        self
    }

    /// The desk channel a new thread for `conversation` goes to.
    pub fn route(&self, conversation: &Conversation) -> &str {
        let category = conversation.category();
        let reason = conversation
            .escalation_reason
            .as_ref()
            .map(|reason| reason.as_str());
        let tier = conversation
            .context
            .tier
            .as_deref()
            .filter(|_| conversation.contact.verified);
        let matches = |wanted: &[String], actual: Option<&str>| {
            wanted.is_empty() || actual.is_some_and(|value| wanted.iter().any(|w| w == value))
        };
        self.routes
            .iter()
            .find(|route| {
                matches(&route.categories, category)
                    && matches(&route.tiers, tier)
                    && matches(&route.reasons, reason)
                    && matches(
                        &route.customer_channels,
                        Some(conversation.channel.as_str()),
                    )
            })
            .map(|route| route.channel.as_str())
            .unwrap_or(&self.default_channel)
    }

    /// Opens the thread in the routed channel, falling back to the default channel when the
    /// routed one cannot take it (the app is not in it, it was archived).
    async fn open_routed(
        &self,
        conversation: &Conversation,
        briefing: &switchboard_api::Briefing,
    ) -> Result<ThreadRef, ConnectorError> {
        let channel = self.route(conversation);
        match self.desk.open_thread(channel, briefing).await {
            Err(ConnectorError::Permanent { detail, .. }) if channel != self.default_channel => {
                warn!(
                    conversation = %conversation.id,
                    routed = channel,
                    default = %self.default_channel,
                    %detail,
                    "routed desk channel refused the briefing; using the default channel"
                );
                self.desk.open_thread(&self.default_channel, briefing).await
            }
            other => other,
        }
    }

    /// The briefing, with signed links to the files in its transcript.
    fn briefing(
        &self,
        conversation: &Conversation,
        transcript: &[crate::store::TranscriptEntry],
    ) -> switchboard_api::Briefing {
        let mut briefing = briefing::compose(conversation, transcript);
        if let Some(files) = &self.files {
            for line in &mut briefing.transcript {
                files.with_links(&conversation.id, &mut line.files);
            }
        }
        briefing
    }

    /// Carries out one post; `Ok` once the desk accepted it.
    pub async fn deliver(&self, post: &DeskPost) -> Result<(), ConnectorError> {
        let Some((conversation, transcript)) = self
            .store
            .conversation_with_recent(&post.conversation_id, BRIEFING_ENTRIES)
            .await
            .map_err(store_failure)?
        else {
            return Err(ConnectorError::Permanent {
                connector: "desk",
                detail: format!("conversation {} does not exist", post.conversation_id),
            });
        };
        let mut thread = conversation.desk_thread.clone();
        if thread.is_none() && conversation.case.number > 1 {
            // A post queued for the previous case's thread before the customer's message
            // opened a new case (which unsets the thread): it goes where it was meant to,
            // rather than waiting forever in front of the new case's thread.
            match &post.action {
                DeskAction::OpenThread => {}
                DeskAction::RefreshBriefing => return Ok(()),
                _ => thread = conversation.case.previous_thread.clone(),
            }
        }
        match (&post.action, thread) {
            (DeskAction::OpenThread, None) => {
                let briefing = self.briefing(&conversation, &transcript);
                let thread = self.open_routed(&conversation, &briefing).await?;
                self.store
                    .link_thread(&conversation.id, &thread)
                    .await
                    .map_err(store_failure)?;
                info!(conversation = %conversation.id, thread = %thread.ts, "briefing posted");
                Ok(())
            }
            (DeskAction::OpenThread, Some(thread)) => {
                let reason = conversation.escalation_reason.as_ref();
                let again = ThreadPost::EscalatedAgain {
                    reason: reason
                        .map_or("escalated", |reason| reason.as_str())
                        .to_owned(),
                    in_words: briefing::reason_in_words(reason).to_owned(),
                };
                self.desk.post_in_thread(&thread, &again).await?;
                let briefing = self.briefing(&conversation, &transcript);
                self.desk.update_briefing(&thread, &briefing).await
            }
            (DeskAction::RefreshBriefing, Some(thread)) => {
                let briefing = self.briefing(&conversation, &transcript);
                self.desk.update_briefing(&thread, &briefing).await
            }
            (
                DeskAction::Mirror {
                    author,
                    text,
                    files,
                    message_id,
                },
                Some(thread),
            ) => {
                if !text.is_empty() || files.is_empty() {
                    let message = ThreadPost::CustomerMessage {
                        author: author.clone(),
                        text: text.clone(),
                        message_id: message_id.clone(),
                    };
                    self.desk.post_in_thread(&thread, &message).await?;
                }
                self.upload_files(&conversation.id, &thread, author, files)
                    .await
            }
            (DeskAction::Notify { notice }, Some(thread)) => {
                let notice = ThreadPost::Notice(notice.clone());
                self.desk.post_in_thread(&thread, &notice).await.map(|_| ())
            }
            (DeskAction::Notice { text }, Some(thread)) => {
                let notice = ThreadPost::Notice(DeskNotice::Text { text: text.clone() });
                self.desk.post_in_thread(&thread, &notice).await.map(|_| ())
            }
            (_, None) => Err(ConnectorError::Transient {
                connector: "desk",
                detail: "the conversation's thread is not open yet".into(),
            }),
        }
    }
}
