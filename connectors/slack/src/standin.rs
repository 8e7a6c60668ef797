//! A loopback stand-in for Slack's Web API and Socket Mode, speaking the real wire protocol,
//! so tests drive the desk through the real slack-morphism client.
//!
//! Serves on `127.0.0.1:0`: `auth.test`, `chat.postMessage`, `chat.update`, `users.info`,
//! `conversations.replies` and `conversations.history` (the bot's posts, with the message
//! metadata they were posted with, and the customers' messages pushed as events),
//! `apps.connections.open` (answering `ws://127.0.0.1:PORT/socket`), and the Socket Mode
//! websocket: `hello` on connect, then `events_api` envelopes wrapping `event_callback`
//! bodies shaped like Slack's documented examples (this crate's `tests/fixtures`),
//! recording the acks the client sends back. Tokens starting `xoxb-` / `xapp-` are accepted,
//! except `xoxb-revoked` (`invalid_auth`); channels starting `CMISSING` are
//! `channel_not_found`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};

use crate::signature;

/// The stand-in bot's user id (what `auth.test` answers).
pub const BOT_USER_ID: &str = "U0STANDINBOT";
/// The stand-in bot's bot id (carried by the bot's own messages).
pub const BOT_ID: &str = "B0STANDINBOT";
const TEAM_ID: &str = "T0STANDIN";
const APP_ID: &str = "A0STANDIN";

/// One recorded `chat.postMessage` or `chat.update` call.
#[derive(Debug, Clone)]
pub struct RecordedPost {
    /// `chat.postMessage` or `chat.update`.
    pub method: String,
    /// The channel posted to.
    pub channel: String,
    /// The thread parent, for thread replies.
    pub thread_ts: Option<String>,
    /// The message's ts (new for posts, the updated one for updates).
    pub ts: String,
    /// The plain text.
    pub text: String,
    /// The Block Kit blocks as sent (`null` when none).
    pub blocks: Value,
    /// The message metadata as sent (`{"event_type", "event_payload"}`; `null` when none).
    pub metadata: Value,
    /// When the stand-in received it.
    pub at: Instant,
}

/// One `conversations.replies` or `conversations.history` call.
#[derive(Debug, Clone)]
pub struct RecordedRead {
    /// `conversations.replies` or `conversations.history`.
    pub method: String,
    /// The channel read.
    pub channel: String,
    /// The thread asked for (`conversations.replies`).
    pub ts: Option<String>,
    /// Whether `include_all_metadata=true` was asked for.
    pub include_all_metadata: bool,
    /// False when the stand-in failed the call on purpose or answered an error.
    pub answered: bool,
}

/// A message in a channel's timeline, in Slack's shape (without its `channel`).
#[derive(Debug, Clone)]
struct ChannelMessage {
    channel: String,
    message: Value,
}

impl ChannelMessage {
    fn ts(&self) -> &str {
        self.message["ts"].as_str().unwrap_or_default()
    }

    /// The thread it belongs to: its `thread_ts`, or its own ts for a top-level message.
    fn root(&self) -> &str {
        self.message["thread_ts"].as_str().unwrap_or(self.ts())
    }
}

/// A Slack ts (`seconds.micros`) as a number that sorts like time.
fn ts_order(ts: &str) -> (u64, u64) {
    let (seconds, micros) = ts.split_once('.').unwrap_or((ts, "0"));
    (seconds.parse().unwrap_or(0), micros.parse().unwrap_or(0))
}

/// One file shared into a channel through Slack's external upload flow
/// (`files.getUploadURLExternal`, the bytes POSTed to the upload URL, `files.completeUploadExternal`).
#[derive(Debug, Clone)]
pub struct RecordedFile {
    /// The file id Slack assigned.
    pub id: String,
    /// The name given to `files.getUploadURLExternal`.
    pub name: String,
    /// The title given on completion.
    pub title: Option<String>,
    /// The `content-type` of the upload POST.
    pub content_type: String,
    /// The bytes uploaded.
    pub bytes: Vec<u8>,
    /// The channel shared into (`channel_id`).
    pub channel: String,
    /// The thread shared into, if any.
    pub thread_ts: Option<String>,
    /// The message shown with the file.
    pub initial_comment: Option<String>,
}

