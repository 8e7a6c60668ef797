//! The desk against the loopback Slack stand-in, through the real slack-morphism client:
//! briefings, thread posts, pacing, 429s, auth errors, Socket Mode and the Events API.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use switchboard_api::{
    AgentAction, ConnectorError, Desk, DeskEvent, DeskNotice, DeskSink, Health, IngestError,
    ThreadPost, ThreadRef,
};
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::blocks::tests::sample_briefing;
use crate::config::Secret;
use crate::standin::{event_callback, signed_request, SlackStandIn};
use crate::{SlackDesk, SlackDeskConfig, SlackMode};

const CHANNEL: &str = "C0123SUPPORT";
const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct RecordingSink {
    events: Mutex<Vec<DeskEvent>>,
    arrived: Notify,
    failing: AtomicBool,
}

impl RecordingSink {
    fn events(&self) -> Vec<DeskEvent> {
        self.events.lock().expect("sink lock").clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<DeskEvent> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let arrived = self.arrived.notified();
            let events = self.events();
            if events.len() >= n || tokio::time::Instant::now() >= deadline {
                return events;
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }
}

#[async_trait]
impl DeskSink for RecordingSink {
    async fn handle(&self, event: DeskEvent) -> Result<(), IngestError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(IngestError::Unavailable("redis is down".into()));
        }
        self.events.lock().expect("sink lock").push(event);
        self.arrived.notify_waiters();
        Ok(())
    }
}

fn config(slack: &SlackStandIn, mode: SlackMode, bot_token: &str) -> SlackDeskConfig {
    SlackDeskConfig {
        enabled: true,
        mode,
        channel: CHANNEL.into(),
        api_url: Some(slack.api_url()),
        bot_token: Some(Secret::new(bot_token)),
        app_token: Some(Secret::new("xapp-test")),
        signing_secret: Some(Secret::new(SECRET)),
        ..SlackDeskConfig::default()
    }
}

fn desk(slack: &SlackStandIn, mode: SlackMode) -> SlackDesk {
    SlackDesk::new(config(slack, mode, "xoxb-test")).expect("desk builds offline")
}

fn thread_reply(user: &str, text: &str) -> Value {
    json!({"type": "message", "channel": CHANNEL, "user": user, "text": text,
           "ts": "1700000100.000200", "thread_ts": "1700000001.000001",
           "event_ts": "1700000100.000200", "channel_type": "channel"})
}

fn notice(text: &str) -> ThreadPost {
    ThreadPost::Notice(DeskNotice::Text { text: text.into() })
}

#[tokio::test]
async fn a_briefing_opens_a_thread_with_every_field() {
    let slack = SlackStandIn::start().await;
    let desk = desk(&slack, SlackMode::Socket);
    let thread = desk
        .open_thread(CHANNEL, &sample_briefing(3))
        .await
        .expect("briefing posted");

    let posts = slack.posts();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.method, "chat.postMessage");
    assert_eq!(
        (post.channel.as_str(), post.thread_ts.as_deref()),
        (CHANNEL, None)
    );
    assert_eq!(
        thread,
        ThreadRef {
            channel: CHANNEL.into(),
            ts: post.ts.clone()
        }
    );
    assert!(
        post.text.contains("Ada Lovelace"),
        "fallback text: {}",
        post.text
    );
    let blocks = post.blocks.to_string();
    for expected in [
        "Ada Lovelace · webchat · vip",
        "user-1815",
        "verified",
        "ada@example.com",
        "<https://shop.example.com/billing|Billing settings>",
        "human_requested",
        "Customer asked for a real person",
        "42%",
        "claimed by *Dana*",
        "Charged twice for the March invoice.",
        "message number 2",
        ">Sorry about that!",
        "!claim",
        "!resolve",
        "!ai",
        "// note",
    ] {
        assert!(
            blocks.contains(expected),
            "missing {expected:?} in {blocks}"
        );
    }
}

