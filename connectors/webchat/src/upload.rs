//! `POST /webchat/files`: a visitor's file upload, a message of its own.
//!
//! The body is the file's raw bytes (`fetch(url, {method: "POST", body: file})`, no multipart),
//! its type in `Content-Type`; who is sending comes in the query string, checked exactly like
//! the JSON endpoints (`session`, optional `user_claims` + `user_sig`, `client_id` for dedupe,
//! `name`). A file over the limit is refused with 413 and a sentence saying its size and the
//! limit, without storing its body (read and dropped, up to twice the limit, so a reverse
//! proxy passes the refusal on). Then the byte quotas (see `quota.rs`): 413 when the
//! conversation holds its most, 429 when the client address sent its most today, 507 when
//! the gateway's file storage is full; each with a sentence the widget shows.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_api::{too_large_message, Attachment, Gateway};

use crate::client_ip::Peer;
use crate::connector::Shared;
use crate::convert::{ErrorCode, Refusal, VisitorContext};
use crate::http::refusal_response;
use crate::identity::Claims;

/// A refused upload no larger than this many times the limit is read to its end (and
/// dropped) before the refusal goes out. A reverse proxy still writing the body (nginx
/// buffers it, then sends it on) takes an early answer followed by a closed connection as a
/// failed upstream and shows the visitor a 502 instead of the sentence; browsers may see only
/// the reset. Larger ones are refused at once: reading them would cost more than it helps.
const DRAIN_FACTOR: u64 = 2;
/// The longest a refused body is read for, so a client trickling it cannot hold the handler.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone)]
struct UploadApp {
    shared: Arc<Shared>,
    gateway: Arc<dyn Gateway>,
}

/// The upload route, with its own body limit (the file limit, not the message limit).
pub(crate) fn router(shared: Arc<Shared>, gateway: Arc<dyn Gateway>) -> Router {
    Router::new()
        .route("/webchat/files", post(upload).options(preflight))
        // The handler bounds the body itself, so its refusal carries our message.
        .layer(DefaultBodyLimit::disable())
        .with_state(UploadApp { shared, gateway })
}

/// Query of `POST /webchat/files`.
#[derive(Debug, Deserialize)]
struct UploadQuery {
    session: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_claims: Option<String>,
    #[serde(default)]
    user_sig: Option<String>,
    client_id: String,
    #[serde(default)]
    name: Option<String>,
}

async fn upload(
    State(app): State<UploadApp>,
    Peer(peer): Peer,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Response {
    let cors = cors(&app.shared, &headers);
    if !crate::http::origin_allowed(&app.shared, &headers) {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let Ok(Query(query)) = query else {
        let refusal = Refusal::new(
            ErrorCode::Invalid,
            "expected ?session=...&client_id=...&name=...",
        );
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
        Err(refusal) => return refusal_response(refusal, Some(query.client_id), cors),
    };
    let name = query.name.as_deref().unwrap_or("file");
    let limit = app.shared.max_file_bytes;
    let announced: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    if let Some(size) = announced.filter(|size| *size > limit) {
        let refusal = Refusal::new(ErrorCode::TooLarge, too_large_message(name, size, limit));
        if size <= limit.saturating_mul(DRAIN_FACTOR) {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain(body)).await;
        }
        return refusal_response(refusal, Some(query.client_id), cors);
    }
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let refusal = Refusal::new(
                ErrorCode::TooLarge,
                format!(
                    "{name} is larger than the limit of {}.",
                    switchboard_api::human_size(limit)
                ),
            );
            return refusal_response(refusal, Some(query.client_id), cors);
        }
    };
    if bytes.is_empty() {
        let refusal = Refusal::new(ErrorCode::Empty, "the file is empty");
        return refusal_response(refusal, Some(query.client_id), cors);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/octet-stream");
    let file = Attachment::new(name, content_type, bytes);
    let context = VisitorContext::default();
    let client = app.shared.client_key(peer, &headers);
    let result = app
        .shared
        .submit_file(
            app.gateway.as_ref(),
            client.as_ref(),
            &visitor,
            &context,
            &query.client_id,
            file,
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
        Err(refusal) => refusal_response(refusal, Some(query.client_id), cors),
    }
}

/// Reads a refused body to its end and drops it, frame by frame.
async fn drain(mut body: Body) {
    use axum::body::HttpBody;
    while let Some(Ok(_)) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {}
}

async fn preflight(State(app): State<UploadApp>, headers: HeaderMap) -> Response {
    let mut cors = cors(&app.shared, &headers);
    cors.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    cors.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    (StatusCode::NO_CONTENT, cors).into_response()
}

/// Lets an allowed embedding page read the answer.
fn cors(shared: &Shared, headers: &HeaderMap) -> HeaderMap {
    let mut cors = HeaderMap::new();
    cors.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = headers.get(header::ORIGIN) {
        if crate::http::origin_allowed(shared, headers) {
            cors.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
    }
    cors
}
