//! The Slack desk's buttons and modals end to end: slack-morphism against the loopback Slack
//! stand-in (Socket Mode and the Events API's interactivity URL), a real gateway, Redis and a
//! web chat visitor.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard::desk::inbox::RESOLVED_NOTICE;
use switchboard_slack::manifest::DESK_SCOPES;
use switchboard_slack::standin::{button_press, signed_interaction, RecordedPost, SlackStandIn};

use crate::harness::{
    eventually, http, http_with_headers, start_gateway, test_config, RedisServer,
};
use crate::slack_desk::{
    agent_reply, assert_calls_covered_by, briefing, desk_config, visitor_asks_for_a_human, AGENT,
};
use crate::webchat::Widget;

const SUPPORT: &str = "C0SUPPORT";
const OTHER_AGENT: &str = "U0AGENTOLA";
const OUTSIDER: &str = "U0OUTSIDER";
const WAIT: Duration = Duration::from_secs(15);

/// The button `action_id` on the latest version of the briefing `ts`: its value.
fn button_value(standin: &SlackStandIn, ts: &str, action_id: &str) -> Option<String> {
    let latest = standin.posts().into_iter().rfind(|post| post.ts == ts)?;
    latest.blocks.as_array()?.iter().find_map(|block| {
        block["elements"].as_array()?.iter().find_map(|element| {
            (element["action_id"] == action_id)
                .then(|| element["value"].as_str().map(str::to_owned))
                .flatten()
        })
    })
}

/// Presses a briefing button in Socket Mode; asserts the press is acked within Slack's 3 s.
async fn press(standin: &SlackStandIn, user: &str, ts: &str, button: (&str, &str), trigger: &str) {
    let started = Instant::now();
    let envelope = standin.send_interaction(button_press(user, SUPPORT, ts, None, button, trigger));
    assert!(standin.wait_for_ack(&envelope, WAIT).await, "press acked");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "acked within 3 s"
    );
}

async fn header_update(standin: &SlackStandIn, ts: &str, state: &str) -> RecordedPost {
    eventually(WAIT, state, || async {
        standin.posts().into_iter().find(|post| {
            post.method == "chat.update"
                && post.ts == ts
                && post.blocks[0]["text"]["text"]
                    .as_str()
                    .is_some_and(|header| header.starts_with(state))
        })
    })
    .await
}

async fn ephemeral(standin: &SlackStandIn, user: &str, needle: &str) {
    assert!(
        standin
            .wait_for_ephemeral(user, needle, WAIT)
            .await
            .is_some(),
        "{user} told {needle:?}: {:?}",
        standin.ephemerals()
    );
}

fn customer_messages_with(view: &switchboard_api::ConversationView, needle: &str) -> usize {
    view.messages
        .iter()
        .filter(|message| message.text.contains(needle))
        .count()
}

/// A Slack stand-in whose support channel has Sam and Ola (and the bot) but not the outsider.
async fn stand_in_with_two_agents_and_an_outsider() -> SlackStandIn {
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    standin.set_user(OTHER_AGENT, "Ola Berg");
    standin.set_user(OUTSIDER, "Out Sider");
    standin.set_channel_members(SUPPORT, &[AGENT, OTHER_AGENT, standin.bot_user_id()]);
    standin
}

