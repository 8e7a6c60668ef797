//! `POST /api/v1/messages`: an integration posts one customer message.
//!
//! The body is read (413 past the limit), the caller proven (401), the JSON read (400), and the
//! message stored before the answer: 202 when new, 200 when the caller's `message_id` was
//! already stored (a retry, stored once), 503 with `Retry-After` while storage is down, so a
//! caller that retries loses nothing. Every refusal is a JSON object the caller can log:
//! `{"error": "<code>", "message": "<what to fix>"}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_api::{CustomerContext, Gateway, Identity, Inbound, InboundKind, IngestError};
use tracing::warn;

use crate::config::{AuthMode, IntegrationConfig};
use crate::connector::Shared;
use crate::signature::{self, AuthError, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::CHANNEL;

/// Where integrations post customer messages.
pub const MESSAGES_PATH: &str = "/api/v1/messages";
/// Longest caller id (`message_id`, `conversation_id`, `customer.id`), in bytes.
const MAX_ID_BYTES: usize = 128;
/// Most attributes one message may carry, and the longest key and value.
const MAX_ATTRIBUTES: usize = 32;
const MAX_ATTRIBUTE_BYTES: usize = 512;

/// One customer message as the integration sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// The caller's id for this message; a second request with it is stored once.
    pub message_id: String,
    /// The caller's id for the conversation (a phone number, a user id, a ticket).
    pub conversation_id: String,
    /// The customer's text; may be empty only for `human_request`.
    #[serde(default)]
    pub text: String,
    /// `text` (default) or `human_request` (the customer asked for a person).
    #[serde(default)]
    pub kind: RequestKind,
    /// Who the customer is, as far as the integration knows.
    #[serde(default)]
    pub customer: CustomerRequest,
    /// Your own facts about the customer (`plan`, `account`), shown to agents.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// What the customer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A message.
    #[default]
    Text,
    /// Asked for a person.
    HumanRequest,
}

/// The customer, as the integration knows them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerRequest {
    /// A stable id in the integration (defaults to the conversation id).
    #[serde(default)]
    pub id: Option<String>,
    /// A name to show agents.
    #[serde(default)]
    pub name: Option<String>,
    /// An email address (links channels only with the integration's `emails_verified`).
    #[serde(default)]
    pub email: Option<String>,
    /// The customer's tier (`vip` routes and skips the AI where the config says so).
    #[serde(default)]
    pub tier: Option<String>,
    /// The customer's locale.
    #[serde(default)]
    pub locale: Option<String>,
}

/// Why a request was refused: its status, code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code for programs.
    pub code: &'static str,
    /// What to fix, for people.
    pub message: String,
}

impl Refusal {
    fn invalid(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
        }
    }

    fn too_large(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.code, "message": self.message}));
        match self.status {
            StatusCode::UNAUTHORIZED => (
                self.status,
                [(header::WWW_AUTHENTICATE, "Bearer, Switchboard-Signature")],
                body,
            )
                .into_response(),
            StatusCode::SERVICE_UNAVAILABLE => {
                (self.status, [(header::RETRY_AFTER, "5")], body).into_response()
            }
            status => (status, body).into_response(),
        }
    }
}

/// The conversation key an integration's conversation is stored under; the integration's
/// name comes first so a reply finds its webhook.
pub fn conversation_key(integration: &str, conversation_id: &str) -> String {
    format!("{integration}:{conversation_id}")
}

/// The integration and the caller's conversation id a conversation key holds.
pub fn split_conversation_key(key: &str) -> Option<(&str, &str)> {
    key.split_once(':')
}

/// The integration whose secret this request proves, if any.
pub fn authenticate<'a>(
    integrations: &'a [IntegrationConfig],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    window_secs: u64,
) -> Result<&'a IntegrationConfig, AuthError> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    let bearer = text(header::AUTHORIZATION.as_str()).and_then(|value| {
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
    });
    let candidates = |mode: AuthMode| {
        integrations
            .iter()
            .filter(move |integration| integration.auth == mode)
            .filter_map(|integration| Some((integration, integration.secret.as_ref()?)))
    };
    if let Some(token) = bearer {
        // Every candidate is compared, so the time taken says nothing about which one matched.
        let mut found = None;
        for (integration, secret) in candidates(AuthMode::Bearer) {
            if signature::token_matches(secret.expose(), token.trim()) && found.is_none() {
                found = Some(integration);
            }
        }
        return found.ok_or(AuthError::Mismatch);
    }
    let Some(signed) = text(SIGNATURE_HEADER) else {
        return Err(AuthError::Missing);
    };
    let timestamp = text(TIMESTAMP_HEADER).ok_or(AuthError::BadTimestamp)?;
    signature::check_timestamp(timestamp, now, window_secs)?;
    let mut found = None;
    for (integration, secret) in candidates(AuthMode::Hmac) {
        if signature::signature_matches(secret.expose(), timestamp, body, signed) && found.is_none()
        {
            found = Some(integration);
        }
    }
    found.ok_or(AuthError::Mismatch)
}

