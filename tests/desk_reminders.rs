//! Desk reminders end to end, with time compressed through config: an escalation nobody
//! claims and a customer nobody answers are each brought back to the Slack thread once,
//! calling the team the config names.

use std::time::Duration;

use serde_json::json;
use switchboard_slack::standin::{RecordedPost, SlackStandIn};

use crate::harness::{eventually, http, start_gateway, test_config, RedisServer};
use crate::slack_desk::{agent_reply, briefing, desk_config, visitor_asks_for_a_human};

/// Reminders after 0.005 minutes (300 ms) instead of the default 10.
const FAST_REMINDERS: &str = r#"
[desk]
remind_after_minutes = 0.005
remind_waiting_customer_minutes = 0.005
mention = "S0SUPPORTTEAM"
broadcast_reminders = true
"#;

fn reminders(standin: &SlackStandIn, thread_ts: &str, words: &str) -> Vec<RecordedPost> {
    standin
        .posts()
        .into_iter()
        .filter(|post| post.thread_ts.as_deref() == Some(thread_ts) && post.text.contains(words))
        .collect()
}

async fn reminder(standin: &SlackStandIn, thread_ts: &str, words: &str) -> RecordedPost {
    eventually(Duration::from_secs(10), words, || async {
        reminders(standin, thread_ts, words).into_iter().next()
    })
    .await
}

#[tokio::test]
async fn an_unclaimed_escalation_and_an_unanswered_customer_are_each_reminded_once() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(crate::slack_desk::AGENT, "Sam Rivera");
    let config = format!("{}{FAST_REMINDERS}", desk_config(&standin, "socket"));
    let gateway = start_gateway(test_config(&redis, &config)).await;
    let mut widget =
        visitor_asks_for_a_human(gateway.local_addr, "reminded-visitor-00000001").await;
    let parent = briefing(&standin).await;

    let unclaimed = reminder(&standin, &parent.ts, "Nobody has claimed this").await;
    assert!(
        unclaimed.text.starts_with("<!subteam^S0SUPPORTTEAM> "),
        "{}",
        unclaimed.text
    );
    assert!(unclaimed.reply_broadcast, "shown in the channel too");

    // Sam claims it; then the customer writes and nobody answers.
    standin.send_event(agent_reply(&parent.ts, "1800000000.000100", "!claim"));
    eventually(Duration::from_secs(10), "the claim", || async {
        let (_, text) = http(gateway.admin_addr, "GET", "/metrics", None).await;
        text.contains("switchboard_time_to_claim_seconds_count 1")
            .then_some(())
    })
    .await;
    widget
        .send(json!({"type": "message", "client_id": "q3", "text": "Hello? Anyone there?"}))
        .await;
    let unanswered = reminder(&standin, &parent.ts, "waited").await;
    assert!(
        unanswered.text.contains("for a reply"),
        "{}",
        unanswered.text
    );

    // By now the sweeper has passed the claimed escalation many times: one reminder only.
    assert_eq!(
        reminders(&standin, &parent.ts, "Nobody has claimed this").len(),
        1
    );

    // Sam answers: the wait is over, and a later message starts a new one.
    standin.send_event(agent_reply(
        &parent.ts,
        "1800000000.000200",
        "Here, checking now.",
    ));
    widget.message_from("agent").await;
    widget
        .send(json!({"type": "message", "client_id": "q4", "text": "Thanks, and one more thing"}))
        .await;
    eventually(
        Duration::from_secs(10),
        "a second reply reminder",
        || async { (reminders(&standin, &parent.ts, "waited").len() == 2).then_some(()) },
    )
    .await;

    let (_, metrics) = http(gateway.admin_addr, "GET", "/metrics", None).await;
    assert!(
        metrics.contains(r#"switchboard_desk_reminders_total{waiting="for_claim"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"switchboard_desk_reminders_total{waiting="for_reply"} 2"#),
        "{metrics}"
    );
}

/// How many conversations the desk watch list holds, over every partition.
fn watched(redis: &RedisServer) -> usize {
    let mut conn = redis.client();
    switchboard::store::keys::partitions()
        .map(|partition| {
            redis::cmd("ZCARD")
                .arg(switchboard::store::keys::desk_watch(partition))
                .query::<usize>(&mut conn)
                .unwrap()
        })
        .sum()
}

#[tokio::test]
async fn a_conversation_answered_in_time_is_not_reminded_and_leaves_the_watch_list_when_resolved() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(crate::slack_desk::AGENT, "Sam Rivera");
    // The defaults (ten minutes): every answer comes long before.
    let config = desk_config(&standin, "socket");
    let gateway = start_gateway(test_config(&redis, &config)).await;
    let mut widget =
        visitor_asks_for_a_human(gateway.local_addr, "reminded-visitor-00000002").await;
    let parent = briefing(&standin).await;
    assert_eq!(watched(&redis), 1, "the escalation waits for a claim");
    standin.send_event(agent_reply(&parent.ts, "1800000000.000100", "On it!"));
    widget.message_from("agent").await;
    // The customer writes and the agent replies at once.
    widget
        .send(json!({"type": "message", "client_id": "q3", "text": "great, thanks"}))
        .await;
    standin.send_event(agent_reply(&parent.ts, "1800000000.000200", "Done."));
    widget.message_from("agent").await;
    // The resolve is the observable end: by then the watch entry must be gone.
    standin.send_event(agent_reply(&parent.ts, "1800000000.000300", "!resolve"));
    widget.message_from("system").await;
    // The sweeper looks at the entry when its wait would be due; force that now by asking
    // for everything due up to an hour from now, as a sweep an hour later would.
    let sweeper = switchboard::desk::reminders::DeskReminders::new(
        gateway.store.clone(),
        Default::default(),
        switchboard::desk::reminders::ReminderPolicy::new(&Default::default(), &[]),
    );
    sweeper
        .sweep_as_of(switchboard::model::now_ms() + 3_600_000)
        .await
        .unwrap();
    assert_eq!(watched(&redis), 0, "resolved: nobody waits");
    assert!(reminders(&standin, &parent.ts, ":alarm_clock:").is_empty());
}