#[tokio::test]
async fn briefing_buttons_claim_send_the_suggestion_edit_and_resolve_each_once() {
    let redis = RedisServer::start();
    let standin = stand_in_with_two_agents_and_an_outsider().await;
    let gateway = start_gateway(test_config(&redis, &desk_config(&standin, "socket"))).await;
    let mut widget = visitor_asks_for_a_human(gateway.local_addr, "slack-buttons-00000001").await;
    let parent = briefing(&standin).await;
    let header = parent.blocks[0]["text"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(header.starts_with("⏳ Waiting"), "{header}");
    let fingerprint = button_value(&standin, &parent.ts, "sb_send_suggestion")
        .expect("a Send suggested reply button");
    let suggestion =
        button_value(&standin, &parent.ts, "sb_edit_suggestion").expect("an Edit & send button");

    // Claim, retried by Slack (same trigger_id and action_ts), then clicked again.
    press(
        &standin,
        AGENT,
        &parent.ts,
        ("sb_claim", "c"),
        "trig-claim-1",
    )
    .await;
    press(
        &standin,
        AGENT,
        &parent.ts,
        ("sb_claim", "c"),
        "trig-claim-1",
    )
    .await;
    header_update(&standin, &parent.ts, "🙋 Claimed by Sam Rivera").await;
    press(
        &standin,
        AGENT,
        &parent.ts,
        ("sb_claim", "c"),
        "trig-claim-2",
    )
    .await;
    ephemeral(&standin, AGENT, "You already have this conversation").await;
    let claimed = standin
        .posts()
        .iter()
        .filter(|post| post.method == "chat.update" && post.ts == parent.ts)
        .count();
    assert_eq!(claimed, 1, "one claim, one briefing update");

    // Someone else's press on Sam's conversation only tells them so.
    press(
        &standin,
        OTHER_AGENT,
        &parent.ts,
        ("sb_resolve", "r"),
        "trig-ola-1",
    )
    .await;
    ephemeral(
        &standin,
        OTHER_AGENT,
        "Sam Rivera has claimed this conversation",
    )
    .await;

    // Send suggested reply: retried and double-clicked, the customer gets it once.
    let send = ("sb_send_suggestion", fingerprint.as_str());
    press(&standin, AGENT, &parent.ts, send, "trig-send-1").await;
    press(&standin, AGENT, &parent.ts, send, "trig-send-1").await;
    press(&standin, AGENT, &parent.ts, send, "trig-send-2").await;
    let sent = widget.message_from("agent").await;
    assert_eq!(sent["text"], suggestion.as_str());
    assert_eq!(sent["author"]["name"], "Sam Rivera");
    ephemeral(&standin, AGENT, "already sent").await;
    eventually(WAIT, "the thread shows the approved draft", || async {
        standin.posts().into_iter().find(|post| {
            post.thread_ts.as_deref() == Some(&parent.ts)
                && post
                    .text
                    .contains("Sam Rivera* approved and sent the AI's draft")
        })
    })
    .await;

    // Edit & send opens a modal prefilled with the suggestion; its submission sends the edit.
    press(
        &standin,
        AGENT,
        &parent.ts,
        ("sb_edit_suggestion", &suggestion),
        "trig-edit-1",
    )
    .await;
    let views = standin.wait_for_views(1, WAIT).await;
    assert_eq!(views.len(), 1, "one modal");
    assert_eq!(
        views[0].view["blocks"][0]["element"]["initial_value"],
        suggestion.as_str()
    );
    let edited = "Hi Dana, I've reset it for you: check your inbox.";
    let submission = standin.view_submission(AGENT, &views[0], edited);
    for _ in 0..2 {
        let envelope = standin.send_interaction(submission.clone());
        assert!(standin.wait_for_ack(&envelope, WAIT).await);
    }
    let message = widget.message_from("agent").await;
    assert_eq!(message["text"], edited);

    // A trigger_id past Slack's 3 seconds: the agent is told why no modal opened.
    standin.expire_trigger("trig-edit-late");
    press(
        &standin,
        AGENT,
        &parent.ts,
        ("sb_edit_suggestion", &suggestion),
        "trig-edit-late",
    )
    .await;
    ephemeral(&standin, AGENT, "trigger for that click expired").await;
    assert_eq!(standin.views().len(), 1);

    // Someone outside the desk channel cannot act.
    press(
        &standin,
        OUTSIDER,
        &parent.ts,
        ("sb_resolve", "r"),
        "trig-outsider",
    )
    .await;
    press(
        &standin,
        AGENT,
        &parent.ts,
        ("sb_resolve", "r"),
        "trig-resolve-1",
    )
    .await;
    let notice = widget.message_from("system").await;
    assert!(notice["text"]
        .as_str()
        .unwrap_or("")
        .starts_with(RESOLVED_NOTICE));
    let resolved = header_update(&standin, &parent.ts, "✅ Resolved").await;
    assert!(
        !resolved.blocks.to_string().contains("sb_resolve"),
        "no buttons on a resolved briefing"
    );
    press(
        &standin,
        AGENT,
        &parent.ts,
        ("sb_claim", "c"),
        "trig-claim-3",
    )
    .await;
    ephemeral(&standin, AGENT, "already resolved").await;

    let view = gateway
        .store
        .customer_view(
            switchboard_webchat::CHANNEL,
            "s:slack-buttons-00000001",
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        customer_messages_with(&view, &suggestion),
        1,
        "suggestion sent once"
    );
    assert_eq!(customer_messages_with(&view, edited), 1, "edit sent once");
    assert_eq!(
        customer_messages_with(&view, RESOLVED_NOTICE),
        1,
        "resolved once"
    );
    let outsider_told = standin
        .ephemerals()
        .iter()
        .any(|e| e.user == OUTSIDER && e.text.contains("Only members"));
    assert!(!outsider_told, "Slack shows a non-member no ephemeral");
    assert!(
        standin
            .methods_called()
            .contains(&"conversations.members".to_owned()),
        "membership was checked"
    );
    // Text commands keep working next to the buttons.
    standin.send_event(agent_reply(&parent.ts, "1800000000.000900", "!claim"));
    header_update(&standin, &parent.ts, "🙋 Claimed by Sam Rivera").await;
    assert_calls_covered_by(&standin, DESK_SCOPES);
}

#[tokio::test]
async fn presses_posted_to_the_interactivity_url_are_answered_at_once_and_act_once() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let gateway = start_gateway(test_config(&redis, &desk_config(&standin, "events_api"))).await;
    let _widget = visitor_asks_for_a_human(gateway.local_addr, "slack-buttons-00000002").await;
    let parent = briefing(&standin).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let post = |payload: Value, secret: &'static str| {
        let request = signed_interaction(secret, &payload, now);
        async move {
            let started = Instant::now();
            let (status, _) = http_with_headers(
                gateway.local_addr,
                "POST",
                "/slack/events",
                &request.headers,
                Some(&request.body),
            )
            .await;
            (status, started.elapsed())
        }
    };
    let claim = button_press(
        AGENT,
        SUPPORT,
        &parent.ts,
        None,
        ("sb_claim", "c"),
        "trig-http-1",
    );
    let (status, _) = post(claim.clone(), "not-the-secret").await;
    assert_eq!(status, 401, "a forged press is refused");
    for _ in 0..2 {
        let (status, took) = post(claim.clone(), "test-signing-secret").await;
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(3), "answered in {took:?}");
    }
    header_update(&standin, &parent.ts, "🙋 Claimed by Sam Rivera").await;
    let hand_back = button_press(
        AGENT,
        SUPPORT,
        &parent.ts,
        None,
        ("sb_hand_back", "h"),
        "trig-http-2",
    );
    let (status, _) = post(hand_back, "test-signing-secret").await;
    assert_eq!(status, 200);
    header_update(&standin, &parent.ts, "🤖 Back with the AI").await;
    let updates = standin
        .posts()
        .iter()
        .filter(|post| post.method == "chat.update" && post.ts == parent.ts)
        .count();
    assert_eq!(
        updates,
        2,
        "the retried claim acted once: {:?}",
        standin.posts()
    );
}