/// An upload URL handed out, waiting for its bytes and completion.
#[derive(Debug, Clone, Default)]
struct PendingUpload {
    name: String,
    length: usize,
    content_type: String,
    bytes: Option<Vec<u8>>,
}

#[derive(Default)]
struct Recorded {
    files: Vec<RecordedFile>,
    uploads: HashMap<String, PendingUpload>,
    /// Files agents "posted": id -> (bytes, mimetype), served at `url_private_download`.
    hosted: HashMap<String, (Vec<u8>, String)>,
    file_downloads: u32,
    posts: Vec<RecordedPost>,
    /// Every channel's timeline: the bot's posts and the customers' messages sent as events.
    messages: Vec<ChannelMessage>,
    reads: Vec<RecordedRead>,
    fail_reads: u32,
    acks: HashSet<String>,
    fail_429: u32,
    retry_after_secs: u64,
    outage: bool,
    users: HashMap<String, String>,
    emails: HashMap<String, String>,
    seq: u64,
    sockets: Vec<mpsc::UnboundedSender<String>>,
    queued: VecDeque<String>,
    socket_connections_opened: u64,
}

struct Inner {
    recorded: Mutex<Recorded>,
    changed: Notify,
    addr: SocketAddr,
    closed: watch::Sender<bool>,
    refresh: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        match self.recorded.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A running Slack stand-in; stops when dropped.
pub struct SlackStandIn {
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SlackStandIn {
    fn drop(&mut self) {
        let _ = self.inner.closed.send(true);
        self.server.abort();
    }
}

impl SlackStandIn {
    /// Starts the stand-in on a free loopback port.
    pub async fn start() -> SlackStandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the Slack stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        let (closed, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            recorded: Mutex::new(Recorded::default()),
            changed: Notify::new(),
            addr,
            closed,
            refresh: Notify::new(),
        });
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/socket", get(socket))
            .route("/upload/{file_id}", axum::routing::post(upload))
            .route("/files-pri/{file_id}/{name}", get(private_file))
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SlackStandIn { inner, server }
    }