#[tokio::test]
async fn a_long_transcript_is_folded_and_posted_in_full_in_the_thread() {
    let slack = SlackStandIn::start().await;
    let mut config = config(&slack, SlackMode::Socket, "xoxb-test");
    config.posts_per_second_per_channel = 50.0;
    let desk = SlackDesk::new(config).expect("desk");
    let thread = desk
        .open_thread(CHANNEL, &sample_briefing(30))
        .await
        .expect("posted");
    let posts = slack.wait_for_posts(2, WAIT).await;
    assert_eq!(posts.len(), 2);
    assert!(posts[0].blocks.to_string().contains("last 8 of 30"));
    assert_eq!(posts[1].thread_ts.as_deref(), Some(thread.ts.as_str()));
    assert!(posts[1].text.contains("message number 0 "));
}

#[tokio::test]
async fn thread_posts_and_updates_name_the_thread() {
    let slack = SlackStandIn::start().await;
    let mut config = config(&slack, SlackMode::Socket, "xoxb-test");
    config.posts_per_second_per_channel = 50.0;
    let desk = SlackDesk::new(config).expect("desk");
    let thread = desk
        .open_thread(CHANNEL, &sample_briefing(1))
        .await
        .expect("posted");
    let ts = desk
        .post_in_thread(
            &thread,
            &ThreadPost::CustomerMessage {
                author: "Ada".into(),
                text: "still there? <!channel>".into(),
                message_id: None,
            },
        )
        .await
        .expect("thread post");
    let mut claimed = sample_briefing(1);
    claimed.claimed_by = Some("Sam".into());
    desk.update_briefing(&thread, &claimed)
        .await
        .expect("updated");

    let posts = slack.posts();
    assert_eq!(posts[1].thread_ts.as_deref(), Some(thread.ts.as_str()));
    assert_eq!(posts[1].ts, ts);
    assert_eq!(posts[1].text, "*Ada:* still there? &lt;!channel&gt;");
    assert_eq!(posts[2].method, "chat.update");
    assert_eq!(posts[2].ts, thread.ts);
    assert!(posts[2].blocks.to_string().contains("claimed by *Sam*"));
}

#[tokio::test]
async fn posts_to_one_channel_are_paced() {
    let slack = SlackStandIn::start().await;
    let desk = desk(&slack, SlackMode::Socket);
    let thread = ThreadRef {
        channel: CHANNEL.into(),
        ts: "1700000001.000001".into(),
    };
    desk.post_in_thread(&thread, &notice("one"))
        .await
        .expect("first");
    desk.post_in_thread(&thread, &notice("two"))
        .await
        .expect("second");
    let posts = slack.posts();
    let gap = posts[1].at.duration_since(posts[0].at);
    assert!(
        gap >= Duration::from_millis(900),
        "posts only {gap:?} apart"
    );
}

#[tokio::test]
async fn a_429_surfaces_retry_after_and_the_retry_succeeds() {
    let slack = SlackStandIn::start().await;
    let desk = desk(&slack, SlackMode::Socket);
    let thread = ThreadRef {
        channel: CHANNEL.into(),
        ts: "1700000001.000001".into(),
    };
    slack.fail_next_with_429(1, 1);
    let error = desk
        .post_in_thread(&thread, &notice("hello"))
        .await
        .expect_err("429");
    assert!(
        matches!(error, ConnectorError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(1)),
        "{error:?}"
    );
    assert!(error.is_retryable());
    desk.post_in_thread(&thread, &notice("hello"))
        .await
        .expect("retry succeeds");
    assert_eq!(slack.posts().len(), 1);
}

