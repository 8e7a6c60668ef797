//! The Bot API client: teloxide's `Bot` pointed at the configured API URL, the few methods
//! the connector calls, and teloxide's errors mapped to retryable or not.
//!
//! `getUpdates` goes through teloxide's transport with a payload of our own whose result is
//! raw JSON, so each update is read by the lenient [`crate::convert`] (the webhook path
//! reads the same JSON) instead of teloxide's strict `Update`, which cannot hold Telegram's
//! own off-spec examples. Everything else uses teloxide's typed requests (files go out as
//! multipart `sendPhoto`/`sendDocument` and come in through `getFile` and the file path).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use switchboard_api::{ConnectorError, Fetched};
use teloxide::net::Download;
use teloxide::payloads::{
    AnswerCallbackQuerySetters, SendDocumentSetters, SendMessageSetters, SendPhotoSetters,
};
use teloxide::requests::{JsonRequest, Payload, Requester};
use teloxide::types::{
    CallbackQueryId, ChatId, FileId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile,
    MessageEntity,
};
use teloxide::{ApiError, Bot, RequestError};
use tokio::io::AsyncWrite;
use tracing::warn;

use crate::convert::{
    rate_button_data, OutgoingFile, OutgoingPart, HUMAN_BUTTON_DATA, HUMAN_BUTTON_LABEL,
};

/// The connector's name in errors and logs.
pub const CONNECTOR: &str = "telegram";

/// Which updates the bot asks for; Telegram remembers the list between calls.
const ALLOWED_UPDATES: &[&str] = &["message", "edited_message", "callback_query"];

/// `getUpdates` with the result left as raw JSON.
#[derive(Debug, Clone, Serialize)]
struct RawGetUpdates {
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
    timeout: u64,
    allowed_updates: &'static [&'static str],
}

impl Payload for RawGetUpdates {
    type Output = Vec<Value>;
    const NAME: &'static str = "GetUpdates";

    fn timeout_hint(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.timeout))
    }
}

/// The bot's own account, from `getMe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotAccount {
    /// The bot's user id (names the polling lease).
    pub id: u64,
    /// The bot's @username.
    pub username: Option<String>,
}

/// What became of a message the bot asked to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// It is gone from the chat.
    Deleted,
    /// Telegram keeps it.
    Refused,
}

/// A Bot API client for one bot token.
#[derive(Clone)]
pub struct BotClient {
    bot: Bot,
}

impl BotClient {
    /// A client for `token` at `api_base`; builds the HTTP client, connects to nothing.
    ///
    /// The HTTP timeout must outlast a long poll (teloxide's default of 17 s does not).
    pub fn new(
        token: &str,
        api_base: &str,
        poll_timeout: Duration,
    ) -> Result<BotClient, ConnectorError> {
        let permanent = |detail: String| ConnectorError::Permanent {
            connector: CONNECTOR,
            detail,
        };
        // teloxide appends `/bot<token>/<method>` as path segments; a trailing '/' would
        // leave an empty segment.
        let base = api_base.trim_end_matches('/');
        let url = url::Url::parse(base)
            .map_err(|error| permanent(format!("api_url {base:?} is not a URL: {error}")))?;
        let http = teloxide::net::default_reqwest_settings()
            .timeout(poll_timeout + Duration::from_secs(10))
            .build()
            .map_err(|error| permanent(format!("cannot build the HTTP client: {error}")))?;
        Ok(BotClient {
            bot: Bot::with_client(token, http).set_api_url(url),
        })
    }

    /// Checks the token: a revoked one is an [`ConnectorError::Auth`] naming `getMe`.
    pub async fn get_me(&self) -> Result<BotAccount, ConnectorError> {
        let me = self
            .bot
            .get_me()
            .await
            .map_err(|error| map_error(error, "getMe"))?;
        Ok(BotAccount {
            id: me.user.id.0,
            username: me.user.username.clone(),
        })
    }

    /// Removes a webhook, which would make `getUpdates` fail with 409 (pending updates stay).
    pub async fn delete_webhook(&self) -> Result<(), ConnectorError> {
        self.bot
            .delete_webhook()
            .await
            .map(|_| ())
            .map_err(|error| map_error(error, "deleteWebhook"))
    }

