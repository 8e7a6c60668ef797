//! A loopback stand-in for the Telegram Bot API, speaking the real wire protocol, so tests
//! drive the connector through the real teloxide client.
//!
//! Serves `POST /bot<token>/<method>` on `127.0.0.1:0` with case-insensitive method names
//! (teloxide calls `GetMe`, Telegram documents `getMe`): `getMe`, `getUpdates` (offset
//! confirms earlier updates; an empty queue holds the request up to `timeout` seconds; a
//! second concurrent poll ends the first with 409 Conflict, as Telegram does),
//! `sendMessage` (recorded with its `reply_markup` and `entities`), `answerCallbackQuery`,
//! `deleteMessage` (recorded; a second delete of one message, or of one never sent, is
//! "message to delete not found"), `deleteWebhook`, `getWebhookInfo`, and files (`getFile`, the file path, multipart
//! `sendPhoto`/`sendDocument`: see the `files` module). Answers are `{"ok":true,"result":...}` or
//! `{"ok":false,"error_code":...,"description":...,"parameters":{"retry_after":N}}`.
//! Updates are shaped like Telegram's examples (this crate's `tests/fixtures`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use switchboard_api::standin::{LoopbackListener, LoopbackServer};
use tokio::sync::Notify;

mod files;
#[cfg(test)]
mod files_tests;
#[cfg(test)]
mod tests;
pub use files::SentFile;

/// The token the stand-in accepts.
pub const TOKEN: &str = "123456:STANDIN-token";
/// The stand-in bot's user id.
pub const BOT_ID: i64 = 123456;
/// The stand-in bot's username.
pub const BOT_USERNAME: &str = "switchboard_standin_bot";
/// Unix time the stand-in stamps on messages (any fixed time will do).
const DATE: i64 = 1441645532;

/// One recorded `sendMessage` call.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    /// The chat it went to.
    pub chat_id: i64,
    /// The text.
    pub text: String,
    /// The `reply_markup` as sent (`null` when none).
    pub reply_markup: Value,
    /// The `entities` as sent (`null` when none).
    pub entities: Value,
    /// The message id the stand-in answered with.
    pub message_id: i64,
    /// When the stand-in accepted it: places a send against other events (a crash, a retry).
    pub accepted_at: Instant,
}

