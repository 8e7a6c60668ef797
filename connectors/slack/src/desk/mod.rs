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
    AgentAction, Briefing, ConnectorError, Desk, DeskEvent, DeskNotice, DeskSink, FileRef, Health,
    IngestError, ThreadPost, ThreadRef,
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
mod interact;
pub mod posts;
#[cfg(all(test, feature = "standin"))]
mod tests;

/// The Slack agent desk.
pub struct SlackDesk {
    shared: Arc<Shared>,
}

/// What the desk, its Socket Mode handler and its HTTP route share.
pub(crate) struct Shared {
    pub(crate) config: SlackDeskConfig,
    app: SlackApp,
    /// Slack user id -> display name; names change rarely and users.info is rate limited.
    names: Mutex<HashMap<String, String>>,
    /// Button presses seen, desk channels' members, and one lock per thread being acted on.
    presses: interact::Presses,
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
        Ok(SlackDesk {
            shared: Arc::new(Shared {
                config,
                app,
                names: Mutex::new(HashMap::new()),
                presses: interact::Presses::default(),
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
        let ts = self
            .shared
            .app
            .post(
                channel,
                None,
                &blocks::briefing_text(briefing),
                Some(blocks::briefing_blocks(briefing)),
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
        self.shared
            .app
            .update(
                &thread.channel,
                &thread.ts,
                &blocks::briefing_text(briefing),
                blocks::briefing_blocks(briefing),
            )
            .await
    }

    async fn post_in_thread(
        &self,
        thread: &ThreadRef,
        post: &ThreadPost,
    ) -> Result<String, ConnectorError> {
        let text = posts::thread_text(post);
        let blocks = match post {
            ThreadPost::Notice(DeskNotice::KnowledgeCandidate { id, answer, .. }) => {
                Some(actions::candidate_blocks(&text, id, answer))
            }
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