#[tokio::test]
async fn refusals_say_whether_to_retry() {
    let slack = SlackStandIn::start().await;
    let desk = desk(&slack, SlackMode::Socket);
    let error = desk
        .open_thread("CMISSING1", &sample_briefing(1))
        .await
        .expect_err("unknown channel");
    assert!(
        matches!(error, ConnectorError::Permanent { .. }),
        "{error:?}"
    );

    let revoked = SlackDesk::new(config(&slack, SlackMode::Socket, "xoxb-revoked")).expect("desk");
    let error = revoked
        .run(Arc::new(RecordingSink::default()))
        .await
        .expect_err("revoked token");
    assert!(matches!(error, ConnectorError::Auth { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "slack desk: credentials rejected: bot token rejected by auth.test (invalid_auth)"
    );
    assert!(
        matches!(revoked.health().await, Health::Down(reason) if reason.contains("invalid_auth"))
    );

    let mut bad_app = config(&slack, SlackMode::Socket, "xoxb-test");
    bad_app.app_token = Some(Secret::new("xoxb-not-an-app-token"));
    let error = SlackDesk::new(bad_app)
        .expect("desk")
        .run(Arc::new(RecordingSink::default()))
        .await
        .expect_err("wrong app token");
    assert!(
        error
            .to_string()
            .contains("app token rejected by apps.connections.open"),
        "{error}"
    );
}

#[tokio::test]
async fn socket_mode_relays_an_agent_reply_and_acks_it() {
    let slack = SlackStandIn::start().await;
    slack.set_user("U0AGENT", "Dana");
    let desk = Arc::new(desk(&slack, SlackMode::Socket));
    let sink = Arc::new(RecordingSink::default());
    let runner = tokio::spawn({
        let (desk, sink) = (desk.clone(), sink.clone());
        async move { desk.run(sink).await }
    });

    let envelope = slack.send_event(thread_reply("U0AGENT", "Refunded, sorry!"));
    let events = sink.wait_for(1).await;
    assert_eq!(
        events,
        [DeskEvent::Agent {
            event_id: "Ev00000001".into(),
            thread: ThreadRef {
                channel: CHANNEL.into(),
                ts: "1700000001.000001".into()
            },
            action_id: "1700000100.000200".into(),
            agent_id: "U0AGENT".into(),
            agent_name: "Dana".into(),
            action: AgentAction::Reply {
                text: "Refunded, sorry!".into(),
                files: Vec::new(),
            },
        }]
    );
    assert!(slack.wait_for_ack(&envelope, WAIT).await, "envelope acked");
    assert_eq!(desk.health().await, Health::Up);
    runner.abort();
}

#[tokio::test]
async fn socket_mode_never_relays_the_bots_own_messages() {
    let slack = SlackStandIn::start().await;
    slack.set_user("U0AGENT", "Dana");
    let desk = Arc::new(desk(&slack, SlackMode::Socket));
    let sink = Arc::new(RecordingSink::default());
    let runner = tokio::spawn({
        let (desk, sink) = (desk.clone(), sink.clone());
        async move { desk.run(sink).await }
    });

    let own = slack.send_event(thread_reply(slack.bot_user_id(), "mirrored customer text"));
    let mut with_bot_id = thread_reply("U0SOMEONE", "bot post");
    with_bot_id["bot_id"] = json!("B0STANDINBOT");
    let own_bot = slack.send_event(with_bot_id);
    assert!(slack.wait_for_ack(&own, WAIT).await);
    assert!(slack.wait_for_ack(&own_bot, WAIT).await);
    slack.send_event(thread_reply("U0AGENT", "real reply"));
    let events = sink.wait_for(1).await;
    assert_eq!(events.len(), 1);
    assert!(matches!(
        &events[0],
        DeskEvent::Agent { action: AgentAction::Reply { text, .. }, .. } if text == "real reply"
    ));
    runner.abort();
}

#[tokio::test]
async fn socket_mode_withholds_the_ack_when_the_sink_fails() {
    let slack = SlackStandIn::start().await;
    slack.set_user("U0AGENT", "Dana");
    let desk = Arc::new(desk(&slack, SlackMode::Socket));
    let sink = Arc::new(RecordingSink::default());
    sink.failing.store(true, Ordering::SeqCst);
    let runner = tokio::spawn({
        let (desk, sink) = (desk.clone(), sink.clone());
        async move { desk.run(sink).await }
    });
    let envelope = slack.send_event(thread_reply("U0AGENT", "lost?"));
    assert!(
        !slack.wait_for_ack(&envelope, Duration::from_secs(2)).await,
        "not acked"
    );
    runner.abort();
}

async fn events_route(slack: &SlackStandIn, sink: Arc<RecordingSink>) -> axum::Router {
    desk(slack, SlackMode::EventsApi)
        .routes(sink)
        .expect("events api mode serves a route")
}

async fn status_of(router: &axum::Router, body: &str, secret: &str, at: i64) -> (u16, String) {
    let request = signed_request(secret, body, at).into_request("/slack/events");
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("route answers");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn events_api_verifies_signatures_and_relays_events() {
    let slack = SlackStandIn::start().await;
    slack.set_user("U0AGENT", "Dana");
    let sink = Arc::new(RecordingSink::default());
    let router = events_route(&slack, sink.clone()).await;
    let now = crate::signature::unix_now();

    let challenge = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let (status, body) = status_of(&router, challenge, SECRET, now).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#
    );

    let callback = event_callback("Ev0HTTP1", thread_reply("U0AGENT", "from http")).to_string();
    assert_eq!(
        status_of(&router, &callback, "wrong-secret", now).await.0,
        401
    );
    assert_eq!(
        status_of(&router, &callback, SECRET, now - 301).await.0,
        401
    );
    assert!(
        sink.events().is_empty(),
        "nothing relayed from forged requests"
    );

    assert_eq!(status_of(&router, &callback, SECRET, now).await.0, 200);
    let events = sink.events();
    assert!(
        matches!(&events[..], [DeskEvent::Agent { event_id, agent_name, .. }]
        if event_id == "Ev0HTTP1" && agent_name == "Dana")
    );

    sink.failing.store(true, Ordering::SeqCst);
    assert_eq!(status_of(&router, &callback, SECRET, now).await.0, 503);
}

#[tokio::test]
async fn socket_mode_offers_no_http_route() {
    let slack = SlackStandIn::start().await;
    assert!(desk(&slack, SlackMode::Socket)
        .routes(Arc::new(RecordingSink::default()))
        .is_none());
}

/// A thread with a briefing, a mirrored customer message, an uploaded file and an agent's
/// own reply.
async fn thread_to_forget(slack: &SlackStandIn, desk: &SlackDesk) -> ThreadRef {
    let thread = desk
        .open_thread(CHANNEL, &sample_briefing(1))
        .await
        .expect("briefing posted");
    desk.post_in_thread(
        &thread,
        &ThreadPost::CustomerMessage {
            author: "Ada".into(),
            text: "my order QX-5521 never came".into(),
            message_id: None,
        },
    )
    .await
    .expect("mirrored");
    let file = switchboard_api::FileRef {
        id: "f1".into(),
        name: "receipt.txt".into(),
        content_type: "text/plain".into(),
        size: 7,
        url: None,
        bytes: Some("QX-5521".into()),
    };
    desk.upload_in_thread(&thread, "Ada", &file)
        .await
        .expect("uploaded");
    let mut agent = thread_reply("U0AGENT", "Ada, QX-5521 is refunded");
    agent["thread_ts"] = json!(thread.ts);
    slack.send_event(agent);
    thread
}

#[tokio::test]
async fn forgetting_a_thread_deletes_the_bots_posts_and_files_and_leaves_the_agents() {
    let slack = SlackStandIn::start().await;
    let desk = desk(&slack, SlackMode::Socket);
    let thread = thread_to_forget(&slack, &desk).await;
    assert_eq!(slack.thread(CHANNEL, &thread.ts).len(), 4);

    let forgotten = desk.forget_thread(&thread).await.expect("forgotten");
    assert_eq!(
        (
            forgotten.deleted,
            forgotten.files_deleted,
            forgotten.left_by_people
        ),
        (3, 1, 1)
    );
    let left = slack.thread(CHANNEL, &thread.ts);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["user"], "U0AGENT");
    assert!(slack.files().is_empty(), "the uploaded file is deleted");
    assert!(slack.deleted().iter().any(|(_, ts)| *ts == thread.ts));
    assert_eq!(
        desk.forget_thread(&thread).await.expect("again"),
        switchboard_api::ForgottenPosts {
            left_by_people: 1,
            ..Default::default()
        },
        "a second run finds nothing of ours"
    );
}

#[tokio::test]
async fn posts_slack_will_not_delete_are_overwritten_with_a_redaction() {
    let slack = SlackStandIn::start().await;
    let desk = desk(&slack, SlackMode::Socket);
    let thread = thread_to_forget(&slack, &desk).await;
    slack.refuse_deletes(true);

    let forgotten = desk.forget_thread(&thread).await.expect("forgotten");
    assert_eq!((forgotten.deleted, forgotten.redacted), (0, 3));
    for message in slack.thread(CHANNEL, &thread.ts) {
        if message["user"] == crate::standin::BOT_USER_ID {
            assert_eq!(message["text"], crate::desk::forget::REDACTED, "{message}");
            assert!(!message.to_string().contains("QX-5521"), "{message}");
        }
    }
}
