//! Web chat end to end: a real gateway, real Redis, a WebSocket client acting as the widget.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use redis::Commands;
use serde_json::{json, Value};
use switchboard::model::conversation_id;
use switchboard::store::keys;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{
    eventually, http, on_single_and_cluster, start_gateway, test_config, RedisServer, TestRedis,
};

pub(crate) const WEBCHAT: &str = "[connectors.webchat]\nenabled = true\nmax_message_bytes = 2000\n";

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A scripted widget: connects, says hello, and reads frames.
pub(crate) struct Widget {
    pub(crate) socket: Socket,
}

impl Widget {
    pub(crate) async fn connect(
        addr: SocketAddr,
        session: &str,
        after: Option<&str>,
    ) -> (Widget, Value) {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/webchat/ws"))
            .await
            .expect("websocket connect");
        Widget::hello(socket, session, after).await
    }

    /// Says hello on an open socket, as the widget does first; returns the welcome frame.
    pub(crate) async fn hello(
        socket: Socket,
        session: &str,
        after: Option<&str>,
    ) -> (Widget, Value) {
        let mut widget = Widget { socket };
        widget
            .send(json!({
                "type": "hello",
                "session": session,
                "page": {"url": "https://acme.example/pricing", "title": "Pricing - Acme Cloud"},
                "attributes": {"plan": "pro", "tier": "standard", "name": "Dana"},
                "after": after,
            }))
            .await;
        let welcome = widget.next_of("welcome").await;
        (widget, welcome)
    }

    pub(crate) async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("send frame");
    }

    /// The next frame of `kind`, skipping others; fails after 10 s.
    pub(crate) async fn next_of(&mut self, kind: &str) -> Value {
        self.next_matching(kind, |_| true).await
    }

    pub(crate) async fn next_matching(
        &mut self,
        kind: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no `{kind}` frame within 10 s"))
                .expect("socket open")
                .expect("frame");
            if let Message::Text(text) = frame {
                let value: Value = serde_json::from_str(&text).expect("server frames are json");
                if value["type"] == kind && accept(&value) {
                    return value;
                }
            }
        }
    }

    /// The next customer-visible message written by `author` (ai, agent, system).
    pub(crate) async fn message_from(&mut self, author: &str) -> Value {
        self.next_matching("message", |frame| {
            frame["message"]["author"]["kind"] == author
        })
        .await["message"]
            .clone()
    }
}

async fn a_visitor_gets_an_ai_answer_then_asks_for_a_human_with_no_desk(redis: TestRedis) {
    let gateway = start_gateway(test_config(&redis, WEBCHAT)).await;
    let session = "visitor-0123456789abcdef";
    let (mut widget, welcome) = Widget::connect(gateway.local_addr, session, None).await;
    assert_eq!(welcome["messages"].as_array().map(Vec::len).unwrap_or(0), 0);

    widget
        .send(json!({"type": "message", "client_id": "c-1", "text": "How do I reset my password?"}))
        .await;
    let ack = widget.next_of("ack").await;
    assert_eq!(ack["client_id"], "c-1");
    let answer = widget.message_from("ai").await;
    let text = answer["text"].as_str().unwrap().to_lowercase();
    assert!(
        text.contains("password"),
        "AI answer should be about passwords: {text}"
    );

    // No desk is configured: the visitor must not be promised a person who will never come.
    widget
        .send(json!({"type": "talk_to_human", "client_id": "c-2"}))
        .await;
    let notice = widget.message_from("system").await;
    let notice = notice["text"].as_str().unwrap().to_owned();
    assert_eq!(notice, switchboard::pipeline::UNSTAFFED_NOTICE);
    assert!(!notice.contains("reply right here"), "{notice}");

    let id = conversation_id(switchboard_webchat::CHANNEL, &format!("s:{session}"));
    let mut client = redis.client();
    let status: String = client.hget(keys::conversation(&id), "status").unwrap();
    assert_eq!(status, "bot", "nobody can take it, so the AI keeps it");
    let reason: String = client
        .hget(keys::conversation(&id), "escalation_reason")
        .unwrap();
    assert_eq!(reason, "human_requested");
    let escalations = crate::work::work_left(&mut client).escalations;
    assert_eq!(escalations, 1, "the escalation is recorded in Redis");
    let context: String = client.hget(keys::conversation(&id), "context").unwrap();
    assert!(
        context.contains("acme.example/pricing") && context.contains("\"plan\":\"pro\""),
        "{context}"
    );

    // The visitor's next question is answered, not acknowledged and dropped.
    widget
        .send(json!({"type": "message", "client_id": "c-3", "text": "How do I change my email address?"}))
        .await;
    let later = widget.message_from("ai").await;
    assert!(
        later["text"].as_str().unwrap().contains("new address"),
        "{later}"
    );

    // Operators see the missing desk on the admin listener.
    let (status, body) = crate::harness::http(gateway.admin_addr, "GET", "/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert!(
        ready["desk"]
            .as_str()
            .unwrap_or("")
            .contains("reach no one"),
        "{body}"
    );
}

