//! Support cases through the real gateway, with time compressed through `[case]`: a case
//! closes on an agent's resolve (a rating leaves it closed), reopens within the window, closes
//! when it goes quiet, and a later message opens a new one in a new desk thread linking the
//! old; AI answers close cases on a confirmation or on the customer's silence; a linked
//! contact coming back on another channel is a repeat contact. The per-case figures of the
//! report and of `/metrics` are checked against scripted scenarios' known answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Commands;
use serde_json::{json, Value};
use switchboard::cases::CONFIRMED_NOTICE;
use switchboard::model::{conversation_id, now_ms};
use switchboard::pipeline::Intake;
use switchboard::report::{self, Window};
use switchboard::store::keys;
use switchboard_api::{ChannelKind, Gateway, Identity, Inbound, InboundKind};

use crate::desk::{reply, start_with_fake_desk, FakeDesk};
use crate::harness::{eventually, http, on_single_and_cluster, test_config, TempDir, TestRedis};
use crate::webchat::{Widget, WEBCHAT};

fn webchat_id(session: &str) -> String {
    conversation_id(switchboard_webchat::CHANNEL, &format!("s:{session}"))
}

fn record(redis: &TestRedis, id: &str) -> HashMap<String, String> {
    redis
        .client()
        .hgetall(keys::conversation(id))
        .expect("read the conversation")
}

/// The `case` field of each transcript entry, oldest first, with the entry's role.
fn transcript_cases(redis: &TestRedis, id: &str) -> Vec<(String, String)> {
    let reply: redis::streams::StreamRangeReply = redis
        .client()
        .xrange_all(keys::messages(id))
        .expect("read the transcript");
    reply
        .ids
        .iter()
        .map(|entry| {
            (
                entry.get::<String>("role").unwrap_or_default(),
                entry.get::<String>("case").unwrap_or_default(),
            )
        })
        .collect()
}

