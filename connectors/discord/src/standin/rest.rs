//! The stand-in's REST API: the bot's user, the gateway URL, channels, messages, threads
//! and interaction callbacks, each checking the bot token as Discord does.

use super::*;

pub(super) fn user_json(id: u64, name: &str, bot: bool) -> Value {
    json!({"id": id.to_string(), "username": name.to_lowercase(), "global_name": name,
           "discriminator": "0", "avatar": null, "bot": bot})
}

pub(super) fn token_ok(inner: &Inner, headers: &HeaderMap) -> bool {
    let has_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("Bot ") && value.len() > 4);
    has_token && !inner.lock().revoked
}

pub(super) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "401: Unauthorized", "code": 0})),
    )
        .into_response()
}

pub(super) async fn current_user(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if !token_ok(&inner, &headers) {
        return unauthorized();
    }
    Json(user_json(BOT_USER_ID, "switchboard", true)).into_response()
}

pub(super) async fn gateway_url(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if !token_ok(&inner, &headers) {
        return unauthorized();
    }
    Json(json!({
        "url": format!("ws://{}/gateway", inner.addr),
        "shards": 1,
        "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14400000,
                                "max_concurrency": 1},
    }))
    .into_response()
}

pub(super) async fn channel_info(
    State(inner): State<Arc<Inner>>,
    Path(channel): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if !token_ok(&inner, &headers) {
        return unauthorized();
    }
    let recorded = inner.lock();
    if recorded.is_dm(channel) {
        return Json(json!({"id": channel.to_string(), "type": 1})).into_response();
    }
    let thread = recorded.threads.iter().find(|t| t.thread_id == channel);
    Json(match thread {
        Some(thread) => json!({"id": channel.to_string(), "type": 11,
            "guild_id": GUILD_ID.to_string(), "parent_id": thread.parent_id.to_string(),
            "name": thread.name}),
        None => json!({"id": channel.to_string(), "type": 0,
            "guild_id": GUILD_ID.to_string(), "parent_id": null, "name": "general"}),
    })
    .into_response()
}

pub(super) async fn create_message(
    State(inner): State<Arc<Inner>>,
    Path(channel): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !token_ok(&inner, &headers) {
        return unauthorized();
    }
    let (body, uploads) = files::message_body(&headers, body);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "Cannot send an empty message", "code": 50006})),
        )
            .into_response();
    };
    let mut recorded = inner.lock();
    if recorded.fail_429 > 0 {
        recorded.fail_429 -= 1;
        let secs = recorded.retry_after_secs;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::RETRY_AFTER, format!("{}", secs.ceil() as u64)),
                (
                    header::HeaderName::from_static("x-ratelimit-scope"),
                    "user".to_string(),
                ),
            ],
            Json(
                json!({"message": "You are being rate limited.", "retry_after": secs,
                        "global": false}),
            ),
        )
            .into_response();
    }
    let nonce = body
        .get("enforce_nonce")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .then(|| body.get("nonce").map(|nonce| nonce.to_string()))
        .flatten();
    if let Some(earlier) = nonce.as_ref().and_then(|nonce| recorded.nonces.get(nonce)) {
        // Discord returns the message created with this nonce, and creates nothing.
        let message = earlier.1.clone();
        recorded.repeated_nonces += 1;
        return Json(message).into_response();
    }
    let id = recorded.id();
    let content = body
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    recorded.sent.push(SentMessage {
        channel_id: channel,
        id,
        content: content.clone(),
        components: body.get("components").cloned().unwrap_or(Value::Null),
        body: body.clone(),
    });
    files::record(&mut recorded, channel, id, &body, uploads);
    drop(recorded);
    inner.changed.notify_waiters();
    let mut message: Value = serde_json::from_str(EXAMPLE_MESSAGE).unwrap_or_default();
    message["id"] = json!(id.to_string());
    message["channel_id"] = json!(channel.to_string());
    message["content"] = json!(content);
    message["author"] = user_json(BOT_USER_ID, "switchboard", true);
    message["reactions"] = json!([]);
    if let Some(nonce) = nonce {
        inner.lock().nonces.insert(nonce, (id, message.clone()));
    }
    Json(message).into_response()
}

pub(super) async fn delete_message(
    State(inner): State<Arc<Inner>>,
    Path((channel, message)): Path<(u64, u64)>,
    headers: HeaderMap,
) -> Response {
    if !token_ok(&inner, &headers) {
        return unauthorized();
    }
    let mut recorded = inner.lock();
    let ours = (recorded.sent.iter()).any(|sent| sent.channel_id == channel && sent.id == message);
    if !ours || recorded.deleted.contains(&(channel, message)) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Unknown Message", "code": 10008})),
        )
            .into_response();
    }
    recorded.deleted.push((channel, message));
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn start_thread(
    State(inner): State<Arc<Inner>>,
    Path((channel, message)): Path<(u64, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !token_ok(&inner, &headers) {
        return unauthorized();
    }
    let name = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body.get("name").and_then(Value::as_str).map(String::from))
        .unwrap_or_default();
    let mut recorded = inner.lock();
    if recorded.threads.iter().any(|t| t.thread_id == message) {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"message": "A thread has already been created for this message",
                        "code": 160004}),
            ),
        )
            .into_response();
    }
    recorded.threads.push(CreatedThread {
        parent_id: channel,
        thread_id: message,
        name: name.clone(),
    });
    drop(recorded);
    inner.changed.notify_waiters();
    (
        StatusCode::CREATED,
        Json(
            json!({"id": message.to_string(), "type": 11, "guild_id": GUILD_ID.to_string(),
                "parent_id": channel.to_string(), "name": name, "owner_id": BOT_USER_ID.to_string(),
                "thread_metadata": {"archived": false, "auto_archive_duration": 1440,
                    "archive_timestamp": "2024-01-01T00:00:00.000000+00:00", "locked": false}}),
        ),
    )
        .into_response()
}

pub(super) async fn interaction_callback(
    State(inner): State<Arc<Inner>>,
    Path((id, _token)): Path<(u64, String)>,
    body: Bytes,
) -> Response {
    // Interaction callbacks are authorized by the token in the path, not the bot token.
    let kind = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body.get("type").and_then(Value::as_u64))
        .unwrap_or_default();
    inner.lock().callbacks.push(InteractionCallback {
        interaction_id: id,
        kind,
    });
    inner.changed.notify_waiters();
    StatusCode::NO_CONTENT.into_response()
}
