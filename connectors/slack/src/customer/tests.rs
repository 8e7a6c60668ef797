//! The Slack customer channel against the loopback stand-in, through the real slack-morphism
//! client and Socket Mode, with the api crate's in-memory gateway.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_api::{
    Author, Connector, ConnectorError, CustomerAction, InboundKind, MemoryGateway, Outbound,
};
use tower::ServiceExt;

use crate::app::events_http::percent_encode;
use crate::config::Secret;
use crate::standin::{block_actions, event_callback, signed_request, SlackStandIn};
use crate::{SlackCustomerConfig, SlackCustomerConnector, SlackMode};

const SHARED: &str = "C0SHARED";
const CUSTOMER: &str = "U0CUSTADA";
const SECRET: &str = "customer-signing-secret";
const WAIT: Duration = Duration::from_secs(10);

fn config(slack: &SlackStandIn, mode: SlackMode) -> SlackCustomerConfig {
    SlackCustomerConfig {
        enabled: true,
        mode,
        channels: vec![SHARED.into()],
        api_url: Some(slack.api_url()),
        posts_per_second_per_channel: 50.0,
        bot_token: Some(Secret::new("xoxb-customers")),
        app_token: Some(Secret::new("xapp-customers")),
        signing_secret: Some(Secret::new(SECRET)),
        ..SlackCustomerConfig::default()
    }
}

/// A connector running in Socket Mode against the stand-in, with its fake gateway.
async fn running(slack: &SlackStandIn) -> (Arc<SlackCustomerConnector>, Arc<MemoryGateway>) {
    slack.set_user_with_email(CUSTOMER, "Ada", "ada@example.com");
    let connector = Arc::new(
        SlackCustomerConnector::new(config(slack, SlackMode::Socket)).expect("builds offline"),
    );
    let gateway = Arc::new(MemoryGateway::default());
    let (run, sink) = (connector.clone(), gateway.clone());
    tokio::spawn(async move { run.run(sink).await });
    let deadline = tokio::time::Instant::now() + WAIT;
    while slack.socket_clients() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (connector, gateway)
}

fn customer_message(ts: &str, thread_ts: Option<&str>, text: &str) -> Value {
    let mut event = json!({"type": "message", "channel": SHARED, "user": CUSTOMER, "text": text,
                           "ts": ts, "event_ts": ts, "channel_type": "channel"});
    if let Some(thread_ts) = thread_ts {
        event["thread_ts"] = json!(thread_ts);
    }
    event
}

fn outbound(key: &str, author: Author, text: &str, actions: Vec<CustomerAction>) -> Outbound {
    Outbound {
        id: "7-0".into(),
        conversation_id: "conv-1".into(),
        channel: crate::CHANNEL,
        conversation_key: key.into(),
        author,
        text: text.into(),
        actions,
        reply_context: Default::default(),
        files: Vec::new(),
        maybe_sent: false,
    }
}

#[tokio::test]
async fn a_top_level_message_starts_a_conversation_and_thread_replies_continue_it() {
    let slack = SlackStandIn::start().await;
    let (_connector, gateway) = running(&slack).await;

    let first = slack.send_event(customer_message(
        "1700000000.000100",
        None,
        "How do I reset my password?",
    ));
    assert!(slack.wait_for_ack(&first, WAIT).await, "envelope acked");
    slack.send_event(customer_message(
        "1700000050.000200",
        Some("1700000000.000100"),
        "I still get an error &amp; no email",
    ));
    let stored = gateway.wait_for_accepted(2, WAIT).await;
    assert_eq!(stored.len(), 2, "{stored:?}");

    let question = &stored[0];
    assert_eq!(question.channel, crate::CHANNEL);
    assert_eq!(question.conversation_key, "C0SHARED:1700000000.000100");
    assert_eq!(question.message_id, "slack:C0SHARED:1700000000.000100");
    assert_eq!(question.kind, InboundKind::Text);
    assert_eq!(question.text, "How do I reset my password?");
    assert_eq!(question.author.id, CUSTOMER);
    assert_eq!(question.author.display_name.as_deref(), Some("Ada"));
    assert_eq!(question.author.email.as_deref(), Some("ada@example.com"));
    assert!(question.author.verified);

    let reply = &stored[1];
    assert_eq!(
        reply.conversation_key, question.conversation_key,
        "same thread, same conversation"
    );
    assert_eq!(reply.message_id, "slack:C0SHARED:1700000050.000200");
    assert_eq!(reply.text, "I still get an error & no email");
}