#[derive(Default)]
struct Inner {
    revoked: bool,
    /// Unconfirmed updates by id.
    queue: BTreeMap<i64, Value>,
    /// Updates to hand out again regardless of the offset (a crash before confirming).
    replays: VecDeque<Value>,
    /// Every update ever pushed, for replays.
    history: BTreeMap<i64, Value>,
    next_update_id: i64,
    next_message_id: i64,
    next_callback_id: u64,
    sent: Vec<SentMessage>,
    /// `(chat, message id)` removed with `deleteMessage`.
    deleted: Vec<(i64, i64)>,
    answered: Vec<String>,
    fail_429: u32,
    retry_after: u64,
    poll_generation: u64,
    conflicts: u32,
    calls: Vec<String>,
    files: files::Files,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Wakes long polls (new update) and `wait_for_sent` (new message).
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A running stand-in; stops when dropped.
pub struct TelegramStandIn {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl TelegramStandIn {
    /// Starts the stand-in on a free local port.
    pub async fn start() -> TelegramStandIn {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                // Above the examples' 10000, so pushed and example updates never collide.
                next_update_id: 20001,
                next_message_id: 1,
                ..Inner::default()
            }),
            changed: Notify::new(),
        });
        let router = Router::new()
            .route("/{bot}/{method}", any(call))
            .route("/file/{bot}/{*path}", get(files::download))
            .with_state(Arc::clone(&shared));
        let server = LoopbackListener::bind("Telegram").await.serve(router);
        TelegramStandIn { server, shared }
    }

    /// Messages removed with `deleteMessage` so far: `(chat, message id)`.
    pub fn deleted(&self) -> Vec<(i64, i64)> {
        self.shared.lock().deleted.clone()
    }

    /// The Bot API base URL to give the connector (`api_url`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The token the stand-in accepts.
    pub fn token(&self) -> &'static str {
        TOKEN
    }

    /// Queues an update (any shape, e.g. an official example); its `update_id` is replaced
    /// with the next free one, which is returned.
    pub fn push_update(&self, mut update: Value) -> i64 {
        let id = {
            let mut inner = self.shared.lock();
            let id = inner.next_update_id;
            inner.next_update_id += 1;
            if let Some(object) = update.as_object_mut() {
                object.insert("update_id".into(), json!(id));
            }
            inner.queue.insert(id, update.clone());
            inner.history.insert(id, update);
            id
        };
        self.shared.changed.notify_waiters();
        id
    }

    /// Queues a text message from `user` (a first name) in chat `chat_id`: a private chat
    /// for positive ids (the user's id is the chat id), a group for negative ones.
    pub fn push_text(&self, chat_id: i64, user: &str, text: &str) -> i64 {
        self.push_message(chat_id, user, json!({ "text": text }))
    }

    /// Queues a message from `user` in `chat_id` with the given content fields
    /// (`{"sticker": {...}}`, `{"photo": [...], "caption": "..."}`).
    pub fn push_message(&self, chat_id: i64, user: &str, content: Value) -> i64 {
        let mut message = self.message_envelope(chat_id, user);
        if let (Some(message), Some(content)) = (message.as_object_mut(), content.as_object()) {
            message.extend(content.clone());
        }
        self.push_update(json!({ "update_id": 0, "message": message }))
    }

    /// Queues an edit of an earlier message by `user` in `chat_id`.
    pub fn push_edit(&self, chat_id: i64, user: &str, message_id: i64, text: &str) -> i64 {
        let mut message = self.message_envelope(chat_id, user);
        if let Some(object) = message.as_object_mut() {
            object.insert("message_id".into(), json!(message_id));
            object.insert("text".into(), json!(text));
            object.insert("edit_date".into(), json!(DATE + 60));
        }
        self.push_update(json!({ "update_id": 0, "edited_message": message }))
    }

    /// Queues a press by `user` of a button with `data` under a bot message in `chat_id`.
    pub fn push_callback(&self, chat_id: i64, user: &str, data: &str) -> i64 {
        let (callback_id, message_id) = {
            let mut inner = self.shared.lock();
            inner.next_callback_id += 1;
            let message_id = inner.next_message_id;
            inner.next_message_id += 1;
            (format!("cbq-{}", inner.next_callback_id), message_id)
        };
        let update = json!({
            "update_id": 0,
            "callback_query": {
                "id": callback_id,
                "from": user_json(user_id(chat_id), user),
                "message": {
                    "message_id": message_id,
                    "from": bot_json(),
                    "chat": chat_json(chat_id, user),
                    "date": DATE,
                    "text": "an earlier answer"
                },
                "chat_instance": format!("ci-{chat_id}"),
                "data": data
            }
        });
        self.push_update(update)
    }

    /// Hands out an already pushed update again, whatever the offset (a crash before the
    /// offset moved). False when no such update was pushed.
    pub fn replay_update(&self, update_id: i64) -> bool {
        let replayed = {
            let mut inner = self.shared.lock();
            match inner.history.get(&update_id).cloned() {
                Some(update) => {
                    inner.replays.push_back(update);
                    true
                }
                None => false,
            }
        };
        self.shared.changed.notify_waiters();
        replayed
    }

    /// Every `sendMessage` call so far.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// Waits until at least `n` messages were sent (or `timeout` passed); returns them all.
    pub async fn wait_for_sent(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            let sent = self.sent();
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// The callback query ids answered so far.
    pub fn answered_callbacks(&self) -> Vec<String> {
        self.shared.lock().answered.clone()
    }

    /// Updates not yet confirmed by an offset.
    pub fn unconfirmed(&self) -> Vec<i64> {
        self.shared.lock().queue.keys().copied().collect()
    }

    /// How many polls were ended by a concurrent poll (409 Conflict).
    pub fn conflicts(&self) -> u32 {
        self.shared.lock().conflicts
    }

    /// The methods called so far, as the client spelled them.
    pub fn calls(&self) -> Vec<String> {
        self.shared.lock().calls.clone()
    }

    /// Makes the next `n` `sendMessage` calls fail with 429 and `retry_after`.
    pub fn fail_next_with_429(&self, n: u32, retry_after_secs: u64) {
        let mut inner = self.shared.lock();
        inner.fail_429 = n;
        inner.retry_after = retry_after_secs;
    }

    /// Revokes the token: every call answers 401 Unauthorized from now on.
    pub fn revoke_token(&self) {
        self.shared.lock().revoked = true;
        self.shared.changed.notify_waiters();
    }

    fn message_envelope(&self, chat_id: i64, user: &str) -> Value {
        let message_id = {
            let mut inner = self.shared.lock();
            let id = inner.next_message_id;
            inner.next_message_id += 1;
            id
        };
        json!({
            "message_id": message_id,
            "from": user_json(user_id(chat_id), user),
            "chat": chat_json(chat_id, user),
            "date": DATE
        })
    }
}

