//! [`TelegramConnector`]: the `Connector` implementation. Turns updates (polled or pushed to
//! the webhook) into gateway calls, and delivers outbound messages paced to Telegram's limits.
//!
//! Building it opens no connection; `run` checks the token with `getMe` first (a revoked
//! token ends `run` with an `Auth` error naming the connector, and `health()` says why),
//! then long-polls or, in webhook mode, waits while the webhook route does the work.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use switchboard_api::{
    too_large_message, Attachment, Backoff, Capabilities, ChannelKind, Connector, ConnectorError,
    DeliveryReceipt, ForgottenSent, Gateway, Health, IngestError, KeyedPacer, Outbound,
    SentMessage,
};
use tracing::{debug, info, warn, Instrument};

use crate::client::{BotClient, Deletion, CONNECTOR};
use crate::config::{TelegramConfig, TelegramMode};
use crate::convert::{self, OutgoingFile, OutgoingPart, RemoteFile, UpdateAction, DECLINE_TEXT};
use crate::pacing::telegram_pacer;
use crate::{polling, webhook};
use switchboard_api::PollLease;

/// Telegram as a customer channel.
pub struct TelegramConnector {
    shared: Arc<Shared>,
}

/// What the polling loop, the webhook route and `send` share.
pub(crate) struct Shared {
    pub(crate) config: TelegramConfig,
    pub(crate) client: BotClient,
    pacing: KeyedPacer<i64>,
    health: Mutex<Health>,
    pub(crate) lease: OnceLock<Arc<dyn PollLease>>,
    /// The largest customer file fetched (the gateway's `files.max_bytes`, capped at what
    /// Telegram lets bots download).
    max_file_bytes: u64,
}

/// Telegram serves bots files up to 20 MB (`getFile` refuses bigger ones).
pub const TELEGRAM_DOWNLOAD_LIMIT: u64 = 20 * 1024 * 1024;
/// How often a file download that failed on the network is tried before the message is
/// stored without it (saying so), rather than holding up the chat's later messages.
const FETCH_ATTEMPTS: u32 = 3;
/// The pauses between those tries.
const FETCH_BACKOFF: Backoff = Backoff::new(
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(1),
);
/// The longest a send waits for its chat's turn. The per-chat gap is a second, so a reply in
/// a few parts passes; a longer wait (a 429's `retry_after`) goes back to the outbox, whose
/// send timeout (10 s by default) must cover the wait and the request.
const MAX_PACING_WAIT: Duration = Duration::from_secs(3);

impl TelegramConnector {
    /// Builds the connector from a validated config whose secrets are resolved; connects to
    /// nothing.
    pub fn new(config: TelegramConfig) -> Result<TelegramConnector, ConnectorError> {
        let token = config
            .bot_token
            .clone()
            .ok_or_else(|| ConnectorError::Auth {
                connector: CONNECTOR,
                detail: format!("no bot token (is {} set?)", config.bot_token_env),
            })?;
        let poll_timeout = std::time::Duration::from_secs(config.poll_timeout_secs);
        let client = BotClient::new(token.expose(), config.api_base(), poll_timeout)?;
        Ok(TelegramConnector {
            shared: Arc::new(Shared {
                config,
                client,
                pacing: telegram_pacer(),
                health: Mutex::new(Health::Down("not started (getMe pending)".into())),
                lease: OnceLock::new(),
                max_file_bytes: TELEGRAM_DOWNLOAD_LIMIT,
            }),
        })
    }

    /// Refuses customers' files over `max_bytes` (the gateway's `files.max_bytes`) before
    /// downloading them. Call before `run`.
    pub fn with_max_file_bytes(mut self, max_bytes: u64) -> TelegramConnector {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.max_file_bytes = max_bytes.min(TELEGRAM_DOWNLOAD_LIMIT),
            None => warn!("telegram: file limit set after start; keeping the old one"),
        }
        self
    }

    /// Polls only while `lease` is held, so one of several gateway instances polls.
    ///
    /// Without a lease the connector polls unconditionally (one instance).
    pub fn with_lease(self, lease: Arc<dyn PollLease>) -> TelegramConnector {
        // Set once, before `run`; a second lease would be a wiring mistake, the first wins.
        if self.shared.lease.set(lease).is_err() {
            warn!("telegram: a polling lease was already set; keeping the first");
        }
        self
    }
}

impl Shared {
    pub(crate) fn set_health(&self, health: Health) {
        if let Ok(mut current) = self.health.lock() {
            *current = health;
        }
    }

    pub(crate) fn health(&self) -> Health {
        match self.health.lock() {
            Ok(health) => health.clone(),
            Err(_) => Health::Down("health state poisoned".into()),
        }
    }