    /// The Web API base URL, e.g. `http://127.0.0.1:PORT/api/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.inner.addr)
    }

    /// The bot's own user id.
    pub fn bot_user_id(&self) -> &'static str {
        BOT_USER_ID
    }

    /// Every `chat.postMessage` / `chat.update` so far, in arrival order.
    pub fn posts(&self) -> Vec<RecordedPost> {
        self.inner.lock().posts.clone()
    }

    /// Waits until at least `n` posts arrived or `timeout` passed; returns what arrived.
    pub async fn wait_for_posts(&self, n: usize, timeout: Duration) -> Vec<RecordedPost> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            let posts = self.posts();
            if posts.len() >= n || tokio::time::Instant::now() >= deadline {
                return posts;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Every `conversations.replies` / `conversations.history` call so far.
    pub fn reads(&self) -> Vec<RecordedRead> {
        self.inner.lock().reads.clone()
    }

    /// Makes the next `n` `conversations.replies` / `conversations.history` calls answer
    /// HTTP 500.
    pub fn fail_next_reads(&self, n: u32) {
        self.inner.lock().fail_reads = n;
    }

    /// Every file shared through the external upload flow so far.
    pub fn files(&self) -> Vec<RecordedFile> {
        self.inner.lock().files.clone()
    }

    /// Waits until at least `n` files were shared or `timeout` passed; returns what arrived.
    pub async fn wait_for_files(&self, n: usize, timeout: Duration) -> Vec<RecordedFile> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            let files = self.files();
            if files.len() >= n || tokio::time::Instant::now() >= deadline {
                return files;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Hosts a file an agent posted; returns its object as Slack puts it in a message's
    /// `files` array (with `url_private_download`, fetched with the bot token).
    pub fn host_file(&self, name: &str, mimetype: &str, bytes: &[u8]) -> Value {
        let mut recorded = self.inner.lock();
        recorded.seq += 1;
        let id = format!("F0AGENT{:04}", recorded.seq);
        recorded
            .hosted
            .insert(id.clone(), (bytes.to_vec(), mimetype.to_string()));
        let base = format!("http://{}/files-pri/{id}", self.inner.addr);
        json!({
            "id": id, "created": 1_700_000_000, "timestamp": 1_700_000_000, "name": name,
            "title": name, "mimetype": mimetype, "filetype": name.rsplit('.').next().unwrap_or(""),
            "pretty_type": mimetype, "user": "U0AGENT", "mode": "hosted", "editable": false,
            "is_external": false, "external_type": "", "is_public": false,
            "public_url_shared": false, "display_as_bot": false, "size": bytes.len(),
            "url_private": format!("{base}/{name}"),
            "url_private_download": format!("{base}/{name}?download=1"),
            "permalink": format!("https://standin.slack.com/files/U0AGENT/{id}/{name}"),
        })
    }

    /// How many times a hosted file was downloaded.
    pub fn file_downloads(&self) -> u32 {
        self.inner.lock().file_downloads
    }

    /// Starts or ends an outage: while it lasts, posts and updates answer HTTP 503.
    pub fn set_outage(&self, down: bool) {
        self.inner.lock().outage = down;
    }

    /// Makes the next `n` posts/updates fail with HTTP 429 and `Retry-After: secs`.
    pub fn fail_next_with_429(&self, n: u32, retry_after_secs: u64) {
        let mut recorded = self.inner.lock();
        recorded.fail_429 = n;
        recorded.retry_after_secs = retry_after_secs;
    }

    /// Registers a workspace member for `users.info`.
    pub fn set_user(&self, id: &str, display_name: &str) {
        self.inner
            .lock()
            .users
            .insert(id.to_string(), display_name.to_string());
    }

    /// Registers a workspace member whose profile shows an email (`users:read.email`).
    pub fn set_user_with_email(&self, id: &str, display_name: &str, email: &str) {
        let mut recorded = self.inner.lock();
        recorded
            .users
            .insert(id.to_string(), display_name.to_string());
        recorded.emails.insert(id.to_string(), email.to_string());
    }

    /// Pushes an `interactive` envelope (e.g. a [`block_actions`] payload) to a connected
    /// Socket Mode client; returns the envelope id.
    pub fn send_interaction(&self, payload: Value) -> String {
        self.send_envelope("interactive", payload)
    }

    fn send_envelope(&self, kind: &str, payload: Value) -> String {
        let mut recorded = self.inner.lock();
        recorded.seq += 1;
        let envelope_id = format!("envelope-{:08}", recorded.seq);
        let envelope = json!({
            "envelope_id": envelope_id,
            "type": kind,
            "accepts_response_payload": kind == "interactive",
            "payload": payload,
        })
        .to_string();
        recorded.sockets.retain(|socket| !socket.is_closed());
        let delivered = recorded
            .sockets
            .iter()
            .any(|socket| socket.send(envelope.clone()).is_ok());
        if !delivered {
            recorded.queued.push_back(envelope);
        }
        envelope_id
    }

    /// Wraps an inner event (e.g. a `message`) in an `event_callback` with a fresh `event_id`
    /// and pushes it to a connected Socket Mode client; returns the envelope id.
    pub fn send_event(&self, event: Value) -> String {
        let event_id = {
            let mut recorded = self.inner.lock();
            recorded.seq += 1;
            format!("Ev{:08}", recorded.seq)
        };
        self.send_callback(event_callback(&event_id, event))
    }

    /// Pushes a whole `event_callback` (e.g. a replay with the same `event_id`) in an envelope.
    /// A new message it carries joins its channel's timeline, as it is on Slack.
    pub fn send_callback(&self, callback: Value) -> String {
        let mut recorded = self.inner.lock();
        record_event_message(&mut recorded, &callback["event"]);
        recorded.seq += 1;
        let envelope_id = format!("envelope-{:08}", recorded.seq);
        let envelope = json!({
            "envelope_id": envelope_id,
            "type": "events_api",
            "accepts_response_payload": false,
            "retry_attempt": 0,
            "retry_reason": "",
            "payload": callback,
        })
        .to_string();
        // Slack hands each envelope to one of the app's connections.
        recorded.sockets.retain(|socket| !socket.is_closed());
        let delivered = recorded
            .sockets
            .iter()
            .any(|socket| socket.send(envelope.clone()).is_ok());
        if !delivered {
            recorded.queued.push_back(envelope);
        }
        envelope_id
    }

    /// True once a client acked the envelope.
    pub fn acked(&self, envelope_id: &str) -> bool {
        self.inner.lock().acks.contains(envelope_id)
    }

    /// Waits until the envelope is acked or `timeout` passed.
    pub async fn wait_for_ack(&self, envelope_id: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            if self.acked(envelope_id) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.acked(envelope_id);
            }
        }
    }

    /// Tells every Socket Mode connection to go away, as Slack does before it moves an app to
    /// another server (`disconnect`, reason `refresh_requested`, then close): the app must
    /// open a new connection, and envelopes sent meanwhile wait for it.
    pub fn refresh_socket_connections(&self) {
        self.inner.refresh.notify_waiters();
    }

    /// How many Socket Mode connections were opened so far (reconnections included).
    pub fn socket_connections_opened(&self) -> u64 {
        self.inner.lock().socket_connections_opened
    }

    /// How many Socket Mode clients are connected now.
    pub fn socket_clients(&self) -> usize {
        let mut recorded = self.inner.lock();
        recorded.sockets.retain(|socket| !socket.is_closed());
        recorded.sockets.len()
    }
}