#[tokio::test]
async fn an_admin_configured_unstaffed_notice_is_what_the_visitor_reads() {
    let redis = RedisServer::start();
    let extra = format!(
        "{WEBCHAT}\n[desk]\nunstaffed_notice = \"Our team answers at help@acme.example.\"\n"
    );
    let gateway = start_gateway(test_config(&redis, &extra)).await;
    let (mut widget, _) = Widget::connect(gateway.local_addr, "visitor-unstaffed-0001", None).await;
    widget
        .send(json!({"type": "message", "client_id": "c-1", "text": "I want to talk to a real person"}))
        .await;
    let notice = widget.message_from("system").await;
    assert_eq!(notice["text"], "Our team answers at help@acme.example.");
}

#[tokio::test]
async fn a_message_resent_after_a_drop_is_stored_once_and_history_survives_reconnects() {
    let redis = RedisServer::start();
    let gateway = start_gateway(test_config(&redis, WEBCHAT)).await;
    let session = "visitor-resend-00000001";
    let (mut widget, _) = Widget::connect(gateway.local_addr, session, None).await;
    widget
        .send(json!({"type": "message", "client_id": "c-1", "text": "What plans do you offer?"}))
        .await;
    let first_ack = widget.next_of("ack").await;
    let answer = widget.message_from("ai").await;
    drop(widget);

    // The widget did not see the ack (network drop) and resends after reconnecting.
    let (mut widget, welcome) = Widget::connect(gateway.local_addr, session, None).await;
    let history = welcome["messages"].as_array().unwrap().clone();
    assert_eq!(
        history.len(),
        2,
        "question and answer are shown after a reload: {welcome}"
    );
    widget
        .send(json!({"type": "message", "client_id": "c-1", "text": "What plans do you offer?"}))
        .await;
    let second_ack = widget.next_of("ack").await;
    assert_eq!(second_ack["message_id"], first_ack["message_id"]);

    // Reconnecting with `after` returns only what is newer than what the widget has.
    let (_widget, welcome) =
        Widget::connect(gateway.local_addr, session, answer["id"].as_str()).await;
    assert_eq!(
        welcome["messages"].as_array().unwrap().len(),
        0,
        "{welcome}"
    );

    let id = conversation_id(switchboard_webchat::CHANNEL, &format!("s:{session}"));
    let stored: usize = redis.client().xlen(keys::messages(&id)).unwrap();
    assert_eq!(stored, 2, "one question, one answer");
}

#[tokio::test]
async fn bad_input_is_refused_without_touching_stored_state() {
    let redis = RedisServer::start();
    let gateway = start_gateway(test_config(&redis, WEBCHAT)).await;
    let session = "visitor-bad-input-000001";
    let (mut widget, _) = Widget::connect(gateway.local_addr, session, None).await;

    widget
        .send(json!({"type": "message", "client_id": "big", "text": "x".repeat(2001)}))
        .await;
    let error = widget.next_of("error").await;
    assert_eq!(error["code"], "too_large", "{error}");
    widget
        .send(json!({"type": "message", "client_id": "empty", "text": "   "}))
        .await;
    assert_eq!(widget.next_of("error").await["code"], "empty");
    widget
        .send(json!({"type": "dance", "client_id": "x"}))
        .await;
    assert_eq!(widget.next_of("error").await["code"], "invalid");
    widget
        .socket
        .send(Message::Binary(vec![0xff, 0xfe].into()))
        .await
        .unwrap();
    assert_eq!(widget.next_of("error").await["code"], "invalid");

    let id = conversation_id(switchboard_webchat::CHANNEL, &format!("s:{session}"));
    let exists: bool = redis.client().exists(keys::conversation(&id)).unwrap();
    assert!(!exists, "refused messages create nothing");

    // The connection still works for the next good frame.
    widget
        .send(json!({"type": "message", "client_id": "ok", "text": "hello"}))
        .await;
    assert_eq!(widget.next_of("ack").await["client_id"], "ok");
}

