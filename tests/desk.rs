//! The agent desk's core behaviour with an in-memory desk: briefing, mirror, agent replies,
//! notes, commands, replays. (The Slack rendering and transport are tested in `slack_desk`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::Commands;
use serde_json::json;
use switchboard::app::{start_with_desk, DeskSetup, RunningGateway};
use switchboard::config::Config;
use switchboard::desk::inbox::{HANDBACK_NOTICE, RESOLVED_NOTICE};
use switchboard::model::conversation_id;
use switchboard::store::keys;
use switchboard_api::{
    AgentAction, AgentCommand, Briefing, ConnectorError, Desk, DeskEvent, DeskNotice, DeskSink,
    FileRef, Health, ThreadPost, ThreadRef,
};

use crate::harness::{
    eventually, on_single_and_cluster, test_config, RedisServer, RedisUrl, TestRedis,
};
use crate::webchat::{Widget, WEBCHAT};

/// An agent desk in memory: records what the gateway posts, lets the test act as an agent.
#[derive(Default)]
pub(crate) struct FakeDesk {
    sink: Mutex<Option<Arc<dyn DeskSink>>>,
    pub(crate) threads: Mutex<Vec<(String, Briefing, ThreadRef)>>,
    pub(crate) posts: Mutex<Vec<(ThreadRef, ThreadPost)>>,
    updates: Mutex<Vec<(ThreadRef, Briefing)>>,
    next_ts: AtomicUsize,
}

#[async_trait]
impl Desk for FakeDesk {
    async fn run(&self, sink: Arc<dyn DeskSink>) -> Result<(), ConnectorError> {
        *self.sink.lock().unwrap() = Some(sink);
        Ok(())
    }
    async fn open_thread(
        &self,
        channel: &str,
        briefing: &Briefing,
    ) -> Result<ThreadRef, ConnectorError> {
        if channel.starts_with("CMISSING") {
            return Err(ConnectorError::Permanent {
                connector: "fake desk",
                detail: "not_in_channel".into(),
            });
        }
        let n = self.next_ts.fetch_add(1, Ordering::SeqCst);
        let thread = ThreadRef {
            channel: channel.into(),
            ts: format!("1700000000.{n:06}"),
        };
        self.threads
            .lock()
            .unwrap()
            .push((channel.into(), briefing.clone(), thread.clone()));
        Ok(thread)
    }
    async fn update_briefing(
        &self,
        thread: &ThreadRef,
        briefing: &Briefing,
    ) -> Result<(), ConnectorError> {
        self.updates
            .lock()
            .unwrap()
            .push((thread.clone(), briefing.clone()));
        Ok(())
    }
    async fn post_in_thread(
        &self,
        thread: &ThreadRef,
        post: &ThreadPost,
    ) -> Result<String, ConnectorError> {
        let mut posts = self.posts.lock().unwrap();
        posts.push((thread.clone(), post.clone()));
        Ok(format!("{}.{}", thread.ts, posts.len()))
    }
    async fn upload_in_thread(
        &self,
        thread: &ThreadRef,
        author: &str,
        file: &FileRef,
    ) -> Result<String, ConnectorError> {
        let post = ThreadPost::CustomerMessage {
            author: author.into(),
            text: format!("(file) {}", file.name),
            message_id: None,
        };
        self.post_in_thread(thread, &post).await
    }
    async fn health(&self) -> Health {
        Health::Up
    }
}

impl FakeDesk {
    pub(crate) async fn agent(&self, event: DeskEvent) {
        let sink = self.sink.lock().unwrap().clone().expect("desk running");
        sink.handle(event).await.expect("desk event stored");
    }
    pub(crate) async fn thread(&self) -> (Briefing, ThreadRef) {
        eventually(Duration::from_secs(10), "a briefing thread", || async {
            self.threads
                .lock()
                .unwrap()
                .first()
                .map(|(_, b, t)| (b.clone(), t.clone()))
        })
        .await
    }
    pub(crate) fn posts_in(&self, thread: &ThreadRef) -> Vec<ThreadPost> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == thread)
            .map(|(_, post)| post.clone())
            .collect()
    }
    /// The customer messages mirrored into `thread`, as (author, text).
    pub(crate) fn mirrored_in(&self, thread: &ThreadRef) -> Vec<(String, String)> {
        self.posts_in(thread)
            .into_iter()
            .filter_map(|post| match post {
                ThreadPost::CustomerMessage { author, text, .. } => Some((author, text)),
                _ => None,
            })
            .collect()
    }
}

