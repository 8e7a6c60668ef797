//! The connector against the loopback Bot API stand-in, through the real teloxide client:
//! what a customer does in Telegram, and what the gateway and the customer then see.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use switchboard_api::{
    Author, Connector, ConnectorError, CustomerAction, Gateway, Health, InboundKind, Outbound,
};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::config::{Secret, TelegramConfig, TelegramMode};
use crate::convert::HUMAN_BUTTON_DATA;
use crate::standin::TelegramStandIn;
use crate::{MemoryLease, PollLease, TelegramConnector, SECRET_HEADER};
use switchboard_api::MemoryGateway;

const WAIT: Duration = Duration::from_secs(10);
const ADA: i64 = 4242;

fn config(standin: &TelegramStandIn) -> TelegramConfig {
    TelegramConfig {
        enabled: true,
        api_url: Some(standin.api_url()),
        poll_timeout_secs: 1,
        greeting: "Hello from support!".into(),
        bot_token: Some(Secret::new(standin.token())),
        ..TelegramConfig::default()
    }
}

struct Running {
    standin: TelegramStandIn,
    connector: Arc<TelegramConnector>,
    gateway: Arc<MemoryGateway>,
    task: JoinHandle<Result<(), ConnectorError>>,
}

/// A polling connector running against a fresh stand-in and fake gateway.
async fn running() -> Running {
    let standin = TelegramStandIn::start().await;
    let connector = Arc::new(TelegramConnector::new(config(&standin)).expect("builds"));
    let gateway = Arc::new(MemoryGateway::default());
    let task = spawn_run(&connector, &gateway);
    Running {
        standin,
        connector,
        gateway,
        task,
    }
}

fn spawn_run(
    connector: &Arc<TelegramConnector>,
    gateway: &Arc<MemoryGateway>,
) -> JoinHandle<Result<(), ConnectorError>> {
    let connector = Arc::clone(connector);
    let gateway: Arc<dyn Gateway> = gateway.clone();
    tokio::spawn(async move { connector.run(gateway).await })
}

fn outbound(author: Author, text: &str, actions: Vec<CustomerAction>) -> Outbound {
    Outbound {
        id: "out-1".into(),
        conversation_id: "conv-1".into(),
        channel: crate::CHANNEL,
        conversation_key: ADA.to_string(),
        author,
        text: text.into(),
        actions,
        reply_context: Default::default(),
        files: Vec::new(),
        maybe_sent: false,
    }
}

#[tokio::test]
async fn a_text_message_reaches_the_gateway() {
    let run = running().await;
    let update_id = run.standin.push_text(ADA, "Ada", "Where is my order?");
    let stored = run.gateway.wait_for_accepted(1, WAIT).await;
    assert_eq!(stored.len(), 1);
    let inbound = &stored[0];
    assert_eq!(inbound.channel, crate::CHANNEL);
    assert_eq!(inbound.conversation_key, ADA.to_string());
    assert_eq!(inbound.message_id, format!("tg:{update_id}"));
    assert_eq!(inbound.text, "Where is my order?");
    assert_eq!(inbound.author.id, ADA.to_string());
    assert!(inbound.author.verified);
    assert_eq!(inbound.author.display_name.as_deref(), Some("Ada Tester"));
    assert_eq!(run.connector.health().await, Health::Up);
    // teloxide spells methods `GetMe`, `GetUpdates`: the stand-in took them case-insensitively.
    assert!(run.standin.calls().iter().any(|m| m == "GetUpdates"));
    run.task.abort();
}

