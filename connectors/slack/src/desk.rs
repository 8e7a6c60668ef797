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
    Attachment, Briefing, ConnectorError, Desk, DeskEvent, DeskSink, FileRef, Health, IngestError,
    ThreadRef,
};
use tokio::sync::OnceCell;
use tracing::{debug, info, warn, Instrument};

use crate::blocks;
use crate::client::{self, BotIdentity, EnvelopeHandler, SlackWeb, CONNECTOR};
use crate::config::{resolved_tokens, SlackDeskConfig, SlackMode};
use crate::convert::{self, Outcome, SharedFile};
use crate::pacing::ChannelPacing;
use crate::shared_files;

/// The limit on agents' files when the gateway sets none.
const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// The Slack agent desk.
pub struct SlackDesk {
    shared: Arc<Shared>,
}

/// What the desk, its Socket Mode handler and its HTTP route share.
pub(crate) struct Shared {
    pub(crate) config: SlackDeskConfig,
    web: Arc<dyn SlackWeb>,
    pacing: ChannelPacing,
    bot: OnceCell<BotIdentity>,
    health: Mutex<Health>,
    /// Slack user id -> display name; names change rarely and users.info is rate limited.
    names: Mutex<HashMap<String, String>>,
    /// Agents' files larger than this are not downloaded (the core tells the thread).
    max_file_bytes: u64,
}

impl SlackDesk {
    /// Builds the desk from a validated config with resolved secrets; opens no connection.
    pub fn new(config: SlackDeskConfig) -> Result<SlackDesk, ConnectorError> {
        let (bot_token, app_token) = resolved_tokens(
            CONNECTOR,
            config.mode,
            config.bot_token.as_ref(),
            config.app_token.as_ref(),
            config.signing_secret.as_ref(),
        )?;
        let web = client::connect(&config.api_base(), &bot_token, app_token.as_ref())?;
        Ok(SlackDesk {
            shared: Arc::new(Shared {
                pacing: ChannelPacing::new(config.posts_per_second_per_channel),
                config,
                web,
                bot: OnceCell::new(),
                health: Mutex::new(Health::Down("not started (auth.test pending)".into())),
                names: Mutex::new(HashMap::new()),
                max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            }),
        })
    }

    /// Downloads agents' files up to `max_bytes` each (the gateway's `files.max_bytes`).
    pub fn with_max_file_bytes(mut self, max_bytes: u64) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.max_file_bytes = max_bytes;
        }
        self
    }

    /// The configured default support channel.
    pub fn default_channel(&self) -> &str {
        &self.shared.config.channel
    }
}

impl Shared {
    fn set_health(&self, health: Health) {
        if let Ok(mut current) = self.health.lock() {
            *current = health;
        }
    }

    /// Marks the desk down when Slack refuses the token, whichever call noticed.
    fn note(&self, result: &Result<impl Sized, ConnectorError>) {
        if let Err(error @ ConnectorError::Auth { .. }) = result {
            self.set_health(Health::Down(error.to_string()));
        }
    }

    /// The bot's identity, from one `auth.test` (repeated only after a failure).
    pub(crate) async fn bot(&self) -> Result<&BotIdentity, ConnectorError> {
        let result = self.bot.get_or_try_init(|| self.web.auth_test()).await;
        match &result {
            Ok(bot) => {
                if let Ok(mut health) = self.health.lock() {
                    if *health != Health::Up {
                        info!(bot_user = %bot.user_id, team = %bot.team_id, "slack desk authenticated");
                    }
                    *health = Health::Up;
                }
            }
            Err(error) => self.set_health(Health::Down(error.to_string())),
        }
        result
    }