/// An agent's message in `thread`, read by the chat desks' conventions (`!claim`, `//` notes).
pub(crate) fn reply(thread: &ThreadRef, ts: &str, agent: &str, text: &str) -> DeskEvent {
    DeskEvent::Agent {
        event_id: format!("Ev{ts}"),
        thread: thread.clone(),
        action_id: ts.into(),
        agent_id: "U0AGENT".into(),
        agent_name: agent.into(),
        action: AgentAction::from_text(text, Vec::new()),
    }
}

/// A whole gateway whose agent desk is `desk`, posting new threads to `C0SUPPORT`.
pub(crate) async fn start_with_fake_desk(config: Config, desk: Arc<FakeDesk>) -> RunningGateway {
    start_with_desk(
        config,
        Some(DeskSetup {
            desk,
            default_channel: "C0SUPPORT".into(),
        }),
    )
    .await
    .expect("gateway starts")
}

async fn gateway_with_desk(redis: &impl RedisUrl, desk: Arc<FakeDesk>) -> RunningGateway {
    start_with_fake_desk(test_config(redis, WEBCHAT), desk).await
}

async fn escalated_visitor(gateway: &RunningGateway, session: &str) -> Widget {
    let (mut widget, _) = Widget::connect(gateway.local_addr, session, None).await;
    widget
        .send(json!({"type": "message", "client_id": "q1", "text": "How do I reset my password?"}))
        .await;
    widget.message_from("ai").await;
    widget.send(json!({"type": "message", "client_id": "q2", "text": "That didn't work, I want to talk to a real person"})).await;
    widget.message_from("system").await;
    widget
}