#[tokio::test]
async fn the_bots_own_posts_other_channels_and_edits_are_ignored_and_redeliveries_dedupe() {
    let slack = SlackStandIn::start().await;
    let (_connector, gateway) = running(&slack).await;

    let own = json!({"type": "message", "channel": SHARED, "user": slack.bot_user_id(),
                     "bot_id": "B0STANDINBOT", "text": "*AI assistant:* hi",
                     "ts": "1700000001.000100", "thread_ts": "1700000000.000100"});
    let elsewhere = json!({"type": "message", "channel": "C0TEAMONLY", "user": CUSTOMER,
                           "text": "internal chatter", "ts": "1700000002.000100"});
    let edit = json!({"type": "message", "subtype": "message_changed", "channel": SHARED,
                      "hidden": true, "ts": "1700000003.000100",
                      "message": {"type": "message", "user": CUSTOMER, "text": "edited",
                                  "ts": "1700000000.000100"}});
    for event in [own, elsewhere, edit] {
        let envelope = slack.send_event(event);
        assert!(
            slack.wait_for_ack(&envelope, WAIT).await,
            "ignored events are acked"
        );
    }
    // Slack redelivers the same event (a retry after a missed ack): stored once.
    let question = customer_message("1700000010.000100", None, "Where is my invoice?");
    slack.send_callback(event_callback("EvRetry0001", question.clone()));
    let replay = slack.send_callback(event_callback("EvRetry0001", question));
    assert!(slack.wait_for_ack(&replay, WAIT).await);

    // The customer writes again: once that is stored, a second copy would have been too.
    let next = customer_message("1700000020.000100", None, "Thanks!");
    slack.send_callback(event_callback("EvNext0001", next));
    let stored = gateway.wait_for_accepted(2, WAIT).await;
    let texts: Vec<&str> = stored.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["Where is my invoice?", "Thanks!"]);
}

#[tokio::test]
async fn answers_are_posted_in_the_thread_with_the_human_button_and_agents_are_named() {
    let slack = SlackStandIn::start().await;
    let connector =
        SlackCustomerConnector::new(config(&slack, SlackMode::Socket)).expect("builds offline");
    let key = "C0SHARED:1700000000.000100";

    let receipt = connector
        .send(&outbound(
            key,
            Author::Ai,
            "Use the reset link on the sign-in page.",
            vec![CustomerAction::TalkToHuman],
        ))
        .await
        .expect("the AI's answer posted");
    connector
        .send(&outbound(
            key,
            Author::Agent { name: "Sam".into() },
            "I've sent you a new link.",
            vec![],
        ))
        .await
        .expect("the agent's reply posted");

    let posts = slack.posts();
    assert_eq!(posts.len(), 2);
    let answer = &posts[0];
    assert_eq!(answer.channel, SHARED);
    assert_eq!(answer.thread_ts.as_deref(), Some("1700000000.000100"));
    assert_eq!(
        receipt.platform_message_id.as_deref(),
        Some(answer.ts.as_str())
    );
    assert!(
        answer.text.starts_with("*AI assistant:*"),
        "{}",
        answer.text
    );
    let blocks = answer.blocks.to_string();
    assert!(
        blocks.contains("sb_human") && blocks.contains("Talk to a human"),
        "{blocks}"
    );

    let agent = &posts[1];
    assert_eq!(agent.thread_ts.as_deref(), Some("1700000000.000100"));
    assert_eq!(
        agent.text,
        "*Sam (support team):* I've sent you a new link."
    );
    assert!(agent.blocks.is_null(), "no button under an agent's reply");
}

#[tokio::test]
async fn pressing_talk_to_a_human_becomes_a_human_request_once() {
    let slack = SlackStandIn::start().await;
    let (_connector, gateway) = running(&slack).await;

    let press = block_actions(
        CUSTOMER,
        SHARED,
        "1700000001.000300",
        "1700000000.000100",
        "sb_human",
        "13345224609.738474920.8088930838d88f008e0",
    );
    let envelope = slack.send_interaction(press.clone());
    assert!(
        slack.wait_for_ack(&envelope, WAIT).await,
        "interaction acked"
    );
    let again = slack.send_interaction(press);
    assert!(slack.wait_for_ack(&again, WAIT).await, "redelivery acked");
    // The customer writes next: once that is stored, a second press would have been too.
    let next = customer_message("1700000020.000100", None, "Thanks!");
    slack.send_callback(event_callback("EvNext0002", next));
    let stored = gateway.wait_for_accepted(2, WAIT).await;
    assert_eq!(stored.len(), 2, "a redelivered press is stored once");
    assert_eq!(stored[1].text, "Thanks!");
    let request = &stored[0];
    assert_eq!(request.kind, InboundKind::HumanRequest);
    assert_eq!(request.conversation_key, "C0SHARED:1700000000.000100");
    assert_eq!(
        request.message_id,
        "slack:i:13345224609.738474920.8088930838d88f008e0"
    );
    assert_eq!(request.author.email.as_deref(), Some("ada@example.com"));
}