    /// One long poll: updates from `offset` on (all unconfirmed ones when `None`).
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        timeout: Duration,
    ) -> Result<Vec<Value>, ConnectorError> {
        let payload = RawGetUpdates {
            offset,
            timeout: timeout.as_secs(),
            allowed_updates: ALLOWED_UPDATES,
        };
        JsonRequest::new(self.bot.clone(), payload)
            .await
            .map_err(|error| map_error(error, "getUpdates"))
    }

    /// Sends one message part; returns Telegram's message id.
    pub async fn send_part(&self, chat: i64, part: &OutgoingPart) -> Result<i32, ConnectorError> {
        let mut request = self.bot.send_message(ChatId(chat), part.text.clone());
        if let Some(length) = part.bold_prefix_utf16 {
            // An entity, not Markdown: the text goes out exactly as written, nothing to escape.
            request = request.entities(vec![MessageEntity::bold(0, length)]);
        }
        if let Some(keyboard) = keyboard(part) {
            request = request.reply_markup(keyboard);
        }
        let message = request
            .await
            .map_err(|error| map_error(error, "sendMessage"))?;
        Ok(message.id.0)
    }

    /// Sends one file (`sendPhoto` or `sendDocument`, multipart) with its caption; returns
    /// Telegram's message id. A photo Telegram refuses (odd dimensions, a type it will not
    /// recompress) is sent again as a document, so the customer still gets the file.
    pub async fn send_file(&self, chat: i64, file: &OutgoingFile) -> Result<i32, ConnectorError> {
        if file.as_photo {
            match self.send_document_or_photo(chat, file, true).await {
                Err(ConnectorError::Permanent { detail, .. }) => {
                    warn!(chat, file = %file.name, %detail, "photo refused; sending it as a document");
                }
                other => return other,
            }
        }
        self.send_document_or_photo(chat, file, false).await
    }

    async fn send_document_or_photo(
        &self,
        chat: i64,
        file: &OutgoingFile,
        as_photo: bool,
    ) -> Result<i32, ConnectorError> {
        let input = InputFile::memory(file.bytes.clone()).file_name(file.name.clone());
        let caption = &file.caption;
        let entities = caption
            .bold_prefix_utf16
            .map(|length| vec![MessageEntity::bold(0, length)]);
        let keyboard = keyboard(caption);
        let sent = if as_photo {
            let mut request = self.bot.send_photo(ChatId(chat), input);
            if !caption.text.is_empty() {
                request = request.caption(caption.text.clone());
            }
            if let Some(entities) = entities {
                request = request.caption_entities(entities);
            }
            if let Some(keyboard) = keyboard {
                request = request.reply_markup(keyboard);
            }
            request.await.map_err(|error| map_error(error, "sendPhoto"))
        } else {
            let mut request = self.bot.send_document(ChatId(chat), input);
            if !caption.text.is_empty() {
                request = request.caption(caption.text.clone());
            }
            if let Some(entities) = entities {
                request = request.caption_entities(entities);
            }
            if let Some(keyboard) = keyboard {
                request = request.reply_markup(keyboard);
            }
            request
                .await
                .map_err(|error| map_error(error, "sendDocument"))
        };
        Ok(sent?.id.0)
    }

    /// Fetches a customer's file: `getFile`, then `<api>/file/bot<token>/<file_path>`. More
    /// than `max_bytes`, announced by `getFile` or counted while downloading, is refused
    /// without reading the rest.
    pub async fn fetch_file(
        &self,
        file_id: &str,
        max_bytes: u64,
    ) -> Result<Fetched, ConnectorError> {
        let file = self
            .bot
            .get_file(FileId(file_id.to_string()))
            .await
            .map_err(|error| map_error(error, "getFile"))?;
        // teloxide fills in u32::MAX when Telegram leaves the size out.
        if file.size != u32::MAX && u64::from(file.size) > max_bytes {
            return Ok(Fetched::TooLarge(u64::from(file.size)));
        }
        let mut buffer = BoundedBuffer::new(max_bytes);
        let downloaded = self.bot.download_file(&file.path, &mut buffer).await;
        if let Some(received) = buffer.exceeded {
            return Ok(Fetched::TooLarge(received));
        }
        downloaded.map_err(|error| ConnectorError::Transient {
            connector: CONNECTOR,
            detail: format!("file download: {error}"),
        })?;
        Ok(Fetched::Bytes(Bytes::from(buffer.data)))
    }

    /// Deletes one of the bot's messages: `Deleted` when it is gone (already or now),
    /// `Refused` when Telegram keeps it (older than 48 hours, for a bot).
    pub async fn delete_message(
        &self,
        chat: i64,
        message_id: i32,
    ) -> Result<Deletion, ConnectorError> {
        match (self.bot)
            .delete_message(ChatId(chat), teloxide::types::MessageId(message_id))
            .await
        {
            Ok(_) | Err(RequestError::Api(ApiError::MessageToDeleteNotFound)) => {
                Ok(Deletion::Deleted)
            }
            Err(RequestError::Api(ApiError::MessageCantBeDeleted)) => Ok(Deletion::Refused),
            Err(error) => Err(map_error(error, "deleteMessage")),
        }
    }

    /// Stops a pressed button's spinner, optionally with a short notice.
    pub async fn answer_callback(
        &self,
        callback_query_id: &str,
        text: Option<&str>,
    ) -> Result<(), ConnectorError> {
        let mut request = self
            .bot
            .answer_callback_query(CallbackQueryId(callback_query_id.to_string()));
        if let Some(text) = text {
            request = request.text(text);
        }
        request
            .await
            .map(|_| ())
            .map_err(|error| map_error(error, "answerCallbackQuery"))
    }
}

