//! The Bot API client: teloxide's `Bot` pointed at the configured API URL, the few methods
//! the connector calls, and teloxide's errors mapped to retryable or not.
//!
//! `getUpdates` goes through teloxide's transport with a payload of our own whose result is
//! raw JSON, so each update is read by the lenient [`crate::convert`] (the webhook path
//! reads the same JSON) instead of teloxide's strict `Update`, which cannot hold Telegram's
//! own off-spec examples. Everything else uses teloxide's typed requests.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use switchboard_api::ConnectorError;
use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::requests::{JsonRequest, Payload, Requester};
use teloxide::types::{
    CallbackQueryId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity,
};
use teloxide::{ApiError, Bot, RequestError};

use crate::convert::{rate_button_data, OutgoingPart, HUMAN_BUTTON_DATA, HUMAN_BUTTON_LABEL};

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
        if !rows.is_empty() {
            request = request.reply_markup(InlineKeyboardMarkup::new(rows));
        }
        let message = request
            .await
            .map_err(|error| map_error(error, "sendMessage"))?;
        Ok(message.id.0)
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