#[tokio::test]
async fn a_429_is_rate_limited_and_a_revoked_token_is_an_auth_error() {
    let slack = SlackStandIn::start().await;
    let connector =
        SlackCustomerConnector::new(config(&slack, SlackMode::Socket)).expect("builds offline");
    let key = "C0SHARED:1700000000.000100";
    slack.fail_next_with_429(1, 3);
    let limited = connector
        .send(&outbound(key, Author::Ai, "hello", vec![]))
        .await
        .expect_err("429");
    match limited {
        ConnectorError::RateLimited {
            connector,
            retry_after,
        } => {
            assert_eq!(connector, "slack customers");
            assert_eq!(retry_after, Duration::from_secs(3));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(slack.posts().is_empty());

    let bad_key = connector
        .send(&outbound("no-thread", Author::Ai, "hello", vec![]))
        .await
        .expect_err("malformed key");
    assert!(!bad_key.is_retryable(), "{bad_key}");

    let mut revoked = config(&slack, SlackMode::Socket);
    revoked.bot_token = Some(Secret::new("xoxb-revoked"));
    let revoked = SlackCustomerConnector::new(revoked).expect("builds offline");
    let error = revoked
        .run(Arc::new(MemoryGateway::default()))
        .await
        .expect_err("auth.test refuses the token");
    assert!(matches!(error, ConnectorError::Auth { .. }), "{error:?}");
    assert!(error.to_string().starts_with("slack customers:"), "{error}");
}

#[tokio::test]
async fn the_events_api_verifies_signatures_and_takes_events_and_button_presses() {
    let slack = SlackStandIn::start().await;
    slack.set_user(CUSTOMER, "Ada");
    let connector =
        SlackCustomerConnector::new(config(&slack, SlackMode::EventsApi)).expect("builds offline");
    let gateway = Arc::new(MemoryGateway::default());
    let router = connector
        .routes(gateway.clone())
        .expect("events_api mode serves a route");
    let now = crate::signature::unix_now();
    let path = "/slack/customer-events";

    let body = event_callback(
        "EvHttp0001",
        customer_message("1700000020.000100", None, "Hello from the community"),
    )
    .to_string();
    let forged = signed_request("wrong-secret", &body, now).into_request(path);
    let response = router.clone().oneshot(forged).await.expect("response");
    assert_eq!(response.status(), 401);

    let signed = signed_request(SECRET, &body, now).into_request(path);
    let response = router.clone().oneshot(signed).await.expect("response");
    assert_eq!(response.status(), 200);

    let press = block_actions(
        CUSTOMER,
        SHARED,
        "1700000021.000100",
        "1700000020.000100",
        "sb_human",
        "trigger-1",
    );
    let form = format!("payload={}", percent_encode(&press.to_string()));
    let mut request = signed_request(SECRET, &form, now);
    request.headers[0].1 = "application/x-www-form-urlencoded".into();
    let response = router
        .clone()
        .oneshot(request.into_request(path))
        .await
        .expect("response");
    assert_eq!(response.status(), 200);

    let stored = gateway.accepted();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0].text, "Hello from the community");
    assert_eq!(
        stored[0].author.email, None,
        "no email without users:read.email"
    );
    assert_eq!(stored[1].kind, InboundKind::HumanRequest);
    assert_eq!(stored[1].conversation_key, "C0SHARED:1700000020.000100");
}