/// Adds a customer's message from an event to its channel's timeline (once: Slack's
/// redeliveries carry the same message); edits, deletions and other subtypes add nothing.
fn record_event_message(recorded: &mut Recorded, event: &Value) {
    let new_message = event["type"] == "message"
        && matches!(
            event["subtype"].as_str(),
            None | Some("file_share") | Some("thread_broadcast")
        );
    let (Some(channel), Some(ts)) = (event["channel"].as_str(), event["ts"].as_str()) else {
        return;
    };
    if !new_message
        || recorded
            .messages
            .iter()
            .any(|known| known.channel == channel && known.ts() == ts)
    {
        return;
    }
    let mut message = event.clone();
    if let Some(fields) = message.as_object_mut() {
        // Event-only fields; conversations.history / replies do not show them.
        for field in ["channel", "event_ts", "channel_type"] {
            fields.remove(field);
        }
    }
    recorded.messages.push(ChannelMessage {
        channel: channel.to_string(),
        message,
    });
}

/// A message as conversations.history / replies show it. Without `include_all_metadata=true`
/// its metadata's `event_payload` is left out: Slack's docs leave open whether an app's own
/// payload comes back without the flag, and with the stricter reading a client that drops
/// the flag fails here rather than on Slack.
fn as_read(message: &Value, include_all_metadata: bool) -> Value {
    let mut message = message.clone();
    if !include_all_metadata {
        if let Some(metadata) = message.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("event_payload");
        }
    }
    message
}

