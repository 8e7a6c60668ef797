//! Requests as Slack sends them, for tests to hand to the desk or the customer channel: the
//! `event_callback` wrapper, a `block_actions` press, and a signed Events API request.

use super::*;

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

/// A press of the desk's button `action_id` (carrying `value`) by `user` on the message
/// `message_ts` of `channel` (a reply in `thread_ts`, or a thread's parent), shaped like
/// Slack's documented `block_actions` payload. A retry repeats `trigger_id` and `action_ts`.
pub fn button_press(
    user: &str,
    channel: &str,
    message_ts: &str,
    thread_ts: Option<&str>,
    (action_id, value): (&str, &str),
    trigger_id: &str,
) -> Value {
    let mut press = block_actions(
        user,
        channel,
        message_ts,
        thread_ts.unwrap_or(message_ts),
        action_id,
        trigger_id,
    );
    if thread_ts.is_none() {
        if let Some(message) = press["message"].as_object_mut() {
            message.remove("thread_ts");
        }
    }
    press["actions"][0]["value"] = json!(value);
    press["actions"][0]["block_id"] = json!("sb_briefing_actions");
    // One action_ts per trigger, so a retry carries both unchanged.
    let seq: u64 = trigger_id
        .bytes()
        .fold(0, |n, b| n.wrapping_mul(31).wrapping_add(u64::from(b)));
    press["actions"][0]["action_ts"] = json!(format!("1800000000.{:06}", seq % 1_000_000));
    press
}

/// A signed interactivity request (`payload=<json>`, form-encoded), as Slack POSTs it to the
/// Interactivity Request URL.
pub fn signed_interaction(secret: &str, payload: &Value, timestamp: i64) -> SignedRequest {
    let mut body = String::from("payload=");
    for byte in payload.to_string().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                body.push(byte as char)
            }
            other => body.push_str(&format!("%{other:02X}")),
        }
    }
    let mut request = signed_request(secret, &body, timestamp);
    request.headers[0].1 = "application/x-www-form-urlencoded".into();
    request
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
