//! The channel in-process: the route against a recording gateway, and `send` against a
//! loopback webhook.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use switchboard_api::standin::{LoopbackListener, LoopbackServer};
use switchboard_api::MemoryGateway;
use switchboard_api::{Author, Connector, ConnectorError, Inbound, InboundKind, Outbound};
use tower::ServiceExt;

use crate::signature::{sign, unix_now, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::webhook::EVENT_ID_HEADER;
use crate::{ApiChannelConfig, ApiConnector, MESSAGES_PATH};

const HMAC_SECRET: &str = "acme-signing-secret-0001";
const BEARER_TOKEN: &str = "sms-provider-token-0002";

fn config(webhook_url: &str) -> ApiChannelConfig {
    let text = format!(
        "enabled = true\nmax_message_bytes = 100\n\
         [[integrations]]\nname = \"acme\"\nsecret_env = \"ACME\"\nwebhook_url = \"{webhook_url}\"\nemails_verified = true\n\
         [[integrations]]\nname = \"sms\"\nauth = \"bearer\"\nsecret_env = \"SMS\"\nwebhook_url = \"{webhook_url}\"\n"
    );
    let mut config: ApiChannelConfig = toml::from_str(&text).expect("config parses");
    let mut problems = vec![];
    config.resolve_secrets_from("connectors.api", &mut problems, |var| match var {
        "ACME" => Some(HMAC_SECRET.to_owned()),
        "SMS" => Some(BEARER_TOKEN.to_owned()),
        _ => None,
    });
    config.validate("connectors.api", &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    config
}

struct Harness {
    connector: ApiConnector,
    gateway: Arc<MemoryGateway>,
}

impl Harness {
    fn new(webhook_url: &str) -> Harness {
        Harness {
            connector: ApiConnector::new(config(webhook_url)).expect("builds"),
            gateway: Arc::new(MemoryGateway::default()),
        }
    }

    async fn post(&self, headers: &[(&str, String)], body: &str) -> (StatusCode, Value) {
        let router = self
            .connector
            .routes(self.gateway.clone())
            .expect("the channel serves a route");
        let mut request = Request::post(MESSAGES_PATH).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = router
            .oneshot(request.body(Body::from(body.to_owned())).expect("request"))
            .await
            .expect("the router answers");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post_signed(&self, body: &str) -> (StatusCode, Value) {
        self.post(&signed(HMAC_SECRET, unix_now(), body), body)
            .await
    }

    fn stored(&self) -> Vec<Inbound> {
        self.gateway.accepted()
    }
}

fn signed(secret: &str, at: i64, body: &str) -> Vec<(&'static str, String)> {
    let timestamp = at.to_string();
    vec![
        (SIGNATURE_HEADER, sign(secret, &timestamp, body.as_bytes())),
        (TIMESTAMP_HEADER, timestamp),
    ]
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

fn message(id: &str, text: &str) -> String {
    json!({
        "message_id": id, "conversation_id": "+15550100", "text": text,
        "customer": {"name": "Dana", "email": "dana@example.com", "tier": "vip"},
        "attributes": {"plan": "pro", "api.integration": "someone-else"},
    })
    .to_string()
}

#[tokio::test]
async fn a_signed_message_is_stored_once_with_what_the_integration_vouches_for() {
    let harness = Harness::new("http://127.0.0.1:9/hook");
    let body = message("m-1", "  How do I reset my password?  ");
    let (status, answer) = harness.post_signed(&body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["duplicate"], false);
    assert_eq!(answer["message_id"], "m-1");

    // The caller retries (its connection dropped before our answer): stored once.
    let (status, answer) = harness.post_signed(&body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["duplicate"], true);
    let stored = harness.stored();
    assert_eq!(stored.len(), 1);

    let inbound = &stored[0];
    assert_eq!(inbound.channel, crate::CHANNEL);
    assert_eq!(inbound.conversation_key, "acme:+15550100");
    assert_eq!(inbound.text, "How do I reset my password?");
    assert_eq!(inbound.kind, InboundKind::Text);
    assert!(inbound.author.verified);
    assert!(inbound.author.email_verified, "acme has emails_verified");
    assert_eq!(inbound.context.tier.as_deref(), Some("vip"));
    assert_eq!(inbound.context.attributes["plan"], "pro");
    assert_eq!(
        inbound.context.attributes["api.integration"], "acme",
        "a caller cannot claim to be another integration"
    );
}

#[tokio::test]
async fn a_bearer_integration_is_told_apart_and_its_emails_do_not_link() {
    let harness = Harness::new("http://127.0.0.1:9/hook");
    let body = message("sms-1", "hi");
    let (status, _) = harness.post(&bearer(BEARER_TOKEN), &body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let human =
        json!({"message_id": "sms-2", "conversation_id": "+15550100", "kind": "human_request"});
    let (status, _) = harness
        .post(&bearer(BEARER_TOKEN), &human.to_string())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let stored = harness.stored();
    assert_eq!(stored[0].conversation_key, "sms:+15550100");
    assert!(!stored[0].author.email_verified);
    assert_eq!(stored[1].kind, InboundKind::HumanRequest);
}

#[tokio::test]
async fn missing_forged_stale_or_misplaced_proofs_get_401_and_store_nothing() {
    let harness = Harness::new("http://127.0.0.1:9/hook");
    let body = message("m-1", "hello");
    let now = unix_now();
    let mut tampered = signed(HMAC_SECRET, now, &body);
    let last = tampered[0].1.pop().expect("a signature");
    tampered[0].1.push(if last == '0' { '1' } else { '0' });
    let attempts = [
        vec![],
        signed("not-the-secret-at-all", now, &body),
        tampered,
        signed(HMAC_SECRET, now - 301, &body),
        vec![(SIGNATURE_HEADER, sign(HMAC_SECRET, "", body.as_bytes()))],
        bearer("wrong-token-wrong-token"),
        // The HMAC integration's secret is not a bearer token, nor the reverse.
        bearer(HMAC_SECRET),
        signed(BEARER_TOKEN, now, &body),
    ];
    for headers in attempts {
        let (status, answer) = harness.post(&headers, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(answer["error"], "unauthorized", "{answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, stale) = harness
        .post(&signed(HMAC_SECRET, now - 3600, &body), &body)
        .await;
    assert!(
        stale["message"]
            .as_str()
            .unwrap_or_default()
            .contains("clock"),
        "{stale}"
    );
    assert!(harness.stored().is_empty());
}

#[tokio::test]
async fn bad_bodies_get_a_400_or_413_that_says_what_to_fix() {
    let harness = Harness::new("http://127.0.0.1:9/hook");
    let cases = [
        ("not json", StatusCode::BAD_REQUEST, "not a valid message"),
        (
            r#"{"message_id":"m","conversation_id":"c","txt":"hi"}"#,
            StatusCode::BAD_REQUEST,
            "txt",
        ),
        (
            r#"{"message_id":"m","conversation_id":"c","text":"   "}"#,
            StatusCode::BAD_REQUEST,
            "human_request",
        ),
        (
            r#"{"message_id":"","conversation_id":"c","text":"hi"}"#,
            StatusCode::BAD_REQUEST,
            "message_id",
        ),
    ];
    for (body, status, needle) in cases {
        let (got, answer) = harness.post_signed(body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"], "invalid_request");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{body}: {answer}"
        );
    }
    // 100 bytes is this config's limit.
    let (status, answer) = harness.post_signed(&message("m-2", &"x".repeat(101))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"], "too_large");
    let huge = message("m-3", &"x".repeat(200_000));
    let (status, answer) = harness.post_signed(&huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"], "too_large");
    assert!(harness.stored().is_empty());
}

#[tokio::test]
async fn storage_down_is_a_503_the_caller_retries() {
    let harness = Harness::new("http://127.0.0.1:9/hook");
    harness.gateway.set_unavailable(true);
    let (status, answer) = harness.post_signed(&message("m-1", "hello")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer["error"], "unavailable");
}

/// What the loopback webhook received: headers of interest and the body.
type Received = Arc<Mutex<Vec<(String, String, String, String)>>>;

async fn webhook(
    answer: StatusCode,
    retry_after: Option<&'static str>,
) -> (String, Received, LoopbackServer) {
    let received: Received = Arc::default();
    let listener = LoopbackListener::bind("webhook").await;
    let url = format!("http://{}/hook", listener.addr());
    let record = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                record.lock().expect("not poisoned").push((
                    header(TIMESTAMP_HEADER),
                    header(SIGNATURE_HEADER),
                    header(EVENT_ID_HEADER),
                    body,
                ));
                let mut response = axum::response::Response::builder().status(answer);
                if let Some(wait) = retry_after {
                    response = response.header("retry-after", wait);
                }
                response
                    .body(Body::from(r#"{"id":"provider-77"}"#))
                    .expect("response")
            }
        }),
    );
    (url, received, listener.serve(app))
}

fn reply_to(key: &str) -> Outbound {
    Outbound {
        id: "5/1718000000000-3".into(),
        conversation_id: "conv-1".into(),
        channel: crate::CHANNEL,
        conversation_key: key.into(),
        author: Author::Agent { name: "Sam".into() },
        text: "I've sent you a new link.".into(),
        actions: vec![],
        reply_context: Default::default(),
        files: vec![],
        maybe_sent: false,
    }
}

#[tokio::test]
async fn a_reply_is_posted_signed_to_its_integrations_webhook() {
    let (url, received, _server) = webhook(StatusCode::OK, None).await;
    let harness = Harness::new(&url);
    let receipt = harness
        .connector
        .send(&reply_to("sms:+15550100"))
        .await
        .expect("delivered");
    assert_eq!(receipt.platform_message_id.as_deref(), Some("provider-77"));
    let received = received.lock().expect("not poisoned").clone();
    let [(timestamp, signature, event_id, body)] = &received[..] else {
        panic!("one event: {received:?}");
    };
    // The receiver checks it with the same secret, as it would with our documented recipe.
    assert_eq!(signature, &sign(BEARER_TOKEN, timestamp, body.as_bytes()));
    assert!((unix_now() - timestamp.parse::<i64>().expect("unix time")).abs() < 5);
    assert_eq!(event_id, "5/1718000000000-3");
    let event: Value = serde_json::from_str(body).expect("json");
    assert_eq!(event["type"], "message");
    assert_eq!(event["integration"], "sms");
    assert_eq!(event["conversation_id"], "+15550100");
    assert_eq!(event["author"], json!({"role": "agent", "name": "Sam"}));
}

#[tokio::test]
async fn a_webhook_that_is_down_or_busy_means_retry_and_one_that_refuses_means_dead() {
    let (url, _received, _server) = webhook(StatusCode::SERVICE_UNAVAILABLE, Some("7")).await;
    let error = Harness::new(&url)
        .connector
        .send(&reply_to("acme:c-1"))
        .await
        .expect_err("busy");
    assert!(matches!(
        error,
        ConnectorError::RateLimited { retry_after, .. } if retry_after.as_secs() == 7
    ));

    // Nobody listens on the port any more.
    let closed = {
        let listener = LoopbackListener::bind("closed webhook").await;
        format!("http://{}/hook", listener.addr())
    };
    let error = Harness::new(&closed)
        .connector
        .send(&reply_to("acme:c-1"))
        .await
        .expect_err("down");
    assert!(error.is_retryable(), "{error}");

    let (url, _received, _server) = webhook(StatusCode::GONE, None).await;
    let harness = Harness::new(&url);
    let error = harness
        .connector
        .send(&reply_to("acme:c-1"))
        .await
        .expect_err("gone");
    assert!(!error.is_retryable(), "{error}");
    let error = harness
        .connector
        .send(&reply_to("removed:c-1"))
        .await
        .expect_err("no such integration");
    assert!(error.to_string().contains("removed"), "{error}");
}

#[test]
fn a_connector_without_its_secrets_is_not_built() {
    let mut config = config("http://127.0.0.1:9/hook");
    config.integrations[1].secret = None;
    let error = ApiConnector::new(config).err().expect("refused");
    assert!(error.to_string().contains("SMS"), "{error}");
}