async fn an_escalation_briefs_the_desk_and_the_agents_reply_reaches_the_web_chat(redis: TestRedis) {
    let desk = Arc::new(FakeDesk::default());
    let gateway = gateway_with_desk(&redis, desk.clone()).await;
    let mut widget = escalated_visitor(&gateway, "desk-visitor-000000001").await;

    let (briefing, thread) = desk.thread().await;
    assert_eq!(thread.channel, "C0SUPPORT");
    assert_eq!(briefing.customer_name, "Dana");
    assert_eq!(briefing.channel, switchboard_webchat::CHANNEL);
    // The page's attributes are unsigned: agents see them, marked; the tier routes nothing.
    assert_eq!(briefing.tier, None);
    assert!(briefing
        .attributes
        .contains(&("tier (unverified)".into(), "standard".into())));
    assert_eq!(
        briefing.page_url.as_deref(),
        Some("https://acme.example/pricing")
    );
    assert_eq!(briefing.page_title.as_deref(), Some("Pricing - Acme Cloud"));
    assert!(briefing
        .attributes
        .contains(&("plan (unverified)".into(), "pro".into())));
    assert_eq!(briefing.reason, "human_requested");
    assert!(!briefing.reason_detail.is_empty());
    assert!(
        briefing.summary.contains("real person"),
        "{}",
        briefing.summary
    );
    // No model configured: the heuristic wrote it, and the briefing claims no model.
    assert_eq!(briefing.summary_source, None);
    assert!(briefing.citations.is_empty());
    let roles: Vec<&str> = briefing
        .transcript
        .iter()
        .map(|line| line.role.as_str())
        .collect();
    assert_eq!(roles, ["customer", "ai", "customer", "system"]);
    assert!(briefing.transcript[0].text.contains("reset my password"));

    // A later customer message lands in the same thread.
    widget
        .send(json!({"type": "message", "client_id": "q3", "text": "My workspace is acme-42"}))
        .await;
    eventually(Duration::from_secs(10), "the mirror post", || async {
        desk.mirrored_in(&thread)
            .iter()
            .any(|(author, text)| author.contains("Dana") && text.contains("acme-42"))
            .then_some(())
    })
    .await;

    // The agent answers in the thread; the visitor sees it signed with the agent's name.
    desk.agent(reply(
        &thread,
        "1700000001.000100",
        "Sam",
        "Hi Dana, I'm Sam. I've reset it for you.",
    ))
    .await;
    let answer = widget.message_from("agent").await;
    assert_eq!(answer["author"]["name"], "Sam");
    assert!(answer["text"].as_str().unwrap().contains("I've reset it"));

    // A note stays on the desk; a replayed event is relayed once.
    desk.agent(reply(
        &thread,
        "1700000001.000200",
        "Sam",
        "// she sounded annoyed",
    ))
    .await;
    desk.agent(reply(
        &thread,
        "1700000001.000100",
        "Sam",
        "Hi Dana, I'm Sam. I've reset it for you.",
    ))
    .await;
    let view = gateway
        .store
        .customer_view(
            switchboard_webchat::CHANNEL,
            "s:desk-visitor-000000001",
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let agent_messages: Vec<_> = view
        .messages
        .iter()
        .filter(|m| matches!(m.author, switchboard_api::Author::Agent { .. }))
        .collect();
    assert_eq!(
        agent_messages.len(),
        1,
        "replayed once, note never: {:?}",
        view.messages
    );
    assert!(!view.messages.iter().any(|m| m.text.contains("annoyed")));
    assert_eq!(view.status, "human");

    // Resolve: the customer is told, the briefing shows it.
    desk.agent(reply(&thread, "1700000001.000300", "Sam", "!resolve"))
        .await;
    let notice = widget.message_from("system").await;
    assert!(
        notice["text"]
            .as_str()
            .unwrap_or("")
            .starts_with(RESOLVED_NOTICE),
        "{notice}"
    );
    let id = conversation_id(switchboard_webchat::CHANNEL, "s:desk-visitor-000000001");
    let status: String = redis
        .client()
        .hget(keys::conversation(&id), "status")
        .unwrap();
    assert_eq!(status, "resolved");
    eventually(
        Duration::from_secs(10),
        "the briefing to show resolved",
        || async {
            desk.updates
                .lock()
                .unwrap()
                .iter()
                .any(|(t, b)| {
                    t == &thread && b.status == "resolved" && b.claimed_by.as_deref() == Some("Sam")
                })
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn handing_back_lets_the_ai_answer_again_and_a_claim_shows() {
    let redis = RedisServer::start();
    let desk = Arc::new(FakeDesk::default());
    let gateway = gateway_with_desk(&redis, desk.clone()).await;
    let mut widget = escalated_visitor(&gateway, "desk-visitor-000000002").await;
    let (_, thread) = desk.thread().await;

    desk.agent(DeskEvent::Agent {
        event_id: "EvReact1".into(),
        thread: thread.clone(),
        action_id: "EvReact1".into(),
        agent_id: "U0LEE".into(),
        agent_name: "Lee".into(),
        action: AgentAction::Command(AgentCommand::Claim),
    })
    .await;
    eventually(Duration::from_secs(10), "the claim to show", || async {
        desk.updates
            .lock()
            .unwrap()
            .iter()
            .any(|(_, b)| b.claimed_by.as_deref() == Some("Lee"))
            .then_some(())
    })
    .await;

    desk.agent(reply(&thread, "1700000002.000100", "Lee", "!ai"))
        .await;
    assert_eq!(widget.message_from("system").await["text"], HANDBACK_NOTICE);
    widget
        .send(
            json!({"type": "message", "client_id": "q4", "text": "How do I download my invoices?"}),
        )
        .await;
    let answer = widget.message_from("ai").await;
    assert!(answer["text"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("invoice"));

    desk.agent(reply(&thread, "1700000002.000200", "Lee", "!frobnicate"))
        .await;
    eventually(
        Duration::from_secs(10),
        "help for an unknown command",
        || async {
            let unknown = ThreadPost::Notice(DeskNotice::UnknownCommand {
                word: "frobnicate".into(),
            });
            desk.posts_in(&thread).contains(&unknown).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_thread_is_found_again_after_a_gateway_restart_and_unknown_threads_are_ignored() {
    let redis = RedisServer::start();
    let desk = Arc::new(FakeDesk::default());
    let gateway = gateway_with_desk(&redis, desk.clone()).await;
    let widget = escalated_visitor(&gateway, "desk-visitor-000000003").await;
    let (_, thread) = desk.thread().await;
    drop(widget);
    drop(gateway);

    let restarted_desk = Arc::new(FakeDesk::default());
    let gateway = gateway_with_desk(&redis, restarted_desk.clone()).await;
    let (mut widget, _) = Widget::connect(gateway.local_addr, "desk-visitor-000000003", None).await;
    widget
        .send(json!({"type": "message", "client_id": "q9", "text": "still there?"}))
        .await;
    eventually(
        Duration::from_secs(10),
        "the mirror in the old thread",
        || async {
            restarted_desk
                .mirrored_in(&thread)
                .iter()
                .any(|(_, text)| text.contains("still there?"))
                .then_some(())
        },
    )
    .await;
    assert!(
        restarted_desk.threads.lock().unwrap().is_empty(),
        "no second briefing"
    );

    eventually(Duration::from_secs(5), "the desk to run", || async {
        restarted_desk.sink.lock().unwrap().clone()
    })
    .await;
    let stranger = ThreadRef {
        channel: "C0SUPPORT".into(),
        ts: "1.0".into(),
    };
    restarted_desk
        .agent(reply(&stranger, "2.0", "Sam", "hello?"))
        .await;
    let keys: Vec<String> = redis.client().keys("sb:{*}:c:*:m").unwrap();
    assert_eq!(keys.len(), 1, "nothing stored for an unknown thread");
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|line| {
            line.starts_with(name_and_labels) && line[name_and_labels.len()..].starts_with(' ')
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_a_scripted_set_of_conversations() {
    let redis = RedisServer::start();
    let desk = Arc::new(FakeDesk::default());
    let gateway = gateway_with_desk(&redis, desk.clone()).await;
    for (n, question) in [
        "How do I reset my password?",
        "How do I download my invoices?",
    ]
    .iter()
    .enumerate()
    {
        let (mut widget, _) = Widget::connect(
            gateway.local_addr,
            &format!("metrics-visitor-00000{n}"),
            None,
        )
        .await;
        widget
            .send(json!({"type": "message", "client_id": "m1", "text": question}))
            .await;
        widget.message_from("ai").await;
        widget
            .send(json!({"type": "message", "client_id": "m1", "text": question}))
            .await;
        widget.next_of("ack").await;
    }
    let mut widget = escalated_visitor(&gateway, "metrics-visitor-escalated").await;
    let (_, thread) = desk.thread().await;
    desk.agent(reply(&thread, "1700000009.000100", "Sam", "Happy to help!"))
        .await;
    widget.message_from("agent").await;
    desk.agent(reply(&thread, "1700000009.000200", "Sam", "!resolve"))
        .await;
    widget.message_from("system").await;

    let (status, text) = crate::harness::http(gateway.admin_addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(
            &text,
            r#"switchboard_inbound_messages_total{channel="webchat",delivery="new"}"#
        ),
        4.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"switchboard_inbound_messages_total{channel="webchat",delivery="replay"}"#
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            r#"switchboard_conversations_started_total{channel="webchat"}"#
        ),
        3.0
    );
    assert_eq!(
        metric(&text, r#"switchboard_ai_answers_total{channel="webchat"}"#),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            r#"switchboard_escalations_total{reason="human_requested"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "switchboard_conversations_escalated_total"),
        1.0
    );
    let ai_resolution_rate = 1.0
        - metric(&text, "switchboard_conversations_escalated_total")
            / metric(
                &text,
                r#"switchboard_conversations_started_total{channel="webchat"}"#,
            );
    assert!(
        (ai_resolution_rate - 2.0 / 3.0).abs() < 1e-9,
        "two of three conversations stayed with the AI"
    );
    assert_eq!(metric(&text, "switchboard_agent_replies_total"), 1.0);
    assert_eq!(metric(&text, "switchboard_resolutions_total"), 1.0);
    assert_eq!(
        metric(&text, "switchboard_time_to_human_seconds_count"),
        1.0
    );
    assert_eq!(
        metric(&text, "switchboard_time_to_first_response_seconds_count"),
        3.0
    );
    assert_eq!(
        metric(&text, "switchboard_triage_latency_seconds_count"),
        4.0
    );
    // The widget sees a message while the outbox is still acking it: poll for the counter.
    // Desk posts: the briefing, two refreshes (claimed by the first reply, resolved) and the
    // knowledge-base candidate notice.
    let addr = gateway.admin_addr;
    eventually(
        Duration::from_secs(5),
        "every delivery counted",
        || async move {
            let (_, text) = crate::harness::http(addr, "GET", "/metrics", None).await;
            let webchat = metric(
                &text,
                r#"switchboard_outbox_deliveries_total{target="webchat",outcome="delivered"}"#,
            );
            let desk = metric(
                &text,
                r#"switchboard_outbox_deliveries_total{target="desk",outcome="delivered"}"#,
            );
            (webchat == 6.0 && desk == 4.0).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn escalations_are_routed_by_category_and_tier_and_fall_back_when_a_channel_refuses() {
    let redis = RedisServer::start();
    std::env::set_var("SB_TEST_ROUTING_SECRET", "routing-secret");
    let mut config = test_config(
        &redis,
        "[connectors.webchat]\nenabled = true\nidentity_secret_env = \"SB_TEST_ROUTING_SECRET\"\n",
    );
    config.desk.routes = vec![
        switchboard::config::DeskRoute {
            channel: "C0BILLING".into(),
            categories: vec!["billing_dispute".into()],
            ..Default::default()
        },
        switchboard::config::DeskRoute {
            channel: "CMISSINGVIP".into(),
            tiers: vec!["vip".into()],
            ..Default::default()
        },
    ];
    let desk = Arc::new(FakeDesk::default());
    let gateway = start_with_fake_desk(config, desk.clone()).await;
    let post = |body: serde_json::Value| {
        let addr = gateway.local_addr;
        async move {
            crate::harness::http(addr, "POST", "/webchat/messages", Some(&body.to_string())).await
        }
    };
    let (status, _) = post(
        json!({"session": "routing-visitor-0000001", "client_id": "r1",
        "text": "I was charged twice this month and I dispute this charge"}),
    )
    .await;
    assert_eq!(status, 200);
    let (claims, signature) =
        crate::webchat_trust::site_claims(b"routing-secret", "ceo-7", json!({"tier": "vip"}));
    let (status, _) = post(
        json!({"session": "routing-visitor-0000002", "client_id": "r2",
        "user_claims": claims, "user_sig": signature, "text": "How do I reset my password?"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        json!({"session": "routing-visitor-0000003", "client_id": "r3",
        "text": "Can I talk to a real person please?"}),
    )
    .await;
    assert_eq!(status, 200);

    let threads = eventually(Duration::from_secs(10), "three briefings", || async {
        let threads = desk.threads.lock().unwrap().clone();
        (threads.len() == 3).then_some(threads)
    })
    .await;
    let channel_for = |reason: &str| {
        threads
            .iter()
            .find(|(_, briefing, _)| briefing.reason == reason)
            .map(|(channel, _, _)| channel.clone())
            .unwrap_or_else(|| panic!("no briefing for {reason}: {threads:?}"))
    };
    assert_eq!(channel_for("always_human_category"), "C0BILLING");
    assert_eq!(
        channel_for("vip_tier"),
        "C0SUPPORT",
        "the VIP channel refused: fall back to the default"
    );
    assert_eq!(channel_for("human_requested"), "C0SUPPORT");
}

#[tokio::test]
async fn after_the_desk_channel_changes_open_threads_stay_and_new_ones_go_to_the_new_channel() {
    let redis = RedisServer::start();
    let desk = Arc::new(FakeDesk::default());
    let gateway = gateway_with_desk(&redis, desk.clone()).await;
    let widget = escalated_visitor(&gateway, "desk-visitor-000000010").await;
    let (_, old_thread) = desk.thread().await;
    assert_eq!(old_thread.channel, "C0SUPPORT");
    drop(widget);
    drop(gateway);

    // The admin moves the desk to a new channel and restarts.
    let moved = Arc::new(FakeDesk::default());
    let gateway = start_with_desk(
        test_config(&redis, WEBCHAT),
        Some(DeskSetup {
            desk: moved.clone(),
            default_channel: "C0NEWDESK".into(),
        }),
    )
    .await
    .expect("gateway starts");
    let (mut old_customer, _) =
        Widget::connect(gateway.local_addr, "desk-visitor-000000010", None).await;
    old_customer
        .send(json!({"type": "message", "client_id": "c9", "text": "any news?"}))
        .await;
    eventually(
        Duration::from_secs(10),
        "the mirror in the old thread",
        || async {
            moved
                .mirrored_in(&old_thread)
                .iter()
                .any(|(_, text)| text.contains("any news?"))
                .then_some(())
        },
    )
    .await;
    moved
        .agent(reply(
            &old_thread,
            "1800000040.000100",
            "Sam",
            "Yes, it's fixed now.",
        ))
        .await;
    assert!(old_customer.message_from("agent").await["text"]
        .as_str()
        .unwrap()
        .contains("fixed"));

    let _new_customer = escalated_visitor(&gateway, "desk-visitor-000000011").await;
    let (_, new_thread) = moved.thread().await;
    assert_eq!(
        new_thread.channel, "C0NEWDESK",
        "new escalations go to the new channel"
    );
}

// On a cluster too: every conversation and work stream lives in its partition's slot.
on_single_and_cluster!(an_escalation_briefs_the_desk_and_the_agents_reply_reaches_the_web_chat,);
