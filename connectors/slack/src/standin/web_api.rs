//! The stand-in's Web API: one handler for every `/api/{method}` call, the channels'
//! timelines it reads from, the upload URL and the private file downloads.

use super::*;

/// Adds a customer's message from an event to its channel's timeline (once: Slack's
/// redeliveries carry the same message); edits, deletions and other subtypes add nothing.
pub(super) fn record_event_message(recorded: &mut Recorded, event: &Value) {
    // Edits and deletions change the timeline as they do on Slack: a deleted message is gone
    // from conversations.replies, an edited one reads with its new text.
    match (event["subtype"].as_str(), event["channel"].as_str()) {
        (Some("message_deleted"), Some(channel)) => {
            let deleted = event["deleted_ts"].as_str().unwrap_or_default();
            recorded
                .messages
                .retain(|known| !(known.channel == channel && known.ts() == deleted));
            return;
        }
        (Some("message_changed"), Some(channel)) => {
            let edited = event["message"]["ts"].as_str().unwrap_or_default();
            if let Some(known) = recorded
                .messages
                .iter_mut()
                .find(|known| known.channel == channel && known.ts() == edited)
            {
                known.message["text"] = event["message"]["text"].clone();
            }
            return;
        }
        _ => {}
    }
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

pub(super) async fn api(
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
    inner.lock().methods_called.push(method.clone());
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
        "auth.test" => {
            let scopes = inner.lock().granted_scopes.join(",");
            let mut response = Json(json!({
                "ok": true, "url": "https://standin.slack.com/", "team": "Stand-in",
                "user": "switchboard", "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
            }))
            .into_response();
            if let Ok(value) = header::HeaderValue::from_str(&scopes) {
                // Slack lists the token's scopes on every Web API answer.
                response.headers_mut().insert("x-oauth-scopes", value);
            }
            response
        }
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
        "chat.postEphemeral" => {
            let (channel, user) = (
                param("channel").unwrap_or_default(),
                param("user").unwrap_or_default(),
            );
            let mut recorded = inner.lock();
            if channel.is_empty() || channel.starts_with("CMISSING") {
                return slack_error("channel_not_found");
            }
            let member = recorded
                .channel_members
                .get(&channel)
                .is_none_or(|members| members.contains(&user));
            if !member {
                return slack_error("user_not_in_channel");
            }
            recorded.seq += 1;
            let ts = format!("{}.{:06}", 1_700_000_000 + recorded.seq, recorded.seq);
            recorded.ephemerals.push(RecordedEphemeral {
                channel,
                user,
                text: param("text").unwrap_or_default(),
            });
            drop(recorded);
            inner.changed.notify_waiters();
            Json(json!({"ok": true, "message_ts": ts})).into_response()
        }
        "views.open" => {
            let trigger_id = param("trigger_id").unwrap_or_default();
            // Form-encoded calls send the view as a JSON string, JSON calls as an object.
            let view = match params.get("view") {
                Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
                Some(view) => view.clone(),
                None => Value::Null,
            };
            let mut recorded = inner.lock();
            if trigger_id.is_empty() {
                return slack_error("invalid_trigger_id");
            }
            if recorded.expired_triggers.contains(&trigger_id) {
                return slack_error("expired_trigger_id");
            }
            if !recorded.used_triggers.insert(trigger_id.clone()) {
                return slack_error("exchanged_trigger_id");
            }
            if view["type"] != "modal" || view["title"].is_null() || !view["blocks"].is_array() {
                return slack_error("invalid_arguments");
            }
            recorded.seq += 1;
            let mut stored = view;
            stored["id"] = json!(format!("V0STANDIN{:04}", recorded.seq));
            stored["team_id"] = json!(TEAM_ID);
            stored["app_id"] = json!(APP_ID);
            stored["bot_id"] = json!(BOT_ID);
            stored["hash"] = json!(format!("1700000000.{:08}", recorded.seq));
            stored["state"] = json!({"values": {}});
            recorded.views.push(RecordedView {
                trigger_id,
                view: stored.clone(),
            });
            drop(recorded);
            inner.changed.notify_waiters();
            Json(json!({"ok": true, "view": stored})).into_response()
        }
        "conversations.members" => {
            let channel = param("channel").unwrap_or_default();
            if channel.starts_with("CMISSING") {
                return slack_error("channel_not_found");
            }
            let recorded = inner.lock();
            let members: Vec<String> = match recorded.channel_members.get(&channel) {
                Some(members) => members.clone(),
                None => recorded
                    .users
                    .keys()
                    .cloned()
                    .chain([BOT_USER_ID.to_string()])
                    .collect(),
            };
            Json(json!({"ok": true, "members": members,
                        "response_metadata": {"next_cursor": ""}}))
            .into_response()
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
                reply_broadcast: params.get("reply_broadcast") == Some(&Value::Bool(true))
                    || param("reply_broadcast").as_deref() == Some("true"),
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
        "chat.delete" => {
            let (channel, ts) = (
                param("channel").unwrap_or_default(),
                param("ts").unwrap_or_default(),
            );
            let mut recorded = inner.lock();
            let Some(at) = (recorded.messages.iter())
                .position(|known| known.channel == channel && known.ts() == ts)
            else {
                return slack_error("message_not_found");
            };
            // A bot token deletes only the bot's own messages.
            if recorded.messages[at].message["user"] != BOT_USER_ID {
                return slack_error("cant_delete_message");
            }
            if recorded.refuse_deletes {
                return slack_error("cant_delete_message");
            }
            recorded.messages.remove(at);
            recorded.deleted.push((channel.clone(), ts.clone()));
            drop(recorded);
            inner.changed.notify_waiters();
            Json(json!({"ok": true, "channel": channel, "ts": ts})).into_response()
        }
        "files.delete" => {
            let file = param("file").unwrap_or_default();
            let mut recorded = inner.lock();
            let before = recorded.files.len();
            recorded.files.retain(|known| known.id != file);
            if recorded.files.len() == before {
                return slack_error("file_not_found");
            }
            recorded.deleted_files.push(file);
            Json(json!({"ok": true})).into_response()
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
                    // Shared into a channel, the file shows as a message of the uploader's.
                    recorded.seq += 1;
                    let ts = format!("{}.{:06}", 1_700_000_000 + recorded.seq, recorded.seq);
                    let mut message = json!({"type": "message", "subtype": "file_share",
                        "text": param("initial_comment").unwrap_or_default(), "user": BOT_USER_ID,
                        "bot_id": BOT_ID, "ts": ts, "files": [{"id": id, "name": upload.name}]});
                    if let Some(thread_ts) = param("thread_ts") {
                        message["thread_ts"] = json!(thread_ts);
                    }
                    recorded.messages.push(ChannelMessage {
                        channel: channel.clone(),
                        message,
                    });
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
pub(super) async fn upload(
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
pub(super) async fn private_file(
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
