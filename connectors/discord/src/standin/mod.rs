//! A loopback stand-in for Discord's REST API (v10) and gateway websocket, speaking the real
//! wire protocol, so tests drive the connector through the real serenity client.
//!
//! REST on `127.0.0.1:0` (`/api/v10/...`): `GET /users/@me`, `GET /gateway` and
//! `GET /gateway/bot` (answering `ws://127.0.0.1:PORT/gateway`), `GET /channels/{id}`,
//! `POST /channels/{id}/messages` (recorded), `DELETE /channels/{id}/messages/{id}` (the
//! bot's own messages; recorded, a second delete is 404 Unknown Message), `POST /channels/{id}/messages/{id}/threads`
//! (the thread gets the message's id, as on Discord; a second one is error 160004) and
//! `POST /interactions/{id}/{token}/callback` (recorded); files: customers' attachments at
//! `GET /attachments/{id}/{name}` and message creates with `files[n]` (see `files.rs`).
//!
//! Gateway: Hello (op 10) on connect, heartbeat acks (op 11), Identify (op 2) answered with
//! READY, Resume (op 6) answered by replaying missed dispatches and RESUMED, then the
//! MESSAGE_CREATE / INTERACTION_CREATE dispatches a test pushes, with increasing `s`. Frames
//! follow the official examples in this crate's `tests/fixtures` (the message object is the
//! docs' "Example Message"); Discord publishes no INTERACTION_CREATE example, so that frame is
//! ours, from the documented interaction object fields.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use switchboard_api::standin::{LoopbackListener, LoopbackServer};
use tokio::sync::{mpsc, watch, Notify};

mod files;
#[cfg(test)]
mod files_tests;
mod gateway;
mod rest;
#[cfg(test)]
mod tests;

pub use files::UploadedFile;
use gateway::*;
use rest::*;

/// The stand-in bot's user id (READY and `GET /users/@me`).
pub const BOT_USER_ID: u64 = 1_000_000_000_000_000_001;
/// The application id (READY, interactions).
pub const APPLICATION_ID: u64 = 1_000_000_000_000_000_002;
/// The guild every non-DM channel belongs to.
pub const GUILD_ID: u64 = 1_000_000_000_000_000_003;
/// Hello's heartbeat interval: short, so tests see acks within a second or two.
const HEARTBEAT_INTERVAL_MS: u64 = 1000;

/// The docs' "Example Message" (developers/resources/message.mdx), verbatim.
const EXAMPLE_MESSAGE: &str = r#"{
  "reactions": [{"count": 1, "count_details": {"burst": 0, "normal": 1}, "me": false,
                 "me_burst": false, "emoji": {"id": null, "name": "🔥"}, "burst_colors": []}],
  "attachments": [], "tts": false, "embeds": [],
  "timestamp": "2017-07-11T17:27:07.299000+00:00", "mention_everyone": false,
  "id": "334385199974967042", "pinned": false, "edited_timestamp": null,
  "author": {"username": "Mason", "discriminator": "9999", "id": "53908099506183680",
             "avatar": "a_bab14f271d565501444b2ca3be944b25"},
  "mention_roles": [], "content": "Supa Hot", "channel_id": "290926798999357250",
  "mentions": [], "type": 0
}"#;

/// One recorded `POST /channels/{id}/messages`.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// The channel (DM or thread) posted to.
    pub channel_id: u64,
    /// The new message's id.
    pub id: u64,
    /// The `content` field.
    pub content: String,
    /// The `components` field (`null` when none).
    pub components: Value,
    /// The whole JSON body.
    pub body: Value,
}

impl SentMessage {
    /// The `custom_id`s of the buttons under the message.
    pub fn button_ids(&self) -> Vec<String> {
        let rows = self.components.as_array().cloned().unwrap_or_default();
        rows.iter()
            .filter_map(|row| row.get("components").and_then(Value::as_array))
            .flatten()
            .filter_map(|button| button.get("custom_id").and_then(Value::as_str))
            .map(str::to_string)
            .collect()
    }
}

/// One recorded interaction callback.
#[derive(Debug, Clone)]
pub struct InteractionCallback {
    /// The interaction id.
    pub interaction_id: u64,
    /// The callback type (6 = deferred update, 4 = message).
    pub kind: u64,
}

