//! The API channel end to end: a whole gateway on a private Redis, messages posted over real
//! HTTP to `/api/v1/messages`, and the integration's webhook a loopback stand-in that checks
//! every event's signature as a receiver would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use switchboard::app::RunningGateway;
use switchboard_api::standin::{LoopbackListener, LoopbackServer};
use switchboard_api::Author;
use switchboard_api_channel::signature::{sign, unix_now, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use switchboard_api_channel::webhook::EVENT_ID_HEADER;
use switchboard_api_channel::{CHANNEL, MESSAGES_PATH};
use switchboard_slack::standin::SlackStandIn;

use crate::harness::{
    eventually, http_with_headers, start_gateway, test_config, RedisServer,
};
use crate::slack_desk::{agent_reply, briefing, desk_config, AGENT};

const SECRET: &str = "acme-webhook-secret-0001";
const SECRET_ENV: &str = "SB_TEST_API_ACME_SECRET";

/// The `[connectors.api]` section for one HMAC integration posting replies to `webhook`.
fn api_config(webhook: &str) -> String {
    std::env::set_var(SECRET_ENV, SECRET);
    format!(
        "[connectors.api]\nenabled = true\n\
         [[connectors.api.integrations]]\nname = \"acme\"\nsecret_env = \"{SECRET_ENV}\"\n\
         webhook_url = \"{webhook}\"\n"
    )
}

/// One event the webhook stand-in received, after checking its signature.
#[derive(Debug, Clone)]
struct Event {
    at: Instant,
    id: String,
    body: Value,
}

impl Event {
    fn text(&self) -> &str {
        self.body["text"].as_str().unwrap_or_default()
    }

    fn role(&self) -> &str {
        self.body["author"]["role"].as_str().unwrap_or_default()
    }
}

/// What the stand-in answers next: scripted refusals first, then 200.
#[derive(Default)]
struct WebhookState {
    delivered: Vec<Event>,
    refused: Vec<Event>,
    answers: std::collections::VecDeque<(StatusCode, Option<&'static str>)>,
}

/// The integration's webhook: verifies each event's signature and timestamp with the shared
/// secret (a forged event fails the test) and records it.
#[derive(Clone, Default)]
struct Webhook {
    state: Arc<Mutex<WebhookState>>,
}

impl Webhook {
    fn router(&self) -> axum::Router {
        let state = self.state.clone();
        axum::Router::new().route(
            "/events",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let timestamp = header(TIMESTAMP_HEADER);
                    assert_eq!(
                        header(SIGNATURE_HEADER),
                        sign(SECRET, &timestamp, body.as_bytes()),
                        "every event is signed with the integration's secret"
                    );
                    let sent_at: i64 = timestamp.parse().expect("a Unix time");
                    assert!((unix_now() - sent_at).abs() < 60, "signed just now");
                    let event = Event {
                        at: Instant::now(),
                        id: header(EVENT_ID_HEADER),
                        body: serde_json::from_str(&body).expect("events are JSON"),
                    };
                    let mut state = state.lock().expect("not poisoned");
                    match state.answers.pop_front() {
                        Some((status, retry_after)) => {
                            state.refused.push(event);
                            let mut response = axum::response::Response::builder().status(status);
                            if let Some(wait) = retry_after {
                                response = response.header("retry-after", wait);
                            }
                            response.body(axum::body::Body::empty()).expect("response")
                        }
                        None => {
                            state.delivered.push(event);
                            axum::response::Response::new(axum::body::Body::from("{}"))
                        }
                    }
                }
            }),
        )
    }

    async fn start(&self) -> (String, LoopbackServer) {
        let listener = LoopbackListener::bind("webhook").await;
        let url = format!("http://{}/events", listener.addr());
        (url, listener.serve(self.router()))
    }

    /// Serves on `addr`, where nothing listened before (the webhook coming back).
    async fn start_at(&self, addr: SocketAddr) -> tokio::task::JoinHandle<()> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the webhook's port is free again");
        let router = self.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        })
    }

    fn answer_next(&self, status: StatusCode, retry_after: Option<&'static str>) {
        let mut state = self.state.lock().expect("not poisoned");
        state.answers.push_back((status, retry_after));
    }

    fn delivered(&self) -> Vec<Event> {
        self.state.lock().expect("not poisoned").delivered.clone()
    }

    fn refused(&self) -> Vec<Event> {
        self.state.lock().expect("not poisoned").refused.clone()
    }

    async fn event(&self, what: &str, matches: impl Fn(&Event) -> bool) -> Event {
        eventually(Duration::from_secs(20), what, || async {
            self.delivered().into_iter().find(|event| matches(event))
        })
        .await
    }
}

