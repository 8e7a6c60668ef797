//! [`SlackCustomerConnector`]: Slack as a customer channel. Customers write in Slack Connect
//! shared channels or a community workspace; each top-level message in a configured channel
//! starts a conversation, its thread carries the rest, and the AI's and agents' answers are
//! posted in that thread.
//!
//! A separate Slack app from the agent desk (its own tokens and config) on the same plumbing
//! ([`SlackApp`]: the transport over slack-morphism, pacing, error mapping, health, runner).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use slack_morphism::SlackMessageMetadata;
use switchboard_api::{
    text_with_links, too_large_message, Author, Capabilities, ChannelKind, Connector,
    ConnectorError, DeliveryReceipt, FileRef, ForgottenSent, Gateway, Health, Identity, Inbound,
    InboundKind, IngestError, Outbound, SentMessage, ThreadRef,
};
use tracing::{debug, info, warn, Instrument};

use self::config::SlackCustomerConfig;
use self::convert::{ButtonPress, CustomerOutcome};
use crate::app::client::{EnvelopeHandler, ThreadMessage, UserProfile};
use crate::app::{AppSettings, SlackApp};
use crate::blocks;

pub mod config;
pub mod convert;
#[cfg(test)]
mod tests;

/// The name this connector's errors and logs carry.
pub const CUSTOMER_CONNECTOR: &str = "slack customers";

/// Slack as a customer channel.
pub struct SlackCustomerConnector {
    shared: Arc<CustomerShared>,
}

/// What the connector, its Socket Mode handler and its HTTP route share.
pub(crate) struct CustomerShared {
    pub(crate) config: SlackCustomerConfig,
    app: SlackApp,
    /// Slack user id -> name and email; both change rarely and users.info is rate limited.
    profiles: Mutex<HashMap<String, UserProfile>>,
}

/// The message metadata event type of every reply this connector posts: chat.postMessage has
/// no idempotency key, so a resend finds its earlier copy by this tag in the thread.
const REPLY_EVENT_TYPE: &str = "switchboard_reply";
/// The payload key holding the reply's `Outbound::id` (its transcript id, unique in the thread).
const ID_KEY: &str = "id";
/// The payload key naming which post of a reply this is, on every post but its text (a file
/// whose bytes expired goes as a link post of its own).
const PART_KEY: &str = "part";
/// The part a post without `PART_KEY` is: the reply's text.
const TEXT_PART: &str = "text";

fn file_part(index: usize) -> String {
    format!("file:{index}")
}

/// The metadata a post of reply `id` carries; none for an id-less reply, which cannot be
/// looked for anyway.
fn reply_metadata(id: &str, part: Option<String>) -> Option<SlackMessageMetadata> {
    if id.is_empty() {
        return None;
    }
    let mut payload = HashMap::from([(ID_KEY.to_string(), id.to_string())]);
    if let Some(part) = part {
        payload.insert(PART_KEY.to_string(), part);
    }
    Some(SlackMessageMetadata::new(REPLY_EVENT_TYPE.to_string()).with_event_payload(payload))
}

/// The posts of reply `id` among a thread's messages: part -> ts of its first copy. Only the
/// bot's own messages count, so no one else in a shared channel can make a reply look sent.
fn posted_parts(messages: Vec<ThreadMessage>, bot_user: &str, id: &str) -> HashMap<String, String> {
    let mut parts = HashMap::new();
    for message in messages {
        if message.user.as_deref() != Some(bot_user) {
            continue;
        }
        let Some(metadata) = message.metadata else {
            continue;
        };
        let Some(payload) = metadata.event_payload else {
            continue;
        };
        if metadata.event_type != REPLY_EVENT_TYPE
            || payload.get(ID_KEY).map(String::as_str) != Some(id)
        {
            continue;
        }
        let part = payload
            .get(PART_KEY)
            .cloned()
            .unwrap_or_else(|| TEXT_PART.to_string());
        parts.entry(part).or_insert(message.ts);
    }
    parts
}