/// One thread created from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedThread {
    /// The channel the thread lives in.
    pub parent_id: u64,
    /// The thread's id (= the starter message's id).
    pub thread_id: u64,
    /// The thread's name.
    pub name: String,
}

#[derive(Default)]
struct Recorded {
    revoked: bool,
    fail_429: u32,
    retry_after_secs: f64,
    next_id: u64,
    seq: u64,
    sent: Vec<SentMessage>,
    /// `(channel, message)` removed with `DELETE /channels/{id}/messages/{id}`.
    deleted: Vec<(u64, u64)>,
    callbacks: Vec<InteractionCallback>,
    threads: Vec<CreatedThread>,
    users: HashMap<String, u64>,
    dm_channels: HashMap<u64, u64>,
    heartbeats_acked: u64,
    identifies: u64,
    resumes: u64,
    /// Every dispatch (event name, data) ever pushed, for `replay_last` and RESUME.
    dispatched: Vec<(String, Value, u64)>,
    sockets: Vec<mpsc::UnboundedSender<SocketCommand>>,
    queued: VecDeque<String>,
    files: files::Files,
    /// Message id by nonce, for creates that ask Discord to enforce the nonce.
    nonces: HashMap<String, (u64, Value)>,
    /// Creates answered with an earlier message because their nonce was seen.
    repeated_nonces: u32,
}

impl Recorded {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        1_100_000_000_000_000_000 + self.next_id
    }

    fn user(&mut self, name: &str) -> u64 {
        if let Some(id) = self.users.get(name) {
            return *id;
        }
        let id = self.id();
        self.users.insert(name.to_string(), id);
        id
    }

    fn dm_channel(&mut self, user: u64) -> u64 {
        if let Some(channel) = self.dm_channels.get(&user) {
            return *channel;
        }
        let channel = self.id();
        self.dm_channels.insert(user, channel);
        channel
    }

    fn is_dm(&self, channel: u64) -> bool {
        self.dm_channels.values().any(|dm| *dm == channel)
    }
}

enum SocketCommand {
    Frame(String),
    Close(u16, &'static str),
}

struct Inner {
    recorded: Mutex<Recorded>,
    changed: Notify,
    addr: SocketAddr,
    closed: watch::Sender<bool>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        match self.recorded.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A running Discord stand-in; stops when dropped.
pub struct DiscordStandIn {
    inner: Arc<Inner>,
    /// Stops serving when dropped, after `drop` closed the gateway sockets.
    _server: LoopbackServer,
}

impl Drop for DiscordStandIn {
    fn drop(&mut self) {
        let _ = self.inner.closed.send(true);
    }
}

impl DiscordStandIn {
    /// Starts the stand-in on a free loopback port.
    pub async fn start() -> DiscordStandIn {
        let listener = LoopbackListener::bind("Discord").await;
        let (closed, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            recorded: Mutex::new(Recorded::default()),
            changed: Notify::new(),
            addr: listener.addr(),
            closed,
        });
        let app = Router::new()
            .route("/api/v10/users/@me", get(current_user))
            .route("/api/v10/gateway", get(gateway_url))
            .route("/api/v10/gateway/bot", get(gateway_url))
            .route("/api/v10/channels/{channel}", get(channel_info))
            .route("/api/v10/channels/{channel}/messages", post(create_message))
            .route(
                "/api/v10/channels/{channel}/messages/{message}",
                delete(delete_message),
            )
            .route(
                "/api/v10/channels/{channel}/messages/{message}/threads",
                post(start_thread),
            )
            .route(
                "/api/v10/interactions/{id}/{token}/callback",
                post(interaction_callback),
            )
            .route("/gateway", get(gateway_socket))
            .route("/attachments/{id}/{name}", get(files::attachment))
            .with_state(inner.clone());
        DiscordStandIn {
            inner,
            _server: listener.serve(app),
        }
    }

    /// The API host to configure as `api_url` (serenity appends `/api/v10/...`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The id the stand-in gives the user called `name`.
    pub fn user_id(&self, name: &str) -> u64 {
        self.inner.lock().user(name)
    }