    /// Handles one update from either transport. `Err` only when storage is down: the
    /// update must be delivered again (not confirmed to Telegram / HTTP 503).
    pub(crate) async fn handle_update(
        &self,
        gateway: &dyn Gateway,
        raw: &Value,
    ) -> Result<(), IngestError> {
        let parsed = match convert::parse_update(raw) {
            Ok(parsed) => parsed,
            Err(error) => {
                warn!(%error, "update skipped");
                return Ok(());
            }
        };
        let update_id = parsed.update_id;
        match parsed.action {
            UpdateAction::Store(mut inbound) => {
                let remote = convert::remote_files(raw, self.max_file_bytes);
                inbound.files = self.fetch_files(remote).await;
                self.store(gateway, update_id, inbound).await
            }
            UpdateAction::Greet { chat_id } => {
                // Not stored: `/start` carries no question, and the greeting is not part of
                // the support conversation (a redelivered /start greets twice, harmlessly).
                let greeting = self.config.greeting.clone();
                self.notify(chat_id, &greeting, "greeting").await;
                Ok(())
            }
            UpdateAction::Button {
                callback_query_id,
                inbound,
            } => {
                if let Some(inbound) = inbound {
                    // Store first: if storage is down the press is redelivered, and the
                    // button keeps spinning until it is safely stored.
                    self.store(gateway, update_id, inbound).await?;
                }
                if let Err(error) = self.client.answer_callback(&callback_query_id, None).await {
                    warn!(%error, update_id, "callback query not answered");
                }
                Ok(())
            }
            UpdateAction::Decline { chat_id, what } => {
                info!(chat = chat_id, what = %what, update_id, "unreadable message declined");
                self.notify(chat_id, DECLINE_TEXT, "decline").await;
                Ok(())
            }
            UpdateAction::Ignore { reason } => {
                info!(update_id, reason = %reason, "update ignored");
                Ok(())
            }
        }
    }

    /// Downloads a message's files. One over the limit is not downloaded, and one that cannot
    /// be fetched is kept without bytes: the gateway names both in the conversation.
    async fn fetch_files(&self, remote: Vec<RemoteFile>) -> Vec<Attachment> {
        let mut files = Vec::with_capacity(remote.len());
        for file in remote {
            let limit = self.max_file_bytes;
            if let Some(size) = file.size.filter(|size| *size > limit) {
                files.push(Attachment::over_limit(&file.name, &file.content_type, size));
                continue;
            }
            let mut attempt = 1;
            let fetched = loop {
                match self.client.fetch_file(&file.file_id, limit).await {
                    Err(error) if error.is_retryable() && attempt < FETCH_ATTEMPTS => {
                        debug!(%error, attempt, file = %file.name, "file download failed; retrying");
                        tokio::time::sleep(FETCH_BACKOFF.delay_for_attempt(attempt)).await;
                        attempt += 1;
                    }
                    other => break other,
                }
            };
            files.push(Attachment::fetched(&file.name, &file.content_type, fetched));
        }
        files
    }