#[tokio::test]
async fn an_ai_answer_shows_the_button_and_an_agent_is_named() {
    let standin = TelegramStandIn::start().await;
    let connector = TelegramConnector::new(config(&standin)).expect("builds");
    let receipt = connector
        .send(&outbound(
            Author::Ai,
            "You can reset it under Settings.",
            vec![CustomerAction::TalkToHuman],
        ))
        .await
        .expect("sent");
    assert!(receipt.platform_message_id.is_some());
    connector
        .send(&outbound(
            Author::Agent { name: "Sam".into() },
            "Hi, Sam here. Let me check.",
            vec![],
        ))
        .await
        .expect("sent");
    let sent = standin.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].chat_id, ADA);
    assert_eq!(
        sent[0].text,
        "AI assistant: You can reset it under Settings."
    );
    let button = &sent[0].reply_markup["inline_keyboard"][0][0];
    assert_eq!(button["text"], "Talk to a human");
    assert_eq!(button["callback_data"], HUMAN_BUTTON_DATA);
    assert_eq!(
        sent[1].text,
        "Sam (support team): Hi, Sam here. Let me check."
    );
    assert!(
        sent[1].reply_markup.is_null(),
        "no button under agent replies"
    );
    assert_eq!(sent[1].entities[0]["type"], "bold");
    assert_eq!(sent[1].entities[0]["length"], "Sam (support team):".len());
}

#[tokio::test]
async fn a_button_press_becomes_a_human_request() {
    let run = running().await;
    let update_id = run.standin.push_callback(ADA, "Ada", HUMAN_BUTTON_DATA);
    let stored = run.gateway.wait_for_accepted(1, WAIT).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].kind, InboundKind::HumanRequest);
    assert_eq!(stored[0].message_id, format!("tg:{update_id}"));
    assert_eq!(stored[0].conversation_key, ADA.to_string());
    // The button stops spinning.
    for _ in 0..100 {
        if !run.standin.answered_callbacks().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(run.standin.answered_callbacks(), ["cbq-1"]);
    run.task.abort();
}

#[tokio::test]
async fn a_replayed_update_is_stored_once_and_the_next_is_not_lost() {
    let run = running().await;
    let first = run.standin.push_text(ADA, "Ada", "first");
    run.gateway.wait_for_accepted(1, WAIT).await;
    // As after a crash before the offset moved: Telegram hands the update out again.
    assert!(run.standin.replay_update(first));
    let tg_first = format!("tg:{first}");
    assert_eq!(run.gateway.wait_for_attempts(&tg_first, 2, WAIT).await, 2);
    run.standin.push_text(ADA, "Ada", "second");
    let stored = run.gateway.wait_for_accepted(2, WAIT).await;
    let texts: Vec<&str> = stored.iter().map(|inbound| inbound.text.as_str()).collect();
    assert_eq!(texts, ["first", "second"]);
    run.task.abort();
}

#[tokio::test]
async fn storage_down_keeps_the_update_until_it_is_stored() {
    let run = running().await;
    run.gateway.set_unavailable(true);
    let id = run.standin.push_text(ADA, "Ada", "are you there?");
    let tg_id = format!("tg:{id}");
    run.gateway.wait_for_attempts(&tg_id, 1, WAIT).await;
    assert_eq!(
        run.standin.unconfirmed(),
        [id],
        "not confirmed while storage is down"
    );
    assert!(matches!(run.connector.health().await, Health::Down(_)));
    run.gateway.set_unavailable(false);
    let stored = run.gateway.wait_for_accepted(1, WAIT).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].text, "are you there?");
    run.task.abort();
}

#[tokio::test]
async fn a_429_surfaces_as_rate_limited_with_retry_after() {
    let standin = TelegramStandIn::start().await;
    let connector = TelegramConnector::new(config(&standin)).expect("builds");
    standin.fail_next_with_429(1, 7);
    let error = connector
        .send(&outbound(Author::Ai, "hello", vec![]))
        .await
        .expect_err("rate limited");
    match error {
        ConnectorError::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_secs(7))
        }
        other => panic!("{other:?}"),
    }
    assert!(another_chat_is_not_held_back(&connector, &standin).await);

    // The chat's next message is handed back at once with the wait left, not held open
    // against the outbox's send timeout; nothing reaches Telegram early.
    let started = std::time::Instant::now();
    let error = connector
        .send(&outbound(Author::Ai, "still there?", vec![]))
        .await
        .expect_err("still held");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    match error {
        ConnectorError::RateLimited { retry_after, .. } => assert!(
            retry_after > Duration::from_secs(5) && retry_after <= Duration::from_secs(7),
            "{retry_after:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        standin.sent().len(),
        1,
        "only the other chat's message was sent"
    );
}

