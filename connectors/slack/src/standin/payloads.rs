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