#[tokio::test]
async fn the_rating_buttons_are_posted_and_a_press_is_stored_as_the_number() {
    let slack = SlackStandIn::start().await;
    let (connector, gateway) = running(&slack).await;
    let key = "C0SHARED:1700000000.000100";

    connector
        .send(&outbound(
            key,
            Author::System,
            "How did we do? Rate us from 1 to 5.",
            vec![CustomerAction::RateService],
        ))
        .await
        .expect("the question posted");
    let posts = slack.posts();
    assert_eq!(posts.len(), 1);
    let blocks = posts[0].blocks.as_array().expect("blocks").clone();
    let actions = blocks
        .iter()
        .find(|block| block["type"] == "actions")
        .expect("an actions block");
    let buttons: Vec<(&str, &str, &str)> = actions["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .map(|button| {
            (
                button["action_id"].as_str().unwrap_or_default(),
                button["value"].as_str().unwrap_or_default(),
                button["text"]["text"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        buttons,
        [
            ("sb_rate_1", "1", "1"),
            ("sb_rate_2", "2", "2"),
            ("sb_rate_3", "3", "3"),
            ("sb_rate_4", "4", "4"),
            ("sb_rate_5", "5", "5"),
        ]
    );
    assert!(!posts[0].blocks.to_string().contains("sb_human"));

    let press = block_actions(
        CUSTOMER,
        SHARED,
        "1700000001.000300",
        "1700000000.000100",
        "sb_rate_4",
        "13345224609.738474920.rating",
    );
    slack.send_interaction(press);
    let stored = gateway.wait_for_accepted(1, WAIT).await;
    assert_eq!(stored.len(), 1);
    let rating = &stored[0];
    assert_eq!(rating.kind, InboundKind::Text);
    assert_eq!(rating.text, "4");
    assert_eq!(rating.conversation_key, key);
    assert_eq!(rating.message_id, "slack:i:13345224609.738474920.rating");
}

/// Bytes that are not valid UTF-8, so nothing can pass them along as text.
fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) | 0x80)
        .collect()
}

fn file_share(ts: &str, thread_ts: Option<&str>, text: &str, files: Vec<Value>) -> Value {
    let mut event = customer_message(ts, thread_ts, text);
    event["subtype"] = json!("file_share");
    event["files"] = json!(files);
    event["upload"] = json!(false);
    event
}

#[tokio::test]
async fn a_customers_shared_file_reaches_the_gateway_with_its_bytes() {
    let slack = SlackStandIn::start().await;
    let (_connector, gateway) = running(&slack).await;
    let screenshot = binary(20_000, 1);
    let hosted = slack.host_file("error.png", "image/png", &screenshot);
    slack.send_event(file_share(
        "1700000100.000100",
        Some("1700000000.000100"),
        "",
        vec![hosted],
    ));
    let stored = gateway.wait_for_accepted(1, WAIT).await;
    assert_eq!(stored.len(), 1, "a message of only a file is stored");
    let inbound = &stored[0];
    assert_eq!(inbound.conversation_key, "C0SHARED:1700000000.000100");
    assert_eq!(inbound.text, "");
    let [file] = &inbound.files[..] else {
        panic!("one file: {:?}", inbound.files);
    };
    assert_eq!(
        (file.name.as_str(), file.content_type.as_str()),
        ("error.png", "image/png")
    );
    assert_eq!(file.bytes.as_deref(), Some(&screenshot[..]));
    assert_eq!(slack.file_downloads(), 1);
}

#[tokio::test]
async fn an_oversized_shared_file_is_not_kept_and_the_customer_told() {
    let slack = SlackStandIn::start().await;
    slack.set_user_with_email(CUSTOMER, "Ada", "ada@example.com");
    let connector = Arc::new(
        SlackCustomerConnector::new(config(&slack, SlackMode::Socket))
            .expect("builds offline")
            .with_max_file_bytes(1024),
    );
    let gateway = Arc::new(MemoryGateway::default());
    let (run, sink) = (connector.clone(), gateway.clone());
    tokio::spawn(async move { run.run(sink).await });
    let deadline = tokio::time::Instant::now() + WAIT;
    while slack.socket_clients() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let hosted = slack.host_file("backup.zip", "application/zip", &binary(2048, 2));
    slack.send_event(file_share(
        "1700000200.000100",
        Some("1700000000.000100"),
        "my backup",
        vec![hosted],
    ));
    let stored = gateway.wait_for_accepted(1, WAIT).await;
    let file = &stored[0].files[0];
    assert_eq!(
        (file.name.as_str(), file.size, file.bytes.is_none()),
        ("backup.zip", 2048, true)
    );
    // Socket Mode events lose Slack's `size` (slack-morphism's file model has none), so the
    // limit is enforced from the download's Content-Length, before its body is read.
    let deadline = tokio::time::Instant::now() + WAIT;
    let notice = loop {
        let found = slack.posts().into_iter().find(|post| {
            post.thread_ts.as_deref() == Some("1700000000.000100")
                && post.text.starts_with("Not received")
        });
        if found.is_some() || tokio::time::Instant::now() >= deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        notice.map(|post| post.text).as_deref(),
        Some("Not received: backup.zip is 2 KB; the limit is 1 KB.")
    );
}

