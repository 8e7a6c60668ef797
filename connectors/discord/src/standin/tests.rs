//! The connector against the loopback Discord stand-in, through the real serenity client:
//! each test is a customer's story, told through the stand-in and the `Connector` trait.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_api::{
    Author, Connector, ConnectorError, CustomerAction, Gateway, Health, InboundKind, Outbound,
};
use tokio::task::JoinHandle;

use crate::config::Secret;
use crate::convert::HUMAN_BUTTON_ID;
use crate::standin::DiscordStandIn;
use crate::{DiscordConfig, DiscordConnector};
use switchboard_api::MemoryGateway;

const SUPPORT: u64 = 1_200_000_000_000_000_001;
const WAIT: Duration = Duration::from_secs(10);

struct Harness {
    standin: DiscordStandIn,
    connector: Arc<DiscordConnector>,
    gateway: Arc<MemoryGateway>,
    run: JoinHandle<Result<(), ConnectorError>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.run.abort();
    }
}

fn config(standin: &DiscordStandIn) -> DiscordConfig {
    DiscordConfig {
        enabled: true,
        support_channel_id: Some(SUPPORT.to_string()),
        api_url: Some(standin.api_url()),
        bot_token: Some(Secret::new("standin-token")),
        ..DiscordConfig::default()
    }
}

/// A stand-in, a connector running against it, and a fake core; returns once READY arrived.
async fn start() -> Harness {
    start_with(|connector| connector).await
}

/// Like [`start`], with the connector adjusted by `adjust` before it runs.
async fn start_with(adjust: impl FnOnce(DiscordConnector) -> DiscordConnector) -> Harness {
    let standin = DiscordStandIn::start().await;
    let connector = Arc::new(adjust(DiscordConnector::new(config(&standin))));
    let gateway = Arc::new(MemoryGateway::default());
    let run = {
        let connector = Arc::clone(&connector);
        let gateway = Arc::clone(&gateway) as Arc<dyn Gateway>;
        tokio::spawn(async move { connector.run(gateway).await })
    };
    assert!(standin.wait_for_ready(WAIT).await, "the client identified");
    Harness {
        standin,
        connector,
        gateway,
        run,
    }
}

fn outbound(key: &str, author: Author, actions: Vec<CustomerAction>) -> Outbound {
    Outbound {
        id: "9-0".into(),
        conversation_id: "conv-1".into(),
        channel: crate::CHANNEL,
        conversation_key: key.into(),
        author,
        text: "Go to Settings > Security > Reset password.".into(),
        actions,
        reply_context: Default::default(),
        files: Vec::new(),
        maybe_sent: false,
    }
}

#[tokio::test]
async fn a_dm_reaches_the_core_and_the_ai_answer_offers_a_human() {
    let h = start().await;
    let message_id = h.standin.push_dm("Ada", "How do I reset my password?");

    let accepted = h.gateway.wait_for_accepted(1, WAIT).await;
    let dm = h.standin.dm_channel("Ada");
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].conversation_key, format!("dm:{dm}"));
    assert_eq!(accepted[0].message_id, format!("dc:{message_id}"));
    assert_eq!(accepted[0].text, "How do I reset my password?");
    assert_eq!(accepted[0].author.id, h.standin.user_id("Ada").to_string());
    assert_eq!(accepted[0].author.display_name.as_deref(), Some("Ada"));

    let answer = outbound(
        &accepted[0].conversation_key,
        Author::Ai,
        vec![CustomerAction::TalkToHuman],
    );
    let receipt = h.connector.send(&answer).await.expect("delivered");
    let sent = h.standin.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].channel_id, dm);
    assert_eq!(receipt.platform_message_id, Some(sent[0].id.to_string()));
    assert!(sent[0]
        .content
        .starts_with("**AI assistant**: Go to Settings"));
    assert_eq!(sent[0].button_ids(), [HUMAN_BUTTON_ID]);

    assert!(
        h.standin.wait_for_heartbeats(1, WAIT).await >= 1,
        "heartbeats acked"
    );
    assert_eq!(h.connector.health().await, Health::Up);
}

