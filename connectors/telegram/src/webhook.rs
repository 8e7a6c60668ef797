//! Webhook mode: Telegram POSTs each update to `webhook_path` with the `secret_token` given
//! to `setWebhook` in `X-Telegram-Bot-Api-Secret-Token`.
//!
//! Answers: 401 for a missing or wrong secret (compared in constant time), 200 once the
//! update is stored (or deliberately ignored), 503 when storage is down, so Telegram
//! delivers the update again; the gateway's dedupe stores it once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use subtle::ConstantTimeEq;
use switchboard_api::Gateway;
use tracing::warn;

use crate::connector::Shared;

/// The header Telegram carries the webhook secret in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

#[derive(Clone)]
struct WebhookState {
    shared: Arc<Shared>,
    gateway: Arc<dyn Gateway>,
}

/// The webhook route at the configured path.
pub(crate) fn router(shared: Arc<Shared>, gateway: Arc<dyn Gateway>) -> Router {
    let path = shared.config.webhook_path.clone();
    Router::new()
        .route(&path, post(receive))
        .with_state(WebhookState { shared, gateway })
}

async fn receive(State(state): State<WebhookState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let expected = state
        .shared
        .config
        .webhook_secret
        .as_ref()
        .map(|secret| secret.expose().as_bytes());
    let given = headers
        .get(SECRET_HEADER)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    // No configured secret is refused too: validation requires one in webhook mode.
    let authentic = expected.is_some_and(|expected| bool::from(expected.ct_eq(given)));
    if !authentic {
        warn!("telegram webhook call with a wrong secret token refused");
        return StatusCode::UNAUTHORIZED;
    }
    let raw: Value = match serde_json::from_slice(&body) {
        Ok(raw) => raw,
        Err(error) => {
            warn!(%error, "telegram webhook body is not JSON");
            return StatusCode::BAD_REQUEST;
        }
    };
    match state
        .shared
        .handle_update(state.gateway.as_ref(), &raw)
        .await
    {
        Ok(()) => StatusCode::OK,
        Err(error) => {
            warn!(%error, "telegram update not stored; asking Telegram to retry");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}
