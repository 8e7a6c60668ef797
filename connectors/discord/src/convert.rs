//! Pure mapping between Discord's payloads (serenity's model types, as the gateway delivers
//! them) and Switchboard's neutral messages. No I/O here, so every rule is unit-tested on
//! Discord's official example payloads.
//!
//! Conversation keys: `dm:<channel id>` for a direct message channel, `thread:<thread id>` for
//! a thread in the support channel. A thread started from a message has the message's id
//! (Discord's rule), so the key of a support-channel conversation is known before the thread
//! exists, and a replayed starter message maps to the same conversation.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use serenity::model::application::ComponentInteraction;
use serenity::model::channel::{Message, MessageType};
use serenity::model::user::User;
use switchboard_api::{
    clean_content_type, clean_file_name, text_with_links, Author, CustomerAction, CustomerContext,
    FileRef, Identity, Inbound, InboundKind, Outbound,
};

/// The `custom_id` of the "Talk to a human" button.
pub const HUMAN_BUTTON_ID: &str = "sb:human";
/// The prefix of a rating button's `custom_id`: `sb:rate:<n>` for a rating of 1 to 5.
pub const RATE_BUTTON_PREFIX: &str = "sb:rate:";
/// Discord refuses message content longer than this many characters.
pub const MAX_CONTENT_CHARS: usize = 2000;
/// Discord's upload limit for a bot in a server without boosts; bigger files go as links.
pub const MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;
/// Discord takes at most this many files in one message.
const MAX_FILES_PER_MESSAGE: usize = 10;
/// Discord refuses thread names longer than this many characters.
const MAX_THREAD_NAME_CHARS: usize = 100;

/// Where a message sits, as far as the connector cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagePlace {
    /// A direct message to the bot.
    Direct,
    /// A top-level message in the support channel: starts a conversation in a new thread.
    SupportChannel,
    /// Some other guild channel: a support thread (if its parent is the support channel) or
    /// a channel we ignore.
    OtherGuildChannel,
    /// Not for us; the reason is logged at debug level.
    Ignored(&'static str),
}

/// What the connector knows when placing a message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope {
    /// The bot's own user id (from READY), so it never answers itself.
    pub bot_user_id: Option<u64>,
    /// The configured support channel.
    pub support_channel: Option<u64>,
    /// The configured guild; messages from other guilds are ignored when set.
    pub guild: Option<u64>,
}

/// Decides where a gateway message belongs.
pub fn place(message: &Message, scope: &Scope) -> MessagePlace {
    if message.author.bot || message.webhook_id.is_some() {
        return MessagePlace::Ignored("from a bot or webhook");
    }
    if Some(message.author.id.get()) == scope.bot_user_id {
        return MessagePlace::Ignored("the bot's own message");
    }
    // Thread-created notices, pins, joins...: Discord's own system messages carry no question.
    if !matches!(
        message.kind,
        MessageType::Regular | MessageType::InlineReply
    ) {
        return MessagePlace::Ignored("a system message");
    }
    let Some(guild) = message.guild_id else {
        return MessagePlace::Direct;
    };
    if scope.guild.is_some_and(|wanted| wanted != guild.get()) {
        return MessagePlace::Ignored("another server");
    }
    match scope.support_channel {
        None => MessagePlace::Ignored("no support channel configured"),
        Some(channel) if channel == message.channel_id.get() => MessagePlace::SupportChannel,
        Some(_) => MessagePlace::OtherGuildChannel,
    }
}

/// The conversation key of a direct message channel.
pub fn dm_key(channel_id: u64) -> String {
    format!("dm:{channel_id}")
}

/// The conversation key of a support thread.
pub fn thread_key(thread_id: u64) -> String {
    format!("thread:{thread_id}")
}

/// The channel to post to for a conversation key, or `None` for a key that is not ours.
pub fn channel_of_key(key: &str) -> Option<u64> {
    let id = key
        .strip_prefix("dm:")
        .or_else(|| key.strip_prefix("thread:"))?;
    id.parse().ok().filter(|id| *id != 0)
}

/// The customer's identity: the verified user id and the name Discord shows.
pub fn identity(user: &User) -> Identity {
    Identity {
        id: user.id.get().to_string(),
        display_name: Some(
            user.global_name
                .clone()
                .unwrap_or_else(|| user.name.clone()),
        ),
        email: None,
        verified: true,
        email_verified: false,
    }
}