#[tokio::test]
async fn pressing_talk_to_a_human_is_a_human_request_and_is_acknowledged() {
    let h = start().await;
    h.standin.push_dm("Ada", "My order never arrived");
    let first = h.gateway.wait_for_accepted(1, WAIT).await;
    let key = first[0].conversation_key.clone();
    let answer = outbound(&key, Author::Ai, vec![CustomerAction::TalkToHuman]);
    h.connector.send(&answer).await.expect("delivered");

    let dm = h.standin.dm_channel("Ada");
    let interaction = h.standin.push_button_click(dm, "Ada", HUMAN_BUTTON_ID);

    let accepted = h.gateway.wait_for_accepted(2, WAIT).await;
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[1].kind, InboundKind::HumanRequest);
    assert_eq!(accepted[1].conversation_key, key);
    assert_eq!(accepted[1].message_id, format!("dc:i:{interaction}"));
    let callbacks = h.standin.wait_for_callbacks(1, WAIT).await;
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].interaction_id, interaction);
    assert_eq!(
        callbacks[0].kind, 6,
        "deferred update: the message stays as it is"
    );
}

#[tokio::test]
async fn a_support_channel_message_opens_a_thread_and_the_reply_goes_there() {
    let h = start().await;
    let starter = h
        .standin
        .push_channel_message(SUPPORT, "Bo", "Billing question");

    let accepted = h.gateway.wait_for_accepted(1, WAIT).await;
    let threads = h.standin.threads_created();
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].parent_id, SUPPORT);
    assert_eq!(threads[0].thread_id, starter);
    assert_eq!(threads[0].name, "Bo: Billing question");
    assert_eq!(accepted[0].conversation_key, format!("thread:{starter}"));

    // A follow-up in the thread continues the conversation; chatter elsewhere is ignored.
    h.standin
        .push_channel_message(1_300_000_000_000_000_000, "Cy", "off topic");
    h.standin
        .push_channel_message(starter, "Bo", "It is invoice 42");
    let accepted = h.gateway.wait_for_accepted(2, WAIT).await;
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[1].text, "It is invoice 42");
    assert_eq!(accepted[1].conversation_key, format!("thread:{starter}"));

    let reply = outbound(
        &accepted[1].conversation_key,
        Author::Agent { name: "Sam".into() },
        vec![],
    );
    h.connector.send(&reply).await.expect("delivered");
    let sent = h.standin.sent();
    assert_eq!(
        sent[0].channel_id, starter,
        "the reply is posted in the thread"
    );
    assert!(sent[0].content.starts_with("**Sam** (support team): "));
    assert!(sent[0].button_ids().is_empty());
    // Events are handled in order: once a later message is stored, the chatter was seen.
    h.standin.push_channel_message(starter, "Bo", "Thanks!");
    let accepted = h.gateway.wait_for_accepted(3, WAIT).await;
    let texts: Vec<&str> = accepted.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        ["Billing question", "It is invoice 42", "Thanks!"],
        "the unrelated channel stayed out"
    );
}

#[tokio::test]
async fn a_replayed_message_create_is_stored_once() {
    let h = start().await;
    h.standin
        .push_channel_message(SUPPORT, "Bo", "Is the API down?");
    h.gateway.wait_for_accepted(1, WAIT).await;
    h.standin.replay_last();

    assert_eq!(h.gateway.wait_for_replays(1, WAIT).await, 1);
    assert_eq!(h.gateway.accepted().len(), 1);
    assert_eq!(h.standin.threads_created().len(), 1, "no second thread");
}

