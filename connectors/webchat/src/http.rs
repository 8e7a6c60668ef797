//! The web chat's HTTP surface on the gateway's server.
//!
//! - `GET /webchat/widget.js` the widget (one file, no build step);
//! - `GET /webchat/ws` the widget's WebSocket (see `socket.rs`);
//! - `POST /webchat/messages` and `GET /webchat/messages` for sites without WebSocket;
//! - `POST /webchat/files` a visitor's file (see `upload.rs`);
//! - with `demo = true` only, the demo pages `/` and `/webchat/demo/signed` (see `demo.rs`).
//!
//! `allowed_origins` is enforced on the socket and the JSON endpoints; the page's own
//! origin is always allowed so the demo keeps working behind any host name.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_api::{Gateway, InboundKind};

use crate::client_ip::Peer;
use crate::connector::Shared;
use crate::convert::{ErrorCode, Page, Refusal, ServerFrame, VisitorContext};
use crate::identity::Claims;

const WIDGET_JS: &str = include_str!("../assets/widget.js");
/// Where the server's widget settings go in `widget.js`.
const WIDGET_CONFIG_SLOT: &str = "/*SB_SERVER_CONFIG*/null";

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    gateway: Arc<dyn Gateway>,
    widget_js: Arc<str>,
}

/// All web chat routes, ready to merge into the gateway's router.
pub(crate) fn router(shared: Arc<Shared>, gateway: Arc<dyn Gateway>) -> Router {
    // JSON escaping can grow text up to 6x; anything beyond that can not be a valid message.
    let body_limit = shared.config.max_message_bytes * 6 + 16 * 1024;
    let (upload_shared, upload_gateway) = (Arc::clone(&shared), Arc::clone(&gateway));
    let demo = shared
        .config
        .demo
        .then(|| crate::demo::router(Arc::clone(&shared)));
    let app = App {
        widget_js: Arc::from(widget_js(&shared)),
        shared,
        gateway,
    };
    let router = Router::new()
        .route("/webchat/widget.js", get(widget))
        .route("/webchat/ws", get(socket))
        .route(
            "/webchat/messages",
            get(history).post(post_message).options(preflight),
        )
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(app)
        .merge(crate::upload::router(upload_shared, upload_gateway));
    match demo {
        Some(demo) => router.merge(demo),
        None => router,
    }
}

/// The widget with the server's settings filled in.
fn widget_js(shared: &Shared) -> String {
    let config = &shared.config;
    let settings = serde_json::json!({
        "title": config.title,
        "greeting": config.greeting,
        "assistant_name": config.assistant_name,
        "max_message_bytes": config.max_message_bytes,
    });
    WIDGET_JS.replacen(WIDGET_CONFIG_SLOT, &settings.to_string(), 1)
}

async fn widget(State(app): State<App>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        app.widget_js.to_string(),
    )
        .into_response()
}

async fn socket(
    State(app): State<App>,
    Peer(peer): Peer,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&app.shared, &headers) {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let client = app.shared.client_key(peer, &headers);
    let admitted = app.shared.admit_client(client.as_ref());
    let frame_limit = app.shared.config.max_message_bytes * 6 + 16 * 1024;
    upgrade
        .max_message_size(frame_limit)
        .max_frame_size(frame_limit)
        .on_upgrade(move |socket| async move {
            // Refused after the upgrade: a browser shows a socket's frames, not its HTTP status.
            match admitted {
                Ok(()) => crate::socket::serve(app.shared, app.gateway, client, socket).await,
                Err(refusal) => crate::socket::refuse_busy(socket, refusal).await,
            }
        })
}