/// The stored text of a message: its content, then one line per sticker, so a sticker is
/// stored as what it is (attachments travel as files, see [`remote_attachments`]; a message
/// of only attachments has an empty text); `None` when there is nothing to store (e.g. the
/// bot lacks the `MESSAGE_CONTENT` intent and Discord sent an empty content).
pub fn message_text(message: &Message) -> Option<String> {
    let mut lines: Vec<String> = Vec::new();
    let content = message.content.trim();
    if !content.is_empty() {
        lines.push(content.to_string());
    }
    for sticker in &message.sticker_items {
        lines.push(format!("[sticker: {}]", sticker.name));
    }
    (!lines.is_empty() || !message.attachments.is_empty()).then(|| lines.join("\n"))
}

/// A file attached to a customer's message, still on Discord's CDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAttachment {
    /// Where to download it (a signed CDN URL; no bot token needed).
    pub url: String,
    /// The file name.
    pub name: String,
    /// The MIME type, `application/octet-stream` when Discord gave none.
    pub content_type: String,
    /// The size Discord announced.
    pub size: u64,
}

/// The files a customer's message carries.
pub fn remote_attachments(message: &Message) -> Vec<RemoteAttachment> {
    message
        .attachments
        .iter()
        .map(|attachment| RemoteAttachment {
            url: attachment.url.clone(),
            name: clean_file_name(&attachment.filename),
            content_type: clean_content_type(
                attachment
                    .content_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
            ),
            size: u64::from(attachment.size),
        })
        .collect()
}

/// One file to upload with an outbound message (`files[n]` of the multipart body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The file name the customer sees.
    pub name: String,
    /// The MIME type.
    pub content_type: String,
    /// The content.
    pub bytes: Bytes,
}

/// Discord's limit on a message nonce.
const MAX_NONCE_CHARS: usize = 25;

/// The nonce that makes a resend of the gateway's outbound message `id` idempotent; `None`
/// for a message with no id. Ids are transcript stream ids (`<ms>-<seq>`, about 15
/// characters); a longer one keeps its distinctive tail.
pub fn nonce_for(id: &str) -> Option<String> {
    if id.is_empty() {
        return None;
    }
    let skip = id.chars().count().saturating_sub(MAX_NONCE_CHARS);
    Some(id.chars().skip(skip).collect())
}

/// An outbound message for `POST /channels/{id}/messages`: the JSON body and the files to
/// upload with it. Files without bytes (expired from the store) or over Discord's upload
/// limit go as links in the text; the uploads are announced in the body's `attachments`.
pub fn render_with_files(outbound: &Outbound) -> (Value, Vec<Upload>) {
    let (sendable, linked): (Vec<&FileRef>, Vec<&FileRef>) = outbound
        .files
        .iter()
        .take(MAX_FILES_PER_MESSAGE)
        .partition(|file| {
            file.bytes
                .as_ref()
                .is_some_and(|bytes| bytes.len() as u64 <= MAX_UPLOAD_BYTES)
        });
    let mut linked: Vec<FileRef> = linked.into_iter().cloned().collect();
    linked.extend(outbound.files.iter().skip(MAX_FILES_PER_MESSAGE).cloned());
    let text = text_with_links(&outbound.text, &linked);
    let mut body = render_outbound(&Outbound {
        text,
        files: Vec::new(),
        ..outbound.clone()
    });
    let uploads: Vec<Upload> = sendable
        .into_iter()
        .map(|file| Upload {
            name: file.name.clone(),
            content_type: file.content_type.clone(),
            bytes: file.bytes.clone().unwrap_or_default(),
        })
        .collect();
    if !uploads.is_empty() {
        body["attachments"] = uploads
            .iter()
            .enumerate()
            .map(|(id, upload)| json!({"id": id, "filename": upload.name}))
            .collect();
    }
    (body, uploads)
}

/// A customer's message as an [`Inbound`] in the conversation `conversation_key`.
pub fn inbound_from_message(message: &Message, conversation_key: String) -> Option<Inbound> {
    let text = message_text(message)?;
    let mut context = CustomerContext::default();
    let attributes = &mut context.attributes;
    attributes.insert(
        "discord.channel_id".into(),
        message.channel_id.get().to_string(),
    );
    attributes.insert("discord.message_id".into(), message.id.get().to_string());
    attributes.insert("discord.username".into(), message.author.name.clone());
    if let Some(guild) = message.guild_id {
        attributes.insert("discord.guild_id".into(), guild.get().to_string());
    }
    Some(Inbound {
        channel: crate::CHANNEL,
        conversation_key,
        message_id: format!("dc:{}", message.id.get()),
        kind: InboundKind::Text,
        author: identity(&message.author),
        text,
        context,
        files: Vec::new(),
    })
}