#[tokio::test]
async fn a_429_surfaces_as_rate_limited_with_discords_retry_after() {
    let h = start().await;
    let dm = h.standin.dm_channel("Ada");
    h.standin.fail_next_with_429(1, Duration::from_millis(1500));
    let answer = outbound(&format!("dm:{dm}"), Author::Ai, vec![]);

    match h.connector.send(&answer).await {
        Err(ConnectorError::RateLimited {
            retry_after,
            connector,
        }) => {
            assert_eq!(connector, "discord");
            assert_eq!(retry_after, Duration::from_millis(1500));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    h.connector
        .send(&answer)
        .await
        .expect("the retry is delivered");
    assert_eq!(h.standin.sent().len(), 1);
}

#[tokio::test]
async fn a_revoked_token_stops_the_connector_with_an_error_naming_it() {
    let standin = DiscordStandIn::start().await;
    standin.revoke_token();
    let connector = DiscordConnector::new(config(&standin));
    let gateway = Arc::new(MemoryGateway::default()) as Arc<dyn Gateway>;

    let error = tokio::time::timeout(WAIT, connector.run(gateway))
        .await
        .expect("run returns")
        .expect_err("run fails");
    assert!(matches!(error, ConnectorError::Auth { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("discord: bot token rejected (401)"),
        "{error}"
    );
    assert!(!error.is_retryable());
    assert!(matches!(connector.health().await, Health::Down(_)));
    let send = connector.send(&outbound("dm:5", Author::Ai, vec![])).await;
    assert!(matches!(send, Err(ConnectorError::Auth { .. })), "{send:?}");
}

#[tokio::test]
async fn a_token_revoked_while_connected_ends_run_with_auth() {
    let mut h = start().await;
    h.standin.revoke_token();
    let error = tokio::time::timeout(WAIT, &mut h.run)
        .await
        .expect("run returns")
        .expect("run task completes")
        .expect_err("run fails");
    assert!(matches!(error, ConnectorError::Auth { .. }), "{error:?}");
}

#[tokio::test]
async fn bot_messages_are_ignored_and_an_attachment_only_message_is_stored() {
    let h = start().await;
    let mut from_bot = h.standin.message(None, "OtherBot", "beep");
    from_bot["author"]["bot"] = json!(true);
    h.standin.push_message(from_bot);
    let mut photo = h.standin.message(None, "Ada", "");
    let screenshot = vec![0x89u8; 2048];
    photo["attachments"] = json!([h.standin.host_attachment(
        "screenshot.png",
        "image/png",
        &screenshot,
        screenshot.len()
    )]);
    h.standin.push_message(photo);
    let mut sticker_only = h.standin.message(None, "Ada", "");
    sticker_only["sticker_items"] = json!([{"id": "88", "name": "thumbsup", "format_type": 1}]);
    h.standin.push_message(sticker_only);
    h.standin.push_dm("Ada", "see above");

    let accepted = h.gateway.wait_for_accepted(3, WAIT).await;
    // serenity hands each event to its own task, so arrival order is not asserted.
    let mut texts: Vec<&str> = accepted
        .iter()
        .map(|inbound| inbound.text.as_str())
        .collect();
    texts.sort();
    assert_eq!(texts, ["", "[sticker: thumbsup]", "see above"]);
    let with_file = accepted
        .iter()
        .find(|inbound| !inbound.files.is_empty())
        .expect("the attachment-only message");
    assert_eq!(with_file.files[0].name, "screenshot.png");
    assert_eq!(with_file.files[0].bytes.as_deref(), Some(&screenshot[..]));
    assert!(accepted
        .iter()
        .all(|inbound| inbound.author.display_name.as_deref() == Some("Ada")));
}

#[tokio::test]
async fn after_a_dropped_connection_the_client_resumes_and_nothing_is_lost_or_doubled() {
    let h = start().await;
    h.standin.push_dm("Ada", "before the drop");
    h.gateway.wait_for_accepted(1, WAIT).await;
    h.standin.drop_connections();
    h.standin.push_dm("Ada", "during the drop");

    let accepted = h.gateway.wait_for_accepted(2, WAIT).await;
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[1].text, "during the drop");
    assert_eq!(
        h.standin.identifies() + h.standin.resumes(),
        2,
        "one new session or resume"
    );
    // Events are handled in order: a later message stored means a doubled one would show.
    h.standin.push_dm("Ada", "after the drop");
    let accepted = h.gateway.wait_for_accepted(3, WAIT).await;
    let texts: Vec<&str> = accepted.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        ["before the drop", "during the drop", "after the drop"]
    );
}

#[tokio::test]
async fn the_rating_buttons_are_shown_and_a_press_is_stored_as_the_number() {
    let h = start().await;
    h.standin.push_dm("Ada", "Thanks, that fixed it");
    let first = h.gateway.wait_for_accepted(1, WAIT).await;
    let key = first[0].conversation_key.clone();
    let question = outbound(&key, Author::System, vec![CustomerAction::RateService]);
    h.connector.send(&question).await.expect("delivered");
    let sent = h.standin.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].button_ids(),
        [
            "sb:rate:1",
            "sb:rate:2",
            "sb:rate:3",
            "sb:rate:4",
            "sb:rate:5"
        ]
    );
    let labels: Vec<&str> = sent[0].components[0]["components"]
        .as_array()
        .expect("one action row")
        .iter()
        .filter_map(|button| button["label"].as_str())
        .collect();
    assert_eq!(labels, ["1", "2", "3", "4", "5"]);

    let dm = h.standin.dm_channel("Ada");
    let interaction = h.standin.push_button_click(dm, "Ada", "sb:rate:4");
    let accepted = h.gateway.wait_for_accepted(2, WAIT).await;
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[1].kind, InboundKind::Text);
    assert_eq!(accepted[1].text, "4");
    assert_eq!(accepted[1].conversation_key, key);
    assert_eq!(accepted[1].message_id, format!("dc:i:{interaction}"));
    let callbacks = h.standin.wait_for_callbacks(1, WAIT).await;
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].interaction_id, interaction);
    assert_eq!(callbacks[0].kind, 6);
}

