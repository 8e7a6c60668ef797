//! Telegram update JSON -> what the connector should do, and outbound message -> Telegram
//! message parts. Pure: no I/O, unit-tested on Telegram's own example payloads.
//!
//! Updates are read from `serde_json::Value` field by field rather than through a strict
//! Bot API model, because Telegram's own examples break its spec (a chat without `type`,
//! users without `is_bot`, a channel in `forward_from`, a numeric inline query id, a callback
//! query without `chat_instance`): a strict model (teloxide's `Update` included) turns those
//! into parse errors and the customer's message would be lost. What is dropped on the way:
//! formatting entities (the plain text is kept) and the unused fields of inline queries.
//!
//! Choices: `/start` greets and is not stored (it carries no question); an edit is stored
//! as a new message marked `(edited)` so the agent sees the correction; photos, documents,
//! voice, audio and video are files the connector fetches ([`remote_files`]) with the caption
//! as text, while stickers, locations, contacts and polls (and media in an edit) become
//! placeholders such as `[sticker 😀]`; a message with nothing readable gets a polite decline;
//! group, supergroup and channel messages are ignored (the bot serves private chats only).

use serde_json::Value;
use switchboard_api::{
    clean_content_type, clean_file_name, CustomerContext, Identity, Inbound, InboundKind,
};

mod outgoing;
pub use outgoing::{
    chat_id, render, render_with_files, OutgoingFile, OutgoingPart, RenderError, Rendered,
    MAX_CAPTION_CHARS, MAX_UPLOAD_BYTES,
};

/// The callback data of the "Talk to a human" button.
pub const HUMAN_BUTTON_DATA: &str = "sb:human";
/// The label of the "Talk to a human" button, also the stored text of a press.
pub const HUMAN_BUTTON_LABEL: &str = "Talk to a human";
/// The prefix of a rating button's callback data: `sb:rate:<n>` for a rating of 1 to 5.
pub const RATE_BUTTON_PREFIX: &str = "sb:rate:";
/// Telegram's limit on one message's text, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// What a customer is told when they send something the bot cannot read.
pub const DECLINE_TEXT: &str =
    "Sorry, I can't read that kind of message. Could you describe it in a text message?";

/// What an update asks the connector to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateAction {
    /// Store a customer's message (text, media placeholder, edit or button press).
    Store(Inbound),
    /// `/start` in a private chat: send the greeting.
    Greet {
        /// The private chat.
        chat_id: i64,
    },
    /// A button press: stop the button's spinner, and store the press when it is ours.
    Button {
        /// The callback query to answer.
        callback_query_id: String,
        /// The human request or the rating (a text message "1".."5") to store; `None` for
        /// foreign or unusable buttons.
        inbound: Option<Inbound>,
    },
    /// Something the bot cannot read in a private chat: answer politely.
    Decline {
        /// The private chat.
        chat_id: i64,
        /// What was sent, for the log.
        what: String,
    },
    /// Nothing to do; the reason goes to the log.
    Ignore {
        /// Why, for the log line.
        reason: String,
    },
}

/// One update, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUpdate {
    /// Telegram's `update_id`: the polling offset and the dedupe key.
    pub update_id: i64,
    /// What to do with it.
    pub action: UpdateAction,
}

/// Why an update could not be understood at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a JSON object, or no numeric `update_id` (nothing to dedupe or advance on).
    #[error("telegram: update without a numeric update_id")]
    NoUpdateId,
}

/// The channel message id of an update, so a redelivered update is stored once.
pub fn message_id(update_id: i64) -> String {
    format!("tg:{update_id}")
}

/// Reads an update's `update_id` alone (for the polling offset).
pub fn update_id(raw: &Value) -> Option<i64> {
    raw.get("update_id").and_then(as_i64)
}

