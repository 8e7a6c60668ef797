//! [`SlackDesk`]: the [`Desk`] on Slack. Posts and updates briefings, posts into threads
//! (paced per channel), and relays agents' actions from Socket Mode or the Events API to the
//! core's [`DeskSink`].
//!
//! Building it opens no connection; `run` calls `auth.test` first (health, the bot's own user
//! id for echo suppression), then listens in Socket Mode or waits while the HTTP route works.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use switchboard_api::{
    AgentAction, Briefing, ConnectorError, Desk, DeskEvent, DeskNotice, DeskSink, FileRef,
    ForgottenPosts, Health, IngestError, Redactor, ThreadPost, ThreadRef,
};
use tracing::{debug, warn, Instrument};

use self::config::SlackDeskConfig;
use self::convert::Outcome;
use crate::app::client::{EnvelopeHandler, CONNECTOR};
use crate::app::{AppSettings, SlackApp};

pub mod actions;
pub mod blocks;
pub mod config;
pub mod convert;
pub mod forget;
mod interact;
pub mod posts;
#[cfg(test)]
mod tests;

/// The Slack agent desk.
pub struct SlackDesk {
    shared: Arc<Shared>,
}

/// What the desk, its Socket Mode handler and its HTTP route share.
pub(crate) struct Shared {
    pub(crate) config: SlackDeskConfig,
    app: SlackApp,
    /// Hides card numbers, secrets, ... from what Slack keeps; Redis has the original.
    redactor: Redactor,
    /// Slack user id -> display name; names change rarely and users.info is rate limited.
    names: Mutex<HashMap<String, String>>,
    /// Button presses seen, desk channels' members, and one lock per thread being acted on.
    presses: interact::Presses,
    /// The threads of the agent replies this instance relayed lately (reply ts -> thread):
    /// a deleted reply can no longer be looked up on Slack (see `Relay::restore_thread`).
    recent_replies: Mutex<RecentReplies>,
}

/// A bounded memory of reply ts -> thread ts, oldest forgotten first.
#[derive(Default)]
struct RecentReplies {
    order: std::collections::VecDeque<String>,
    threads: HashMap<String, String>,
}

impl RecentReplies {
    const KEPT: usize = 4096;

    fn remember(&mut self, reply_ts: &str, thread_ts: &str) {
        if self
            .threads
            .insert(reply_ts.to_owned(), thread_ts.to_owned())
            .is_none()
        {
            self.order.push_back(reply_ts.to_owned());
        }
        while self.order.len() > Self::KEPT {
            if let Some(oldest) = self.order.pop_front() {
                self.threads.remove(&oldest);
            }
        }
    }

    fn thread_of(&self, reply_ts: &str) -> Option<String> {
        self.threads.get(reply_ts).cloned()
    }
}

impl SlackDesk {
    /// Builds the desk from a validated config with resolved secrets; opens no connection.
    pub fn new(config: SlackDeskConfig) -> Result<SlackDesk, ConnectorError> {
        let app = SlackApp::new(AppSettings {
            connector: CONNECTOR,
            mode: config.mode,
            api_base: config.api_base(),
            bot_token: config.bot_token.as_ref(),
            app_token: config.app_token.as_ref(),
            signing_secret: config.signing_secret.as_ref(),
            events_path: &config.events_path,
            posts_per_second_per_channel: config.posts_per_second_per_channel,
            interactive: true,
        })?;
        let redactor =
            Redactor::new(config.redact.clone()).map_err(|detail| ConnectorError::Permanent {
                connector: CONNECTOR,
                detail,
            })?;
        Ok(SlackDesk {
            shared: Arc::new(Shared {
                config,
                app,
                redactor,
                names: Mutex::new(HashMap::new()),
                presses: interact::Presses::default(),
                recent_replies: Mutex::default(),
            }),
        })
    }

    /// Downloads agents' files up to `max_bytes` each (the gateway's `files.max_bytes`).
    pub fn with_max_file_bytes(mut self, max_bytes: u64) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.app.set_max_file_bytes(max_bytes);
        }
        self
    }

    /// The configured default support channel.
    pub fn default_channel(&self) -> &str {
        &self.shared.config.channel
    }

    fn relay(&self, sink: Arc<dyn DeskSink>) -> Arc<Relay> {
        Arc::new(Relay {
            shared: self.shared.clone(),
            sink,
        })
    }
}

impl Shared {
    /// The agent's display name: users.info once per user, then the cache.
    pub(crate) async fn agent_name(&self, user: &str) -> Result<String, IngestError> {
        if let Some(name) = self
            .names
            .lock()
            .ok()
            .and_then(|names| names.get(user).cloned())
        {
            return Ok(name);
        }
        match self.app.web().user_name(user).await {
            Ok(name) => {
                let name = name.unwrap_or_else(|| user.to_string());
                if let Ok(mut names) = self.names.lock() {
                    names.insert(user.to_string(), name.clone());
                }
                Ok(name)
            }
            // The name is shown to the customer; rather have Slack redeliver than sign with an id.
            Err(error) if error.is_retryable() => Err(IngestError::Unavailable(error.to_string())),
            Err(error) => {
                warn!(%error, user, "agent name unknown; using the user id");
                Ok(user.to_string())
            }
        }
    }
}