#[tokio::test]
async fn a_knowledge_candidate_is_edited_in_a_modal_and_approved_once() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let knowledge = crate::harness::TempDir::new("buttons-knowledge");
    for entry in std::fs::read_dir(crate::harness::config_dir().join("knowledge")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, knowledge.0.join(path.file_name().unwrap())).unwrap();
    }
    let mut config = test_config(&redis, &desk_config(&standin, "socket"));
    config.triage.knowledge_dir = knowledge.0.display().to_string();
    let gateway = start_gateway(config).await;
    let (mut widget, _) =
        crate::webchat::Widget::connect(gateway.local_addr, "slack-buttons-00000003", None).await;
    widget
        .send(serde_json::json!({"type": "message", "client_id": "k1",
                                 "text": "Do you offer a discount for students?"}))
        .await;
    widget.message_from("system").await;
    let parent = briefing(&standin).await;
    standin.send_event(agent_reply(
        &parent.ts,
        "1800000000.000100",
        "Yes, 50% off Pro with a school email.",
    ));
    widget.message_from("agent").await;
    press(
        &standin,
        AGENT,
        &parent.ts,
        ("sb_resolve", "r"),
        "trig-kb-resolve",
    )
    .await;
    let notice = eventually(WAIT, "the candidate with its buttons", || async {
        standin.posts().into_iter().find(|post| {
            post.thread_ts.as_deref() == Some(&parent.ts)
                && post.blocks.to_string().contains("sb_kb_approve")
        })
    })
    .await;
    let candidate_press = |button: (&str, &str), trigger: &str| {
        button_press(
            AGENT,
            SUPPORT,
            &notice.ts,
            Some(&parent.ts),
            button,
            trigger,
        )
    };
    let envelope = standin.send_interaction(candidate_press(
        ("sb_kb_edit", "Yes, 50% off Pro with a school email."),
        "trig-kb-edit",
    ));
    assert!(standin.wait_for_ack(&envelope, WAIT).await);
    let views = standin.wait_for_views(1, WAIT).await;
    assert_eq!(
        views[0].view["blocks"][0]["element"]["initial_value"],
        "Yes, 50% off Pro with a school email."
    );
    let edited = "Students get 50% off the Pro plan with a school email address.";
    standin.send_interaction(standin.view_submission(AGENT, &views[0], edited));
    eventually(WAIT, "the edited answer learned", || async {
        gateway
            .learning
            .learned()
            .await
            .unwrap()
            .into_iter()
            .find(|entry| entry.answer == edited)
    })
    .await;
    standin.send_interaction(candidate_press(("sb_kb_approve", "kb"), "trig-kb-approve"));
    ephemeral(&standin, AGENT, "already reviewed").await;
}