/// Reads a request body into the gateway's message, or says what is wrong with it.
pub fn to_inbound(
    integration: &IntegrationConfig,
    body: &[u8],
    max_message_bytes: usize,
) -> Result<Inbound, Refusal> {
    let request: MessageRequest = serde_json::from_slice(body)
        .map_err(|error| Refusal::invalid(format!("the body is not a valid message: {error}")))?;
    let id = |field: &str, value: &str| -> Result<(), Refusal> {
        if value.is_empty() || value.len() > MAX_ID_BYTES || value.chars().any(char::is_control) {
            return Err(Refusal::invalid(format!(
                "`{field}` must be 1 to {MAX_ID_BYTES} bytes without control characters"
            )));
        }
        Ok(())
    };
    id("message_id", &request.message_id)?;
    id("conversation_id", &request.conversation_id)?;
    if let Some(customer_id) = &request.customer.id {
        id("customer.id", customer_id)?;
    }
    let text = request.text.trim();
    if text.len() > max_message_bytes {
        return Err(Refusal::too_large(format!(
            "`text` is {} bytes; the limit is {max_message_bytes}",
            text.len()
        )));
    }
    if text.is_empty() && request.kind == RequestKind::Text {
        return Err(Refusal::invalid(
            "`text` is empty (send `\"kind\": \"human_request\"` to ask for a person without text)",
        ));
    }
    if request.attributes.len() > MAX_ATTRIBUTES
        || request.attributes.iter().any(|(key, value)| {
            key.len() > MAX_ATTRIBUTE_BYTES || value.len() > MAX_ATTRIBUTE_BYTES
        })
    {
        return Err(Refusal::invalid(format!(
            "`attributes` takes at most {MAX_ATTRIBUTES} entries of up to {MAX_ATTRIBUTE_BYTES} bytes each"
        )));
    }
    let customer = request.customer;
    let email = customer
        .email
        .map(|email| email.trim().to_owned())
        .filter(|email| !email.is_empty());
    let mut attributes = request.attributes;
    // Set last, so a caller's attribute cannot pretend to be another integration.
    attributes.insert("api.integration".to_owned(), integration.name.clone());
    Ok(Inbound {
        channel: CHANNEL,
        conversation_key: conversation_key(&integration.name, &request.conversation_id),
        message_id: request.message_id,
        kind: match request.kind {
            RequestKind::Text => InboundKind::Text,
            RequestKind::HumanRequest => InboundKind::HumanRequest,
        },
        author: Identity {
            id: customer.id.unwrap_or(request.conversation_id),
            display_name: customer.name,
            email_verified: integration.emails_verified && email.is_some(),
            email,
            // The integration authenticated itself, so it vouches for its customer's id.
            verified: true,
        },
        text: text.to_owned(),
        context: CustomerContext {
            tier: customer.tier,
            locale: customer.locale,
            attributes,
            ..CustomerContext::default()
        },
        files: Vec::new(),
    })
}

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    gateway: Arc<dyn Gateway>,
}

/// The channel's route, ready to merge into the gateway's router.
pub(crate) fn router(shared: Arc<Shared>, gateway: Arc<dyn Gateway>) -> Router {
    // JSON escaping can grow text up to 6x; the rest is ids, the customer and attributes.
    let body_limit =
        shared.config.max_message_bytes * 6 + MAX_ATTRIBUTES * MAX_ATTRIBUTE_BYTES * 2 + 16 * 1024;
    Router::new()
        .route(MESSAGES_PATH, post(post_message))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(App { shared, gateway })
}

async fn post_message(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match receive(&app, &headers, body).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn receive(
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            Refusal::too_large("the request body is larger than this channel accepts")
        }
        status => Refusal {
            status,
            code: "invalid_request",
            message: rejection.body_text(),
        },
    })?;
    let config = &app.shared.config;
    let integration = authenticate(
        &config.integrations,
        headers,
        &body,
        signature::unix_now(),
        config.replay_window_secs,
    )
    .map_err(|error| {
        warn!(%error, "api channel request refused");
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: error.to_string(),
        }
    })?;
    let inbound = to_inbound(integration, &body, config.max_message_bytes)?;
    let caller_id = inbound.message_id.clone();
    match app.gateway.accept(inbound).await {
        Ok(accepted) => {
            let status = if accepted.is_new {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            let body = json!({
                "message_id": caller_id,
                "duplicate": !accepted.is_new,
                "conversation": accepted.conversation_id,
                "stored_id": accepted.message_id,
            });
            Ok((status, Json(body)).into_response())
        }
        Err(IngestError::Rejected(why)) => Err(Refusal::invalid(why)),
        Err(IngestError::Unavailable(why)) => {
            warn!(error = %why, integration = %integration.name, "api channel message not stored; the caller should retry");
            Err(Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "unavailable",
                message: "storage is unavailable; retry with the same message_id".to_owned(),
            })
        }
    }
}