/// The user id of `user` in `chat_id`: the chat id in private chats.
fn user_id(chat_id: i64) -> i64 {
    if chat_id > 0 {
        chat_id
    } else {
        chat_id.saturating_neg() % 1_000_000_000
    }
}

fn user_json(id: i64, first_name: &str) -> Value {
    json!({
        "id": id,
        "is_bot": false,
        "first_name": first_name,
        "last_name": "Tester",
        "username": first_name.to_lowercase(),
        "language_code": "en"
    })
}

fn bot_json() -> Value {
    json!({
        "id": BOT_ID,
        "is_bot": true,
        "first_name": "Switchboard",
        "username": BOT_USERNAME
    })
}

fn chat_json(chat_id: i64, user: &str) -> Value {
    if chat_id > 0 {
        json!({ "id": chat_id, "type": "private", "first_name": user, "last_name": "Tester" })
    } else {
        json!({ "id": chat_id, "type": "supergroup", "title": "Support fans" })
    }
}

fn ok(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

fn fail(status: StatusCode, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({
        "ok": false,
        "error_code": status.as_u16(),
        "description": description
    });
    if let (Some(parameters), Some(object)) = (parameters, body.as_object_mut()) {
        object.insert("parameters".into(), parameters);
    }
    (status, Json(body)).into_response()
}

/// Parameters come as JSON (teloxide) or a query string / form (curl).
fn params(query: Option<String>, body: &Bytes) -> Map<String, Value> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        return map;
    }
    let text = match std::str::from_utf8(body) {
        Ok(text) if !text.trim().is_empty() => text.to_string(),
        _ => query.unwrap_or_default(),
    };
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| {
            let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
            (key.to_string(), value)
        })
        .collect()
}