/// Turns Slack callbacks into desk events for the core's sink.
pub(crate) struct Relay {
    pub(crate) shared: Arc<Shared>,
    pub(crate) sink: Arc<dyn DeskSink>,
}

impl Relay {
    /// An edit or deletion whose message lost its `thread_ts`, with it put back.
    ///
    /// slack-morphism's typed `message_changed`/`message_deleted` (what Socket Mode hands
    /// over) keeps only text, sender and `ts` of the message, so an agent's correction of a
    /// thread reply would read as an edit outside any thread; `conversations.replies` on the
    /// reply's `ts` tells which thread it is in. `None` when nothing is missing.
    async fn restore_thread(&self, callback: &Value) -> Result<Option<Value>, IngestError> {
        let event = &callback["event"];
        let inner = match event.get("subtype").and_then(Value::as_str) {
            Some("message_changed") => "message",
            Some("message_deleted") => "previous_message",
            _ => return Ok(None),
        };
        let message = &event[inner];
        let (Some(channel), Some(ts)) = (
            event.get("channel").and_then(Value::as_str),
            message.get("ts").and_then(Value::as_str),
        ) else {
            return Ok(None);
        };
        if message.get("thread_ts").is_some_and(|ts| !ts.is_null()) {
            return Ok(None);
        }
        let remembered = self
            .shared
            .recent_replies
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .thread_of(ts);
        let thread = match remembered {
            Some(thread) => Some(thread),
            // Another instance relayed it, or before a restart: ask Slack (an edited reply is
            // still there; a deleted one is not, and its deletion cannot be matched).
            None => match self.shared.app.web().thread_messages(channel, ts).await {
                Ok(messages) => messages
                    .into_iter()
                    .find(|message| message.ts == ts)
                    .and_then(|message| message.thread_ts),
                Err(ConnectorError::Permanent { .. }) => None,
                Err(error) => return Err(IngestError::Unavailable(error.to_string())),
            },
        };
        let Some(thread_ts) = thread else {
            return Ok(None);
        };
        let mut restored = callback.clone();
        restored["event"][inner]["thread_ts"] = Value::String(thread_ts);
        Ok(Some(restored))
    }

    /// Maps one `event_callback` and hands it to the sink; `Err` asks Slack to redeliver.
    pub(crate) async fn deliver(&self, callback: &Value) -> Result<(), IngestError> {
        let bot = self
            .shared
            .app
            .bot()
            .await
            .map_err(|error| IngestError::Unavailable(error.to_string()))?;
        let event_id = callback
            .get("event_id")
            .and_then(Value::as_str)
            .unwrap_or("-");
        let restored = self.restore_thread(callback).await?;
        let callback = restored.as_ref().unwrap_or(callback);
        let (event, name_of) = match convert::from_callback(callback, &bot.user_id) {
            Outcome::Ignored(reason) => {
                debug!(event_id, %reason, "slack event ignored");
                return Ok(());
            }
            Outcome::Event { event, name_of } => (event, name_of),
        };
        let event = match name_of {
            Some(user) => convert::with_agent_name(event, self.shared.agent_name(&user).await?),
            None => event,
        };
        let event = match event {
            DeskEvent::Agent {
                event_id,
                thread,
                action_id,
                agent_id,
                agent_name,
                action: AgentAction::Reply { text, .. },
            } => {
                self.shared
                    .recent_replies
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remember(&action_id, &thread.ts);
                let shared = callback
                    .get("event")
                    .map(convert::shared_files)
                    .unwrap_or_default();
                DeskEvent::Agent {
                    action: AgentAction::Reply {
                        text,
                        files: self.shared.app.fetch_files(shared).await?,
                    },
                    event_id,
                    thread,
                    action_id,
                    agent_id,
                    agent_name,
                }
            }
            other => other,
        };
        debug!(
            event_id,
            kind = event_kind(&event),
            "slack event relayed to the desk"
        );
        self.sink.handle(event).await
    }
}

fn event_kind(event: &DeskEvent) -> &'static str {
    match event {
        DeskEvent::Agent {
            action: AgentAction::Reply { .. },
            ..
        } => "agent_reply",
        DeskEvent::Agent {
            action: AgentAction::Note { .. },
            ..
        } => "agent_note",
        DeskEvent::Agent {
            action: AgentAction::Command(_),
            ..
        } => "agent_command",
        DeskEvent::Agent {
            action: AgentAction::SendSuggestion { .. },
            ..
        } => "agent_sent_suggestion",
        DeskEvent::AgentEdited { .. } => "agent_edited",
        DeskEvent::AgentDeleted { .. } => "agent_deleted",
    }
}

