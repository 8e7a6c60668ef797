//! The Discord [`Connector`]: the run loop that turns gateway events into stored messages
//! (creating a thread for each new support-channel conversation) and `send` for the outbox.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serenity::http::{Http, HttpBuilder};
use serenity::model::application::ComponentInteraction;
use serenity::model::channel::Message;
use switchboard_api::{
    too_large_message, Attachment, Backoff, Capabilities, ChannelKind, Connector, ConnectorError,
    DeliveryReceipt, ForgottenSent, Gateway, Health, Inbound, IngestError, Outbound, SentMessage,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

use crate::config::DiscordConfig;
use crate::convert::{self, MessagePlace, RemoteAttachment, Scope};
use crate::gateway::{GatewayEvent, GatewaySession};
use crate::rest::{Rest, CONNECTOR};

/// The first pause between offers of a message to a storage that is down (it doubles)...
const HOLD_BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// ... up to this one.
const HOLD_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The file limit before the gateway sets its own (`files.max_bytes`'s default).
const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// How often thread creation is tried when Discord answers 429 or 5xx.
const THREAD_ATTEMPTS: u32 = 3;
/// The pauses between those tries (unless Discord says how long to wait).
const THREAD_BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(1));

/// Discord as a customer channel: direct messages and a support channel with threads.
pub struct DiscordConnector {
    config: DiscordConfig,
    token: Option<String>,
    client: reqwest::Client,
    rest: Option<Rest>,
    state: Mutex<State>,
    /// The largest customer attachment downloaded (the gateway's `files.max_bytes`).
    max_file_bytes: u64,
    /// The pauses while a message is held for storage to come back.
    hold_backoff: Backoff,
}

#[derive(Default)]
struct State {
    health: Option<Health>,
    bot_user_id: Option<u64>,
    /// Guild channel id -> whether it is a thread of the support channel (created or looked up).
    support_threads: HashMap<u64, bool>,
}

impl DiscordConnector {
    /// Builds the connector from its (resolved) config; opens nothing.
    pub fn new(config: DiscordConfig) -> DiscordConnector {
        let token = config
            .bot_token
            .as_ref()
            .map(|secret| secret.expose().to_string());
        let client = reqwest::Client::new();
        let rest = token
            .as_deref()
            .map(|token| Rest::new(client.clone(), token, &config.api_base()));
        DiscordConnector {
            config,
            token,
            client,
            rest,
            state: Mutex::new(State::default()),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            hold_backoff: Backoff::new(HOLD_BACKOFF_FIRST, HOLD_BACKOFF_MAX),
        }
    }

    /// Tests compress the hold schedule (first pause, longest pause) instead of waiting.
    #[cfg(test)]
    pub(crate) fn with_hold_backoff(mut self, first: Duration, max: Duration) -> DiscordConnector {
        self.hold_backoff = Backoff::new(first, max);
        self
    }

    /// Refuses customers' attachments over `max_bytes` (the gateway's `files.max_bytes`)
    /// before downloading them.
    pub fn with_max_file_bytes(mut self, max_bytes: u64) -> DiscordConnector {
        self.max_file_bytes = max_bytes;
        self
    }

    /// Downloads a message's attachments. One over the limit is not downloaded and one that
    /// cannot be fetched is kept without bytes: the gateway names both in the conversation.
    async fn fetch_files(&self, remote: Vec<RemoteAttachment>) -> Vec<Attachment> {
        let mut files = Vec::with_capacity(remote.len());
        for file in remote {
            if file.size > self.max_file_bytes {
                files.push(Attachment::over_limit(
                    &file.name,
                    &file.content_type,
                    file.size,
                ));
                continue;
            }
            let fetched = match self.rest() {
                Ok(rest) => rest.download(&file.url, self.max_file_bytes).await,
                Err(error) => Err(error),
            };
            files.push(Attachment::fetched(&file.name, &file.content_type, fetched));
        }
        files
    }

    /// Tells the customer, in their channel, which files were too large to be taken.
    async fn tell_refused(&self, inbound: &Inbound) {
        let refused: Vec<String> = inbound
            .files
            .iter()
            .filter(|file| file.bytes.is_none() && file.size > self.max_file_bytes)
            .map(|file| too_large_message(&file.name, file.size, self.max_file_bytes))
            .collect();
        let (Some(channel), false) = (
            convert::channel_of_key(&inbound.conversation_key),
            refused.is_empty(),
        ) else {
            return;
        };
        let body = serde_json::json!({
            "content": format!("Not received: {}", refused.join(" ")),
            "allowed_mentions": {"parse": []},
        });
        if let Ok(rest) = self.rest() {
            if let Err(error) = rest.create_message(channel, &body).await {
                warn!(%error, channel, "file refusal not delivered");
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn set_health(&self, health: Health) {
        self.state().health = Some(health);
    }

    fn rest(&self) -> Result<&Rest, ConnectorError> {
        self.rest.as_ref().ok_or_else(|| ConnectorError::Auth {
            connector: CONNECTOR,
            detail: format!(
                "no bot token: set the environment variable {}",
                self.config.bot_token_env
            ),
        })
    }

    /// serenity's HTTP client for the gateway: our reqwest client, its rate limiter off
    /// (429s reach the outbox, which retries), and the stand-in as proxy in tests.
    fn serenity_http(&self, token: &str) -> Http {
        let mut builder = HttpBuilder::new(token)
            .client(self.client.clone())
            .ratelimiter_disabled(true);
        let base = self.config.api_base();
        if base != crate::config::DISCORD_API_URL {
            builder = builder.proxy(base);
        }
        builder.build()
    }

    fn scope(&self) -> Scope {
        Scope {
            bot_user_id: self.state().bot_user_id,
            support_channel: self.config.support_channel(),
            guild: self.config.guild(),
        }
    }

    async fn handle(&self, event: GatewayEvent, gateway: &dyn Gateway) {
        match event {
            GatewayEvent::Ready { bot_user_id } => {
                info!(bot_user_id, "gateway session ready");
                self.state().bot_user_id = Some(bot_user_id);
                self.set_health(Health::Up);
            }
            GatewayEvent::Message(message) => self.on_message(&message, gateway).await,
            GatewayEvent::Click(click) => self.on_click(&click, gateway).await,
        }
    }

    async fn on_message(&self, message: &Message, gateway: &dyn Gateway) {
        let channel = message.channel_id.get();
        let key = match convert::place(message, &self.scope()) {
            MessagePlace::Ignored(reason) => {
                debug!(channel, reason, "message ignored");
                return;
            }
            MessagePlace::Direct => convert::dm_key(channel),
            MessagePlace::SupportChannel => match self.start_thread(message).await {
                Some(thread) => convert::thread_key(thread),
                None => return,
            },
            MessagePlace::OtherGuildChannel => {
                if !self.is_support_thread(channel).await {
                    debug!(channel, "message in an unrelated channel ignored");
                    return;
                }
                convert::thread_key(channel)
            }
        };
        match convert::inbound_from_message(message, key) {
            Some(mut inbound) => {
                inbound.files = self.fetch_files(convert::remote_attachments(message)).await;
                if self.accept(inbound.clone(), gateway).await {
                    self.tell_refused(&inbound).await;
                }
            }
            None => warn!(
                channel,
                message = message.id.get(),
                "empty message ignored: is the MESSAGE_CONTENT intent enabled for the bot?"
            ),
        }
    }

    async fn on_click(&self, click: &ComponentInteraction, gateway: &dyn Gateway) {
        // Discord shows "This interaction failed" unless it is answered within 3 seconds,
        // so the ack comes first; a replayed click is deduplicated by its interaction id.
        if let Ok(rest) = self.rest() {
            if let Err(error) = rest.ack_interaction(click.id.get(), &click.token).await {
                warn!(%error, interaction = click.id.get(), "button click not acknowledged");
            }
        }
        match convert::inbound_from_click(click) {
            Some(inbound) => {
                self.accept(inbound, gateway).await;
            }
            None => debug!(custom_id = %click.data.custom_id, "unknown button ignored"),
        }
    }

    /// Creates the thread a support-channel message starts; its id is the message's.
    async fn start_thread(&self, message: &Message) -> Option<u64> {
        let rest = self.rest().ok()?;
        let name = convert::thread_name(message);
        let (channel, id) = (message.channel_id.get(), message.id.get());
        let mut attempt = 0;
        loop {
            attempt += 1;
            match rest.start_thread(channel, id, &name).await {
                Ok(thread) => {
                    self.state().support_threads.insert(thread, true);
                    return Some(thread);
                }
                Err(error) if error.is_retryable() && attempt < THREAD_ATTEMPTS => {
                    warn!(%error, channel, attempt, "thread not created yet, retrying");
                    tokio::time::sleep(retry_delay(&error, attempt)).await;
                }
                Err(error) => {
                    warn!(%error, channel, message = id, "thread not created; message dropped");
                    return None;
                }
            }
        }
    }

    /// True for threads whose parent is the support channel (asked once per channel).
    async fn is_support_thread(&self, channel: u64) -> bool {
        if let Some(known) = self.state().support_threads.get(&channel) {
            return *known;
        }
        let Ok(rest) = self.rest() else {
            return false;
        };
        match rest.channel(channel).await {
            Ok(info) => {
                let ours =
                    info.parent_id.is_some() && info.parent_id == self.config.support_channel();
                self.state().support_threads.insert(channel, ours);
                ours
            }
            Err(error) => {
                // Not cached: a blip must not make a customer's thread invisible for good.
                warn!(%error, channel, "cannot tell whether the channel is a support thread");
                false
            }
        }
    }

    /// Stores a message; true when it was new or refused (the customer may need telling),
    /// false for a replay. Discord does not deliver an event twice, so while storage is down
    /// the message is held here and offered again until it is stored: the events behind it
    /// wait in the session's queue, in order, and nothing is dropped while the process lives.
    async fn accept(&self, inbound: Inbound, gateway: &dyn Gateway) -> bool {
        let message_id = inbound.message_id.clone();
        let mut backoff = self.hold_backoff.clone();
        loop {
            match gateway.accept(inbound.clone()).await {
                Ok(accepted) => {
                    debug!(message = %message_id, conversation = %accepted.conversation_id,
                           new = accepted.is_new, "message stored");
                    return accepted.is_new;
                }
                Err(IngestError::Rejected(reason)) => {
                    warn!(message = %message_id, %reason, "message rejected by the gateway");
                    return true;
                }
                Err(IngestError::Unavailable(error)) => {
                    let pause = backoff.next_delay();
                    let attempt = backoff.failures();
                    warn!(%error, message = %message_id, attempt, retry_in = ?pause, "storage unavailable; holding the message");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

fn retry_delay(error: &ConnectorError, attempt: u32) -> Duration {
    match error {
        ConnectorError::RateLimited { retry_after, .. } => *retry_after,
        _ => THREAD_BACKOFF.delay_for_attempt(attempt),
    }
}

#[async_trait]
impl Connector for DiscordConnector {
    fn channel(&self) -> ChannelKind {
        crate::CHANNEL
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            opens_relative_links: false,
            files: true,
        }
    }

    async fn run(&self, gateway: Arc<dyn Gateway>) -> Result<(), ConnectorError> {
        let span = tracing::info_span!("connector", name = CONNECTOR);
        async {
            let result = self.run_session(gateway.as_ref()).await;
            if let Err(error) = &result {
                self.set_health(Health::Down(error.to_string()));
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn forget_sent(
        &self,
        conversation_key: &str,
        sent: &[SentMessage],
    ) -> Result<ForgottenSent, ConnectorError> {
        let channel =
            convert::channel_of_key(conversation_key).ok_or_else(|| ConnectorError::Permanent {
                connector: CONNECTOR,
                detail: format!("not a Discord conversation key: {conversation_key:?}"),
            })?;
        let rest = self.rest()?;
        let mut forgotten = ForgottenSent::default();
        for message in sent {
            let deleted = match message.platform_message_id.parse::<u64>() {
                Ok(id) => rest.delete_message(channel, id).await?,
                Err(_) => false,
            };
            if deleted {
                forgotten.deleted += 1;
            } else {
                forgotten.left += 1;
            }
        }
        Ok(forgotten)
    }

    async fn send(&self, outbound: &Outbound) -> Result<DeliveryReceipt, ConnectorError> {
        let channel = convert::channel_of_key(&outbound.conversation_key).ok_or_else(|| {
            ConnectorError::Permanent {
                connector: CONNECTOR,
                detail: format!(
                    "not a Discord conversation key: {:?}",
                    outbound.conversation_key
                ),
            }
        })?;
        let (mut body, uploads) = convert::render_with_files(outbound);
        if let Some(nonce) = convert::nonce_for(&outbound.id) {
            // Discord keeps one message per nonce for a few minutes when told to enforce it, so
            // a resend (the gateway crashed after Discord took the message, before the receipt
            // was stored) returns the first message instead of showing a second.
            body["nonce"] = serde_json::json!(nonce);
            body["enforce_nonce"] = serde_json::json!(true);
        }
        match self
            .rest()?
            .create_message_with_files(channel, &body, &uploads)
            .await
        {
            Ok(id) => Ok(DeliveryReceipt {
                platform_message_id: Some(id.to_string()),
                ..DeliveryReceipt::default()
            }),
            Err(error) => {
                if matches!(error, ConnectorError::Auth { .. }) {
                    self.set_health(Health::Down(error.to_string()));
                }
                Err(error)
            }
        }
    }

    async fn health(&self) -> Health {
        self.state()
            .health
            .clone()
            .unwrap_or_else(|| Health::Down("not connected yet".to_string()))
    }
}

impl DiscordConnector {
    async fn run_session(&self, gateway: &dyn Gateway) -> Result<(), ConnectorError> {
        let rest = self.rest()?;
        let token = self.token.clone().unwrap_or_default();
        // serenity falls back to Discord's public gateway when `GET /gateway` fails, so a bad
        // token is caught here, with a clear error, before any websocket is opened.
        let me = rest.current_user().await?;
        info!(bot = %me.username, bot_user_id = me.id, "bot token accepted");
        self.state().bot_user_id = Some(me.id);
        let (events, mut received) = mpsc::unbounded_channel();
        let mut session = GatewaySession::connect(self.serenity_http(&token), events).await?;
        loop {
            tokio::select! {
                event = received.recv() => match event {
                    Some(event) => self.handle(event, gateway).await,
                    None => break,
                },
                reason = session.ended() => {
                    // Drain what the shard delivered before it stopped.
                    while let Ok(event) = received.try_recv() {
                        self.handle(event, gateway).await;
                    }
                    return Err(self.classify_end(reason).await);
                }
            }
        }
        let reason = session.ended().await;
        Err(self.classify_end(reason).await)
    }

    /// Why the gateway stopped: a revoked token is `Auth`; anything else may heal.
    async fn classify_end(&self, reason: String) -> ConnectorError {
        match self.rest().map(Rest::current_user) {
            Ok(check) => match check.await {
                Err(error @ ConnectorError::Auth { .. }) => error,
                _ => ConnectorError::Transient {
                    connector: CONNECTOR,
                    detail: reason,
                },
            },
            Err(error) => error,
        }
    }
}