fn int(params: &Map<String, Value>, key: &str) -> Option<i64> {
    match params.get(key)? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

async fn call(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let (params, parts) = match files::multipart(content_type, &body) {
        Some((params, parts)) => (params, parts),
        None => (params(query, &body), Vec::new()),
    };
    {
        let mut inner = shared.lock();
        inner.calls.push(method.clone());
        if inner.revoked || bot.strip_prefix("bot") != Some(TOKEN) {
            return fail(StatusCode::UNAUTHORIZED, "Unauthorized", None);
        }
    }
    match method.to_ascii_lowercase().as_str() {
        "getme" => ok(json!({
            "id": BOT_ID,
            "is_bot": true,
            "first_name": "Switchboard",
            "username": BOT_USERNAME,
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
            "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "getupdates" => get_updates(shared, params).await,
        "sendmessage" => send_message(&shared, &params),
        "sendphoto" | "senddocument" => files::send_file(&shared, &method, &params, &parts),
        "getfile" => files::get_file(&shared, &params),
        "answercallbackquery" => {
            let id = params
                .get("callback_query_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            shared.lock().answered.push(id);
            ok(json!(true))
        }
        "deletemessage" => {
            let (chat, id) = (int(&params, "chat_id"), int(&params, "message_id"));
            let mut inner = shared.lock();
            match (chat, id) {
                (Some(chat), Some(id))
                    if id < inner.next_message_id && !inner.deleted.contains(&(chat, id)) =>
                {
                    inner.deleted.push((chat, id));
                    ok(json!(true))
                }
                _ => fail(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: message to delete not found",
                    None,
                ),
            }
        }
        "deletewebhook" | "setwebhook" => ok(json!(true)),
        "getwebhookinfo" => {
            let pending = shared.lock().queue.len();
            ok(
                json!({ "url": "", "has_custom_certificate": false, "pending_update_count": pending }),
            )
        }
        _ => fail(StatusCode::NOT_FOUND, "Not Found", None),
    }
}

async fn get_updates(shared: Arc<Shared>, params: Map<String, Value>) -> Response {
    let timeout = Duration::from_secs(int(&params, "timeout").unwrap_or(0).clamp(0, 50) as u64);
    let deadline = tokio::time::Instant::now() + timeout;
    let generation = {
        let mut inner = shared.lock();
        if let Some(offset) = int(&params, "offset") {
            // Telegram forgets every update below the offset: they are confirmed.
            inner.queue = inner.queue.split_off(&offset);
        }
        inner.poll_generation += 1;
        inner.poll_generation
    };
    // A newer poll ends this one, as on Telegram.
    shared.changed.notify_waiters();
    loop {
        let notified = shared.changed.notified();
        {
            let mut inner = shared.lock();
            if inner.revoked {
                return fail(StatusCode::UNAUTHORIZED, "Unauthorized", None);
            }
            if inner.poll_generation != generation {
                inner.conflicts += 1;
                return fail(
                    StatusCode::CONFLICT,
                    "Conflict: terminated by other getUpdates request; make sure that only \
                     one bot instance is running",
                    None,
                );
            }
            if !inner.replays.is_empty() || !inner.queue.is_empty() {
                let mut updates: Vec<Value> = inner.replays.drain(..).collect();
                updates.extend(inner.queue.values().cloned());
                return ok(Value::Array(updates));
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ok(json!([]));
        }
    }
}

fn send_message(shared: &Shared, params: &Map<String, Value>) -> Response {
    let response = {
        let mut inner = shared.lock();
        if inner.fail_429 > 0 {
            inner.fail_429 -= 1;
            let retry_after = inner.retry_after;
            return fail(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too Many Requests: retry after {retry_after}"),
                Some(json!({ "retry_after": retry_after })),
            );
        }
        let Some(chat_id) = int(params, "chat_id") else {
            return fail(StatusCode::BAD_REQUEST, "Bad Request: chat not found", None);
        };
        let text = params
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if text.trim().is_empty() {
            return fail(
                StatusCode::BAD_REQUEST,
                "Bad Request: message text is empty",
                None,
            );
        }
        let message_id = inner.next_message_id;
        inner.next_message_id += 1;
        let reply_markup = params.get("reply_markup").cloned().unwrap_or(Value::Null);
        let entities = params.get("entities").cloned().unwrap_or(Value::Null);
        inner.sent.push(SentMessage {
            chat_id,
            text: text.clone(),
            reply_markup: reply_markup.clone(),
            entities: entities.clone(),
            message_id,
            accepted_at: Instant::now(),
        });
        let mut message = json!({
            "message_id": message_id,
            "from": bot_json(),
            "chat": chat_json(chat_id, "Customer"),
            "date": DATE,
            "text": text
        });
        if let Some(object) = message.as_object_mut() {
            if !reply_markup.is_null() {
                object.insert("reply_markup".into(), reply_markup);
            }
            if !entities.is_null() {
                object.insert("entities".into(), entities);
            }
        }
        ok(message)
    };
    shared.changed.notify_waiters();
    response
}