    async fn store(
        &self,
        gateway: &dyn Gateway,
        update_id: i64,
        inbound: switchboard_api::Inbound,
    ) -> Result<(), IngestError> {
        let chat = inbound.conversation_key.clone();
        let chat_id = chat.parse::<i64>().ok();
        // Files left behind for their size: the customer hears why, the agents see it in
        // the stored text (the gateway adds it).
        let too_large: Vec<String> = inbound
            .files
            .iter()
            .filter(|file| file.bytes.is_none() && file.size > self.max_file_bytes)
            .map(|file| too_large_message(&file.name, file.size, self.max_file_bytes))
            .collect();
        let had_files = !inbound.files.is_empty();
        match gateway.accept(inbound).await {
            Ok(accepted) => {
                if accepted.is_new && !too_large.is_empty() {
                    if let Some(chat_id) = chat_id {
                        let notice = format!("Not received: {}", too_large.join(" "));
                        self.notify(chat_id, &notice, "file refusal").await;
                    }
                }
                debug!(
                    update_id,
                    chat = %chat,
                    conversation = %accepted.conversation_id,
                    is_new = accepted.is_new,
                    "update stored"
                );
                Ok(())
            }
            Err(IngestError::Rejected(reason)) => {
                // Retrying cannot help; move on rather than block the chat's later updates.
                warn!(update_id, chat = %chat, reason = %reason, "update rejected by the gateway");
                // A message of files only that was refused (too large, files off): the
                // customer must not think it arrived.
                if let (true, Some(chat_id)) = (had_files, chat_id) {
                    self.notify(chat_id, &format!("Not received: {reason}"), "file refusal")
                        .await;
                }
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Sends a notice outside the conversation (greeting, decline); failures are logged.
    async fn notify(&self, chat: i64, text: &str, what: &str) {
        let part = OutgoingPart {
            text: text.to_string(),
            bold_prefix_utf16: None,
            human_button: false,
            rate_buttons: false,
        };
        if let Err(error) = self.send_part(chat, &part).await {
            warn!(%error, chat, what, "notice not delivered");
        }
    }

    async fn send_part(&self, chat: i64, part: &OutgoingPart) -> Result<i32, ConnectorError> {
        self.wait_turn(chat).await?;
        let sent = self.client.send_part(chat, part).await;
        self.after_send(chat, sent).await
    }

    async fn send_file(&self, chat: i64, file: &OutgoingFile) -> Result<i32, ConnectorError> {
        self.wait_turn(chat).await?;
        let sent = self.client.send_file(chat, file).await;
        self.after_send(chat, sent).await
    }

    /// Waits for the chat's turn when it is near; a turn further away (after a 429, or
    /// behind a backlog) is a `RateLimited` for the outbox to park the message until then,
    /// rather than a send held open against the outbox's send timeout.
    async fn wait_turn(&self, chat: i64) -> Result<(), ConnectorError> {
        self.pacing
            .wait_turn_within(&chat, MAX_PACING_WAIT)
            .await
            .map_err(|retry_after| ConnectorError::RateLimited {
                connector: CONNECTOR,
                retry_after,
            })
    }

    /// Honours a 429's wait for the chat and marks the connector down on a revoked token.
    async fn after_send(
        &self,
        chat: i64,
        sent: Result<i32, ConnectorError>,
    ) -> Result<i32, ConnectorError> {
        match sent {
            Ok(id) => Ok(id),
            Err(error) => {
                match &error {
                    ConnectorError::RateLimited { retry_after, .. } => {
                        self.pacing.hold(&chat, *retry_after).await
                    }
                    ConnectorError::Auth { .. } => self.set_health(Health::Down(error.to_string())),
                    _ => {}
                }
                Err(error)
            }
        }
    }
}

#[async_trait]
impl Connector for TelegramConnector {
    fn channel(&self) -> ChannelKind {
        crate::CHANNEL
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            opens_relative_links: false,
            files: true,
        }
    }

    fn routes(&self, gateway: Arc<dyn Gateway>) -> Option<axum::Router> {
        (self.shared.config.mode == TelegramMode::Webhook)
            .then(|| webhook::router(Arc::clone(&self.shared), gateway))
    }

    async fn run(&self, gateway: Arc<dyn Gateway>) -> Result<(), ConnectorError> {
        let shared = Arc::clone(&self.shared);
        let span = tracing::info_span!("telegram");
        async move {
            let account = polling::check_token(&shared).await?;
            info!(bot = ?account.username, mode = ?shared.config.mode, "telegram connected");
            match shared.config.mode {
                TelegramMode::Polling => polling::poll(shared, gateway, account).await,
                TelegramMode::Webhook => {
                    info!(path = %shared.config.webhook_path, "waiting for webhook updates");
                    std::future::pending::<()>().await;
                    Ok(())
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn send(&self, outbound: &Outbound) -> Result<DeliveryReceipt, ConnectorError> {
        let permanent = |error: convert::RenderError| ConnectorError::Permanent {
            connector: CONNECTOR,
            detail: error.to_string(),
        };
        let chat = convert::chat_id(outbound).map_err(permanent)?;
        let rendered = convert::render_with_files(outbound).map_err(permanent)?;
        let mut sent = Vec::new();
        for part in &rendered.parts {
            // A failure after the first part means a retry repeats the parts already sent;
            // rare (answers over 4096 characters, files after text) and better than losing
            // the rest.
            sent.push(self.shared.send_part(chat, part).await?.to_string());
        }
        for file in &rendered.files {
            sent.push(self.shared.send_file(chat, file).await?.to_string());
        }
        let last = sent.pop();
        let parts = rendered.parts.len() + rendered.files.len();
        debug!(
            conversation = %outbound.conversation_id,
            message = %outbound.id,
            chat,
            parts,
            "telegram message sent"
        );
        Ok(DeliveryReceipt {
            platform_message_id: last,
            earlier_message_ids: sent,
        })
    }

    async fn health(&self) -> Health {
        self.shared.health()
    }

    async fn forget_sent(
        &self,
        conversation_key: &str,
        sent: &[SentMessage],
    ) -> Result<ForgottenSent, ConnectorError> {
        let chat = conversation_key
            .parse::<i64>()
            .map_err(|_| ConnectorError::Permanent {
                connector: CONNECTOR,
                detail: format!("not a Telegram chat id: {conversation_key:?}"),
            })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let mut forgotten = ForgottenSent::default();
        for message in sent {
            let id = message.platform_message_id.parse::<i32>().ok();
            // A bot may delete its messages for 48 hours only: asking later is a wasted call
            // that Telegram refuses anyway.
            let too_old = now.saturating_sub(message.sent_ms) >= BOT_DELETE_WINDOW_MS;
            let Some(id) = id.filter(|_| !too_old) else {
                forgotten.left += 1;
                continue;
            };
            self.shared.wait_turn(chat).await?;
            match self.shared.client.delete_message(chat, id).await? {
                Deletion::Deleted => forgotten.deleted += 1,
                Deletion::Refused => forgotten.left += 1,
            }
        }
        Ok(forgotten)
    }
}

/// How long after sending Telegram lets a bot delete its message in a private chat.
const BOT_DELETE_WINDOW_MS: u64 = 48 * 3_600_000;
