//! Slack as a customer channel end to end: a customer in a Slack Connect shared channel, the
//! real slack-morphism client against the loopback Slack stand-in (Web API + Socket Mode), a
//! real gateway and Redis, and an in-memory agent desk.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard::app::RunningGateway;
use switchboard_slack::standin::{event_callback, RecordedPost, SlackStandIn};

use crate::desk::{reply, start_with_fake_desk, FakeDesk};
use crate::harness::{eventually, test_config, RedisServer};

pub(crate) const SHARED: &str = "C0SHAREDACME";
const CUSTOMER: &str = "U0CUSTDANA";
const QUESTION_TS: &str = "1700000100.000100";

/// `[connectors.slack]` for a Slack Connect shared channel served through `standin`.
pub(crate) fn customer_config(standin: &SlackStandIn) -> String {
    std::env::set_var("SB_TEST_SLACK_CUSTOMER_BOT", "xoxb-customer-token");
    std::env::set_var("SB_TEST_SLACK_CUSTOMER_APP", "xapp-customer-token");
    format!(
        r#"
[connectors.slack]
enabled = true
mode = "socket"
channels = ["{SHARED}"]
api_url = "{}"
bot_token_env = "SB_TEST_SLACK_CUSTOMER_BOT"
app_token_env = "SB_TEST_SLACK_CUSTOMER_APP"
posts_per_second_per_channel = 20.0
"#,
        standin.api_url()
    )
}

fn customer_message(ts: &str, thread_ts: Option<&str>, text: &str) -> Value {
    let mut event = json!({"type": "message", "channel": SHARED, "user": CUSTOMER, "text": text,
                           "ts": ts, "event_ts": ts, "channel_type": "channel"});
    if let Some(thread_ts) = thread_ts {
        event["thread_ts"] = json!(thread_ts);
    }
    event
}

async fn in_thread(
    standin: &SlackStandIn,
    what: &str,
    check: impl Fn(&RecordedPost) -> bool,
) -> RecordedPost {
    eventually(Duration::from_secs(20), what, || async {
        standin.posts().into_iter().find(|post| {
            post.channel == SHARED && post.thread_ts.as_deref() == Some(QUESTION_TS) && check(post)
        })
    })
    .await
}

async fn gateway(
    redis: &RedisServer,
    standin: &SlackStandIn,
    desk: Arc<FakeDesk>,
) -> RunningGateway {
    start_with_fake_desk(test_config(redis, &customer_config(standin)), desk).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_customer_is_answered_in_the_thread_escalated_and_gets_the_agents_reply() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user_with_email(CUSTOMER, "Dana", "dana@acme.example");
    let desk = Arc::new(FakeDesk::default());
    let gateway = gateway(&redis, &standin, desk.clone()).await;
    eventually(
        Duration::from_secs(20),
        "the Socket Mode connection",
        || async { (standin.socket_clients() > 0).then_some(()) },
    )
    .await;

    // A customer asks in the shared channel: the AI answers in the thread, with a way out.
    let question = customer_message(QUESTION_TS, None, "How do I reset my password?");
    standin.send_callback(event_callback("EvCust0001", question.clone()));
    let answer = in_thread(&standin, "the AI's answer in the thread", |post| {
        post.text.to_lowercase().contains("password")
    })
    .await;
    assert!(
        answer.text.starts_with("*AI assistant:*"),
        "{}",
        answer.text
    );
    assert!(
        answer.blocks.to_string().contains("sb_human"),
        "Talk to a human button: {}",
        answer.blocks
    );

    // Slack redelivers the question (a missed ack): stored and answered once.
    standin.send_callback(event_callback("EvCust0001", question));

    // The customer asks for a person in the thread: a notice there, a briefing for the agents.
    standin.send_event(customer_message(
        "1700000200.000200",
        Some(QUESTION_TS),
        "I want to talk to a real person",
    ));
    in_thread(&standin, "the escalation notice in the thread", |post| {
        post.text.contains("person")
    })
    .await;
    let (briefing, thread) = desk.thread().await;
    assert_eq!(briefing.channel, switchboard_slack::CHANNEL);
    assert!(briefing.verified, "Slack vouches for the user id");
    assert_eq!(briefing.customer_name, "Dana");
    assert_eq!(briefing.email.as_deref(), Some("dana@acme.example"));

    let key = format!("{SHARED}:{QUESTION_TS}");
    let view = gateway
        .store
        .customer_view(switchboard_slack::CHANNEL, &key, None)
        .await
        .expect("store answers")
        .expect("one conversation for the thread");
    let questions = view
        .messages
        .iter()
        .filter(|m| m.text.contains("reset my password"))
        .count();
    assert_eq!(questions, 1, "the redelivery was stored once");
    assert!(
        view.messages.iter().any(|m| m.text.contains("real person")),
        "the reply joined the thread's conversation"
    );

    // Slack is rate limiting when the agent answers: the reply still arrives, once, named.
    standin.fail_next_with_429(1, 1);
    desk.agent(reply(
        &thread,
        "1800000030.000100",
        "Sam",
        "Hi Dana, I've sent you a new reset link.",
    ))
    .await;
    let agent = in_thread(&standin, "the agent's reply in the thread", |post| {
        post.text.contains("new reset link")
    })
    .await;
    assert!(
        agent.text.starts_with("*Sam (support team):*"),
        "{}",
        agent.text
    );
    // Replies keep their order: once a later one is in the thread, a second copy of the
    // retried one would have been too.
    desk.agent(reply(
        &thread,
        "1800000030.000200",
        "Sam",
        "Anything else I can do?",
    ))
    .await;
    in_thread(&standin, "the agent's next reply", |post| {
        post.text.contains("Anything else")
    })
    .await;
    let copies = standin
        .posts()
        .iter()
        .filter(|p| p.text.contains("new reset link"))
        .count();
    assert_eq!(copies, 1, "the 429 was retried, not duplicated");
}