async fn another_chat_is_not_held_back(
    connector: &TelegramConnector,
    standin: &TelegramStandIn,
) -> bool {
    // Another chat is not held back by the first chat's retry_after.
    let mut other = outbound(Author::Ai, "hi", vec![]);
    other.conversation_key = "777".into();
    connector.send(&other).await.is_ok() && standin.sent().len() == 1
}

#[tokio::test]
async fn a_revoked_token_stops_the_connector_with_a_clear_error() {
    let standin = TelegramStandIn::start().await;
    standin.revoke_token();
    let connector = Arc::new(TelegramConnector::new(config(&standin)).expect("builds"));
    let gateway = Arc::new(MemoryGateway::default());
    let result = tokio::time::timeout(WAIT, spawn_run(&connector, &gateway))
        .await
        .expect("run returns")
        .expect("no panic");
    let error = result.expect_err("auth error");
    assert!(matches!(error, ConnectorError::Auth { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with("telegram: "), "{message}");
    assert!(
        message.contains("bot token rejected by getMe (401)"),
        "{message}"
    );
    match connector.health().await {
        Health::Down(reason) => assert!(reason.contains("getMe (401)"), "{reason}"),
        Health::Up => panic!("health says up"),
    }
    let send = connector.send(&outbound(Author::Ai, "hi", vec![])).await;
    assert!(matches!(send, Err(ConnectorError::Auth { .. })), "{send:?}");
}

#[tokio::test]
async fn a_token_revoked_while_polling_stops_the_loop() {
    let run = running().await;
    run.standin.push_text(ADA, "Ada", "hi");
    run.gateway.wait_for_accepted(1, WAIT).await;
    run.standin.revoke_token();
    let result = tokio::time::timeout(WAIT, run.task)
        .await
        .expect("run returns")
        .expect("no panic");
    let error = result.expect_err("auth error").to_string();
    assert!(error.contains("getUpdates (401)"), "{error}");
}

#[tokio::test]
async fn media_and_edits_are_stored_as_what_they_are() {
    let run = running().await;
    run.standin.push_message(
        ADA,
        "Ada",
        json!({"sticker": {"file_id": "s1", "emoji": "😀"}}),
    );
    run.standin.push_message(
        ADA,
        "Ada",
        json!({"location": {"latitude": 52.5, "longitude": 13.4}}),
    );
    run.standin.push_edit(ADA, "Ada", 1, "fixed typo");
    let stored = run.gateway.wait_for_accepted(3, WAIT).await;
    let texts: Vec<&str> = stored.iter().map(|inbound| inbound.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "[sticker 😀]",
            "[location 52.50000, 13.40000]",
            "(edited) fixed typo"
        ]
    );
    run.task.abort();
}

#[tokio::test]
async fn unreadable_and_unsupported_updates_are_declined_or_skipped() {
    let run = running().await;
    run.standin
        .push_message(ADA, "Ada", json!({"game": {"title": "Snake"}}));
    let example = include_str!("../../tests/fixtures/10_inline_query.json");
    let inline: Value = serde_json::from_str(example).expect("example parses");
    run.standin.push_update(inline);
    run.standin
        .push_update(json!({"update_id": 0, "poll": {"id": "1"}}));
    run.standin.push_text(ADA, "Ada", "still here");
    let stored = run.gateway.wait_for_accepted(1, WAIT).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].text, "still here");
    let sent = run.standin.wait_for_sent(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text.contains("can't read"), "{}", sent[0].text);
    run.task.abort();
}