/// One page of `messages` from the opaque `cursor` (here an offset) on: the page, and the
/// next page's cursor when there is one.
fn page(messages: Vec<Value>, cursor: Option<&str>, limit: usize) -> (Vec<Value>, Option<String>) {
    let start = cursor.and_then(|c| c.parse::<usize>().ok()).unwrap_or(0);
    let end = start.saturating_add(limit.max(1)).min(messages.len());
    let next = (end < messages.len()).then(|| end.to_string());
    (messages.get(start..end).unwrap_or_default().to_vec(), next)
}

/// `conversations.replies` / `conversations.history` over the stand-in's timelines.
fn read_messages(inner: &Inner, method: &str, params: &serde_json::Map<String, Value>) -> Response {
    let param = |key: &str| params.get(key).and_then(Value::as_str).map(String::from);
    let channel = param("channel").unwrap_or_default();
    let ts = param("ts");
    let include_all_metadata = param("include_all_metadata").as_deref() == Some("true");
    let mut recorded = inner.lock();
    let mut read = RecordedRead {
        method: method.to_string(),
        channel: channel.clone(),
        ts: ts.clone(),
        include_all_metadata,
        answered: false,
    };
    if recorded.fail_reads > 0 {
        recorded.fail_reads -= 1;
        recorded.reads.push(read);
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    }
    if channel.is_empty() || channel.starts_with("CMISSING") {
        recorded.reads.push(read);
        return slack_error("channel_not_found");
    }
    let mut timeline: Vec<&ChannelMessage> = recorded
        .messages
        .iter()
        .filter(|message| message.channel == channel)
        .collect();
    timeline.sort_by_key(|message| ts_order(message.ts()));
    let (messages, default_limit) = if method == "conversations.replies" {
        let Some(ts) = ts.as_deref() else {
            recorded.reads.push(read);
            return slack_error("invalid_arguments");
        };
        // `ts` may name the parent or any reply; either way the whole thread comes back,
        // parent first.
        let root = timeline
            .iter()
            .find(|message| message.ts() == ts)
            .map_or(ts, |message| message.root())
            .to_string();
        let thread: Vec<Value> = timeline
            .iter()
            .filter(|message| message.root() == root)
            .map(|message| as_read(&message.message, include_all_metadata))
            .collect();
        if thread.is_empty() {
            recorded.reads.push(read);
            return slack_error("thread_not_found");
        }
        (thread, 1000)
    } else {
        // The channel's top-level messages, newest first.
        let top: Vec<Value> = timeline
            .iter()
            .rev()
            .filter(|message| message.root() == message.ts())
            .map(|message| as_read(&message.message, include_all_metadata))
            .collect();
        (top, 100)
    };
    let limit = param("limit")
        .and_then(|limit| limit.parse().ok())
        .unwrap_or(default_limit);
    let (messages, next) = page(messages, param("cursor").as_deref(), limit);
    read.answered = true;
    recorded.reads.push(read);
    Json(json!({
        "ok": true,
        "messages": messages,
        "has_more": next.is_some(),
        "response_metadata": {"next_cursor": next.unwrap_or_default()},
    }))
    .into_response()
}

/// An `event_callback` body around `event`, shaped like Slack's documented wrapper.
pub fn event_callback(event_id: &str, event: Value) -> Value {
    json!({
        "token": "XXYYZZ",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": true,
                            "is_enterprise_install": false}],
        "event_id": event_id,
        "event_time": signature::unix_now(),
    })
}

/// A `block_actions` payload, shaped like Slack's documented example: `user` pressed the
/// button `action_id` on the message `message_ts` (a reply in thread `thread_ts`) of `channel`.
pub fn block_actions(
    user: &str,
    channel: &str,
    message_ts: &str,
    thread_ts: &str,
    action_id: &str,
    trigger_id: &str,
) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "name": user.to_lowercase(),
                 "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "Shh_its_a_seekrit",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": false},
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": "standin"},
        "is_enterprise_install": false,
        "channel": {"id": channel, "name": "shared-support"},
        "message": {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID,
                    "text": "answer", "ts": message_ts, "thread_ts": thread_ts},
        "response_url": "https://hooks.slack.com/actions/T0STANDIN/1/abc",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "sb_actions",
                     "text": {"type": "plain_text", "text": "Talk to a human"},
                     "value": "human", "action_ts": format!("{}.000100", 1_800_000_000)}],
    })
}

