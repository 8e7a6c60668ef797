//! The Events API endpoint both Slack apps serve (Events API mode): Slack POSTs signed JSON
//! events here and, for an app that takes interactivity (the customer channel), signed
//! form-encoded interactivity payloads (`payload=<json>`); point both the app's Event
//! Subscriptions and its Interactivity Request URL at `events_path`.
//!
//! Forged or stale requests get 401 before anything is parsed; `url_verification` is answered
//! with its challenge; an event or button press is answered 200 once the core stored it (or
//! refused it for good: redelivering would be refused again), 503 when storage is down so
//! Slack retries. Retries (`X-Slack-Retry-Num`) are handled like first deliveries: the core
//! dedupes on the event or message id, so a retry of an event whose first delivery failed
//! half-way is never lost here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use switchboard_api::{IngestError, Secret};
use tracing::{debug, warn};

use super::client::EnvelopeHandler;
use super::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// What the route needs per request.
struct Endpoint {
    /// The name logs carry (`slack desk`, `slack customers`).
    connector: &'static str,
    signing_secret: Secret,
    handler: Arc<dyn EnvelopeHandler>,
    /// Whether form-encoded interactivity payloads are taken (else they are not JSON: 400).
    interactive: bool,
}

/// The route at `path`, or `None` without a signing secret.
pub(crate) fn router(
    connector: &'static str,
    path: &str,
    signing_secret: Option<&Secret>,
    handler: Arc<dyn EnvelopeHandler>,
    interactive: bool,
) -> Option<Router> {
    let endpoint = Endpoint {
        connector,
        signing_secret: signing_secret?.clone(),
        handler,
        interactive,
    };
    Some(
        Router::new()
            .route(path, post(receive))
            .with_state(Arc::new(endpoint)),
    )
}

async fn receive(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let connector = endpoint.connector;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Err(error) = signature::verify(
        endpoint.signing_secret.expose(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        signature::unix_now(),
    ) {
        warn!(%error, connector, "slack events request refused");
        return (StatusCode::UNAUTHORIZED, "invalid slack signature").into_response();
    }
    if let Some(payload) = endpoint.interactive.then(|| form_payload(&body)).flatten() {
        let Ok(payload) = serde_json::from_str::<Value>(&payload) else {
            return (StatusCode::BAD_REQUEST, "payload is not JSON").into_response();
        };
        return answer(
            connector,
            endpoint.handler.handle_interaction(&payload).await,
        );
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    match payload.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            let challenge = payload.get("challenge").cloned().unwrap_or(Value::Null);
            Json(json!({ "challenge": challenge })).into_response()
        }
        Some("event_callback") => {
            if let Some(retry) = header("x-slack-retry-num") {
                debug!(
                    retry,
                    reason = header("x-slack-retry-reason"),
                    connector,
                    "slack retry"
                );
            }
            answer(connector, endpoint.handler.handle_callback(&payload).await)
        }
        other => {
            debug!(kind = ?other, connector, "slack request ignored");
            StatusCode::OK.into_response()
        }
    }
}

fn answer(connector: &'static str, result: Result<(), IngestError>) -> Response {
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(IngestError::Rejected(reason)) => {
            // Redelivering would be refused again; take it off Slack's hands.
            warn!(%reason, connector, "slack event rejected");
            StatusCode::OK.into_response()
        }
        Err(error @ IngestError::Unavailable(_)) => {
            warn!(%error, connector, "slack event not stored; Slack will retry");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// The `payload` field of a form-encoded interactivity request, decoded.
fn form_payload(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "payload").then(|| percent_decode(value))
    })
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes text for a form body, as Slack's interactivity POSTs are (tests build them).
#[cfg(test)]
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_payloads_round_trip() {
        let json = r#"{"type":"block_actions","text":"a b&c=d%e+"}"#;
        let body = format!("payload={}", percent_encode(json));
        assert_eq!(form_payload(body.as_bytes()).as_deref(), Some(json));
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(form_payload(b"{\"type\":\"event_callback\"}"), None);
    }
}
