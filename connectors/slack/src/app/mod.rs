//! One Slack app as both halves of this crate run it: the agent desk (`[desk.slack]`) and the
//! customer channel (`[connectors.slack]`) are two separate Slack apps with the same plumbing.
//!
//! [`SlackApp`] holds what they share: the Web API transport, per-channel pacing (a 429 holds
//! the channel for Retry-After), the bot's identity from one `auth.test`, the health it
//! reports, the file download limit, and the Socket Mode / Events API runner. Each half adds
//! only what it means by a Slack event ([`client::EnvelopeHandler`]).

pub(crate) mod client;
mod errors;
pub(crate) mod events_http;
pub(crate) mod shared_files;
pub mod signature;

use std::sync::{Arc, Mutex};

use axum::Router;
use bytes::Bytes;
use serde_json::Value;
use slack_morphism::SlackMessageMetadata;
use switchboard_api::{Attachment, ConnectorError, Health, IngestError, KeyedPacer, Secret};
use tokio::sync::OnceCell;
use tracing::info;

use crate::config::{resolved_tokens, SlackMode};
use crate::convert::SharedFile;
use client::{BotIdentity, EnvelopeHandler, SlackWeb};

/// The limit on shared files when the gateway sets none.
const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// What one Slack app needs to connect, read from its config section.
pub(crate) struct AppSettings<'a> {
    /// The name its errors and logs carry (`slack desk`, `slack customers`).
    pub connector: &'static str,
    pub mode: SlackMode,
    pub api_base: String,
    pub bot_token: Option<&'a Secret>,
    pub app_token: Option<&'a Secret>,
    pub signing_secret: Option<&'a Secret>,
    /// Where Slack POSTs events in Events API mode.
    pub events_path: &'a str,
    pub posts_per_second_per_channel: f64,
    /// Whether the app takes button presses (interactivity) besides events.
    pub interactive: bool,
}

/// The transport and state one Slack app shares between its handlers and its HTTP route.
pub(crate) struct SlackApp {
    connector: &'static str,
    mode: SlackMode,
    interactive: bool,
    events_path: String,
    signing_secret: Option<Secret>,
    web: Arc<dyn SlackWeb>,
    /// One post per channel at a time, `posts_per_second_per_channel` apart.
    pacing: KeyedPacer<String>,
    bot: OnceCell<BotIdentity>,
    health: Mutex<Health>,
    /// Shared files larger than this are not downloaded (the core names them).
    max_file_bytes: u64,
}

impl SlackApp {
    /// Resolves the tokens and builds the transport; opens no connection.
    pub(crate) fn new(settings: AppSettings<'_>) -> Result<SlackApp, ConnectorError> {
        let connector = settings.connector;
        let (bot_token, app_token) = resolved_tokens(
            connector,
            settings.mode,
            settings.bot_token,
            settings.app_token,
            settings.signing_secret,
        )?;
        let web = client::connect(&settings.api_base, &bot_token, app_token.as_ref())
            .map_err(|error| named(connector, error))?;
        Ok(SlackApp {
            connector,
            mode: settings.mode,
            interactive: settings.interactive,
            events_path: settings.events_path.to_string(),
            signing_secret: settings.signing_secret.cloned(),
            web,
            pacing: KeyedPacer::per_second(settings.posts_per_second_per_channel),
            bot: OnceCell::new(),
            health: Mutex::new(Health::Down("not started (auth.test pending)".into())),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        })
    }

    /// The Web API, for calls that need no pacing (reads, lookups).
    pub(crate) fn web(&self) -> &dyn SlackWeb {
        self.web.as_ref()
    }