impl SlackCustomerConnector {
    /// Builds the connector from a validated config with resolved secrets; opens no connection.
    pub fn new(config: SlackCustomerConfig) -> Result<SlackCustomerConnector, ConnectorError> {
        let app = SlackApp::new(AppSettings {
            connector: CUSTOMER_CONNECTOR,
            mode: config.mode,
            api_base: config.api_base(),
            bot_token: config.bot_token.as_ref(),
            app_token: config.app_token.as_ref(),
            signing_secret: config.signing_secret.as_ref(),
            events_path: &config.events_path,
            posts_per_second_per_channel: config.posts_per_second_per_channel,
            interactive: true,
        })?;
        Ok(SlackCustomerConnector {
            shared: Arc::new(CustomerShared {
                config,
                app,
                profiles: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Downloads customers' files up to `max_bytes` each (the gateway's `files.max_bytes`).
    /// Call before `run`.
    pub fn with_max_file_bytes(mut self, max_bytes: u64) -> Self {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.app.set_max_file_bytes(max_bytes),
            None => warn!("slack customers: file limit set after start; keeping the old one"),
        }
        self
    }

    fn intake(&self, gateway: Arc<dyn Gateway>) -> Arc<CustomerIntake> {
        Arc::new(CustomerIntake {
            shared: self.shared.clone(),
            gateway,
        })
    }
}

impl CustomerShared {
    /// Posts in a thread at the channel's pace; a 429 holds the channel for Retry-After.
    async fn post(
        &self,
        channel: &str,
        thread_ts: &str,
        text: &str,
        blocks: Option<Vec<Value>>,
        metadata: Option<SlackMessageMetadata>,
    ) -> Result<String, ConnectorError> {
        self.app
            .post(channel, Some(thread_ts), text, blocks, metadata)
            .await
    }

    /// Uploads an agent's (or the AI's) file into the customer's thread at the channel's
    /// pace, with the same upload flow the desk uses; a file whose bytes expired goes as its
    /// link, in a post carrying `metadata` (an upload cannot carry any).
    async fn upload(
        &self,
        channel: &str,
        thread_ts: &str,
        file: &FileRef,
        comment: &str,
        metadata: Option<SlackMessageMetadata>,
    ) -> Result<String, ConnectorError> {
        let Some(bytes) = file.bytes.clone() else {
            let text = text_with_links(comment, std::slice::from_ref(file));
            return self.post(channel, thread_ts, &text, None, metadata).await;
        };
        self.app
            .upload(
                channel,
                thread_ts,
                (&file.name, &file.content_type, bytes),
                comment,
            )
            .await
    }

    /// The posts of reply `id` already in the thread (part -> ts), read from the thread.
    async fn posted_parts(
        &self,
        channel: &str,
        thread_ts: &str,
        id: &str,
    ) -> Result<HashMap<String, String>, ConnectorError> {
        let bot_user = self.app.bot().await?.user_id.clone();
        let messages = self
            .app
            .web()
            .thread_messages(channel, thread_ts)
            .await
            .map_err(|error| self.app.named(error));
        self.app.note(&messages);
        Ok(posted_parts(messages?, &bot_user, id))
    }

    /// For a resend that may have reached Slack before, the posts of it already in the
    /// thread; none for a first send, or when the thread could not be read.
    async fn earlier_copies(
        &self,
        outbound: &Outbound,
        channel: &str,
        thread_ts: &str,
    ) -> HashMap<String, String> {
        if !outbound.maybe_sent || outbound.id.is_empty() {
            return HashMap::new();
        }
        match self.posted_parts(channel, thread_ts, &outbound.id).await {
            Ok(parts) => {
                if !parts.is_empty() {
                    info!(id = %outbound.id, channel, thread_ts, parts = parts.len(),
                          "slack customer reply already in its thread; not posted again");
                }
                parts
            }
            // A duplicate is better than a lost reply.
            Err(error) => {
                warn!(%error, id = %outbound.id, channel, thread_ts,
                      "could not look for an earlier copy of a resent slack customer reply; posting it");
                HashMap::new()
            }
        }
    }

    /// The customer's identity: users.info once per user, then the cache.
    async fn identity(&self, user: &str) -> Result<Identity, IngestError> {
        let cached = self
            .profiles
            .lock()
            .ok()
            .and_then(|profiles| profiles.get(user).cloned());
        let profile = match cached {
            Some(profile) => profile,
            None => match self
                .app
                .web()
                .user_profile(user)
                .await
                .map_err(|error| self.app.named(error))
            {
                Ok(profile) => {
                    if let Ok(mut profiles) = self.profiles.lock() {
                        profiles.insert(user.to_string(), profile.clone());
                    }
                    profile
                }
                // Rather have Slack redeliver than lose the name and the linking email.
                Err(error) if error.is_retryable() => {
                    return Err(IngestError::Unavailable(error.to_string()))
                }
                Err(error) => {
                    warn!(%error, user, "slack customer profile unknown; using the user id");
                    UserProfile::default()
                }
            },
        };
        Ok(Identity {
            id: user.to_string(),
            display_name: profile.name,
            // The workspace verified the account's profile address.
            email_verified: profile.email.is_some(),
            email: profile.email,
            // Slack authenticated the account that wrote the message.
            verified: true,
        })
    }
}

/// Turns Slack callbacks and button presses into inbound messages for the gateway.
pub(crate) struct CustomerIntake {
    pub(crate) shared: Arc<CustomerShared>,
    gateway: Arc<dyn Gateway>,
}

impl CustomerIntake {
    /// Maps one `event_callback` and hands it to the gateway; `Err` asks Slack to redeliver.
    pub(crate) async fn message(&self, callback: &Value) -> Result<(), IngestError> {
        let bot = self
            .shared
            .app
            .bot()
            .await
            .map_err(|error| IngestError::Unavailable(error.to_string()))?;
        let config = &self.shared.config;
        let message = match convert::from_callback(callback, &bot.user_id, |channel| {
            config.answers_in(channel)
        }) {
            CustomerOutcome::Accepted(message) => message,
            CustomerOutcome::Ignored(reason) => {
                debug!(%reason, "slack customer event ignored");
                return Ok(());
            }
        };
        let author = self.shared.identity(&message.user).await?;
        let files = self.shared.app.fetch_files(message.files).await?;
        let max_file_bytes = self.shared.app.max_file_bytes();
        let inbound = Inbound {
            channel: crate::CHANNEL,
            conversation_key: message.conversation_key,
            message_id: message.message_id,
            kind: InboundKind::Text,
            author,
            text: message.text,
            context: Default::default(),
            files,
        };
        let refused: Vec<String> = inbound
            .files
            .iter()
            .filter(|file| file.bytes.is_none() && file.size > max_file_bytes)
            .map(|file| too_large_message(&file.name, file.size, max_file_bytes))
            .collect();
        let had_files = !inbound.files.is_empty();
        let key = inbound.conversation_key.clone();
        let notice = match self.gateway.accept(inbound).await {
            Ok(accepted) => {
                debug!(conversation = %accepted.conversation_id, key, new = accepted.is_new, "slack customer message stored");
                (accepted.is_new && !refused.is_empty()).then(|| refused.join(" "))
            }
            Err(IngestError::Rejected(reason)) => {
                warn!(%reason, key, "slack customer message rejected");
                had_files.then_some(reason)
            }
            Err(error) => return Err(error),
        };
        // Files left behind: the customer hears why in their thread (best effort).
        if let (Some(notice), Some((channel, thread_ts))) = (notice, convert::thread_of(&key)) {
            let text = format!("Not received: {}", blocks::escape(&notice));
            if let Err(error) = self
                .shared
                .post(channel, thread_ts, &text, None, None)
                .await
            {
                warn!(%error, key, "file refusal not posted");
            }
        }
        Ok(())
    }

    /// Maps one interaction payload (a button press) and hands it to the gateway.
    pub(crate) async fn interaction(&self, payload: &Value) -> Result<(), IngestError> {
        let config = &self.shared.config;
        let pressed = match convert::button_press(payload, |channel| config.answers_in(channel)) {
            CustomerOutcome::Accepted(pressed) => pressed,
            CustomerOutcome::Ignored(reason) => {
                debug!(%reason, "slack customer interaction ignored");
                return Ok(());
            }
        };
        let (press, kind, text) = match pressed {
            ButtonPress::Human(press) => (
                press,
                InboundKind::HumanRequest,
                "Talk to a human".to_string(),
            ),
            // A rating is stored as the customer's text message "1".."5".
            ButtonPress::Rating { press, rating } => (press, InboundKind::Text, rating.to_string()),
        };
        let author = self.shared.identity(&press.user).await?;
        let inbound = Inbound {
            channel: crate::CHANNEL,
            conversation_key: press.conversation_key,
            message_id: press.message_id,
            kind,
            author,
            text,
            context: Default::default(),
            files: Vec::new(),
        };
        self.accept(inbound).await
    }

    async fn accept(&self, inbound: Inbound) -> Result<(), IngestError> {
        let key = inbound.conversation_key.clone();
        match self.gateway.accept(inbound).await {
            Ok(accepted) => {
                debug!(conversation = %accepted.conversation_id, key, new = accepted.is_new, "slack customer message stored");
                Ok(())
            }
            Err(IngestError::Rejected(reason)) => {
                // Redelivering would be refused again; take it off Slack's hands.
                warn!(%reason, key, "slack customer message rejected");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

#[async_trait]
impl EnvelopeHandler for CustomerIntake {
    async fn handle_callback(&self, callback: &Value) -> Result<(), IngestError> {
        self.message(callback).await
    }

    async fn handle_interaction(&self, payload: &Value) -> Result<(), IngestError> {
        self.interaction(payload).await
    }
}

#[async_trait]
impl Connector for SlackCustomerConnector {
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
        self.shared.app.routes(self.intake(gateway))
    }

    async fn run(&self, gateway: Arc<dyn Gateway>) -> Result<(), ConnectorError> {
        let span = tracing::info_span!("slack_customers", mode = ?self.shared.config.mode);
        self.shared
            .app
            .run(self.intake(gateway))
            .instrument(span)
            .await
    }

    async fn send(&self, outbound: &Outbound) -> Result<DeliveryReceipt, ConnectorError> {
        let Some((channel, thread_ts)) = convert::thread_of(&outbound.conversation_key) else {
            return Err(ConnectorError::Permanent {
                connector: CUSTOMER_CONNECTOR,
                detail: format!(
                    "conversation key {:?} is not <channel>:<thread ts>",
                    outbound.conversation_key
                ),
            });
        };
        if outbound.author == Author::Customer
            || (outbound.text.trim().is_empty() && outbound.files.is_empty())
        {
            return Err(ConnectorError::Permanent {
                connector: CUSTOMER_CONNECTOR,
                detail: format!("outbound {} has nothing to post", outbound.id),
            });
        }
        let rendered = convert::render(outbound);
        let earlier = self
            .shared
            .earlier_copies(outbound, channel, thread_ts)
            .await;
        let mut last = None;
        if !outbound.text.trim().is_empty() {
            last = Some(match earlier.get(TEXT_PART) {
                Some(ts) => ts.clone(),
                None => {
                    let metadata = reply_metadata(&outbound.id, None);
                    self.shared
                        .post(
                            channel,
                            thread_ts,
                            &rendered.text,
                            rendered.blocks,
                            metadata,
                        )
                        .await?
                }
            });
        }
        for (index, file) in outbound.files.iter().enumerate() {
            let part = file_part(index);
            if let Some(ts) = earlier.get(&part) {
                last = Some(ts.clone());
                continue;
            }
            // A message of files only still says who sent them, on the first file.
            let comment = if index == 0 && last.is_none() {
                rendered.text.trim_end()
            } else {
                ""
            };
            // A failure after the text means a retry posts the text again; better than
            // losing the files. Uploads carry no metadata, so a resend cannot tell whether
            // they went through and uploads them again, for the same reason.
            let metadata = reply_metadata(&outbound.id, Some(part));
            last = Some(
                self.shared
                    .upload(channel, thread_ts, file, comment, metadata)
                    .await?,
            );
        }
        Ok(DeliveryReceipt {
            platform_message_id: last,
            ..DeliveryReceipt::default()
        })
    }

    async fn health(&self) -> Health {
        self.shared.app.health()
    }

    /// Every post of the bot in the customer's thread goes, found in the thread rather than
    /// by the receipts: a receipt names a reply's last post only, and uploads post apart.
    async fn forget_sent(
        &self,
        conversation_key: &str,
        _sent: &[SentMessage],
    ) -> Result<ForgottenSent, ConnectorError> {
        let Some((channel, thread_ts)) = convert::thread_of(conversation_key) else {
            return Err(ConnectorError::Permanent {
                connector: CUSTOMER_CONNECTOR,
                detail: format!(
                    "conversation key {conversation_key:?} is not <channel>:<thread ts>"
                ),
            });
        };
        let thread = ThreadRef {
            channel: channel.to_owned(),
            ts: thread_ts.to_owned(),
        };
        let posts = crate::desk::forget::forget_bot_posts(&self.shared.app, &thread).await?;
        // A post Slack would not delete is overwritten: what it said is gone either way.
        Ok(ForgottenSent {
            deleted: posts.deleted + posts.redacted,
            ..ForgottenSent::default()
        })
    }

    async fn check_setup(&self) -> Result<Vec<String>, ConnectorError> {
        crate::manifest::check_scopes(self.shared.app.web(), crate::manifest::CUSTOMER_SCOPES).await
    }
}