#[tokio::test]
async fn an_agents_file_is_uploaded_into_the_customers_thread() {
    let slack = SlackStandIn::start().await;
    let connector =
        SlackCustomerConnector::new(config(&slack, SlackMode::Socket)).expect("builds offline");
    assert!(
        connector.capabilities().files,
        "the outbox hands it the bytes"
    );
    let guide = binary(4_000, 3);
    let mut reply = outbound(
        "C0SHARED:1700000000.000100",
        Author::Agent { name: "Sam".into() },
        "Here is the guide.",
        vec![],
    );
    reply.files = vec![switchboard_api::FileRef {
        id: "f1".into(),
        name: "guide.pdf".into(),
        content_type: "application/pdf".into(),
        size: guide.len() as u64,
        url: Some("https://support.example.com/files/c/f1?exp=1&sig=a".into()),
        bytes: Some(bytes::Bytes::from(guide.clone())),
    }];
    connector.send(&reply).await.expect("delivered");
    let posts = slack.posts();
    assert!(
        posts.iter().any(|post| post.channel == SHARED
            && post.thread_ts.as_deref() == Some("1700000000.000100")
            && post.text == "*Sam (support team):* Here is the guide."),
        "{posts:?}"
    );
    let files = slack.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].name, "guide.pdf");
    assert_eq!(files[0].bytes, guide);
    assert_eq!(files[0].channel, SHARED);
    assert_eq!(files[0].thread_ts.as_deref(), Some("1700000000.000100"));
}

const THREAD: &str = "1700000000.000100";
const KEY: &str = "C0SHARED:1700000000.000100";

/// Puts the customer's question that starts the thread in the stand-in's channel, as Slack
/// has it before any answer (no connector is listening; the event just waits).
fn thread_started(slack: &SlackStandIn) {
    slack.send_event(customer_message(
        THREAD,
        None,
        "How do I reset my password?",
    ));
}

/// A stand-in where a customer started the thread, and the connector answering there.
async fn connector_in_a_thread() -> (SlackStandIn, SlackCustomerConnector) {
    let slack = SlackStandIn::start().await;
    thread_started(&slack);
    let connector =
        SlackCustomerConnector::new(config(&slack, SlackMode::Socket)).expect("builds offline");
    (slack, connector)
}

fn reset_link_reply() -> Outbound {
    outbound(KEY, Author::Ai, "Use the reset link.", vec![])
}

/// The reply is in the thread once, tagged with its id, and the receipt names that post.
fn assert_posted_once_with_its_tag(
    slack: &SlackStandIn,
    receipt: &switchboard_api::DeliveryReceipt,
) {
    let posts = slack.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(
        receipt.platform_message_id.as_deref(),
        Some(posts[0].ts.as_str())
    );
    assert_eq!(posts[0].metadata, reply_tag("7-0"));
}

fn reply_tag(id: &str) -> Value {
    json!({"event_type": "switchboard_reply", "event_payload": {"id": id}})
}

#[tokio::test]
async fn a_reply_is_posted_with_its_id_in_message_metadata() {
    let slack = SlackStandIn::start().await;
    let connector =
        SlackCustomerConnector::new(config(&slack, SlackMode::Socket)).expect("builds offline");
    let reply = outbound(KEY, Author::Ai, "Use the reset link.", vec![]);
    assert!(!reply.maybe_sent);

    connector.send(&reply).await.expect("posted");

    let posts = slack.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].metadata, reply_tag("7-0"));
    assert!(slack.reads().is_empty(), "a first send reads nothing");
}