    /// The limit on files downloaded from Slack.
    pub(crate) fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Sets the limit on files downloaded from Slack (the gateway's `files.max_bytes`).
    pub(crate) fn set_max_file_bytes(&mut self, max_bytes: u64) {
        self.max_file_bytes = max_bytes;
    }

    /// The shared transport names itself "slack desk"; this app's errors carry its own name.
    pub(crate) fn named(&self, error: ConnectorError) -> ConnectorError {
        named(self.connector, error)
    }

    fn set_health(&self, health: Health) {
        if let Ok(mut current) = self.health.lock() {
            *current = health;
        }
    }

    /// The health `health()` reports.
    pub(crate) fn health(&self) -> Health {
        self.health
            .lock()
            .map(|health| health.clone())
            .unwrap_or_else(|_| Health::Down("health state poisoned".into()))
    }

    /// Marks the app down when Slack refuses the token, whichever call noticed.
    pub(crate) fn note<T>(&self, result: &Result<T, ConnectorError>) {
        if let Err(error @ ConnectorError::Auth { .. }) = result {
            self.set_health(Health::Down(error.to_string()));
        }
    }

    /// The bot's identity, from one `auth.test` (repeated only after a failure).
    pub(crate) async fn bot(&self) -> Result<&BotIdentity, ConnectorError> {
        let result = self
            .bot
            .get_or_try_init(|| async { self.web.auth_test().await.map_err(|e| self.named(e)) })
            .await;
        match &result {
            Ok(bot) => {
                if let Ok(mut health) = self.health.lock() {
                    if *health != Health::Up {
                        info!(connector = self.connector, bot_user = %bot.user_id, team = %bot.team_id, "slack app authenticated");
                    }
                    *health = Health::Up;
                }
            }
            Err(error) => self.set_health(Health::Down(error.to_string())),
        }
        result
    }

    /// Names, notes and paces after a call to `channel`: later posts to a channel Slack
    /// answered 429 wait out its Retry-After too.
    async fn finish<T>(
        &self,
        channel: &str,
        result: Result<T, ConnectorError>,
    ) -> Result<T, ConnectorError> {
        let result = result.map_err(|error| self.named(error));
        self.note(&result);
        if let Err(ConnectorError::RateLimited { retry_after, .. }) = &result {
            self.pacing.hold(channel, *retry_after).await;
        }
        result
    }

    /// `chat.postMessage` at the channel's pace; returns the new message's `ts`.
    pub(crate) async fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: Option<Vec<Value>>,
        metadata: Option<SlackMessageMetadata>,
    ) -> Result<String, ConnectorError> {
        self.pacing.wait_turn(channel).await;
        let result = self
            .web
            .post_message(channel, thread_ts, text, blocks, metadata)
            .await;
        self.finish(channel, result).await
    }

    /// A thread reply also shown in the channel, at the channel's pace.
    pub(crate) async fn post_broadcast(
        &self,
        channel: &str,
        thread_ts: &str,
        text: &str,
    ) -> Result<String, ConnectorError> {
        self.pacing.wait_turn(channel).await;
        let result = self
            .web
            .post_broadcast_reply(channel, thread_ts, text)
            .await;
        self.finish(channel, result).await
    }

    /// `chat.update` at the channel's pace.
    pub(crate) async fn update(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Vec<Value>,
    ) -> Result<(), ConnectorError> {
        self.pacing.wait_turn(channel).await;
        let result = self.web.update_message(channel, ts, text, blocks).await;
        self.finish(channel, result).await
    }

    /// Uploads a file into a thread at the channel's pace; returns the file id.
    pub(crate) async fn upload(
        &self,
        channel: &str,
        thread_ts: &str,
        file: (&str, &str, Bytes),
        comment: &str,
    ) -> Result<String, ConnectorError> {
        let (name, content_type, bytes) = file;
        self.pacing.wait_turn(channel).await;
        let result = self
            .web
            .upload_file(channel, thread_ts, name, content_type, bytes, comment)
            .await;
        self.finish(channel, result).await
    }

    /// Downloads a message's files, bounded by the limit; a file over it comes back without
    /// bytes (the core tells the sender), a failed download asks Slack to redeliver.
    pub(crate) async fn fetch_files(
        &self,
        files: Vec<SharedFile>,
    ) -> Result<Vec<Attachment>, IngestError> {
        shared_files::fetch(self.web.as_ref(), files, self.max_file_bytes).await
    }

    /// The Events API route (Events API mode with a signing secret), else `None`.
    pub(crate) fn routes(&self, handler: Arc<dyn EnvelopeHandler>) -> Option<Router> {
        if self.mode != SlackMode::EventsApi {
            return None;
        }
        events_http::router(
            self.connector,
            &self.events_path,
            self.signing_secret.as_ref(),
            handler,
            self.interactive,
        )
    }

    /// Runs the app: `auth.test` first (health, the bot's own user id), then Socket Mode
    /// until dropped, or, in Events API mode, waits while the HTTP route does the work.
    pub(crate) async fn run(
        &self,
        handler: Arc<dyn EnvelopeHandler>,
    ) -> Result<(), ConnectorError> {
        self.bot().await?;
        match self.mode {
            SlackMode::Socket => {
                let result = self
                    .web
                    .socket_mode(handler, self.interactive)
                    .await
                    .map_err(|error| self.named(error));
                self.note(&result);
                result
            }
            SlackMode::EventsApi => {
                // The HTTP route does the work; keep the task alive for it.
                std::future::pending::<()>().await;
                Ok(())
            }
        }
    }
}

/// `error` as raised by `connector`.
fn named(connector: &'static str, error: ConnectorError) -> ConnectorError {
    match error {
        ConnectorError::Transient { detail, .. } => ConnectorError::Transient { connector, detail },
        ConnectorError::RateLimited { retry_after, .. } => ConnectorError::RateLimited {
            connector,
            retry_after,
        },
        ConnectorError::Auth { detail, .. } => ConnectorError::Auth { connector, detail },
        ConnectorError::Permanent { detail, .. } => ConnectorError::Permanent { connector, detail },
    }
}
