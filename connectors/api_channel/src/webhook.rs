//! Replies and status events out: one signed JSON POST per outbound message to the
//! integration's `webhook_url`.
//!
//! The answer decides what the outbox does: 2xx delivered; `Retry-After` (on a 429, 503 or any
//! other refusal) is honoured; 400, 410, 413, 415 and 422 say the event can never be taken and
//! it becomes a dead letter; everything else (a refused connection, a timeout, a 5xx, a 401
//! while a secret is being rotated) is retried with the outbox's backoff until the webhook
//! is back, so nothing is lost while it is down.

use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::StatusCode;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use switchboard_api::{Author, ConnectorError, CustomerAction, DeliveryReceipt, Outbound, Secret};

use crate::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// The connector's name in errors and logs.
pub const CONNECTOR: &str = "api";
/// The header carrying the event's id: the same on every retry, so the receiver can drop
/// a second copy.
pub const EVENT_ID_HEADER: &str = "x-switchboard-event-id";
/// The shortest and longest `Retry-After` taken as given.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How much of a refusal's body goes into the error (and so into logs and dead letters).
const MAX_DETAIL_BYTES: usize = 200;

/// What the integration's webhook receives.
#[derive(Debug, Serialize)]
pub struct WebhookEvent<'a> {
    /// `message` (the AI or an agent wrote to the customer) or `status` (the gateway tells the
    /// customer what happens to the conversation: a person is joining, it is resolved, the AI
    /// is back).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The event's id, stable across retries.
    pub id: &'a str,
    /// The integration's name.
    pub integration: &'a str,
    /// The caller's conversation id, as posted.
    pub conversation_id: &'a str,
    /// Who speaks.
    pub author: EventAuthor<'a>,
    /// The text to show the customer (file links included).
    pub text: &'a str,
    /// What the customer may do next (`talk_to_human`, `rate_service`), for integrations that
    /// can show buttons.
    pub actions: &'a [CustomerAction],
    /// True when an earlier attempt may have reached the webhook already.
    pub redelivery: bool,
}

/// The author of an event.
#[derive(Debug, Serialize)]
pub struct EventAuthor<'a> {
    /// `ai`, `agent` or `system`.
    pub role: &'static str,
    /// The agent's name, for agents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

impl<'a> WebhookEvent<'a> {
    /// The event for `outbound`, to `integration`'s conversation `conversation_id`.
    pub fn from_outbound(
        outbound: &'a Outbound,
        integration: &'a str,
        conversation_id: &'a str,
    ) -> WebhookEvent<'a> {
        let kind = match outbound.author {
            Author::System => "status",
            _ => "message",
        };
        let name = match &outbound.author {
            Author::Agent { name } => Some(name.as_str()),
            _ => None,
        };
        WebhookEvent {
            kind,
            id: &outbound.id,
            integration,
            conversation_id,
            author: EventAuthor {
                role: outbound.author.role(),
                name,
            },
            text: &outbound.text,
            actions: &outbound.actions,
            redelivery: outbound.maybe_sent,
        }
    }
}