/// A signed Events API request, as Slack would send it.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// `content-type`, `x-slack-request-timestamp`, `x-slack-signature`.
    pub headers: Vec<(String, String)>,
    /// The raw body that was signed.
    pub body: String,
}

impl SignedRequest {
    /// As an HTTP request to `path` (for `tower::ServiceExt::oneshot` or a real client).
    pub fn into_request(self, path: &str) -> Request<Body> {
        let mut builder = Request::post(path);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Body::from(self.body))
            .expect("a POST with valid headers builds")
    }
}

/// Signs `body` with `secret` at `timestamp` (Unix seconds) like Slack does.
pub fn signed_request(secret: &str, body: &str, timestamp: i64) -> SignedRequest {
    let timestamp = timestamp.to_string();
    let signature = signature::sign(secret, &timestamp, body.as_bytes());
    SignedRequest {
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (signature::TIMESTAMP_HEADER.into(), timestamp),
            (signature::SIGNATURE_HEADER.into(), signature),
        ],
        body: body.to_string(),
    }
}

fn slack_error(code: &str) -> Response {
    Json(json!({"ok": false, "error": code})).into_response()
}

/// Merges query parameters, a JSON body and a form body into one parameter map.
fn params(query: HashMap<String, String>, body: &Bytes) -> serde_json::Map<String, Value> {
    let mut params: serde_json::Map<String, Value> = query
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    if let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(body) {
        params.extend(json);
    } else if let Ok(text) = std::str::from_utf8(body) {
        for pair in text.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
    params
}

async fn api(
    State(inner): State<Arc<Inner>>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let params = params(query, &body);
    let param = |key: &str| params.get(key).and_then(Value::as_str).map(String::from);
    if token.is_empty() {
        return slack_error("not_authed");
    }
    if method == "apps.connections.open" {
        if !token.starts_with("xapp-") || token == "xapp-revoked" {
            return slack_error("invalid_auth");
        }
        let url = format!("ws://{}/socket", inner.addr);
        return Json(json!({"ok": true, "url": url})).into_response();
    }
    if !token.starts_with("xoxb-") || token == "xoxb-revoked" {
        return slack_error("invalid_auth");
    }
    match method.as_str() {
        "auth.test" => Json(json!({
            "ok": true, "url": "https://standin.slack.com/", "team": "Stand-in",
            "user": "switchboard", "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
        }))
        .into_response(),
        "conversations.info" => {
            let channel = param("channel").unwrap_or_default();
            if channel.starts_with("CMISSING") {
                return slack_error("channel_not_found");
            }
            Json(json!({"ok": true, "channel": {
                "id": channel, "name": channel.to_lowercase(), "created": 1_700_000_000,
                "is_channel": true, "is_member": !channel.starts_with("CNOTMEMBER"),
            }}))
            .into_response()
        }
        "users.info" => {
            let user = param("user").unwrap_or_default();
            let name = inner.lock().users.get(&user).cloned();
            let email = inner.lock().emails.get(&user).cloned();
            match name {
                Some(name) => Json(json!({"ok": true, "user": {
                    "id": user, "team_id": TEAM_ID, "name": name.to_lowercase(),
                    "real_name": format!("{name} (real name)"),
                    "profile": {"display_name": name, "real_name": format!("{name} (real name)"),
                                "email": email},
                }}))
                .into_response(),
                None => slack_error("user_not_found"),
            }
        }
        "conversations.replies" | "conversations.history" => {
            read_messages(&inner, &method, &params)
        }
        "chat.postMessage" | "chat.update" => {
            let channel = param("channel").unwrap_or_default();
            let mut recorded = inner.lock();
            if recorded.outage {
                return (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable").into_response();
            }
            if recorded.fail_429 > 0 {
                recorded.fail_429 -= 1;
                let retry_after = recorded.retry_after_secs.to_string();
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, retry_after)],
                    Json(json!({"ok": false, "error": "ratelimited"})),
                )
                    .into_response();
            }
            if channel.is_empty() || channel.starts_with("CMISSING") {
                return slack_error("channel_not_found");
            }
            let ts = if method == "chat.update" {
                param("ts").unwrap_or_default()
            } else {
                recorded.seq += 1;
                format!("{}.{:06}", 1_700_000_000 + recorded.seq, recorded.seq)
            };
            let text = param("text").unwrap_or_default();
            let thread_ts = param("thread_ts");
            let blocks = params.get("blocks").cloned().unwrap_or(Value::Null);
            let metadata = params.get("metadata").cloned().unwrap_or(Value::Null);
            recorded.posts.push(RecordedPost {
                method: method.clone(),
                channel: channel.clone(),
                thread_ts: thread_ts.clone(),
                ts: ts.clone(),
                text: text.clone(),
                blocks: blocks.clone(),
                metadata: metadata.clone(),
                at: Instant::now(),
            });
            let mut message = json!({"type": "message", "text": text, "user": BOT_USER_ID,
                                     "bot_id": BOT_ID, "app_id": APP_ID, "ts": ts});
            if let Some(thread_ts) = &thread_ts {
                message["thread_ts"] = json!(thread_ts);
            }
            if !blocks.is_null() {
                message["blocks"] = blocks;
            }
            if !metadata.is_null() {
                message["metadata"] = metadata;
            }
            if method == "chat.update" {
                let known = recorded
                    .messages
                    .iter_mut()
                    .find(|known| known.channel == channel && known.ts() == ts);
                if let Some(known) = known {
                    for field in ["text", "blocks", "metadata"] {
                        if let Some(value) = message.get(field) {
                            known.message[field] = value.clone();
                        }
                    }
                }
            } else {
                recorded.messages.push(ChannelMessage {
                    channel: channel.clone(),
                    message: message.clone(),
                });
            }
            drop(recorded);
            inner.changed.notify_waiters();
            Json(
                json!({"ok": true, "channel": channel, "ts": ts, "text": text,
                        "message": message}),
            )
            .into_response()
        }
        "files.getUploadURLExternal" => {
            let (Some(name), Some(length)) = (param("filename"), param("length")) else {
                return slack_error("invalid_arguments");
            };
            let Ok(length) = length.parse::<usize>() else {
                return slack_error("invalid_arguments");
            };
            let mut recorded = inner.lock();
            recorded.seq += 1;
            let file_id = format!("F0UPLOAD{:04}", recorded.seq);
            recorded.uploads.insert(
                file_id.clone(),
                PendingUpload {
                    name,
                    length,
                    ..Default::default()
                },
            );
            let upload_url = format!("http://{}/upload/{file_id}", inner.addr);
            Json(json!({"ok": true, "upload_url": upload_url, "file_id": file_id})).into_response()
        }
        "files.completeUploadExternal" => {
            let Some(Value::Array(files)) = params.get("files").cloned() else {
                return slack_error("invalid_arguments");
            };
            let channel = param("channel_id");
            let mut recorded = inner.lock();
            let mut done = Vec::new();
            for file in &files {
                let id = file.get("id").and_then(Value::as_str).unwrap_or_default();
                // Slack refuses to complete a file whose bytes never arrived.
                let Some(upload) = recorded.uploads.get(id).cloned() else {
                    return slack_error("file_not_found");
                };
                let Some(bytes) = upload.bytes.clone() else {
                    return slack_error("file_not_found");
                };
                let title = file.get("title").and_then(Value::as_str).map(String::from);
                done.push(json!({"id": id, "name": upload.name, "title": title,
                                 "size": bytes.len(), "mimetype": upload.content_type}));
                if let Some(channel) = &channel {
                    recorded.files.push(RecordedFile {
                        id: id.to_string(),
                        name: upload.name.clone(),
                        title,
                        content_type: upload.content_type.clone(),
                        bytes,
                        channel: channel.clone(),
                        thread_ts: param("thread_ts"),
                        initial_comment: param("initial_comment"),
                    });
                }
                recorded.uploads.remove(id);
            }
            drop(recorded);
            inner.changed.notify_waiters();
            Json(json!({"ok": true, "files": done})).into_response()
        }
        _ => slack_error("unknown_method"),
    }
}

