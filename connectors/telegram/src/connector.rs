//! [`TelegramConnector`]: the `Connector` implementation. Turns updates (polled or pushed to
//! the webhook) into gateway calls, and delivers outbound messages paced to Telegram's limits.
//!
//! Building it opens no connection; `run` checks the token with `getMe` first (a revoked
//! token ends `run` with an `Auth` error naming the connector, and `health()` says why),
//! then long-polls or, in webhook mode, waits while the webhook route does the work.

use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde_json::Value;
use switchboard_api::{
    Capabilities, ChannelKind, Connector, ConnectorError, DeliveryReceipt, Gateway, Health,
    IngestError, Outbound,
};
use tracing::{debug, info, warn, Instrument};

use crate::client::{BotClient, CONNECTOR};
use crate::config::{TelegramConfig, TelegramMode};
use crate::convert::{self, OutgoingPart, UpdateAction, DECLINE_TEXT};
use crate::lease::PollLease;
use crate::pacing::SendPacing;
use crate::{polling, webhook};

/// Telegram as a customer channel.
pub struct TelegramConnector {
    shared: Arc<Shared>,
}

/// What the polling loop, the webhook route and `send` share.
pub(crate) struct Shared {
    pub(crate) config: TelegramConfig,
    pub(crate) client: BotClient,
    pacing: SendPacing,
    health: Mutex<Health>,
    pub(crate) lease: OnceLock<Arc<dyn PollLease>>,
}

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
                pacing: SendPacing::telegram(),
                health: Mutex::new(Health::Down("not started (getMe pending)".into())),
                lease: OnceLock::new(),
            }),
        })
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
            UpdateAction::Store(inbound) => self.store(gateway, update_id, inbound).await,
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

    async fn store(
        &self,
        gateway: &dyn Gateway,
        update_id: i64,
        inbound: switchboard_api::Inbound,
    ) -> Result<(), IngestError> {
        let chat = inbound.conversation_key.clone();
        match gateway.accept(inbound).await {
            Ok(accepted) => {
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
        self.pacing.wait_turn(chat).await;
        match self.client.send_part(chat, part).await {
            Ok(id) => Ok(id),
            Err(error) => {
                match &error {
                    ConnectorError::RateLimited { retry_after, .. } => {
                        self.pacing.hold(chat, *retry_after).await
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
        ChannelKind::Telegram
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            buttons: true,
            threads: false,
            edits: false,
            files: false,
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
        let parts = convert::render(outbound).map_err(permanent)?;
        let mut last = None;
        for part in &parts {
            // A failure after the first part means a retry repeats the parts already sent;
            // rare (answers over 4096 characters) and better than losing the rest.
            last = Some(self.shared.send_part(chat, part).await?);
        }
        debug!(
            conversation = %outbound.conversation_id,
            message = %outbound.id,
            chat,
            parts = parts.len(),
            "telegram message sent"
        );
        Ok(DeliveryReceipt {
            platform_message_id: last.map(|id| id.to_string()),
        })
    }

    async fn health(&self) -> Health {
        self.shared.health()
    }
}