/// The buttons under a message, if it has any.
fn keyboard(part: &OutgoingPart) -> Option<InlineKeyboardMarkup> {
    let mut rows: Vec<Vec<InlineKeyboardButton>> = Vec::new();
    if part.human_button {
        let button = InlineKeyboardButton::callback(HUMAN_BUTTON_LABEL, HUMAN_BUTTON_DATA);
        rows.push(vec![button]);
    }
    if part.rate_buttons {
        rows.push(
            (1..=5u8)
                .map(|n| InlineKeyboardButton::callback(n.to_string(), rate_button_data(n)))
                .collect(),
        );
    }
    (!rows.is_empty()).then(|| InlineKeyboardMarkup::new(rows))
}

/// A download destination that refuses to grow past its limit, so a file that lied about
/// its size (or announced none) cannot fill the memory.
struct BoundedBuffer {
    data: Vec<u8>,
    limit: u64,
    /// Set to the bytes offered so far once they pass the limit.
    exceeded: Option<u64>,
}

impl BoundedBuffer {
    fn new(limit: u64) -> BoundedBuffer {
        BoundedBuffer {
            data: Vec::new(),
            limit,
            exceeded: None,
        }
    }
}

impl AsyncWrite for BoundedBuffer {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let total = this.data.len() as u64 + buf.len() as u64;
        if total > this.limit {
            this.exceeded = Some(total);
            return Poll::Ready(Err(std::io::Error::other("file over the size limit")));
        }
        this.data.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Maps a teloxide error to whether the call may be retried.
pub fn map_error(error: RequestError, method: &str) -> ConnectorError {
    let transient = |detail: String| ConnectorError::Transient {
        connector: CONNECTOR,
        detail,
    };
    let permanent = |detail: String| ConnectorError::Permanent {
        connector: CONNECTOR,
        detail,
    };
    match error {
        RequestError::RetryAfter(seconds) => ConnectorError::RateLimited {
            connector: CONNECTOR,
            retry_after: seconds.duration(),
        },
        // teloxide reads both "Unauthorized" (401) and "Not Found" (404, a malformed token)
        // as an invalid token.
        RequestError::Api(ApiError::InvalidToken) => ConnectorError::Auth {
            connector: CONNECTOR,
            detail: format!("bot token rejected by {method} (401)"),
        },
        RequestError::Api(ApiError::TerminatedByOtherGetUpdates) => transient(format!(
            "{method}: another client is polling this bot (409 Conflict)"
        )),
        RequestError::Api(ApiError::Unknown(text)) => {
            // Unknown descriptions: 4xx ones ("Bad Request: ...", "Forbidden: ...") will not
            // change on retry; anything else (a 5xx, a proxy page) may.
            if text.starts_with("Bad Request") || text.starts_with("Forbidden") {
                permanent(format!("{method}: {text}"))
            } else {
                transient(format!("{method}: {text}"))
            }
        }
        // Known API errors are refusals of this very request (blocked, chat not found, ...).
        RequestError::Api(error) => permanent(format!("{method}: {error}")),
        RequestError::MigrateToChatId(chat) => permanent(format!(
            "{method}: the group moved to supergroup {chat}; the bot serves private chats only"
        )),
        RequestError::Network(error) => transient(format!("{method}: {error}")),
        RequestError::InvalidJson { source, .. } => {
            transient(format!("{method}: unreadable response: {source}"))
        }
        RequestError::Io(error) => transient(format!("{method}: {error}")),
    }
}