#[tokio::test]
async fn a_resent_reply_is_shown_once_because_discord_enforces_its_nonce() {
    let h = start().await;
    h.standin.push_dm("Ada", "How do I reset my password?");
    let accepted = h.gateway.wait_for_accepted(1, WAIT).await;
    let answer = outbound(&accepted[0].conversation_key, Author::Ai, vec![]);
    let first = h.connector.send(&answer).await.expect("delivered");
    // The gateway died after Discord took it and before the receipt was stored: it sends again.
    let again = h.connector.send(&answer).await.expect("delivered");
    assert_eq!(
        h.standin.sent().len(),
        1,
        "the customer sees the reply once"
    );
    assert_eq!(h.standin.repeated_nonces(), 1);
    assert_eq!(first.platform_message_id, again.platform_message_id);
    let next = Outbound {
        id: "10-0".into(),
        ..answer
    };
    h.connector.send(&next).await.expect("delivered");
    assert_eq!(
        h.standin.sent().len(),
        2,
        "another reply is another message"
    );
}

#[tokio::test]
async fn messages_that_arrive_while_storage_is_down_are_stored_in_order_once_it_is_back() {
    // The production schedule (500 ms doubling up to 5 s), 250 times faster.
    let h = start_with(|connector| {
        connector.with_hold_backoff(Duration::from_millis(2), Duration::from_millis(20))
    })
    .await;
    h.gateway.set_unavailable(true);
    h.standin.push_dm("Ada", "How do I reset my password?");
    h.standin.push_dm("Ada", "I still cannot log in");
    // Offered again and again: well past the 5 attempts after which it used to be dropped.
    assert!(h.gateway.wait_for_refusals(20, WAIT).await >= 20);
    assert!(h.gateway.accepted().is_empty());
    h.gateway.set_unavailable(false);

    let accepted = h.gateway.wait_for_accepted(2, WAIT).await;
    let texts: Vec<&str> = accepted.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        ["How do I reset my password?", "I still cannot log in"]
    );
    assert_eq!(h.gateway.replays(), 0);
}

#[tokio::test]
async fn forgetting_deletes_the_bot_s_messages_and_a_second_run_finds_them_gone() {
    let standin = DiscordStandIn::start().await;
    let connector = DiscordConnector::new(config(&standin));
    let key = "dm:1300000000000000077";
    let mut sent = Vec::new();
    for id in ["9-0", "9-1"] {
        let answer = Outbound {
            id: id.into(),
            ..outbound(key, Author::Ai, vec![])
        };
        let receipt = connector.send(&answer).await.expect("delivered");
        sent.push(switchboard_api::SentMessage {
            platform_message_id: receipt.platform_message_id.expect("an id"),
            sent_ms: 0,
        });
    }
    let forgotten = connector.forget_sent(key, &sent).await.expect("forgotten");
    assert_eq!((forgotten.deleted, forgotten.left), (2, 0));
    let posted: Vec<(u64, u64)> = (standin.sent().iter())
        .map(|message| (message.channel_id, message.id))
        .collect();
    assert_eq!(posted.len(), 2);
    assert_eq!(standin.deleted(), posted);
    let again = connector.forget_sent(key, &sent).await.expect("again");
    assert_eq!(
        (again.deleted, again.left),
        (2, 0),
        "already gone is deleted"
    );
}