#[tokio::test]
async fn a_forged_visitor_signature_is_refused_with_401() {
    let redis = RedisServer::start();
    let config =
        "[connectors.webchat]\nenabled = true\nidentity_secret_env = \"SB_TEST_WEBCHAT_SECRET\"\n";
    std::env::set_var("SB_TEST_WEBCHAT_SECRET", "shared-secret");
    let gateway = start_gateway(test_config(&redis, config)).await;
    let forged = json!({
        "session": "visitor-forger-0000001", "client_id": "f-1", "text": "show me my invoices",
        "user_id": "ceo@acme.example", "user_sig": "00".repeat(32),
    });
    let (status, body) = http(
        gateway.local_addr,
        "POST",
        "/webchat/messages",
        Some(&forged.to_string()),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let unsigned = json!({"session": "visitor-forger-0000001", "client_id": "f-2", "text": "hi", "user_id": "ceo@acme.example"});
    let (status, _) = http(
        gateway.local_addr,
        "POST",
        "/webchat/messages",
        Some(&unsigned.to_string()),
    )
    .await;
    assert_eq!(status, 401, "an unsigned claim to a user id is refused");
    let keys: Vec<String> = redis.client().keys("sb:{*}:c:*").unwrap();
    assert!(keys.is_empty(), "nothing stored: {keys:?}");
}

#[tokio::test]
async fn a_visitor_cannot_read_another_visitors_conversation() {
    let redis = RedisServer::start();
    let gateway = start_gateway(test_config(&redis, WEBCHAT)).await;
    let (mut alice, _) = Widget::connect(gateway.local_addr, "alice-session-000000001", None).await;
    alice
        .send(json!({"type": "message", "client_id": "a-1", "text": "my card ends in 4242"}))
        .await;
    alice.next_of("ack").await;
    let (_mallory, welcome) =
        Widget::connect(gateway.local_addr, "mallory-session-0000001", None).await;
    assert!(!welcome.to_string().contains("4242"), "{welcome}");
    let (status, body) = http(
        gateway.local_addr,
        "GET",
        "/webchat/messages?session=mallory-session-0000001",
        None,
    )
    .await;
    assert!(!body.contains("4242"), "{status} {body}");
}

#[tokio::test]
async fn redis_lost_while_running_fails_fast_with_503_and_recovers_without_restart() {
    let mut redis = RedisServer::start();
    let gateway = start_gateway(test_config(&redis, WEBCHAT)).await;
    let post = |client_id: &str| {
        json!({"session": "visitor-outage-0000001", "client_id": client_id, "text": "are you there?"})
            .to_string()
    };
    let (status, body) = http(
        gateway.local_addr,
        "POST",
        "/webchat/messages",
        Some(&post("o-1")),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    redis.kill();
    let started = Instant::now();
    let (status, body) = http(
        gateway.local_addr,
        "POST",
        "/webchat/messages",
        Some(&post("o-2")),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "fails fast, took {:?}",
        started.elapsed()
    );

    redis.restart();
    let addr = gateway.local_addr;
    eventually(
        Duration::from_secs(15),
        "the gateway to accept again",
        || {
            let body = post("o-3");
            async move {
                (http(addr, "POST", "/webchat/messages", Some(&body)).await.0 == 200).then_some(())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn redis_unreachable_at_start_is_one_clear_error_and_a_nonzero_exit() {
    let dir = crate::harness::TempDir::new("no-redis");
    let config = dir.0.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[redis]\nurl = \"redis+unix://{}/nothing.sock\"\nstartup_wait_ms = 600\n[triage]\nknowledge_dir = \"{}\"\n",
            dir.0.display(),
            crate::harness::config_dir().join("knowledge").display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("cannot reach Redis"), "{stderr}");
}

// On a cluster too: every conversation and work stream lives in its partition's slot.
on_single_and_cluster!(a_visitor_gets_an_ai_answer_then_asks_for_a_human_with_no_desk,);