/// The case ids on the partition's escalation log entries of a conversation.
fn escalated_cases(redis: &TestRedis, id: &str) -> Vec<String> {
    let reply: redis::streams::StreamRangeReply = redis
        .client()
        .xrange_all(keys::escalations(keys::partition(id)))
        .expect("read the escalation log");
    reply
        .ids
        .iter()
        .filter_map(|entry| entry.get::<String>("e"))
        .filter_map(|json| serde_json::from_str::<Value>(&json).ok())
        .filter(|log| log["conversation_id"] == id)
        .map(|log| log["case_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The next message to the customer (not an echo of their own).
async fn answer(widget: &mut Widget) -> Value {
    widget
        .next_matching("message", |frame| {
            frame["message"]["author"]["kind"] != "customer"
        })
        .await["message"]
        .clone()
}

async fn say(widget: &mut Widget, client_id: &str, text: &str) -> Value {
    widget
        .send(json!({"type": "message", "client_id": client_id, "text": text}))
        .await;
    answer(widget).await
}

async fn metrics_text(gateway: &switchboard::app::RunningGateway) -> String {
    http(gateway.admin_addr, "GET", "/metrics", None).await.1
}

/// Waits until `/metrics` has every line of `lines`; returns the text.
async fn metrics_with(gateway: &switchboard::app::RunningGateway, lines: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics_text(gateway).await;
        if lines
            .iter()
            .all(|line| text.lines().any(|have| have == *line))
        {
            return text;
        }
        if std::time::Instant::now() > deadline {
            let cases: Vec<&str> = text.lines().filter(|l| l.contains("case")).collect();
            panic!(
                "timed out waiting for {lines:?} in /metrics:\n{}",
                cases.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reopen within 3.6 s of a close; idle close after 8.6 s of the customer's silence (long
/// enough for every step before it on a loaded machine).
const BOUNDARIES: &str = "\
escalate_repeat_contact = true
[case]
reopen_window_hours = 0.001
idle_close_days = 0.0001
";

async fn a_case_closes_reopens_goes_idle_and_the_next_one_links_the_previous_thread(
    redis: TestRedis,
) {
    let desk = Arc::new(FakeDesk::default());
    let config = test_config(&redis, &format!("{BOUNDARIES}{WEBCHAT}"));
    let gateway = start_with_fake_desk(config, desk.clone()).await;
    let session = "case-visitor-0000000001";
    let id = webchat_id(session);
    let (mut widget, _) = Widget::connect(gateway.local_addr, session, None).await;

    let first = say(&mut widget, "q1", "How do I reset my password?").await;
    assert_eq!(first["author"]["kind"], "ai");
    say(&mut widget, "q2", "I want to talk to a real person").await;
    let (_, first_thread) = desk.thread().await;
    desk.agent(reply(
        &first_thread,
        "1800000000.000100",
        "Sam",
        "Reset it for you.",
    ))
    .await;
    answer(&mut widget).await;
    desk.agent(reply(&first_thread, "1800000000.000200", "Sam", "!resolve"))
        .await;
    answer(&mut widget).await;
    let resolved = record(&redis, &id);
    assert_eq!(resolved["case"], "1");
    assert_eq!(resolved["case_close"], "resolved");
    assert!(resolved.contains_key("case_closed_ms"));

    // The rating answers the closed case: it stays closed.
    say(&mut widget, "q3", "5").await;
    let rated = record(&redis, &id);
    assert_eq!(rated["case"], "1");
    assert!(rated.contains_key("case_closed_ms"), "{rated:?}");

    // Within the reopen window: the same case again.
    say(&mut widget, "q4", "Where can I download my invoices?").await;
    let reopened = record(&redis, &id);
    assert_eq!(reopened["case"], "1");
    assert_eq!(reopened["case_reopens"], "1");
    assert!(!reopened.contains_key("case_closed_ms"));

    // Then the customer goes quiet: the sweeper closes it as idle (a person was involved).
    let idle = eventually(Duration::from_secs(30), "the idle close", || async {
        let now = record(&redis, &id);
        now.contains_key("case_closed_ms").then_some(now)
    })
    .await;
    assert_eq!(idle["case_close"], "idle");
    assert_eq!(idle["status"], "resolved");

    // Past the reopen window, but within a week: a new case, a repeat contact, which
    // escalates (`escalate_repeat_contact`) into a new thread linking the previous one.
    let closed_ms: u64 = idle["case_closed_ms"].parse().unwrap();
    while now_ms() < closed_ms + 3_700 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notice = say(&mut widget, "q5", "It's broken again").await;
    assert_eq!(notice["author"]["kind"], "system");
    let second = eventually(Duration::from_secs(10), "a second thread", || async {
        desk.threads.lock().unwrap().get(1).cloned()
    })
    .await;
    let (_, briefing, second_thread) = second;
    assert_ne!(second_thread, first_thread, "a new case, a new thread");
    assert_eq!(briefing.reason, "repeat_contact");
    let previous = briefing.previous_case.expect("links the previous case");
    assert_eq!(previous.case_id, format!("{id}:1"));
    assert_eq!(previous.thread, first_thread);
    let second_case = record(&redis, &id);
    assert_eq!(second_case["case"], "2");
    assert_eq!(second_case["case_repeat"], "1");

    // Every entry carries its case; so does every escalation.
    let cases = transcript_cases(&redis, &id);
    let (before, after) = cases.split_at(cases.len() - 2);
    assert!(before.iter().all(|(_, case)| case == "1"), "{cases:?}");
    assert!(after.iter().all(|(_, case)| case == "2"), "{cases:?}");
    assert_eq!(
        escalated_cases(&redis, &id),
        vec![format!("{id}:1"), format!("{id}:2")]
    );
    let decision: Value = serde_json::from_str(&second_case["last_decision"]).unwrap();
    assert_eq!(decision["case_id"], format!("{id}:2"));

    metrics_with(
        &gateway,
        &[
            r#"switchboard_cases_opened_total{channel="webchat"} 2"#,
            r#"switchboard_repeat_contacts_total{channel="webchat"} 1"#,
            "switchboard_case_reopens_total 1",
            r#"switchboard_cases_closed_total{how="resolved",human="yes"} 1"#,
            r#"switchboard_cases_closed_total{how="idle",human="yes"} 1"#,
            r#"switchboard_csat_ratings_total{rating="5"} 1"#,
            "switchboard_case_escalations_count 2",
        ],
    )
    .await;
}

/// Never reopen; close after 3.6 s of silence following an AI answer.
const AI_CLOSES: &str = "\
[case]
reopen_window_hours = 0
ai_idle_close_hours = 0.001
";

async fn ai_answers_close_cases_and_the_figures_match_a_scripted_scenario(redis: TestRedis) {
    let desk = Arc::new(FakeDesk::default());
    let since = now_ms();
    let config = test_config(&redis, &format!("{WEBCHAT}{AI_CLOSES}"));
    let gateway = start_with_fake_desk(config, desk.clone()).await;
    let addr = gateway.local_addr;

    // Ana confirms the AI's answer: closed at once, by the AI, at first contact.
    let (mut ana, _) = Widget::connect(addr, "case-ana-00000000001", None).await;
    assert_eq!(
        say(&mut ana, "q1", "How do I reset my password?").await["author"]["kind"],
        "ai"
    );
    assert_eq!(
        say(&mut ana, "q2", "Thanks, that worked!").await["text"],
        CONFIRMED_NOTICE
    );
    // Bo says nothing more: closed after the AI-idle time, by the AI, at first contact.
    let (mut bo, _) = Widget::connect(addr, "case-bo-000000000002", None).await;
    say(&mut bo, "q1", "How do I turn on two-factor authentication?").await;
    // Cy needs a person, who resolves it: first contact, not by the AI.
    let (mut cy, _) = Widget::connect(addr, "case-cy-000000000003", None).await;
    say(&mut cy, "q1", "I want to talk to a real person").await;
    let (_, thread) = desk.thread().await;
    desk.agent(reply(&thread, "1800000000.000100", "Sam", "Sorted."))
        .await;
    answer(&mut cy).await;
    desk.agent(reply(&thread, "1800000000.000200", "Sam", "!resolve"))
        .await;
    answer(&mut cy).await;
    // Di confirms, then comes back with another question: her first case was no first-contact
    // resolution; the second one is, once the AI's answer goes unanswered.
    let (mut di, _) = Widget::connect(addr, "case-di-000000000004", None).await;
    say(&mut di, "q1", "How do I reset my password?").await;
    say(&mut di, "q2", "thanks").await;
    assert_eq!(
        say(&mut di, "q3", "Where can I download my invoices?").await["author"]["kind"],
        "ai"
    );

    let metrics = metrics_with(
        &gateway,
        &[
            r#"switchboard_cases_closed_total{how="confirmed",human="no"} 2"#,
            r#"switchboard_cases_closed_total{how="ai_idle",human="no"} 2"#,
            r#"switchboard_cases_closed_total{how="resolved",human="yes"} 1"#,
            r#"switchboard_repeat_contacts_total{channel="webchat"} 1"#,
        ],
    )
    .await;
    assert!(
        metrics.contains(r#"switchboard_cases_opened_total{channel="webchat"} 5"#),
        "{metrics}"
    );
    assert!(!metrics.contains("switchboard_case_reopens_total 1"));

    let config = test_config(&redis, &format!("{WEBCHAT}{AI_CLOSES}"));
    let window = Window::new(since, now_ms() + 1).unwrap();
    let report = report::run_report(&config, window, None)
        .await
        .expect("report");
    let cases = &report.cases;
    assert_eq!(cases.opened, 5);
    assert_eq!(cases.closed, 5);
    assert_eq!(cases.ai_resolved, 4, "{cases:?}");
    assert_eq!(cases.first_contact_resolved, 4, "{cases:?}");
    assert!((cases.fcr_rate() - 0.8).abs() < 1e-9);
    assert!((cases.ai_resolved_rate() - 0.8).abs() < 1e-9);
    assert_eq!(cases.repeat_contacts, 1);
    assert!((cases.repeat_contact_rate() - 0.2).abs() < 1e-9);
    assert_eq!(cases.cross_channel_repeats, 0);
    assert_eq!(cases.escalations, 1);
    assert!((cases.escalations_per_case() - 0.2).abs() < 1e-9);
    assert_eq!(
        cases.closed_as,
        [("ai_idle", 2), ("confirmed", 2), ("resolved", 1)]
            .into_iter()
            .map(|(how, n)| (how.to_owned(), n))
            .collect()
    );
    assert_eq!(cases.time_to_first_response.count(), 5);
    assert_eq!(cases.time_to_human.count(), 1);
    assert_eq!(cases.time_to_resolution.count(), 5);
    let text = report.to_string();
    assert!(text.contains("first contact      80.0%"), "{text}");
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);

    // Past the retention (the run's clock moves on; nothing sleeps) the four conversations
    // leave Redis with their case events, and the same window reads the same figures back
    // out of the archive.
    let dir = TempDir::new("cases-archive");
    let archived_config = test_config(
        &redis,
        &format!(
            "{WEBCHAT}{AI_CLOSES}[retention]\narchive_dir = {:?}\n",
            dir.0.display().to_string()
        ),
    );
    let archive = switchboard::admin::archive_of(&archived_config)
        .unwrap()
        .expect("an archive");
    let later = now_ms() + 91 * 86_400_000;
    let run = archive
        .run(&gateway.store, later, 90)
        .await
        .expect("archive run");
    assert_eq!(run.archived, 4, "{run:?}");
    assert_eq!(run.case_events_trimmed, 10, "five opened, five closed");
    let redis_only = report::run_report(&config, window, None)
        .await
        .expect("report");
    assert_eq!(redis_only.total_conversations(), 0);
    assert_eq!(redis_only.cases.opened, 0);
    let with_archive = report::run_report(&archived_config, window, None)
        .await
        .expect("report");
    assert_eq!(with_archive, report);
}

/// Never reopen: the email comes "days later".
const LINKED: &str = "\
escalate_repeat_contact = true
[case]
reopen_window_hours = 0
[connectors.webchat]
enabled = true
identity_secret_env = \"SB_TEST_CASES_SECRET\"
";

async fn a_linked_contact_back_on_another_channel_is_a_repeat_contact(redis: TestRedis) {
    std::env::set_var("SB_TEST_CASES_SECRET", "cases-site-secret");
    let desk = Arc::new(FakeDesk::default());
    let since = now_ms();
    let gateway = start_with_fake_desk(test_config(&redis, LINKED), desk.clone()).await;
    let user = "carol@example.org";
    let signature = switchboard_webchat::sign_user_id(b"cases-site-secret", user);
    let id = conversation_id(switchboard_webchat::CHANNEL, &format!("u:{user}"));
    let post = |client_id: &'static str, text: &'static str| {
        let body = json!({
            "session": "case-carol-00000000001", "client_id": client_id, "user_id": user,
            "user_sig": signature, "text": text,
        });
        async move {
            let (status, response) = http(
                gateway.local_addr,
                "POST",
                "/webchat/messages",
                Some(&body.to_string()),
            )
            .await;
            assert_eq!(status, 200, "{response}");
        }
    };
    let entries_from = |role: &'static str, count: usize| {
        let redis = &redis;
        let id = &id;
        async move {
            eventually(Duration::from_secs(10), role, || async {
                let cases = transcript_cases(redis, id);
                (cases.iter().filter(|(r, _)| r == role).count() >= count).then_some(())
            })
            .await
        }
    };
    post("w1", "How do I reset my password?").await;
    entries_from("ai", 1).await;
    post("w2", "great, thanks").await;
    eventually(Duration::from_secs(10), "the confirmed close", || async {
        (record(&redis, &id).get("case_close").map(String::as_str) == Some("confirmed"))
            .then_some(())
    })
    .await;

    // Days later, by email (as the email connector hands it over): the same contact.
    let intake = Intake::new(gateway.store.clone(), 16_000).with_metrics(gateway.metrics.clone());
    let accepted = intake
        .accept(Inbound {
            channel: ChannelKind::new("email"),
            conversation_key: user.into(),
            message_id: "<case-carol-1@example.org>".into(),
            kind: InboundKind::Text,
            author: Identity {
                id: user.into(),
                display_name: Some("Carol".into()),
                email: Some(user.into()),
                verified: false,
                email_verified: true,
            },
            text: "My password reset still does not work".into(),
            context: Default::default(),
            files: Vec::new(),
        })
        .await
        .expect("accepted");
    assert_eq!(accepted.conversation_id, id, "linked into one conversation");
    let (_, briefing, _) = eventually(Duration::from_secs(10), "the thread", || async {
        desk.threads.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(briefing.reason, "repeat_contact");
    assert!(
        briefing.previous_case.is_none(),
        "the first case had no thread"
    );
    let now = record(&redis, &id);
    assert_eq!(now["case"], "2");
    assert_eq!(now["case_repeat"], "1");

    metrics_with(
        &gateway,
        &[r#"switchboard_repeat_contacts_total{channel="email"} 1"#],
    )
    .await;
    let config = test_config(&redis, LINKED);
    let window = Window::new(since, now_ms() + 1).unwrap();
    let report = report::run_report(&config, window, None)
        .await
        .expect("report");
    assert_eq!(report.cases.opened, 2);
    assert_eq!(report.cases.repeat_contacts, 1);
    assert_eq!(report.cases.cross_channel_repeats, 1);
    assert_eq!(report.cases.closed, 1);
    assert_eq!(
        report.cases.first_contact_resolved, 0,
        "she came back within the repeat window"
    );

    // Forgotten: nothing of hers is left in the partition's case deadlines or case log.
    switchboard::contact::forget(&gateway.store, None, None, &[], user, "dpo", None)
        .await
        .expect("forget");
    let mut conn = redis.client();
    let partition = keys::partition(&id);
    let deadline: Option<f64> = conn
        .zscore(keys::case_deadlines(partition), keys::conversation(&id))
        .unwrap();
    assert_eq!(deadline, None);
    let log: redis::streams::StreamRangeReply = conn.xrange_all(keys::case_log(partition)).unwrap();
    assert!(
        !log.ids.iter().any(|entry| entry
            .get::<String>("case")
            .is_some_and(|case| case.starts_with(&id))),
        "her case events are gone"
    );
}

on_single_and_cluster!(
    a_case_closes_reopens_goes_idle_and_the_next_one_links_the_previous_thread,
    ai_answers_close_cases_and_the_figures_match_a_scripted_scenario,
    a_linked_contact_back_on_another_channel_is_a_repeat_contact,
);

/// `MEMORY USAGE` of `key`, every element counted.
fn memory_usage(conn: &mut redis::Connection, key: &str) -> u64 {
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query::<Option<u64>>(conn)
        .unwrap()
        .unwrap_or(0)
}

/// What cases add to an open conversation in Redis: its keys as they are, against the same
/// keys rewritten without the case fields (the layout before cases), plus the partitions' case
/// deadlines and case logs, shared out over the conversations. Printed for the record; bounded
/// so a change that makes every conversation much bigger fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_add_little_redis_memory_to_an_open_conversation() {
    const VISITORS: usize = 32;
    let redis = crate::harness::RedisServer::start();
    let gateway = crate::harness::start_gateway(test_config(&redis, WEBCHAT)).await;
    let mut ids = Vec::new();
    for visitor in 0..VISITORS {
        let session = format!("case-memory-{visitor:010}");
        ids.push(webchat_id(&session));
        let (mut widget, _) = Widget::connect(gateway.local_addr, &session, None).await;
        for (n, question) in [
            "How do I reset my password?",
            "How do I turn on two-factor authentication?",
            "Where can I download my invoices?",
            "How do I update my payment method?",
            "How do I export my data?",
        ]
        .into_iter()
        .enumerate()
        {
            say(&mut widget, &format!("q{n}"), question).await;
        }
    }
    let mut conn = redis.client();
    let shared = |conn: &mut redis::Connection| -> u64 {
        keys::partitions()
            .map(|partition| {
                memory_usage(conn, &keys::case_deadlines(partition))
                    + memory_usage(conn, &keys::case_log(partition))
            })
            .sum()
    };
    // The partitions' case deadlines and logs have a fixed cost each (a stream's first node
    // is allocated whole); what a conversation adds to them is measured as a slope over
    // many more of them, stored through the gateway's ingest.
    const MORE: usize = 1_024;
    let shared_before = shared(&mut conn);
    for visitor in 0..MORE {
        let inbound = Inbound {
            channel: switchboard_webchat::CHANNEL,
            conversation_key: format!("s:case-memory-more-{visitor:06}"),
            message_id: format!("m-{visitor}"),
            kind: InboundKind::Text,
            author: Identity {
                id: format!("visitor-{visitor}"),
                ..Identity::default()
            },
            text: "How do I reset my password?".into(),
            context: Default::default(),
            files: Vec::new(),
        };
        gateway.store.ingest(&inbound).await.expect("ingest");
    }
    let shared_per_conversation = (shared(&mut conn) - shared_before) / MORE as u64;
    let mut with_cases = 0;
    let mut without_cases = 0;
    for id in &ids {
        for key in [keys::seen(id), keys::deliveries(id)] {
            let bytes = memory_usage(&mut conn, &key);
            with_cases += bytes;
            without_cases += bytes;
        }
        with_cases += memory_usage(&mut conn, &keys::conversation(id));
        with_cases += memory_usage(&mut conn, &keys::messages(id));
        let fields: HashMap<String, String> = conn.hgetall(keys::conversation(id)).unwrap();
        let before_hash: Vec<(String, String)> = fields
            .into_iter()
            .filter(|(name, _)| !name.starts_with("case"))
            .collect();
        let _: () = conn.hset_multiple("before:c", &before_hash).unwrap();
        let entries: redis::streams::StreamRangeReply =
            conn.xrange_all(keys::messages(id)).unwrap();
        assert_eq!(entries.ids.len(), 10, "five questions, five answers");
        for entry in &entries.ids {
            let mut fields: Vec<(String, String)> = entry
                .map
                .iter()
                .filter(|(name, _)| name.as_str() != "case")
                .map(|(name, value)| {
                    (
                        name.clone(),
                        redis::from_redis_value_ref::<String>(value).unwrap(),
                    )
                })
                .collect();
            // In the order the scripts write them, which decides how entries compress.
            let order: &[&str] = if entry.get::<String>("role").as_deref() == Some("customer") {
                &["role", "kind", "text", "cmid", "files"]
            } else {
                &["role", "author", "text", "kind", "files"]
            };
            fields.sort_by_key(|(name, _)| order.iter().position(|known| known == name));
            let _: String = conn.xadd("before:m", &entry.id, &fields).unwrap();
        }
        without_cases += memory_usage(&mut conn, "before:c") + memory_usage(&mut conn, "before:m");
        let _: () = conn.del(&["before:c", "before:m"]).unwrap();
    }
    let (own_with, without_cases) = (
        with_cases / VISITORS as u64,
        without_cases / VISITORS as u64,
    );
    println!(
        "own keys +{} bytes, the partitions' case deadlines and log +{shared_per_conversation} bytes",
        own_with.saturating_sub(without_cases)
    );
    let with_cases = own_with + shared_per_conversation;
    let added = with_cases.saturating_sub(without_cases);
    println!(
        "Redis memory per open conversation with 10 messages ({VISITORS} of them): \
         {without_cases} bytes without cases, {with_cases} bytes with them (+{added} bytes, {:.1}%)",
        added as f64 * 100.0 / without_cases as f64
    );
    assert!(
        added * 100 <= without_cases * 10,
        "cases add {added} of {without_cases} bytes"
    );
}

/// A case's first close check comes from the case log, and only a check sets a deadline for
/// the next; so no check may come too late. Here the first check finds the customer still
/// waiting for the AI's answer, and the answer comes after: the AI-idle close still happens
/// exactly `ai_idle_close_hours` after the answer. Time is the sweeper's argument.
async fn a_close_check_before_the_answer_still_closes_on_the_ai_idle_time(redis: TestRedis) {
    const HOUR: u64 = 3_600_000;
    let config = test_config(
        &redis,
        "[case]\nai_idle_close_hours = 1\nidle_close_days = 7\n",
    );
    let store = switchboard::store::Store::connect(&config.redis.url, Duration::from_secs(5))
        .await
        .expect("redis")
        .with_case_rules(config.case_rules());
    let sweeper = switchboard::cases::CaseSweeper::new(store.clone(), Default::default());
    let inbound = Inbound {
        channel: switchboard_webchat::CHANNEL,
        conversation_key: "s:case-deadline-0000001".into(),
        message_id: "m-1".into(),
        kind: InboundKind::Text,
        author: Identity::default(),
        text: "How do I reset my password?".into(),
        context: Default::default(),
        files: Vec::new(),
    };
    let id = store
        .ingest(&inbound)
        .await
        .expect("ingest")
        .conversation_id;
    // A conversation's first case opens with it.
    let opened: u64 = record(&redis, &id)["created_ms"].parse().unwrap();
    let deadline = |redis: &TestRedis| -> Option<u64> {
        let mut conn = redis.client();
        let score: Option<f64> = conn
            .zscore(
                keys::case_deadlines(keys::partition(&id)),
                keys::conversation(&id),
            )
            .unwrap();
        score.map(|score| score as u64)
    };
    assert_eq!(
        deadline(&redis),
        None,
        "no sorted-set entry before the first check"
    );
    assert_eq!(sweeper.sweep_as_of(opened + HOUR - 1_000).await.unwrap(), 0);
    assert_eq!(deadline(&redis), None, "not checked before its time");

    // The first look finds the customer still waiting: nothing closes, and the next look is
    // an AI-idle time from now (no answer can come before now).
    let first_look = opened + HOUR + 1_000;
    assert_eq!(sweeper.sweep_as_of(first_look).await.unwrap(), 0);
    assert_eq!(deadline(&redis), Some(first_look + HOUR));

    // The AI answers half a minute after that look.
    let answered = first_look + 30_000;
    ai_answers(&store, &id, answered, "Use the Forgot password link.").await;
    // The answer leaves the deadline where the sweeper put it.
    assert_eq!(deadline(&redis), Some(first_look + HOUR));

    // Sweeps in between read nothing new from the case log.
    assert_eq!(sweeper.sweep_as_of(first_look + 1_000).await.unwrap(), 0);
    assert_eq!(deadline(&redis), Some(first_look + HOUR));
    // The second look is before the answer's AI-idle time: the next one goes exactly there.
    assert_eq!(sweeper.sweep_as_of(first_look + HOUR).await.unwrap(), 0);
    assert_eq!(deadline(&redis), Some(answered + HOUR));
    assert_eq!(sweeper.sweep_as_of(answered + HOUR - 1).await.unwrap(), 0);
    assert_eq!(sweeper.sweep_as_of(answered + HOUR).await.unwrap(), 1);
    let closed = record(&redis, &id);
    assert_eq!(closed["case_close"], "ai_idle");
    assert_eq!(closed["case_closed_ms"], (answered + HOUR).to_string());
    assert_eq!(deadline(&redis), None, "a closed case has no deadline");

    // The customer comes back, and the case log is trimmed (what `archive run` does) before
    // any sweeper read that opening: the trim hands the case's first check to the case
    // deadlines, so its close still comes. The first check comes before triage answered,
    // while the record still reads `resolved` from the close: the case stays open.
    let back = Inbound {
        message_id: "m-2".into(),
        ..inbound
    };
    store.ingest(&back).await.expect("ingest");
    let back_at = now_ms();
    let log = keys::case_log(keys::partition(&id));
    store
        .trim_case_log(keys::partition(&id), u64::MAX)
        .await
        .expect("trim");
    let left: u64 = redis.client().xlen(&log).unwrap();
    assert_eq!(left, 0, "everything before the cut goes");
    let first_check = deadline(&redis).expect("the first check waits in the deadlines");
    assert!((back_at - 5_000 + HOUR..=back_at + HOUR).contains(&first_check));
    assert_eq!(record(&redis, &id)["status"], "resolved");
    assert_eq!(sweeper.sweep_as_of(back_at + HOUR).await.unwrap(), 0);
    assert!(!record(&redis, &id).contains_key("case_closed_ms"));
    let answered_again = back_at + HOUR + 10_000;
    ai_answers(
        &store,
        &id,
        answered_again,
        "Here is how to export your data.",
    )
    .await;
    assert_eq!(sweeper.sweep_as_of(answered_again + HOUR).await.unwrap(), 1);
    assert_eq!(record(&redis, &id)["case_close"], "ai_idle");
}

/// Commits an AI answer "at" `at_ms` (the record's clock), as the triage worker would.
async fn ai_answers(store: &switchboard::store::Store, id: &str, at_ms: u64, text: &str) {
    store
        .commit(&switchboard::store::Commit {
            conversation_id: id.to_owned(),
            fields: vec![
                ("updated_ms".into(), at_ms.to_string()),
                ("status".into(), "bot".into()),
            ],
            reply: Some(switchboard::store::ReplyToQueue {
                role: switchboard::model::Role::Ai,
                text: text.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("commit");
}

on_single_and_cluster!(a_close_check_before_the_answer_still_closes_on_the_ai_idle_time);