#[tokio::test]
async fn a_resend_that_may_have_reached_slack_finds_its_first_copy_and_posts_nothing() {
    let (slack, connector) = connector_in_a_thread().await;
    let mut reply = reset_link_reply();
    let first = connector.send(&reply).await.expect("posted");
    // A later reply in the same thread, so the lookup has to tell them apart.
    let mut next = outbound(KEY, Author::Agent { name: "Sam".into() }, "Done?", vec![]);
    next.id = "8-0".into();
    connector.send(&next).await.expect("posted");

    reply.maybe_sent = true;
    let again = connector.send(&reply).await.expect("found");

    let posts = slack.posts();
    assert_eq!(posts.len(), 2, "nothing posted again: {posts:?}");
    assert_eq!(again.platform_message_id, first.platform_message_id);
    assert_eq!(
        again.platform_message_id.as_deref(),
        Some(posts[0].ts.as_str())
    );
    let reads = slack.reads();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].method, "conversations.replies");
    assert_eq!(reads[0].channel, SHARED);
    assert_eq!(reads[0].ts.as_deref(), Some(THREAD));
    assert!(reads[0].include_all_metadata && reads[0].answered);
}

#[tokio::test]
async fn a_resend_that_never_reached_slack_is_posted_once() {
    let (slack, connector) = connector_in_a_thread().await;
    let mut reply = reset_link_reply();
    reply.maybe_sent = true;

    let receipt = connector.send(&reply).await.expect("posted");

    assert_posted_once_with_its_tag(&slack, &receipt);
    let reads = slack.reads();
    assert!(
        reads.len() == 1 && reads[0].answered,
        "the thread was read and the reply not in it: {reads:?}"
    );

    // Reclaimed once more: now it is there.
    let again = connector.send(&reply).await.expect("found");
    assert_eq!(slack.posts().len(), 1);
    assert_eq!(again.platform_message_id, receipt.platform_message_id);
}

#[tokio::test]
async fn a_failed_lookup_still_posts_the_reply() {
    let (slack, connector) = connector_in_a_thread().await;
    let mut reply = reset_link_reply();
    reply.maybe_sent = true;
    slack.fail_next_reads(1);

    let receipt = connector.send(&reply).await.expect("posted anyway");

    let reads = slack.reads();
    assert!(reads.len() == 1 && !reads[0].answered, "{reads:?}");
    assert_posted_once_with_its_tag(&slack, &receipt);
}

#[tokio::test]
async fn only_the_bots_own_messages_count_as_an_earlier_copy() {
    let slack = SlackStandIn::start().await;
    thread_started(&slack);
    // Someone else in the shared channel posts a message carrying the reply's tag.
    let mut forged = customer_message("1700000005.000100", Some(THREAD), "not the answer");
    forged["metadata"] = reply_tag("7-0");
    slack.send_event(forged);
    let connector =
        SlackCustomerConnector::new(config(&slack, SlackMode::Socket)).expect("builds offline");
    let mut reply = outbound(KEY, Author::Ai, "Use the reset link.", vec![]);
    reply.maybe_sent = true;

    connector.send(&reply).await.expect("posted");

    assert_eq!(
        slack.posts().len(),
        1,
        "the customer's message is not the reply"
    );
    assert!(slack.reads()[0].answered);
}

#[tokio::test]
async fn a_resent_reply_with_files_skips_what_it_finds_and_uploads_again_what_it_cannot() {
    let (slack, connector) = connector_in_a_thread().await;
    let guide = binary(1_000, 4);
    let file = |name: &str, bytes: Option<Vec<u8>>| switchboard_api::FileRef {
        id: name.into(),
        name: name.into(),
        content_type: "application/pdf".into(),
        size: 1_000,
        url: Some(format!(
            "https://support.example.com/files/c/{name}?exp=1&sig=a"
        )),
        bytes: bytes.map(bytes::Bytes::from),
    };
    let mut reply = outbound(
        KEY,
        Author::Agent { name: "Sam".into() },
        "Here are the guides.",
        vec![],
    );
    // The first file's bytes expired: it goes as a link post, tagged as the reply's part.
    reply.files = vec![file("old.pdf", None), file("guide.pdf", Some(guide))];
    connector.send(&reply).await.expect("delivered");
    let posts = slack.posts();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(posts[0].metadata, reply_tag("7-0"));
    assert_eq!(
        posts[1].metadata,
        json!({"event_type": "switchboard_reply",
               "event_payload": {"id": "7-0", "part": "file:0"}})
    );
    assert_eq!(slack.files().len(), 1);

    reply.maybe_sent = true;
    let again = connector.send(&reply).await.expect("delivered");

    // The text and the link are found; an upload carries no metadata, so it goes again
    // (a duplicate file rather than a lost one).
    assert_eq!(slack.posts().len(), 2, "{:?}", slack.posts());
    let files = slack.files();
    assert_eq!(files.len(), 2);
    assert_eq!(
        again.platform_message_id.as_deref(),
        Some(files[1].id.as_str())
    );
}
