//! The Events API endpoint: Slack POSTs signed JSON here (Events API mode).
//!
//! Forged or stale requests get 401 before anything is parsed; `url_verification` is answered
//! with its challenge; an `event_callback` is relayed and answered 200 once the core's sink
//! accepted it, 503 when the sink failed so Slack retries. Retries (`X-Slack-Retry-Num`) are
//! relayed like first deliveries: the core dedupes on `event_id`, so a retry of an event whose
//! first delivery failed half-way is never lost here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use switchboard_api::IngestError;
use tracing::{debug, warn};

use crate::desk::Relay;
use crate::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// The Events API route at the configured path, or `None` without a signing secret.
pub(crate) fn router(relay: Arc<Relay>) -> Option<Router> {
    let path = relay.shared.config.events_path.clone();
    relay.shared.config.signing_secret.as_ref()?;
    Some(Router::new().route(&path, post(receive)).with_state(relay))
}

async fn receive(State(relay): State<Arc<Relay>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = relay.shared.config.signing_secret.as_ref() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Err(error) = signature::verify(
        secret.expose(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        signature::unix_now(),
    ) {
        warn!(%error, "slack events request refused");
        return (StatusCode::UNAUTHORIZED, "invalid slack signature").into_response();
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
                    "slack retry"
                );
            }
            match relay.deliver(&payload).await {
                Ok(()) => StatusCode::OK.into_response(),
                Err(IngestError::Rejected(reason)) => {
                    // Redelivering would be refused again; take it off Slack's hands.
                    warn!(%reason, "slack event rejected by the desk");
                    StatusCode::OK.into_response()
                }
                Err(error @ IngestError::Unavailable(_)) => {
                    warn!(%error, "slack event not stored; Slack will retry");
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                }
            }
        }
        other => {
            debug!(kind = ?other, "slack request ignored");
            StatusCode::OK.into_response()
        }
    }
}