/// The HTTP variant of a message frame.
#[derive(Debug, Deserialize)]
struct PostedMessage {
    session: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_claims: Option<String>,
    #[serde(default)]
    user_sig: Option<String>,
    client_id: String,
    #[serde(default)]
    text: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    page: Page,
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

async fn post_message(
    State(app): State<App>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cors = cors_headers(&app.shared, &headers);
    if !origin_allowed(&app.shared, &headers) {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    // Parsed by hand so a bad body gets our error shape, not axum's plain-text rejection.
    let posted: PostedMessage = match serde_json::from_slice(&body) {
        Ok(posted) => posted,
        Err(error) => {
            let refusal = Refusal::new(ErrorCode::Invalid, format!("invalid JSON body: {error}"));
            return refusal_response(refusal, None, cors);
        }
    };
    let kind = match posted.kind.as_deref() {
        None | Some("message") => InboundKind::Text,
        Some("talk_to_human") => InboundKind::HumanRequest,
        Some(other) => {
            let refusal = Refusal::new(ErrorCode::Invalid, format!("unknown type {other:?}"));
            return refusal_response(refusal, Some(posted.client_id), cors);
        }
    };
    let claims = Claims {
        session: &posted.session,
        user_id: posted.user_id.as_deref(),
        user_claims: posted.user_claims.as_deref(),
        user_sig: posted.user_sig.as_deref(),
    };
    let visitor = match app.shared.resolve(claims) {
        Ok(visitor) => visitor,
        Err(refusal) => return refusal_response(refusal, Some(posted.client_id), cors),
    };
    let context = VisitorContext::from_widget(&posted.page, &posted.attributes);
    let result = app
        .shared
        .submit(
            app.gateway.as_ref(),
            app.shared.client_key(peer, &headers).as_ref(),
            &visitor,
            &context,
            &posted.client_id,
            kind,
            &posted.text,
        )
        .await;
    match result {
        Ok(accepted) => (
            cors,
            Json(serde_json::json!({
                "message_id": accepted.message_id,
                "conversation_id": accepted.conversation_id,
            })),
        )
            .into_response(),
        Err(refusal) => refusal_response(refusal, Some(posted.client_id), cors),
    }
}

/// Query of `GET /webchat/messages`.
#[derive(Debug, Deserialize)]
struct HistoryQuery {
    session: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_claims: Option<String>,
    #[serde(default)]
    user_sig: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

async fn history(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let cors = cors_headers(&app.shared, &headers);
    if !origin_allowed(&app.shared, &headers) {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let Ok(Query(query)) = query else {
        let refusal = Refusal::new(ErrorCode::Invalid, "expected ?session=...&after=...");
        return refusal_response(refusal, None, cors);
    };
    let claims = Claims {
        session: &query.session,
        user_id: query.user_id.as_deref(),
        user_claims: query.user_claims.as_deref(),
        user_sig: query.user_sig.as_deref(),
    };
    let visitor = match app.shared.resolve(claims) {
        Ok(visitor) => visitor,
        Err(refusal) => return refusal_response(refusal, None, cors),
    };
    let after = query.after.as_deref().filter(|after| !after.is_empty());
    let view = crate::socket::history_after(app.gateway.as_ref(), &visitor, after).await;
    match view {
        Ok(Some(view)) => (cors, Json(view)).into_response(),
        Ok(None) => {
            let body =
                serde_json::json!({"conversation_id": null, "status": "bot", "messages": []});
            (cors, Json(body)).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "webchat history unavailable");
            let refusal = Refusal::new(ErrorCode::Unavailable, "chat history is unavailable");
            refusal_response(refusal, None, cors)
        }
    }
}

async fn preflight(State(app): State<App>, headers: HeaderMap) -> Response {
    let mut cors = cors_headers(&app.shared, &headers);
    cors.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    cors.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    cors.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    (StatusCode::NO_CONTENT, cors).into_response()
}

/// A refusal as the JSON error body, with its status and, for rate limits, `Retry-After`.
pub(crate) fn refusal_response(
    refusal: Refusal,
    client_id: Option<String>,
    cors: HeaderMap,
) -> Response {
    let status =
        StatusCode::from_u16(refusal.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let retry_after = refusal.retry_after;
    let body = ServerFrame::error(refusal, client_id).to_json();
    let mut response = (status, cors, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(wait) = retry_after {
        // Whole seconds, rounded up, so a client that waits this long is let through.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    response
}

/// True when the request's page may use the chat: no `Origin` (not a browser), the
/// gateway's own origin, or one listed in `allowed_origins` (empty list: any).
pub(crate) fn origin_allowed(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let allowed = &shared.config.allowed_origins;
    if allowed.is_empty() || allowed.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, host)| host);
    matches!((host, origin_host), (Some(host), Some(origin_host)) if host.eq_ignore_ascii_case(origin_host))
}

/// CORS headers letting an allowed embedding site call the JSON endpoints.
fn cors_headers(shared: &Shared, headers: &HeaderMap) -> HeaderMap {
    let mut cors = HeaderMap::new();
    cors.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = headers.get(header::ORIGIN) {
        if origin_allowed(shared, headers) {
            cors.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
    }
    cors
}