/// Understands one update from the Bot API (`getUpdates` result item or webhook body).
pub fn parse_update(raw: &Value) -> Result<ParsedUpdate, ParseError> {
    let update_id = update_id(raw).ok_or(ParseError::NoUpdateId)?;
    let action = if let Some(message) = raw.get("message") {
        message_action(update_id, message, false)
    } else if let Some(message) = raw.get("edited_message") {
        message_action(update_id, message, true)
    } else if let Some(query) = raw.get("callback_query") {
        callback_action(update_id, query)
    } else {
        let kind = raw
            .as_object()
            .and_then(|object| object.keys().find(|key| *key != "update_id").cloned())
            .unwrap_or_else(|| "empty".to_string());
        UpdateAction::Ignore {
            reason: format!("unsupported update type {kind}"),
        }
    };
    Ok(ParsedUpdate { update_id, action })
}

fn message_action(update_id: i64, message: &Value, edited: bool) -> UpdateAction {
    let Some(chat) = private_chat(message) else {
        return UpdateAction::Ignore {
            reason: match message
                .get("chat")
                .and_then(|chat| chat.get("id"))
                .and_then(as_i64)
            {
                Some(id) => format!("not a private chat ({id}); the bot serves private chats only"),
                None => "message without a chat".to_string(),
            },
        };
    };
    let from = message.get("from");
    if from
        .and_then(|from| from.get("is_bot"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        return UpdateAction::Ignore {
            reason: "message from a bot".to_string(),
        };
    }
    // An edit repeats the media of the original, which was fetched already.
    let text = message_text(message, !edited);
    if !edited && text.as_deref().is_some_and(is_start_command) {
        return UpdateAction::Greet { chat_id: chat };
    }
    let Some(mut text) = text else {
        if let Some(service) = SERVICE_FIELDS
            .iter()
            .find(|key| message.get(**key).is_some())
        {
            return UpdateAction::Ignore {
                reason: format!("service message {service}"),
            };
        }
        let what = message
            .as_object()
            .and_then(|object| {
                object
                    .keys()
                    .find(|key| !ENVELOPE_FIELDS.contains(&key.as_str()))
                    .cloned()
            })
            .unwrap_or_else(|| "an empty message".to_string());
        return UpdateAction::Decline {
            chat_id: chat,
            what,
        };
    };
    let mut context = CustomerContext {
        locale: from
            .and_then(|from| from.get("language_code"))
            .and_then(Value::as_str)
            .map(str::to_string),
        ..CustomerContext::default()
    };
    let attributes = &mut context.attributes;
    attributes.insert("telegram.chat_id".into(), chat.to_string());
    if let Some(id) = message.get("message_id").and_then(as_i64) {
        attributes.insert("telegram.message_id".into(), id.to_string());
        if edited {
            attributes.insert("telegram.edit_of".into(), id.to_string());
        }
    }
    if let Some(id) = message
        .get("reply_to_message")
        .and_then(|reply| reply.get("message_id"))
        .and_then(as_i64)
    {
        attributes.insert("telegram.reply_to_message_id".into(), id.to_string());
    }
    if let Some(origin) = forward_origin(message) {
        text = format!("[forwarded from {origin}] {text}");
        attributes.insert("telegram.forwarded_from".into(), origin);
    }
    if edited {
        text = format!("(edited) {text}");
    }
    let author = identity(from, chat);
    if let Some(username) = from
        .and_then(|from| from.get("username"))
        .and_then(Value::as_str)
    {
        context
            .attributes
            .insert("telegram.username".into(), username.to_string());
    }
    UpdateAction::Store(Inbound {
        channel: crate::CHANNEL,
        conversation_key: chat.to_string(),
        message_id: message_id(update_id),
        kind: InboundKind::Text,
        author,
        text,
        context,
        files: Vec::new(),
    })
}

fn callback_action(update_id: i64, query: &Value) -> UpdateAction {
    // Telegram documents the id as a string; its example sends a number: accept both.
    let Some(callback_query_id) = query.get("id").and_then(as_string) else {
        return UpdateAction::Ignore {
            reason: "callback query without an id".to_string(),
        };
    };
    let data = query.get("data").and_then(Value::as_str).unwrap_or("");
    let (kind, text) = if data == HUMAN_BUTTON_DATA {
        (InboundKind::HumanRequest, HUMAN_BUTTON_LABEL.to_string())
    } else if let Some(rating) = rating_of(data) {
        // A rating is stored as the customer's text message "1".."5".
        (InboundKind::Text, rating.to_string())
    } else {
        return UpdateAction::Button {
            callback_query_id,
            inbound: None,
        };
    };
    let from = query.get("from");
    // The button sits under a message in the customer's private chat; without that message
    // (an inline-mode message) the private chat's id is the user's id.
    let chat = match query.get("message") {
        Some(message) => private_chat(message),
        None => from.and_then(|from| from.get("id")).and_then(as_i64),
    };
    let inbound = chat.map(|chat| {
        let mut context = CustomerContext::default();
        context
            .attributes
            .insert("telegram.chat_id".into(), chat.to_string());
        Inbound {
            channel: crate::CHANNEL,
            conversation_key: chat.to_string(),
            message_id: message_id(update_id),
            kind,
            author: identity(from, chat),
            text,
            context,
            files: Vec::new(),
        }
    });
    UpdateAction::Button {
        callback_query_id,
        inbound,
    }
}

/// The callback data of the rating button for `rating` (1 to 5).
pub fn rate_button_data(rating: u8) -> String {
    format!("{RATE_BUTTON_PREFIX}{rating}")
}

/// The rating a rating button's callback data carries; `None` for anything else.
fn rating_of(data: &str) -> Option<u8> {
    let digits = data.strip_prefix(RATE_BUTTON_PREFIX)?;
    // Exactly one digit: "sb:rate:04" or "sb:rate:+4" are not ours.
    match digits.as_bytes() {
        [digit @ b'1'..=b'5'] => Some(digit - b'0'),
        _ => None,
    }
}

/// Fields every message has; anything else says what the message carries.
const ENVELOPE_FIELDS: &[&str] = &[
    "message_id",
    "message_thread_id",
    "from",
    "sender_chat",
    "date",
    "chat",
    "edit_date",
    "reply_to_message",
    "forward_from",
    "forward_from_chat",
    "forward_date",
    "forward_origin",
    "entities",
    "caption_entities",
    "has_protected_content",
    "is_from_offline",
    "reply_markup",
    "via_bot",
    "link_preview_options",
];

/// Messages Telegram generates about the chat itself: nothing for the customer to read.
const SERVICE_FIELDS: &[&str] = &[
    "pinned_message",
    "write_access_allowed",
    "message_auto_delete_timer_changed",
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "chat_background_set",
    "users_shared",
    "chat_shared",
    "connected_website",
];

/// The chat id when the message is in a private chat.
///
/// Telegram's first example has no `chat.type`; a chat without one is private when its id
/// is positive (users have positive ids, groups and channels negative ones).
fn private_chat(message: &Value) -> Option<i64> {
    let chat = message.get("chat")?;
    let id = chat.get("id").and_then(as_i64)?;
    match chat.get("type").and_then(Value::as_str) {
        Some("private") => Some(id),
        None if id > 0 => Some(id),
        _ => None,
    }
}

/// The customer's identity: their user id, vouched for by Telegram.
fn identity(from: Option<&Value>, chat: i64) -> Identity {
    let field = |key: &str| {
        from.and_then(|from| from.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let id = from
        .and_then(|from| from.get("id"))
        .and_then(as_i64)
        .unwrap_or(chat);
    let display_name = match (field("first_name"), field("last_name")) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (Some(name), None) | (None, Some(name)) => Some(name.to_string()),
        (None, None) => field("username").map(|name| format!("@{name}")),
    };
    Identity {
        id: id.to_string(),
        display_name,
        email: None,
        verified: true,
        email_verified: false,
    }
}

/// The readable content of a message: its text, or its caption plus a placeholder. A
/// message whose media the connector fetches ([`remote_files`]) keeps only its caption (an
/// empty text when it has none): the files themselves reach the thread.
fn message_text(message: &Value, fetches_media: bool) -> Option<String> {
    let str_of = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    };
    let text = str_of(message, "text").or_else(|| str_of(message, "caption"));
    if fetches_media && has_media_file(message) {
        return Some(text.unwrap_or_default());
    }
    let placeholder = media_placeholder(message, &str_of);
    match (text, placeholder) {
        (Some(text), Some(placeholder)) => Some(format!("{text} {placeholder}")),
        (Some(text), None) => Some(text),
        (None, placeholder) => placeholder,
    }
}

fn media_placeholder(
    message: &Value,
    str_of: &dyn Fn(&Value, &str) -> Option<String>,
) -> Option<String> {
    let labelled = |kind: &str, label: Option<String>| match label {
        Some(label) => format!("[{kind}: {label}]"),
        None => format!("[{kind}]"),
    };
    // Animations also carry `document`, venues also carry `location`: check them first.
    if let Some(sticker) = message.get("sticker") {
        return Some(match str_of(sticker, "emoji") {
            Some(emoji) => format!("[sticker {emoji}]"),
            None => "[sticker]".to_string(),
        });
    }
    if message.get("photo").is_some() {
        return Some("[photo]".to_string());
    }
    if message.get("animation").is_some() {
        return Some("[GIF]".to_string());
    }
    if let Some(voice) = message.get("voice") {
        return Some(match voice.get("duration").and_then(as_i64) {
            Some(secs) => format!("[voice message {}:{:02}]", secs / 60, secs % 60),
            None => "[voice message]".to_string(),
        });
    }
    if let Some(audio) = message.get("audio") {
        let title = str_of(audio, "title").or_else(|| str_of(audio, "file_name"));
        return Some(labelled("audio", title));
    }
    if let Some(document) = message.get("document") {
        return Some(labelled("document", str_of(document, "file_name")));
    }
    if message.get("video").is_some() {
        return Some("[video]".to_string());
    }
    if message.get("video_note").is_some() {
        return Some("[video message]".to_string());
    }
    if let Some(venue) = message.get("venue") {
        return Some(labelled("venue", str_of(venue, "title")));
    }
    if let Some(location) = message.get("location") {
        let lat = location.get("latitude").and_then(Value::as_f64);
        let lon = location.get("longitude").and_then(Value::as_f64);
        return Some(match (lat, lon) {
            (Some(lat), Some(lon)) => format!("[location {lat:.5}, {lon:.5}]"),
            _ => "[location]".to_string(),
        });
    }
    if let Some(contact) = message.get("contact") {
        return Some(labelled("contact", str_of(contact, "first_name")));
    }
    if let Some(poll) = message.get("poll") {
        return Some(labelled("poll", str_of(poll, "question")));
    }
    if let Some(dice) = message.get("dice") {
        return Some(labelled("dice", str_of(dice, "emoji")));
    }
    None
}

/// A file a customer's message carries, still on Telegram's servers (`getFile` finds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Telegram's id for the file, for `getFile`.
    pub file_id: String,
    /// The name to show (Telegram gives one for documents and audio; the rest get a
    /// generic one such as `photo.jpg`).
    pub name: String,
    /// The MIME type.
    pub content_type: String,
    /// The size Telegram announced, when it did.
    pub size: Option<u64>,
}