#[async_trait]
impl EnvelopeHandler for Relay {
    async fn handle_callback(&self, callback: &Value) -> Result<(), IngestError> {
        self.deliver(callback).await
    }

    async fn handle_interaction(&self, payload: &Value) -> Result<(), IngestError> {
        self.interaction(payload);
        Ok(())
    }
}

#[async_trait]
impl Desk for SlackDesk {
    fn routes(&self, sink: Arc<dyn DeskSink>) -> Option<axum::Router> {
        self.shared.app.routes(self.relay(sink))
    }

    async fn run(&self, sink: Arc<dyn DeskSink>) -> Result<(), ConnectorError> {
        let span = tracing::info_span!("slack_desk", mode = ?self.shared.config.mode);
        self.shared.app.run(self.relay(sink)).instrument(span).await
    }

    async fn open_thread(
        &self,
        channel: &str,
        briefing: &Briefing,
    ) -> Result<ThreadRef, ConnectorError> {
        let (briefing, hidden) = self.shared.redactor.briefing(briefing);
        let briefing = &briefing;
        let ts = self
            .shared
            .app
            .post(
                channel,
                None,
                &blocks::briefing_text(briefing),
                Some(blocks::briefing_blocks(briefing, hidden > 0)),
                None,
            )
            .await?;
        let thread = ThreadRef {
            channel: channel.to_string(),
            ts,
        };
        for part in blocks::full_transcript(briefing) {
            // The thread exists now; failing here would make the outbox post a second briefing,
            // so a lost transcript part is logged rather than returned.
            if let Err(error) = self
                .shared
                .app
                .post(channel, Some(&thread.ts), &part, None, None)
                .await
            {
                warn!(%error, conversation = %briefing.conversation_id, "full transcript not posted");
                break;
            }
        }
        Ok(thread)
    }

    async fn update_briefing(
        &self,
        thread: &ThreadRef,
        briefing: &Briefing,
    ) -> Result<(), ConnectorError> {
        let (briefing, hidden) = self.shared.redactor.briefing(briefing);
        let briefing = &briefing;
        self.shared
            .app
            .update(
                &thread.channel,
                &thread.ts,
                &blocks::briefing_text(briefing),
                blocks::briefing_blocks(briefing, hidden > 0),
            )
            .await
    }

    async fn post_in_thread(
        &self,
        thread: &ThreadRef,
        post: &ThreadPost,
    ) -> Result<String, ConnectorError> {
        let (post, hidden) = self.shared.redactor.thread_post(post);
        let text = posts::thread_text(&post);
        if let ThreadPost::Notice(DeskNotice::Reminder {
            broadcast: true, ..
        }) = post
        {
            return self
                .shared
                .app
                .post_broadcast(&thread.channel, &thread.ts, &text)
                .await;
        }
        let blocks = match &post {
            ThreadPost::Notice(DeskNotice::KnowledgeCandidate { id, answer, .. }) => {
                Some(actions::candidate_blocks(&text, id, answer))
            }
            ThreadPost::CustomerMessage {
                message_id: Some(message_id),
                ..
            } if hidden > 0 => Some(actions::revealable_blocks(&text, message_id)),
            _ => None,
        };
        self.shared
            .app
            .post(&thread.channel, Some(&thread.ts), &text, blocks, None)
            .await
    }

    async fn upload_in_thread(
        &self,
        thread: &ThreadRef,
        author: &str,
        file: &FileRef,
    ) -> Result<String, ConnectorError> {
        let Some(bytes) = file.bytes.clone() else {
            let text = posts::file_link(author, file);
            return self
                .shared
                .app
                .post(&thread.channel, Some(&thread.ts), &text, None, None)
                .await;
        };
        self.shared
            .app
            .upload(
                &thread.channel,
                &thread.ts,
                (&file.name, &file.content_type, bytes),
                &posts::file_comment(author),
            )
            .await
    }

    async fn health(&self) -> Health {
        self.shared.app.health()
    }

    async fn check_setup(&self) -> Result<Vec<String>, ConnectorError> {
        crate::manifest::check_scopes(self.shared.app.web(), crate::manifest::DESK_SCOPES).await
    }

    async fn forget_thread(&self, thread: &ThreadRef) -> Result<ForgottenPosts, ConnectorError> {
        forget::forget_thread(&self.shared, thread).await
    }

    async fn check_channel(&self, channel: &str) -> Result<(), ConnectorError> {
        if self.shared.app.web().is_member(channel).await? {
            return Ok(());
        }
        Err(ConnectorError::Permanent {
            connector: CONNECTOR,
            detail: format!("the app is not a member of channel {channel}; invite it with /invite"),
        })
    }
}
