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

use switchboard_api::standin::{LoopbackListener, LoopbackServer};

use crate::signature;

mod payloads;
mod socket;
mod web_api;

pub use payloads::{
    block_actions, button_press, event_callback, signed_interaction, signed_request, SignedRequest,
};
use socket::socket;
use web_api::{api, private_file, record_event_message, upload};

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
    /// True for a thread reply also shown in the channel (`reply_broadcast`).
    pub reply_broadcast: bool,
    /// When the stand-in received it.
    pub at: Instant,
}

/// One `chat.postEphemeral` call Slack accepted.
#[derive(Debug, Clone)]
pub struct RecordedEphemeral {
    /// The channel it was shown in.
    pub channel: String,
    /// The only user who sees it.
    pub user: String,
    /// The text.
    pub text: String,
}

/// One modal opened with `views.open`, as Slack keeps it (with its `id`, `team_id`, `state`
/// and `hash` added); [`SlackStandIn::view_submission`] submits it.
#[derive(Debug, Clone)]
pub struct RecordedView {
    /// The `trigger_id` it was opened with.
    pub trigger_id: String,
    /// The view as Slack stores it.
    pub view: Value,
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
    /// What `auth.test` lists in `x-oauth-scopes`.
    granted_scopes: Vec<String>,
    ephemerals: Vec<RecordedEphemeral>,
    views: Vec<RecordedView>,
    /// Trigger ids older than Slack's 3 seconds, or already used once.
    expired_triggers: HashSet<String>,
    used_triggers: HashSet<String>,
    /// `conversations.members` per channel; a channel not listed has every known user.
    channel_members: HashMap<String, Vec<String>>,
    /// Every Web API method called, in order.
    methods_called: Vec<String>,
    /// Messages removed with `chat.delete`: (channel, ts).
    deleted: Vec<(String, String)>,
    /// Files removed with `files.delete`.
    deleted_files: Vec<String>,
    /// Answer `cant_delete_message` to every `chat.delete` (a workspace that keeps messages).
    refuse_deletes: bool,
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
    /// Stops serving when dropped, after `drop` closed the websockets.
    _server: LoopbackServer,
}

impl Drop for SlackStandIn {
    fn drop(&mut self) {
        let _ = self.inner.closed.send(true);
    }
}

impl SlackStandIn {
    /// Starts the stand-in on a free loopback port.
    pub async fn start() -> SlackStandIn {
        let listener = LoopbackListener::bind("Slack").await;
        let (closed, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            recorded: Mutex::new(Recorded::default()),
            changed: Notify::new(),
            addr: listener.addr(),
            closed,
            refresh: Notify::new(),
        });
        let server = listener.serve(
            Router::new()
                .route("/api/{method}", any(api))
                .route("/socket", get(socket))
                .route("/upload/{file_id}", axum::routing::post(upload))
                .route("/files-pri/{file_id}/{name}", get(private_file))
                .with_state(inner.clone()),
        );
        SlackStandIn {
            inner,
            _server: server,
        }
    }

    /// The scopes `auth.test` says the token was granted (its `x-oauth-scopes` header).
    pub fn grant_scopes(&self, scopes: &[&str]) {
        self.inner.lock().granted_scopes = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// Every Web API method called so far, each once, sorted.
    pub fn methods_called(&self) -> Vec<String> {
        let mut methods = self.inner.lock().methods_called.clone();
        methods.sort();
        methods.dedup();
        methods
    }

    /// The Web API base URL, e.g. `http://127.0.0.1:PORT/api/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.inner.addr)
    }

    /// The bot's own user id.
    pub fn bot_user_id(&self) -> &'static str {
        BOT_USER_ID
    }

    /// Messages deleted with `chat.delete` so far: (channel, ts).
    pub fn deleted(&self) -> Vec<(String, String)> {
        self.inner.lock().deleted.clone()
    }

    /// Files deleted with `files.delete` so far.
    pub fn deleted_files(&self) -> Vec<String> {
        self.inner.lock().deleted_files.clone()
    }

    /// Makes `chat.delete` answer `cant_delete_message`, as a workspace whose retention
    /// settings keep messages does.
    pub fn refuse_deletes(&self, refuse: bool) {
        self.inner.lock().refuse_deletes = refuse;
    }

    /// The messages of a thread as `conversations.replies` would show them now, parent first.
    pub fn thread(&self, channel: &str, thread_ts: &str) -> Vec<Value> {
        let recorded = self.inner.lock();
        let mut thread: Vec<&ChannelMessage> = (recorded.messages.iter())
            .filter(|known| known.channel == channel && known.root() == thread_ts)
            .collect();
        thread.sort_by_key(|known| ts_order(known.ts()));
        thread
            .into_iter()
            .map(|known| known.message.clone())
            .collect()
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

    /// Sets who `conversations.members` lists for `channel`.
    pub fn set_channel_members(&self, channel: &str, members: &[&str]) {
        self.inner.lock().channel_members.insert(
            channel.to_string(),
            members.iter().map(|m| m.to_string()).collect(),
        );
    }

    /// Makes `trigger_id` expired, as Slack's are 3 seconds after the click.
    pub fn expire_trigger(&self, trigger_id: &str) {
        self.inner
            .lock()
            .expired_triggers
            .insert(trigger_id.to_string());
    }

    /// Every ephemeral message posted so far.
    pub fn ephemerals(&self) -> Vec<RecordedEphemeral> {
        self.inner.lock().ephemerals.clone()
    }

    /// Every modal opened so far.
    pub fn views(&self) -> Vec<RecordedView> {
        self.inner.lock().views.clone()
    }

    /// Waits until `user` got an ephemeral message containing `needle`, or `timeout` passed.
    pub async fn wait_for_ephemeral(
        &self,
        user: &str,
        needle: &str,
        timeout: Duration,
    ) -> Option<RecordedEphemeral> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            let found = self
                .ephemerals()
                .into_iter()
                .find(|e| e.user == user && e.text.contains(needle));
            if found.is_some() || tokio::time::Instant::now() >= deadline {
                return found;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits until `n` modals were opened or `timeout` passed; returns what was opened.
    pub async fn wait_for_views(&self, n: usize, timeout: Duration) -> Vec<RecordedView> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            let views = self.views();
            if views.len() >= n || tokio::time::Instant::now() >= deadline {
                return views;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// A `view_submission` payload of `view` by `user`, with `text` typed into its input,
    /// shaped like Slack's documented example.
    pub fn view_submission(&self, user: &str, view: &RecordedView, text: &str) -> Value {
        let mut view = view.view.clone();
        let mut values = serde_json::Map::new();
        for block in view["blocks"].as_array().cloned().unwrap_or_default() {
            if let (Some(block_id), Some(action_id)) = (
                block["block_id"].as_str(),
                block["element"]["action_id"].as_str(),
            ) {
                values.insert(
                    block_id.to_string(),
                    json!({action_id: {"type": "plain_text_input", "value": text}}),
                );
            }
        }
        view["state"] = json!({"values": values});
        json!({
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "standin"},
            "user": {"id": user, "username": user.to_lowercase(), "name": user.to_lowercase(),
                     "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": "Shh_its_a_seekrit",
            "trigger_id": format!("{}.submit", view["id"].as_str().unwrap_or("V0")),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": false,
        })
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