/// The files to fetch for a new message (none for edits, button presses and other updates).
/// Of a photo's sizes the largest within `max_bytes` is taken; when none fits, the smallest,
/// whose announced size then says how far over the limit it is.
pub fn remote_files(raw: &Value, max_bytes: u64) -> Vec<RemoteFile> {
    let Some(message) = raw.get("message") else {
        return Vec::new();
    };
    let photo = message
        .get("photo")
        .and_then(Value::as_array)
        .and_then(|sizes| best_photo(sizes, max_bytes));
    photo.into_iter().chain(media_file(message)).collect()
}

/// True when the message carries a file [`remote_files`] fetches.
fn has_media_file(message: &Value) -> bool {
    let has_photo = message
        .get("photo")
        .and_then(Value::as_array)
        .is_some_and(|sizes| !sizes.is_empty());
    has_photo || media_file(message).is_some()
}

/// The message's one non-photo file (Telegram sends media one per message).
fn media_file(message: &Value) -> Option<RemoteFile> {
    // Animations also carry `document` (the same file): the animation comes first.
    const KINDS: &[(&str, &str, &str)] = &[
        ("animation", "animation.mp4", "video/mp4"),
        ("voice", "voice.ogg", "audio/ogg"),
        ("audio", "audio.mp3", "audio/mpeg"),
        ("document", "file", "application/octet-stream"),
        ("video", "video.mp4", "video/mp4"),
        ("video_note", "video_message.mp4", "video/mp4"),
    ];
    KINDS.iter().find_map(|(kind, default_name, default_type)| {
        let media = message.get(*kind)?;
        let file_id = media.get("file_id").and_then(as_string)?;
        let text = |key: &str| {
            media
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        let name = text("file_name")
            .map(str::to_string)
            .or_else(|| {
                // An audio track without a file name is best known by its title.
                text("title").map(|title| format!("{title}.{}", extension(default_name)))
            })
            .unwrap_or_else(|| default_name.to_string());
        Some(RemoteFile {
            file_id,
            name: clean_file_name(&name),
            content_type: clean_content_type(text("mime_type").unwrap_or(default_type)),
            size: media
                .get("file_size")
                .and_then(as_i64)
                .and_then(|size| u64::try_from(size).ok()),
        })
    })
}

fn extension(name: &str) -> &str {
    name.rsplit_once('.').map_or("bin", |(_, ext)| ext)
}

fn best_photo(sizes: &[Value], max_bytes: u64) -> Option<RemoteFile> {
    let candidates: Vec<(u64, Option<u64>, String)> = sizes
        .iter()
        .filter_map(|size| {
            let file_id = size.get("file_id").and_then(as_string)?;
            let pixels = |key: &str| size.get(key).and_then(as_i64).unwrap_or(0).max(0) as u64;
            let bytes = size
                .get("file_size")
                .and_then(as_i64)
                .and_then(|bytes| u64::try_from(bytes).ok());
            Some((pixels("width") * pixels("height"), bytes, file_id))
        })
        .collect();
    let fits = candidates
        .iter()
        .filter(|(_, bytes, _)| bytes.is_none_or(|bytes| bytes <= max_bytes))
        .max_by_key(|(area, _, _)| *area);
    let chosen = fits.or_else(|| candidates.iter().min_by_key(|(_, bytes, _)| *bytes))?;
    Some(RemoteFile {
        file_id: chosen.2.clone(),
        name: "photo.jpg".into(),
        content_type: "image/jpeg".into(),
        size: chosen.1,
    })
}

/// Who a forwarded message originally came from (Bot API 7 `forward_origin`, or the older
/// `forward_from` / `forward_from_chat`, which Telegram's example fills with a channel).
fn forward_origin(message: &Value) -> Option<String> {
    let name = |value: &Value| -> Option<String> {
        let get = |key: &str| value.get(key).and_then(Value::as_str).map(str::trim);
        match (get("first_name"), get("last_name"), get("title")) {
            (_, _, Some(title)) if !title.is_empty() => Some(title.to_string()),
            (Some(first), Some(last), _) => Some(format!("{first} {last}")),
            (Some(first), None, _) => Some(first.to_string()),
            _ => get("username").map(str::to_string),
        }
    };
    if let Some(origin) = message.get("forward_origin") {
        return ["sender_user", "sender_chat", "chat"]
            .iter()
            .find_map(|key| origin.get(*key).and_then(name))
            .or_else(|| {
                origin
                    .get("sender_user_name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| Some("someone".to_string()));
    }
    ["forward_from", "forward_from_chat"]
        .iter()
        .find_map(|key| message.get(*key))
        .map(|from| name(from).unwrap_or_else(|| "someone".to_string()))
}

/// True for `/start`, `/start payload` and `/start@BotName`.
fn is_start_command(text: &str) -> bool {
    text.strip_prefix("/start").is_some_and(|rest| {
        rest.is_empty() || rest.starts_with(char::is_whitespace) || rest.starts_with('@')
    })
}

fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn as_string(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