/// Posts `body` signed as the integration would; returns the status and the JSON answer.
async fn post_signed(addr: SocketAddr, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let timestamp = unix_now().to_string();
    let headers = [
        ("content-type".to_owned(), "application/json".to_owned()),
        (TIMESTAMP_HEADER.to_owned(), timestamp.clone()),
        (
            SIGNATURE_HEADER.to_owned(),
            sign(SECRET, &timestamp, body.as_bytes()),
        ),
    ];
    post(addr, &headers, &body).await
}

async fn post(addr: SocketAddr, headers: &[(String, String)], body: &str) -> (u16, Value) {
    let (status, answer) = http_with_headers(addr, "POST", MESSAGES_PATH, headers, Some(body)).await;
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

fn message(id: &str, conversation: &str, text: &str) -> Value {
    json!({
        "message_id": id, "conversation_id": conversation, "text": text,
        "customer": {"name": "Dana", "email": "dana@example.com"},
        "attributes": {"plan": "pro"},
    })
}

/// The customer's messages stored for the integration's conversation.
async fn customer_messages(gateway: &RunningGateway, conversation: &str) -> Vec<String> {
    let key = format!("acme:{conversation}");
    gateway
        .store
        .customer_view(CHANNEL, &key, None)
        .await
        .expect("redis answers")
        .map(|view| {
            view.messages
                .into_iter()
                .filter(|message| message.author == Author::Customer)
                .map(|message| message.text)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_message_is_answered_on_the_webhook_and_a_replay_is_stored_once() {
    let redis = RedisServer::start();
    let webhook = Webhook::default();
    let (url, _server) = webhook.start().await;
    let gateway = start_gateway(test_config(&redis, &api_config(&url))).await;

    let question = message("acme-msg-1", "cust-1", "How do I reset my password?");
    let (status, answer) = post_signed(gateway.local_addr, &question).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["duplicate"], false);

    let reply = webhook
        .event("the AI's answer on the webhook", |event| {
            event.role() == "ai" && event.text().to_lowercase().contains("password")
        })
        .await;
    assert_eq!(reply.body["type"], "message");
    assert_eq!(reply.body["integration"], "acme");
    assert_eq!(reply.body["conversation_id"], "cust-1");
    assert_eq!(reply.body["actions"], json!(["talk_to_human"]));
    assert_eq!(reply.id, reply.body["id"].as_str().unwrap_or_default());

    // The caller lost our answer and posts again, even re-signed later: stored once.
    let (status, answer) = post_signed(gateway.local_addr, &question).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["duplicate"], true);
    let (status, _) = post_signed(
        gateway.local_addr,
        &message("acme-msg-2", "cust-1", "Thanks, that worked."),
    )
    .await;
    assert_eq!(status, 202);
    let stored = eventually(Duration::from_secs(10), "the second message", || async {
        let stored = customer_messages(&gateway, "cust-1").await;
        (stored.len() >= 2).then_some(stored)
    })
    .await;
    assert_eq!(
        stored,
        ["How do I reset my password?", "Thanks, that worked."],
        "the replay was not stored again"
    );
    // Answered once: the replay did not reach triage a second time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answers = webhook
        .delivered()
        .into_iter()
        .filter(|event| event.text().to_lowercase().contains("reset"))
        .count();
    assert_eq!(answers, 1, "{:?}", webhook.delivered());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_missing_auth_gets_401_and_stores_nothing() {
    let redis = RedisServer::start();
    let webhook = Webhook::default();
    let (url, _server) = webhook.start().await;
    let gateway = start_gateway(test_config(&redis, &api_config(&url))).await;
    let body = message("forged-1", "cust-2", "Give me a refund").to_string();
    let now = unix_now().to_string();
    let json = ("content-type".to_owned(), "application/json".to_owned());
    let attempts = [
        vec![json.clone()],
        vec![
            json.clone(),
            (TIMESTAMP_HEADER.to_owned(), now.clone()),
            (
                SIGNATURE_HEADER.to_owned(),
                sign("a-guessed-secret-123", &now, body.as_bytes()),
            ),
        ],
        // A real signature captured an hour ago and replayed.
        vec![
            json.clone(),
            (TIMESTAMP_HEADER.to_owned(), (unix_now() - 3600).to_string()),
            (
                SIGNATURE_HEADER.to_owned(),
                sign(SECRET, &(unix_now() - 3600).to_string(), body.as_bytes()),
            ),
        ],
        vec![json.clone(), ("authorization".to_owned(), format!("Bearer {SECRET}"))],
    ];
    for headers in attempts {
        let (status, answer) = post(gateway.local_addr, &headers, &body).await;
        assert_eq!(status, 401, "{headers:?}: {answer}");
        assert_eq!(answer["error"], "unauthorized");
    }
    assert!(customer_messages(&gateway, "cust-2").await.is_empty());
    assert!(webhook.delivered().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_reaches_the_slack_desk_and_the_agents_reply_comes_back_to_the_webhook() {
    let redis = RedisServer::start();
    let webhook = Webhook::default();
    let (url, _server) = webhook.start().await;
    let slack = SlackStandIn::start().await;
    slack.set_user(AGENT, "Sam Rivera");
    let config = format!("{}\n{}", desk_config(&slack, "socket"), api_config(&url));
    let gateway = start_gateway(test_config(&redis, &config)).await;

    let (status, _) = post_signed(
        gateway.local_addr,
        &message("acme-msg-10", "cust-3", "My invoice INV-2041 was charged twice"),
    )
    .await;
    assert_eq!(status, 202);
    let ask = json!({"message_id": "acme-msg-11", "conversation_id": "cust-3", "kind": "human_request"});
    let (status, _) = post_signed(gateway.local_addr, &ask).await;
    assert_eq!(status, 202);

    let notice = webhook
        .event("the status event: a person is joining", |event| {
            event.body["type"] == "status" && event.text().contains("person")
        })
        .await;
    assert_eq!(notice.role(), "system");
    let parent = briefing(&slack).await;
    let desk_text = slack
        .posts()
        .iter()
        .map(|post| format!("{} {}", post.text, post.blocks))
        .collect::<String>();
    assert!(desk_text.contains("INV-2041"), "the desk sees the question");
    assert!(desk_text.contains("Dana"), "the desk sees who asks");

    slack.send_event(agent_reply(
        &parent.ts,
        "1800000100.000100",
        "Hi Dana, I've refunded the second charge.",
    ));
    let reply = webhook
        .event("the agent's reply on the webhook", |event| {
            event.text().contains("refunded the second charge")
        })
        .await;
    assert_eq!(reply.body["type"], "message");
    assert_eq!(reply.body["author"], json!({"role": "agent", "name": "Sam Rivera"}));
    assert_eq!(reply.body["conversation_id"], "cust-3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_is_down_gets_the_reply_when_it_is_back_and_retry_after_is_honoured() {
    let redis = RedisServer::start();
    // A port nothing listens on: the webhook is down when the answer is ready.
    let addr = {
        let listener = LoopbackListener::bind("webhook, down for now").await;
        listener.addr()
    };
    let url = format!("http://{addr}/events");
    let gateway = start_gateway(test_config(&redis, &api_config(&url))).await;

    let (status, _) = post_signed(
        gateway.local_addr,
        &message("acme-msg-20", "cust-4", "How do I reset my password?"),
    )
    .await;
    assert_eq!(status, 202);
    let mut client = redis.client();
    eventually(
        Duration::from_secs(10),
        "the answer parked for a retry in the outbox",
        || {
            let parked = crate::work::work_left(&mut client).parked;
            async move { (parked >= 1).then_some(()) }
        },
    )
    .await;

    // Back, but busy at first: it asks for 2 s, longer than the outbox's own backoff (50 ms
    // doubling to 400 ms here), so a second attempt sooner would be ignoring it.
    let webhook = Webhook::default();
    webhook.answer_next(StatusCode::TOO_MANY_REQUESTS, Some("2"));
    let _server = webhook.start_at(addr).await;
    let answer = webhook
        .event("the answer once the webhook is back", |event| {
            event.text().to_lowercase().contains("password")
        })
        .await;
    let refused = webhook.refused();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].id, answer.id, "the same event, retried");
    let waited = answer.at.duration_since(refused[0].at);
    assert!(
        waited >= Duration::from_millis(1900),
        "Retry-After: 2 was honoured, waited {waited:?}"
    );
    assert_eq!(webhook.delivered().len(), 1, "delivered once");
    let left = crate::work::work_left(&mut client);
    assert_eq!((left.dead, left.parked), (0, 0), "nothing given up, nothing left");
}