/// The upload URL: takes the raw bytes (Slack also takes a multipart `file` field; the
/// slack-morphism client sends raw bytes) and answers `OK - <length>` in plain text.
async fn upload(
    State(inner): State<Arc<Inner>>,
    Path(file_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut recorded = inner.lock();
    let Some(upload) = recorded.uploads.get_mut(&file_id) else {
        return (StatusCode::NOT_FOUND, "unknown upload").into_response();
    };
    if body.len() != upload.length {
        return (StatusCode::BAD_REQUEST, "length mismatch").into_response();
    }
    upload.content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    upload.bytes = Some(body.to_vec());
    (StatusCode::OK, format!("OK - {}", body.len())).into_response()
}

/// `url_private` / `url_private_download`: the bot token in `Authorization` is required;
/// without it Slack shows its sign-in page (HTML, status 200), which the stand-in copies.
async fn private_file(
    State(inner): State<Arc<Inner>>,
    Path((file_id, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| token.starts_with("xoxb-") && token != "xoxb-revoked");
    if !authorized {
        return (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body>Sign in to Stand-in</body></html>",
        )
            .into_response();
    }
    let mut recorded = inner.lock();
    let Some((bytes, mimetype)) = recorded.hosted.get(&file_id).cloned() else {
        return (StatusCode::NOT_FOUND, "file not found").into_response();
    };
    recorded.file_downloads += 1;
    ([(header::CONTENT_TYPE, mimetype)], bytes).into_response()
}

async fn socket(State(inner): State<Arc<Inner>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |ws| serve_socket(inner, ws))
}

async fn serve_socket(inner: Arc<Inner>, mut ws: WebSocket) {
    let hello = json!({
        "type": "hello", "num_connections": 1,
        "debug_info": {"host": "standin", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": APP_ID},
    });
    if ws
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (sender, mut envelopes) = mpsc::unbounded_channel();
    {
        let mut recorded = inner.lock();
        while let Some(queued) = recorded.queued.pop_front() {
            let _ = sender.send(queued);
        }
        recorded.sockets.push(sender);
        recorded.socket_connections_opened += 1;
    }
    let mut closed = inner.closed.subscribe();
    loop {
        tokio::select! {
            Some(envelope) = envelopes.recv() => {
                if ws.send(Message::Text(envelope.into())).await.is_err() {
                    break;
                }
            }
            incoming = ws.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let ack = serde_json::from_str::<Value>(text.as_str()).ok();
                    if let Some(id) = ack.as_ref().and_then(|a| a.get("envelope_id")).and_then(Value::as_str) {
                        inner.lock().acks.insert(id.to_string());
                        inner.changed.notify_waiters();
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = closed.changed() => break,
            _ = inner.refresh.notified() => {
                let disconnect = json!({
                    "type": "disconnect", "reason": "refresh_requested",
                    "debug_info": {"host": "standin"},
                });
                let _ = ws.send(Message::Text(disconnect.to_string().into())).await;
                let _ = ws.send(Message::Close(None)).await;
                break;
            }
        }
    }
}