    /// The DM channel between the bot and the user called `name`.
    pub fn dm_channel(&self, name: &str) -> u64 {
        let mut recorded = self.inner.lock();
        let user = recorded.user(name);
        recorded.dm_channel(user)
    }

    /// A MESSAGE_CREATE payload: the docs' example message with our ids, author and content.
    /// `channel: None` is a DM from `user`. Tests may edit it before [`Self::push_message`].
    pub fn message(&self, channel: Option<u64>, user: &str, text: &str) -> Value {
        let mut recorded = self.inner.lock();
        let user_id = recorded.user(user);
        let channel_id = match channel {
            Some(channel) => channel,
            None => recorded.dm_channel(user_id),
        };
        let id = recorded.id();
        drop(recorded);
        let mut message: Value = serde_json::from_str(EXAMPLE_MESSAGE).unwrap_or_default();
        message["id"] = json!(id.to_string());
        message["channel_id"] = json!(channel_id.to_string());
        message["content"] = json!(text);
        message["reactions"] = json!([]);
        message["author"] = user_json(user_id, user, false);
        if channel.is_some() {
            // The MESSAGE_CREATE extra fields for guild messages.
            message["guild_id"] = json!(GUILD_ID.to_string());
            message["member"] = json!({"roles": [], "joined_at": "2024-01-01T00:00:00.000000+00:00",
                                       "deaf": false, "mute": false, "flags": 0});
        }
        message
    }

    /// Dispatches a MESSAGE_CREATE with `message` as `d`; returns the message id.
    pub fn push_message(&self, message: Value) -> u64 {
        let id = message
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| id.parse().ok())
            .unwrap_or_default();
        self.dispatch("MESSAGE_CREATE", message);
        id
    }

    /// A DM from `user` to the bot; returns the message id.
    pub fn push_dm(&self, user: &str, text: &str) -> u64 {
        self.push_message(self.message(None, user, text))
    }

    /// A message from `user` in guild channel `channel` (or thread); returns the message id.
    pub fn push_channel_message(&self, channel: u64, user: &str, text: &str) -> u64 {
        self.push_message(self.message(Some(channel), user, text))
    }

    /// `user` presses the button `custom_id` under the bot's last message in `channel` (a DM
    /// channel or a thread); returns the interaction id.
    pub fn push_button_click(&self, channel: u64, user: &str, custom_id: &str) -> u64 {
        let mut recorded = self.inner.lock();
        let user_id = recorded.user(user);
        let interaction_id = recorded.id();
        let is_dm = recorded.is_dm(channel);
        let message_id = recorded
            .sent
            .iter()
            .rev()
            .find(|sent| sent.channel_id == channel)
            .map(|sent| sent.id)
            .unwrap_or(1);
        drop(recorded);
        let mut message: Value = serde_json::from_str(EXAMPLE_MESSAGE).unwrap_or_default();
        message["id"] = json!(message_id.to_string());
        message["channel_id"] = json!(channel.to_string());
        message["author"] = user_json(BOT_USER_ID, "switchboard", true);
        message["reactions"] = json!([]);
        let mut interaction = json!({
            "id": interaction_id.to_string(),
            "application_id": APPLICATION_ID.to_string(),
            "type": 3,
            "data": {"custom_id": custom_id, "component_type": 2},
            "channel_id": channel.to_string(),
            "channel": {"id": channel.to_string(), "type": if is_dm { 1 } else { 11 }},
            "token": format!("interaction-token-{interaction_id}"),
            "version": 1,
            "message": message,
            "app_permissions": "0",
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": if is_dm { 1 } else { 0 },
            "attachment_size_limit": 8_388_608,
        });
        let user = user_json(user_id, user, false);
        if is_dm {
            interaction["user"] = user;
        } else {
            interaction["guild_id"] = json!(GUILD_ID.to_string());
            interaction["guild_locale"] = json!("en-US");
            interaction["member"] = json!({"user": user, "roles": [],
                "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
                "flags": 0, "permissions": "0"});
        }
        self.dispatch("INTERACTION_CREATE", interaction);
        interaction_id
    }