#[tokio::test]
async fn group_messages_are_ignored_and_start_greets() {
    let run = running().await;
    run.standin.push_text(-1001234, "Bob", "hello everyone");
    run.standin.push_text(ADA, "Ada", "/start");
    run.standin.push_text(ADA, "Ada", "my question");
    let stored = run.gateway.wait_for_accepted(1, WAIT).await;
    let sent = run.standin.wait_for_sent(1, WAIT).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].text, "my question");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].chat_id, ADA);
    assert_eq!(sent[0].text, "Hello from support!");
    assert!(
        run.gateway.attempts().len() == 1,
        "neither the group nor /start stored"
    );
    run.task.abort();
}

#[tokio::test]
async fn with_a_lease_only_one_instance_polls() {
    let standin = TelegramStandIn::start().await;
    let lease = MemoryLease::default();
    let gateway = Arc::new(MemoryGateway::default());
    let mut tasks = Vec::new();
    let handles = [lease.clone(), lease.another_instance()];
    for handle in handles.clone() {
        let connector = TelegramConnector::new(config(&standin))
            .expect("builds")
            .with_lease(Arc::new(handle) as Arc<dyn PollLease>);
        tasks.push(spawn_run(&Arc::new(connector), &gateway));
    }
    for text in ["one", "two", "three"] {
        standin.push_text(ADA, "Ada", text);
    }
    let stored = gateway.wait_for_accepted(3, WAIT).await;
    assert_eq!(stored.len(), 3);
    // The other instance asked for the lease, was turned away, and did not poll.
    let deadline = tokio::time::Instant::now() + WAIT;
    while handles.iter().map(MemoryLease::refused).sum::<u64>() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no instance was refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(standin.conflicts(), 0);
    assert_eq!(
        gateway.attempts().len(),
        3,
        "each update handled by one instance"
    );
    for task in tasks {
        task.abort();
    }
}

fn webhook_connector(standin: &TelegramStandIn) -> TelegramConnector {
    let mut config = config(standin);
    config.mode = TelegramMode::Webhook;
    config.webhook_secret = Some(Secret::new("s3cret-token"));
    TelegramConnector::new(config).expect("builds")
}

async fn post(router: &axum::Router, secret: Option<&str>, body: &str) -> StatusCode {
    let mut request = Request::post("/telegram/webhook").header("content-type", "application/json");
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    let request = request.body(Body::from(body.to_string())).expect("request");
    router
        .clone()
        .oneshot(request)
        .await
        .expect("router answers")
        .status()
}

