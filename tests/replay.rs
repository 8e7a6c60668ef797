//! `switchboard replay`: conversations seeded through the real gateway, then replayed with a
//! candidate config whose changes are known in advance, on a single Redis and on a cluster; a
//! single Redis must be byte-for-byte the same afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use switchboard::model::now_ms;
use switchboard::report::replay::{run_replay, ChangeKind, Outcome};
use switchboard::report::Window;

use crate::desk::{start_with_fake_desk, FakeDesk};
use crate::harness::{on_single_and_cluster, test_config, RedisServer, TestRedis};
use crate::webchat::{Widget, WEBCHAT};

async fn ask(addr: std::net::SocketAddr, session: &str, question: &str, expected: &str) {
    let (mut widget, _) = Widget::connect(addr, session, None).await;
    widget
        .send(json!({"type": "message", "client_id": "q1", "text": question}))
        .await;
    widget.message_from(expected).await;
}

/// Every key with its type and serialized value (DUMP), so any write shows up as a difference.
fn dump_all(redis: &RedisServer) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut client = redis.client();
    let names: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut client).unwrap();
    names
        .into_iter()
        .map(|name| {
            let kind: String = redis::cmd("TYPE").arg(&name).query(&mut client).unwrap();
            let value: Vec<u8> = redis::cmd("DUMP").arg(&name).query(&mut client).unwrap();
            (name, (kind, value))
        })
        .collect()
}

on_single_and_cluster!(
    replay_reports_the_decisions_a_candidate_config_would_change_and_writes_nothing
);

async fn replay_reports_the_decisions_a_candidate_config_would_change_and_writes_nothing(
    live: TestRedis,
) {
    let desk = Arc::new(FakeDesk::default());
    let since = now_ms();
    let gateway = start_with_fake_desk(test_config(&live, WEBCHAT), desk).await;
    let addr = gateway.local_addr;
    ask(
        addr,
        "replay-ana-0000000001",
        "How do I reset my password?",
        "ai",
    )
    .await;
    ask(
        addr,
        "replay-bo-00000000002",
        "I was charged twice, I dispute this charge",
        "system",
    )
    .await;
    ask(
        addr,
        "replay-cy-00000000003",
        "How do I cancel my subscription plan?",
        "ai",
    )
    .await;
    ask(
        addr,
        "replay-di-00000000004",
        "I want to talk to a real person",
        "system",
    )
    .await;
    // Nothing else writes while the dumps are compared.
    gateway.shutdown().await;
    let until = now_ms() + 1;
    // A cluster's keys are spread over its nodes; the single server proves the point.
    let dump = |live: &TestRedis| match live {
        TestRedis::Single(redis) => Some(dump_all(redis)),
        TestRedis::Cluster(_) => None,
    };

    let live_config = test_config(&live, WEBCHAT);
    let window = Window::new(since, until).unwrap();
    // The unchanged config replays to the same decisions.
    let same = run_replay(&live_config, &test_config(&live, WEBCHAT), window)
        .await
        .unwrap();
    assert_eq!(same.replayed, 4, "{same}");
    assert!(same.changes.is_empty(), "{same}");

    // Password questions now always go to a person; nothing reaches the threshold.
    let mut candidate = test_config(&live, WEBCHAT);
    candidate
        .triage
        .always_human_categories
        .insert("account".into(), vec!["password".into()]);
    candidate.triage.confidence_threshold = 1.01;
    let before = dump(&live);
    let replay = run_replay(&live_config, &candidate, window).await.unwrap();
    assert_eq!(dump(&live), before, "replay wrote to Redis");

    assert_eq!(replay.replayed, 4, "{replay}");
    assert_eq!(replay.recorded_answers, 2, "{replay}");
    assert_eq!(replay.replayed_answers, 0, "{replay}");
    let changed: Vec<(&str, ChangeKind, Outcome)> = replay
        .changes
        .iter()
        .map(|c| (c.text.as_str(), c.kind, c.replayed.clone()))
        .collect();
    let escalate = |reason: &str| Outcome::Escalate {
        reason: reason.into(),
    };
    let mut expected = vec![
        (
            "How do I reset my password?",
            ChangeKind::AnswerToEscalate,
            escalate("always_human_category"),
        ),
        (
            "How do I cancel my subscription plan?",
            ChangeKind::AnswerToEscalate,
            escalate("low_confidence"),
        ),
    ];
    let mut changed = changed;
    changed.sort_by_key(|c| c.0);
    expected.sort_by_key(|c| c.0);
    assert_eq!(changed, expected, "{replay}");
    assert_eq!(replay.count(ChangeKind::AnswerToEscalate), 2);
    assert_eq!(replay.count(ChangeKind::EscalateToAnswer), 0);

    let text = replay.to_string();
    assert!(text.contains("answer -> escalate: 2"), "{text}");
    assert!(text.contains("reason always_human_category: 1"), "{text}");
    let json = replay.to_json();
    assert_eq!(json["summary"]["answer_to_escalate"], 2);
    assert_eq!(json["changes"].as_array().unwrap().len(), 2);
    assert_eq!(
        json["summary"]["by"]["answer_to_escalate"]["channel"]["webchat"],
        2
    );
    assert_eq!(
        json["summary"]["by"]["answer_to_escalate"]["reason"]["always_human_category"],
        1
    );

    // Requests for a person no longer recognised: that escalation's reason changes. With the
    // web desk and the public URL in the live config, the example links to its thread there.
    let mut deaf = test_config(&live, WEBCHAT);
    deaf.triage.human_request_phrases.clear();
    deaf.triage.confidence_threshold = 1.01;
    let with_web_desk = test_config(
        &live,
        &format!(
            "{WEBCHAT}[files]\npublic_base_url = \"https://support.example.test/\"\n\
             [desk.web]\nenabled = true\nlogin_token = true\n"
        ),
    );
    let replay = run_replay(&with_web_desk, &deaf, window).await.unwrap();
    let changed = replay
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::ReasonChanged)
        .unwrap_or_else(|| panic!("no reason change in {replay}"));
    assert_eq!(changed.text, "I want to talk to a real person");
    assert_eq!(
        changed.recorded,
        Outcome::Escalate {
            reason: "human_requested".into()
        }
    );
    let link = changed.link.as_deref().expect("a link to the web desk");
    assert!(
        link.starts_with("https://support.example.test/desk#thread=1700000000."),
        "{link}"
    );
    // Answered conversations have no desk thread to open.
    assert!(replay
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::AnswerToEscalate)
        .all(|c| c.link.is_none()));

    let page = std::env::temp_dir().join(format!(
        "switchboard-replay-{}-{}.html",
        std::process::id(),
        since
    ));
    replay.write_html(&page).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    let _ = std::fs::remove_file(&page);
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(html.contains("I want to talk to a real person"));
    assert!(html.contains("low confidence"), "reason breakdown: {html}");
    assert!(html.contains("escalate (human_requested)"), "{html}");
    assert!(!html.contains("<script"), "self-contained, no scripts");
}