#[tokio::test]
async fn reveal_shows_a_hidden_card_number_to_that_agent_alone_and_logs_who_looked() {
    let redis = RedisServer::start();
    let standin = stand_in_with_two_agents_and_an_outsider().await;
    let gateway = start_gateway(test_config(&redis, &desk_config(&standin, "socket"))).await;
    let (mut widget, _) = Widget::connect(gateway.local_addr, "slack-reveal-000000001", None).await;
    let first_card = "4111 1111 1111 1111";
    widget
        .send(json!({"type": "message", "client_id": "q1",
            "text": format!("Please put me through to a person, card {first_card} was charged twice")}))
        .await;
    widget.message_from("system").await;
    let parent = briefing(&standin).await;
    assert!(!parent.blocks.to_string().contains(first_card));
    assert_eq!(
        button_value(&standin, &parent.ts, "sb_reveal").as_deref(),
        Some("briefing"),
        "the briefing hid a card number, so it offers Reveal"
    );

    let second_card = "5500 0000 0000 0004";
    widget
        .send(json!({"type": "message", "client_id": "q2", "text": format!("it was {second_card} actually")}))
        .await;
    let mirrored = eventually(WAIT, "the mirrored message", || async {
        standin.posts().into_iter().find(|post| {
            post.thread_ts.as_deref() == Some(parent.ts.as_str()) && post.text.contains("actually")
        })
    })
    .await;
    assert!(
        mirrored.text.contains("[card •••• 0004]"),
        "{}",
        mirrored.text
    );
    let message_id = mirrored.blocks.as_array().and_then(|blocks| {
        blocks.iter().find_map(|block| {
            block["elements"][0]["action_id"]
                .as_str()
                .filter(|id| *id == "sb_reveal")
                .and(block["elements"][0]["value"].as_str())
                .map(str::to_owned)
        })
    });
    let message_id = message_id.expect("a Reveal button on the redacted message");

    // Someone outside the desk channel is shown nothing and nothing is logged.
    let envelope = standin.send_interaction(button_press(
        OUTSIDER,
        SUPPORT,
        &mirrored.ts,
        Some(&parent.ts),
        ("sb_reveal", &message_id),
        "trig-reveal-outsider",
    ));
    assert!(standin.wait_for_ack(&envelope, WAIT).await);

    // Sam looks at the message (Slack retries the press once), then at the briefing.
    for _ in 0..2 {
        let envelope = standin.send_interaction(button_press(
            AGENT,
            SUPPORT,
            &mirrored.ts,
            Some(&parent.ts),
            ("sb_reveal", &message_id),
            "trig-reveal-1",
        ));
        assert!(standin.wait_for_ack(&envelope, WAIT).await);
    }
    ephemeral(&standin, AGENT, second_card).await;
    press(
        &standin,
        AGENT,
        &parent.ts,
        ("sb_reveal", "briefing"),
        "trig-reveal-2",
    )
    .await;
    ephemeral(&standin, AGENT, first_card).await;

    let looks = gateway.store.reveal_log(10).await.unwrap();
    assert_eq!(looks.len(), 2, "one logged look per press: {looks:?}");
    assert!(looks.iter().all(|look| look.agent_name == "Sam Rivera"
        && look.agent_id == AGENT
        && look.conversation_id.len() > 8));
    assert_eq!(looks[1].message_ids, vec![message_id.clone()]);
    assert!(!looks[0].message_ids.is_empty());
    let mut client = redis.client();
    let logged: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(switchboard::store::keys::REVEAL_AUDIT)
        .arg("-")
        .arg("+")
        .query(&mut client)
        .unwrap();
    let raw: String = logged
        .ids
        .iter()
        .flat_map(|entry| entry.map.values())
        .filter_map(|value| redis::from_redis_value::<String>(value.clone()).ok())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(raw.contains("Sam Rivera"), "{raw}");
    for card in [first_card, second_card] {
        let digits = card.replace(' ', "");
        assert!(
            !raw.contains(card) && !raw.contains(&digits) && !raw.contains("charged"),
            "the audit log never holds the text: {raw}"
        );
    }

    let shown: Vec<_> = standin
        .ephemerals()
        .into_iter()
        .filter(|e| e.text.contains(first_card) || e.text.contains(second_card))
        .collect();
    assert!(
        shown.iter().all(|e| e.user == AGENT),
        "only the agent who pressed is shown the original: {shown:?}"
    );
    assert_eq!(shown.len(), 2, "the retried press showed it once");
    let in_slack: String = standin
        .posts()
        .iter()
        .map(|post| post.text.clone() + &post.blocks.to_string())
        .collect();
    assert!(!in_slack.contains(first_card) && !in_slack.contains(second_card));
    let (_, metrics) = http(gateway.admin_addr, "GET", "/metrics", None).await;
    assert!(
        metrics.contains("switchboard_desk_reveals_total 2"),
        "{metrics}"
    );
}