    async fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: Option<Vec<Value>>,
    ) -> Result<String, ConnectorError> {
        self.pacing.wait_turn(channel).await;
        let result = self
            .web
            .post_message(channel, thread_ts, text, blocks, None)
            .await;
        self.after_call(channel, &result).await;
        result
    }

    async fn after_call<T>(&self, channel: &str, result: &Result<T, ConnectorError>) {
        self.note(result);
        if let Err(ConnectorError::RateLimited { retry_after, .. }) = result {
            // Later posts to this channel wait out Slack's Retry-After too.
            self.pacing.hold(channel, *retry_after).await;
        }
    }

    /// Downloads an agent's files, bounded by the limit; a file over it comes back without
    /// bytes (the core tells the thread), a failed download asks Slack to redeliver.
    async fn fetch_files(&self, files: Vec<SharedFile>) -> Result<Vec<Attachment>, IngestError> {
        shared_files::fetch(self.web.as_ref(), files, self.max_file_bytes).await
    }

    /// The agent's display name: users.info once per user, then the cache.
    async fn agent_name(&self, user: &str) -> Result<String, IngestError> {
        if let Some(name) = self
            .names
            .lock()
            .ok()
            .and_then(|names| names.get(user).cloned())
        {
            return Ok(name);
        }
        match self.web.user_name(user).await {
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
            DeskEvent::AgentMessage {
                event_id,
                thread,
                message_ts,
                agent_id,
                agent_name,
                text,
                ..
            } => {
                let shared = callback
                    .get("event")
                    .map(convert::shared_files)
                    .unwrap_or_default();
                DeskEvent::AgentMessage {
                    files: self.shared.fetch_files(shared).await?,
                    event_id,
                    thread,
                    message_ts,
                    agent_id,
                    agent_name,
                    text,
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
        DeskEvent::AgentMessage { .. } => "agent_message",
        DeskEvent::AgentEdited { .. } => "agent_edited",
        DeskEvent::AgentDeleted { .. } => "agent_deleted",
        DeskEvent::Reaction { .. } => "reaction",
    }
}

#[async_trait]
impl EnvelopeHandler for Relay {
    async fn handle_callback(&self, callback: Value) -> Result<(), String> {
        self.deliver(&callback)
            .await
            .map_err(|error| error.to_string())
    }
}

#[async_trait]
impl Desk for SlackDesk {
    fn routes(&self, sink: Arc<dyn DeskSink>) -> Option<axum::Router> {
        if self.shared.config.mode != SlackMode::EventsApi {
            return None;
        }
        let relay = Arc::new(Relay {
            shared: self.shared.clone(),
            sink,
        });
        crate::events_http::router(relay)
    }

    async fn run(&self, sink: Arc<dyn DeskSink>) -> Result<(), ConnectorError> {
        let span = tracing::info_span!("slack_desk", mode = ?self.shared.config.mode);
        async move {
            self.shared.bot().await?;
            match self.shared.config.mode {
                SlackMode::Socket => {
                    let relay = Arc::new(Relay {
                        shared: self.shared.clone(),
                        sink,
                    });
                    let result = self.shared.web.socket_mode(relay).await;
                    self.shared.note(&result);
                    result
                }
                SlackMode::EventsApi => {
                    // The HTTP route from `routes` does the work; keep the task alive for it.
                    std::future::pending::<()>().await;
                    Ok(())
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn open_thread(
        &self,
        channel: &str,
        briefing: &Briefing,
    ) -> Result<ThreadRef, ConnectorError> {
        let ts = self
            .shared
            .post(
                channel,
                None,
                &blocks::briefing_text(briefing),
                Some(blocks::briefing_blocks(briefing)),
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
                .post(channel, Some(&thread.ts), &part, None)
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
        self.shared.pacing.wait_turn(&thread.channel).await;
        let result = self
            .shared
            .web
            .update_message(
                &thread.channel,
                &thread.ts,
                &blocks::briefing_text(briefing),
                blocks::briefing_blocks(briefing),
            )
            .await;
        self.shared.after_call(&thread.channel, &result).await;
        result
    }

    async fn post_in_thread(
        &self,
        thread: &ThreadRef,
        text: &str,
    ) -> Result<String, ConnectorError> {
        // Shown literally: a customer's `<!channel>` must not ping the support channel.
        let text = blocks::escape(text);
        self.shared
            .post(&thread.channel, Some(&thread.ts), &text, None)
            .await
    }

    async fn upload_in_thread(
        &self,
        thread: &ThreadRef,
        file: &FileRef,
        comment: &str,
    ) -> Result<String, ConnectorError> {
        let Some(bytes) = file.bytes.clone() else {
            let text = switchboard_api::text_with_links(comment, std::slice::from_ref(file));
            return self.post_in_thread(thread, &text).await;
        };
        self.shared.pacing.wait_turn(&thread.channel).await;
        let result = self
            .shared
            .web
            .upload_file(
                &thread.channel,
                &thread.ts,
                &file.name,
                &file.content_type,
                bytes,
                &blocks::escape(comment),
            )
            .await;
        self.shared.after_call(&thread.channel, &result).await;
        result
    }

    async fn health(&self) -> Health {
        self.shared
            .health
            .lock()
            .map(|health| health.clone())
            .unwrap_or_else(|_| Health::Down("health state poisoned".into()))
    }

    async fn check_channel(&self, channel: &str) -> Result<(), ConnectorError> {
        if self.shared.web.is_member(channel).await? {
            return Ok(());
        }
        Err(ConnectorError::Permanent {
            connector: CONNECTOR,
            detail: format!("the app is not a member of channel {channel}; invite it with /invite"),
        })
    }
}