#[tokio::test]
async fn webhook_checks_the_secret_and_stores_the_update() {
    let standin = TelegramStandIn::start().await;
    let connector = webhook_connector(&standin);
    let gateway = Arc::new(MemoryGateway::default());
    let router = connector
        .routes(gateway.clone() as Arc<dyn Gateway>)
        .expect("webhook mode serves a route");
    let mut update: Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/01_message_with_text.json"
    ))
    .expect("example parses");
    update["message"]["text"] = json!("I was charged twice");
    let body = update.to_string();

    assert_eq!(post(&router, None, &body).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(&router, Some("s3cret-tokeN"), &body).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(gateway.attempts().is_empty());

    assert_eq!(
        post(&router, Some("s3cret-token"), &body).await,
        StatusCode::OK
    );
    // Telegram retries a webhook delivery: stored once.
    assert_eq!(
        post(&router, Some("s3cret-token"), &body).await,
        StatusCode::OK
    );
    let stored = gateway.accepted();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].text, "I was charged twice");
    assert_eq!(stored[0].message_id, "tg:10000");

    gateway.set_unavailable(true);
    update["update_id"] = json!(10001);
    assert_eq!(
        post(&router, Some("s3cret-token"), &update.to_string()).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        post(&router, Some("s3cret-token"), "not json").await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn polling_mode_serves_no_route() {
    let standin = TelegramStandIn::start().await;
    let connector = TelegramConnector::new(config(&standin)).expect("builds");
    let gateway: Arc<dyn Gateway> = Arc::new(MemoryGateway::default());
    assert!(connector.routes(gateway).is_none());
}

#[tokio::test]
async fn without_a_lease_two_pollers_conflict_but_nothing_is_lost() {
    // Why the lease exists: Telegram ends one of two concurrent polls with 409 Conflict.
    let standin = TelegramStandIn::start().await;
    let gateway = Arc::new(MemoryGateway::default());
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let connector = Arc::new(TelegramConnector::new(config(&standin)).expect("builds"));
        tasks.push(spawn_run(&connector, &gateway));
    }
    for _ in 0..100 {
        if standin.conflicts() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(standin.conflicts() > 0);
    standin.push_text(ADA, "Ada", "hello?");
    let stored = gateway.wait_for_accepted(1, WAIT).await;
    assert_eq!(stored.len(), 1);
    for task in tasks {
        task.abort();
    }
}

#[tokio::test]
async fn the_rating_buttons_are_shown_and_a_press_is_stored_as_the_number() {
    let run = running().await;
    run.connector
        .send(&outbound(
            Author::System,
            "How did we do? Rate us from 1 to 5.",
            vec![CustomerAction::RateService],
        ))
        .await
        .expect("sent");
    let sent = run.standin.sent();
    assert_eq!(sent.len(), 1);
    let keyboard = sent[0].reply_markup["inline_keyboard"]
        .as_array()
        .expect("a keyboard");
    assert_eq!(keyboard.len(), 1, "one row: {keyboard:?}");
    let row: Vec<(&str, &str)> = keyboard[0]
        .as_array()
        .expect("a row")
        .iter()
        .map(|button| {
            (
                button["text"].as_str().unwrap_or_default(),
                button["callback_data"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        row,
        [
            ("1", "sb:rate:1"),
            ("2", "sb:rate:2"),
            ("3", "sb:rate:3"),
            ("4", "sb:rate:4"),
            ("5", "sb:rate:5"),
        ]
    );

    let update_id = run.standin.push_callback(ADA, "Ada", "sb:rate:4");
    let stored = run.gateway.wait_for_accepted(1, WAIT).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].kind, InboundKind::Text);
    assert_eq!(stored[0].text, "4");
    assert_eq!(stored[0].message_id, format!("tg:{update_id}"));
    assert_eq!(stored[0].conversation_key, ADA.to_string());
    for _ in 0..100 {
        if !run.standin.answered_callbacks().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(run.standin.answered_callbacks(), ["cbq-1"]);
    run.task.abort();
}

#[tokio::test]
async fn forgetting_deletes_every_part_sent_and_leaves_what_telegram_no_longer_deletes() {
    let standin = TelegramStandIn::start().await;
    let connector = TelegramConnector::new(config(&standin)).expect("builds");
    // Over Telegram's 4096 characters: two messages, both in the receipt.
    let long = "word ".repeat(1_000);
    let receipt = connector
        .send(&outbound(Author::Ai, &long, vec![]))
        .await
        .expect("sent");
    assert_eq!(receipt.earlier_message_ids.len(), 1, "{receipt:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let sent_at = |id: &str, sent_ms: u64| switchboard_api::SentMessage {
        platform_message_id: id.to_owned(),
        sent_ms,
    };
    let mut sent: Vec<_> = (receipt.earlier_message_ids.iter())
        .chain(receipt.platform_message_id.iter())
        .map(|id| sent_at(id, now))
        .collect();
    // Sent three days ago: a bot may delete its messages for 48 hours only.
    sent.push(sent_at("77", now - 72 * 3_600_000));
    let forgotten = connector
        .forget_sent(&ADA.to_string(), &sent)
        .await
        .expect("forgotten");
    assert_eq!((forgotten.deleted, forgotten.left), (2, 1));
    let ids: Vec<i64> = standin.sent().iter().map(|sent| sent.message_id).collect();
    assert_eq!(
        standin.deleted(),
        ids.iter().map(|id| (ADA, *id)).collect::<Vec<_>>()
    );
    // A second run (after a failure elsewhere) finds them gone: still counted as deleted.
    let again = connector
        .forget_sent(&ADA.to_string(), &sent)
        .await
        .unwrap();
    assert_eq!((again.deleted, again.left), (2, 1));
}