/// A press of our "Talk to a human" button as a [`InboundKind::HumanRequest`], a press of a
/// rating button as a text message with the rating ("1".."5") as its text; `None` for any
/// other component.
pub fn inbound_from_click(interaction: &ComponentInteraction) -> Option<Inbound> {
    let custom_id = interaction.data.custom_id.as_str();
    let (kind, text) = if custom_id == HUMAN_BUTTON_ID {
        (InboundKind::HumanRequest, "Talk to a human".to_string())
    } else {
        (InboundKind::Text, rating_of(custom_id)?.to_string())
    };
    let channel = interaction.channel_id.get();
    // The button sits under our message, so its channel is the conversation's channel.
    let conversation_key = match interaction.guild_id {
        None => dm_key(channel),
        Some(_) => thread_key(channel),
    };
    let mut context = CustomerContext {
        locale: Some(interaction.locale.clone()).filter(|locale| !locale.is_empty()),
        ..CustomerContext::default()
    };
    context
        .attributes
        .insert("discord.channel_id".into(), channel.to_string());
    Some(Inbound {
        channel: crate::CHANNEL,
        conversation_key,
        message_id: format!("dc:i:{}", interaction.id.get()),
        kind,
        author: identity(&interaction.user),
        text,
        context,
        files: Vec::new(),
    })
}

/// The `custom_id` of the rating button for `rating` (1 to 5).
pub fn rate_button_id(rating: u8) -> String {
    format!("{RATE_BUTTON_PREFIX}{rating}")
}

/// The rating a rating button's `custom_id` carries; `None` for anything else.
fn rating_of(custom_id: &str) -> Option<u8> {
    // Exactly one digit: "sb:rate:04" or "sb:rate:+4" are not ours.
    match custom_id.strip_prefix(RATE_BUTTON_PREFIX)?.as_bytes() {
        [digit @ b'1'..=b'5'] => Some(digit - b'0'),
        _ => None,
    }
}

/// The JSON body of `POST /channels/{id}/messages` for an outbound message.
pub fn render_outbound(outbound: &Outbound) -> Value {
    let text = match &outbound.author {
        Author::Agent { name } => format!("**{name}** (support team): {}", outbound.text),
        Author::Ai => format!("**AI assistant**: {}", outbound.text),
        Author::System => format!("_{}_", outbound.text),
        Author::Customer => outbound.text.clone(),
    };
    let mut body = json!({
        "content": truncate(&text, MAX_CONTENT_CHARS),
        // Whatever an answer quotes, it never pings @everyone or a role.
        "allowed_mentions": {"parse": []},
    });
    let mut rows: Vec<Value> = Vec::new();
    if outbound.actions.contains(&CustomerAction::TalkToHuman) {
        rows.push(json!({
            "type": 1,
            "components": [{
                "type": 2, "style": 1, "label": "Talk to a human", "custom_id": HUMAN_BUTTON_ID,
            }],
        }));
    }
    if outbound.actions.contains(&CustomerAction::RateService) {
        // One action row holds at most five buttons: exactly the five ratings.
        let buttons: Vec<Value> = (1..=5u8)
            .map(|rating| {
                json!({
                    "type": 2, "style": 2, "label": rating.to_string(),
                    "custom_id": rate_button_id(rating),
                })
            })
            .collect();
        rows.push(json!({"type": 1, "components": buttons}));
    }
    if !rows.is_empty() {
        body["components"] = Value::Array(rows);
    }
    body
}

/// The name of the thread a customer's first message starts.
pub fn thread_name(message: &Message) -> String {
    let who = message
        .author
        .global_name
        .clone()
        .unwrap_or_else(|| message.author.name.clone());
    let first_line = message.content.lines().next().unwrap_or("").trim();
    let name = if first_line.is_empty() {
        format!("Support: {who}")
    } else {
        format!("{who}: {first_line}")
    };
    truncate(&name, MAX_THREAD_NAME_CHARS)
}

/// Longest wait a 429 may ask for: the response comes from the network, and a huge number
/// would park replies for years (or overflow a `Duration`, a panic).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How long a 429 asks us to wait: the JSON body's `retry_after` (seconds, fractional), else
/// the `Retry-After` header, else one second; at most [`MAX_RETRY_AFTER`].
pub fn retry_after(body: &[u8], header: Option<&str>) -> Duration {
    let from_body = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| value.get("retry_after").and_then(Value::as_f64));
    let from_header = header.and_then(|value| value.trim().parse::<f64>().ok());
    from_body
        .or(from_header)
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(|secs| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())))
        .unwrap_or(Duration::from_secs(1))
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