/// Posts signed events; opens connections only when sending.
pub struct WebhookClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl WebhookClient {
    /// A client for http:// and https:// webhooks (rustls, the system's roots).
    pub fn new() -> Result<WebhookClient, ConnectorError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|error| ConnectorError::Permanent {
                connector: CONNECTOR,
                detail: format!("cannot load the system's root certificates: {error}"),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(WebhookClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// POSTs `event` to `url`, signed with `secret` at time `now` (Unix seconds).
    pub async fn deliver(
        &self,
        url: &str,
        secret: &Secret,
        event: &WebhookEvent<'_>,
        now: i64,
    ) -> Result<DeliveryReceipt, ConnectorError> {
        let body = serde_json::to_vec(event).map_err(|error| ConnectorError::Permanent {
            connector: CONNECTOR,
            detail: format!("event not encodable: {error}"),
        })?;
        let timestamp = now.to_string();
        let request = hyper::Request::post(url)
            .header("content-type", "application/json")
            .header("user-agent", "switchboard-api-channel")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(
                SIGNATURE_HEADER,
                signature::sign(secret.expose(), &timestamp, &body),
            )
            .header(EVENT_ID_HEADER, event.id)
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| ConnectorError::Permanent {
                connector: CONNECTOR,
                detail: format!("webhook_url {url:?} is not usable: {error}"),
            })?;
        let response =
            self.client
                .request(request)
                .await
                .map_err(|error| ConnectorError::Transient {
                    connector: CONNECTOR,
                    detail: format!("webhook unreachable: {error}"),
                })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let body = response
            .into_body()
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        outcome(status, retry_after, &body)
    }
}

/// What a webhook's answer means for the delivery.
pub fn outcome(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<DeliveryReceipt, ConnectorError> {
    if status.is_success() {
        // A receiver may name its own id for the message; it is kept with the receipt.
        let platform_message_id = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|value| value.get("id")?.as_str().map(str::to_owned));
        return Ok(DeliveryReceipt {
            platform_message_id,
            ..DeliveryReceipt::default()
        });
    }
    if let Some(retry_after) = retry_after {
        return Err(ConnectorError::RateLimited {
            connector: CONNECTOR,
            retry_after,
        });
    }
    let text = String::from_utf8_lossy(body);
    let mut cut = text.len().min(MAX_DETAIL_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let detail = format!(
        "webhook answered HTTP {}: {}",
        status.as_u16(),
        &text[..cut]
    );
    let never_taken = matches!(status.as_u16(), 400 | 410 | 413 | 415 | 422);
    if never_taken {
        Err(ConnectorError::Permanent {
            connector: CONNECTOR,
            detail,
        })
    } else {
        Err(ConnectorError::Transient {
            connector: CONNECTOR,
            detail,
        })
    }
}

/// A `Retry-After` value (seconds, or an HTTP date) as a wait from `now`, between a second
/// (a webhook answering "0" must not be hammered) and an hour.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use switchboard_api::ChannelKind;

    fn outbound(author: Author) -> Outbound {
        Outbound {
            id: "3/1718000000000-0".into(),
            conversation_id: "c-1".into(),
            channel: ChannelKind::new("api"),
            conversation_key: "acme:cust-42".into(),
            author,
            text: "Here is how to reset it.".into(),
            actions: vec![CustomerAction::TalkToHuman],
            reply_context: BTreeMap::new(),
            files: Vec::new(),
            maybe_sent: false,
        }
    }

    #[test]
    fn replies_are_messages_and_notices_are_status_events() {
        let ai = outbound(Author::Ai);
        let event = serde_json::to_value(WebhookEvent::from_outbound(&ai, "acme", "cust-42"))
            .expect("serializes");
        assert_eq!(
            event,
            serde_json::json!({
                "type": "message", "id": "3/1718000000000-0", "integration": "acme",
                "conversation_id": "cust-42", "author": {"role": "ai"},
                "text": "Here is how to reset it.", "actions": ["talk_to_human"],
                "redelivery": false,
            })
        );
        let agent = outbound(Author::Agent { name: "Sam".into() });
        let event = WebhookEvent::from_outbound(&agent, "acme", "cust-42");
        assert_eq!((event.kind, event.author.name), ("message", Some("Sam")));
        let notice = outbound(Author::System);
        let event = WebhookEvent::from_outbound(&notice, "acme", "cust-42");
        assert_eq!((event.kind, event.author.role), ("status", "system"));
    }

    #[test]
    fn answers_map_to_delivered_retried_or_dead() {
        let receipt = outcome(StatusCode::OK, None, br#"{"id":"sms-981"}"#).expect("delivered");
        assert_eq!(receipt.platform_message_id.as_deref(), Some("sms-981"));
        assert!(outcome(StatusCode::NO_CONTENT, None, b"").is_ok());

        let limited = outcome(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(7)),
            b"",
        );
        assert!(matches!(
            limited,
            Err(ConnectorError::RateLimited { retry_after, .. }) if retry_after == Duration::from_secs(7)
        ));
        for retried in [500, 502, 503, 504, 408, 429, 401, 404] {
            let status = StatusCode::from_u16(retried).expect("valid status");
            let error = outcome(status, None, b"down").expect_err("not delivered");
            assert!(error.is_retryable(), "{retried}: {error}");
        }
        for dead in [400, 410, 413, 422] {
            let status = StatusCode::from_u16(dead).expect("valid status");
            let error = outcome(status, None, "é".repeat(500).as_bytes()).expect_err("refused");
            assert!(!error.is_retryable(), "{dead}: {error}");
            assert!(error.to_string().len() < 300, "detail is cut: {error}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(" 30 ", now),
            Some(Duration::from_secs(30))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(120))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(120));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after("999999", now),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