    /// Dispatches the last event again with a new `s`, as a re-delivery would.
    pub fn replay_last(&self) {
        let last = self.inner.lock().dispatched.last().cloned();
        if let Some((event, data, _)) = last {
            self.dispatch(&event, data);
        }
    }

    /// Every message the bot posted, in arrival order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.inner.lock().sent.clone()
    }

    /// Messages deleted so far: `(channel, message)`.
    pub fn deleted(&self) -> Vec<(u64, u64)> {
        self.inner.lock().deleted.clone()
    }

    /// How many creates were answered with an earlier message because their nonce was seen.
    pub fn repeated_nonces(&self) -> u32 {
        self.inner.lock().repeated_nonces
    }

    /// Waits until at least `n` messages were posted or `timeout` passed.
    pub async fn wait_for_sent(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        self.wait_until(timeout, |recorded| recorded.sent.len() >= n)
            .await;
        self.sent()
    }

    /// Every interaction callback (ack) so far.
    pub fn callbacks(&self) -> Vec<InteractionCallback> {
        self.inner.lock().callbacks.clone()
    }

    /// Waits until at least `n` interaction callbacks arrived or `timeout` passed.
    pub async fn wait_for_callbacks(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Vec<InteractionCallback> {
        self.wait_until(timeout, |recorded| recorded.callbacks.len() >= n)
            .await;
        self.callbacks()
    }

    /// Threads created so far.
    pub fn threads_created(&self) -> Vec<CreatedThread> {
        self.inner.lock().threads.clone()
    }

    /// Makes the next `n` message posts fail with 429 and `retry_after` (body and header).
    pub fn fail_next_with_429(&self, n: u32, retry_after: Duration) {
        let mut recorded = self.inner.lock();
        recorded.fail_429 = n;
        recorded.retry_after_secs = retry_after.as_secs_f64();
    }

    /// Revokes the bot token: REST answers 401, live gateway sessions close with 4004.
    pub fn revoke_token(&self) {
        let mut recorded = self.inner.lock();
        recorded.revoked = true;
        for socket in &recorded.sockets {
            let _ = socket.send(SocketCommand::Close(4004, "Authentication failed."));
        }
    }

    /// Closes live gateway sessions with 4000 (unknown error, resumable), as Discord does
    /// when it moves a session; events pushed meanwhile are replayed on RESUME.
    pub fn drop_connections(&self) {
        let mut recorded = self.inner.lock();
        for socket in recorded.sockets.drain(..) {
            let _ = socket.send(SocketCommand::Close(4000, "Unknown error."));
        }
    }

    /// How many sessions resumed (op 6).
    pub fn resumes(&self) -> u64 {
        self.inner.lock().resumes
    }

    /// How many heartbeats were acknowledged.
    pub fn heartbeats_acked(&self) -> u64 {
        self.inner.lock().heartbeats_acked
    }

    /// How many sessions identified (op 2).
    pub fn identifies(&self) -> u64 {
        self.inner.lock().identifies
    }

    /// Waits until a client has identified and got READY, or `timeout` passed.
    pub async fn wait_for_ready(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |recorded| !recorded.sockets.is_empty())
            .await
    }

    /// Waits until at least `n` heartbeats were acked or `timeout` passed.
    pub async fn wait_for_heartbeats(&self, n: u64, timeout: Duration) -> u64 {
        self.wait_until(timeout, |recorded| recorded.heartbeats_acked >= n)
            .await;
        self.heartbeats_acked()
    }

    async fn wait_until(&self, timeout: Duration, done: impl Fn(&Recorded) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            if done(&self.inner.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.inner.lock());
            }
        }
    }

    fn dispatch(&self, event: &str, data: Value) {
        let mut recorded = self.inner.lock();
        recorded.seq += 1;
        let seq = recorded.seq;
        let frame = json!({"op": 0, "t": event, "s": seq, "d": data}).to_string();
        recorded.dispatched.push((event.to_string(), data, seq));
        recorded.sockets.retain(|socket| !socket.is_closed());
        let delivered = recorded
            .sockets
            .iter()
            .any(|socket| socket.send(SocketCommand::Frame(frame.clone())).is_ok());
        if !delivered {
            recorded.queued.push_back(frame);
        }
    }
}
