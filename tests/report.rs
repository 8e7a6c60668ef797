//! `switchboard report`: a scripted day of support through the real gateway, then the report's
//! figures checked against what happened and against the gateway's own `/metrics`; the HTML
//! page rendered in headless Chromium; empty windows and corrupt records.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redis::Commands;
use serde_json::json;

use switchboard::model::now_ms;
use switchboard::report::{self, cluster_questions, EscalatedQuestion, Report, Window};
use switchboard::store::keys;

use crate::desk::{reply, start_with_fake_desk, FakeDesk};
use crate::harness::{
    eventually, http, on_single_and_cluster, test_config, RedisServer, TempDir, TestRedis,
};
use crate::webchat::{Widget, WEBCHAT};

mod week;

/// A visitor who asks one question and waits for the reply from `expected` (ai or system).
async fn ask(addr: std::net::SocketAddr, session: &str, question: &str, expected: &str) -> Widget {
    let (mut widget, _) = Widget::connect(addr, session, None).await;
    widget
        .send(json!({"type": "message", "client_id": "q1", "text": question}))
        .await;
    widget.message_from(expected).await;
    widget
}

/// `name{labels} value` lines of the Prometheus text format, as a map.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_owned(), value.parse().ok()?)))
        .collect()
}

fn metric(metrics: &BTreeMap<String, f64>, name: &str) -> u64 {
    metrics.get(name).copied().unwrap_or(0.0) as u64
}

pub(crate) fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

async fn the_report_matches_a_scripted_day_and_the_gateways_metrics(redis: TestRedis) {
    let desk = Arc::new(FakeDesk::default());
    let since = now_ms();
    let gateway = start_with_fake_desk(test_config(&redis, WEBCHAT), desk.clone()).await;
    let addr = gateway.local_addr;

    // Dana gets an AI answer, asks for a person, Sam answers and resolves, Dana rates 4.
    let mut dana = ask(
        addr,
        "report-dana-0000000001",
        "How do I reset my password?",
        "ai",
    )
    .await;
    dana.send(json!({"type": "message", "client_id": "q2", "text": "That didn't work, I want to talk to a real person"}))
        .await;
    dana.message_from("system").await;
    let (_, thread) = desk.thread().await;
    desk.agent(reply(
        &thread,
        "1700000001.000100",
        "Sam",
        "Hi Dana, I've reset it for you.",
    ))
    .await;
    dana.message_from("agent").await;
    desk.agent(reply(&thread, "1700000001.000200", "Sam", "!resolve"))
        .await;
    dana.message_from("system").await;
    dana.send(json!({"type": "message", "client_id": "q3", "text": "4"}))
        .await;
    dana.message_from("system").await;

    // One question the AI answers; a billing dispute (always a person); two out-of-scope
    // questions about the same thing, which the report must group as one knowledge gap.
    ask(
        addr,
        "report-ana-00000000002",
        "How do I reset my password?",
        "ai",
    )
    .await;
    ask(
        addr,
        "report-bo-000000000003",
        "I was charged twice, I dispute this charge",
        "system",
    )
    .await;
    ask(
        addr,
        "report-cy-000000000004",
        "what's the weather in Paris tomorrow?",
        "system",
    )
    .await;
    ask(
        addr,
        "report-di-000000000005",
        "What's the weather in Paris today?",
        "system",
    )
    .await;

    // The counters are bumped just after the commit the visitor's reply came from.
    let metrics = eventually(
        Duration::from_secs(10),
        "metrics of 4 escalations",
        || async {
            let (status, body) = http(gateway.admin_addr, "GET", "/metrics", None).await;
            let metrics = parse_metrics(&body);
            let escalations: f64 = metrics
                .iter()
                .filter(|(name, _)| name.starts_with("switchboard_escalations_total{"))
                .map(|(_, n)| n)
                .sum();
            (status == 200 && escalations == 4.0).then_some(metrics)
        },
    )
    .await;

    let until = now_ms() + 1;
    let dir = artifacts_dir();
    // The single-Redis and cluster runs go side by side: each writes its own files.
    let run = match redis {
        TestRedis::Single(_) => "single",
        TestRedis::Cluster(_) => "cluster",
    };
    let html_path = dir.join(format!("report-{run}.html"));
    let config = test_config(&redis, WEBCHAT);
    let report = report::run_report(
        &config,
        Window::new(since, until).unwrap(),
        Some(&html_path),
    )
    .await
    .expect("report");

    // What happened.
    assert_eq!(
        report.conversations,
        BTreeMap::from([("webchat".to_owned(), 5)])
    );
    assert_eq!(report.escalated_conversations, 4);
    assert_eq!(report.ai_resolved_conversations(), 1);
    assert!((report.ai_resolution_rate() - 0.2).abs() < 1e-9);
    assert!((report.escalation_rate() - 0.8).abs() < 1e-9);
    let expected_reasons = BTreeMap::from([
        ("always_human_category".to_owned(), 1),
        ("human_requested".to_owned(), 1),
        ("low_confidence".to_owned(), 2),
    ]);
    assert_eq!(report.escalations, expected_reasons);
    assert_eq!(report.top_escalation_reasons()[0], ("low_confidence", 2));
    // Dana wrote 3 messages (question, request for a person, rating), the others one each.
    assert_eq!(report.customer_messages["webchat"], 7);
    assert_eq!(report.ai_answers["webchat"], 2);
    assert_eq!(report.agent_replies, 1);
    assert_eq!(report.resolutions, 1);
    assert_eq!(report.first_response.count(), 5);
    assert!(report.first_response.p90_ms() < 10_000);
    assert_eq!(report.time_to_human.count(), 1);
    assert_eq!(
        report.awaiting_human, 3,
        "Bo, Cy and Di still wait for an agent"
    );
    assert_eq!(report.csat.counts, [0, 0, 0, 1, 0]);
    assert_eq!(report.csat.average(), 4.0);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);

    // Knowledge gaps: the weather questions are one cluster; the request for a person is no gap.
    let top = &report.knowledge_gaps[0];
    assert_eq!(top.size, 2, "{:?}", report.knowledge_gaps);
    assert!(top.representative.to_lowercase().contains("weather"));
    assert_eq!(top.examples.len(), 1);
    assert_eq!(top.top_reason(), "low_confidence");
    assert_eq!(
        report.knowledge_gaps.len(),
        2,
        "{:?}",
        report.knowledge_gaps
    );
    assert!(report.knowledge_gaps[1]
        .representative
        .contains("charged twice"));
    assert!(report
        .knowledge_gaps
        .iter()
        .all(|cluster| !cluster.representative.contains("real person")));

    // Knowledge-base candidates: whatever the learning loop proposed from Dana's resolution.
    let mut client = redis.client();
    let candidates: Vec<String> = client.hvals(keys::KB_CANDIDATES).unwrap();
    let pending = candidates
        .iter()
        .filter(|json| json.contains("\"pending\"") || json.contains("\"approving\""))
        .count() as u64;
    assert_eq!(report.kb_candidates.pending, pending);
    assert_eq!(report.kb_candidates.proposed, candidates.len() as u64);

    // The same figures as this instance's Prometheus counters, where they overlap.
    for (reason, count) in &report.escalations {
        let name = format!("switchboard_escalations_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&metrics, &name), *count, "{name}");
    }
    let ai = r#"switchboard_ai_answers_total{channel="webchat"}"#;
    assert_eq!(metric(&metrics, ai), report.total_ai_answers());
    let started = r#"switchboard_conversations_started_total{channel="webchat"}"#;
    assert_eq!(metric(&metrics, started), report.total_conversations());
    let agent = "switchboard_agent_replies_total";
    assert_eq!(metric(&metrics, agent), report.agent_replies);
    let resolved = "switchboard_resolutions_total";
    assert_eq!(metric(&metrics, resolved), report.resolutions);
    let to_human = "switchboard_time_to_human_seconds_count";
    assert_eq!(
        metric(&metrics, to_human),
        report.time_to_human.count() as u64
    );

    // The text report.
    let text = report.to_string();
    println!("{text}");
    assert!(
        text.contains("AI resolution rate   20.0% (1 of 5 never escalated)"),
        "{text}"
    );
    assert!(text.contains("low_confidence"), "{text}");
    assert!(
        text.contains("CSAT                 4.00 / 5 from 1 ratings"),
        "{text}"
    );

    // The HTML page, rendered by a real browser.
    let html = std::fs::read_to_string(&html_path).expect("html written");
    assert!(html.contains("<svg") && !html.contains("<script") && !html.contains("http-equiv"));
    assert!(!html.contains("NaN"));
    assert!(html.contains("weather in Paris"));
    let png = dir.join(format!("report-{run}.png"));
    screenshot(&html_path, &png);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 30_000,
        "screenshot {} is only {size} bytes",
        png.display()
    );
}

/// Screenshots `html` with headless Chromium into `png`.
pub(crate) fn screenshot(html: &std::path::Path, png: &std::path::Path) {
    let profile = TempDir::new("chromium-profile");
    let _ = std::fs::remove_file(png);
    let output = std::process::Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run /usr/bin/chromium ({error}); .ci/run installs it")
        });
    assert!(
        png.exists(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn an_empty_window_reads_as_zeros_and_corrupt_records_are_counted_not_fatal() {
    let redis = RedisServer::start();
    let mut client = redis.client();
    let now = now_ms();
    let created = now.to_string();
    let _: () = client
        .hset_multiple(
            keys::conversation("good"),
            &[
                ("status", "bot"),
                ("channel", "email"),
                ("key", "k"),
                ("created_ms", &created),
            ],
        )
        .unwrap();
    let _: String = client
        .xadd(
            keys::messages("good"),
            "*",
            &[("role", "customer"), ("text", "hi")],
        )
        .unwrap();
    let _: String = client
        .xadd(
            keys::messages("good"),
            "*",
            &[("role", "ai"), ("text", "hello")],
        )
        .unwrap();
    // Other hashes of the conversation share its prefix and must not count as conversations.
    let _: () = client.hset(keys::seen("good"), "m-1", "1-0").unwrap();
    let _: () = client
        .hset(keys::conversation("no-channel"), "created_ms", &created)
        .unwrap();
    let _: () = client
        .hset_multiple(
            keys::conversation("bad-csat"),
            &[
                ("channel", "webchat"),
                ("created_ms", &created),
                ("csat", "eleven"),
            ],
        )
        .unwrap();
    let _: String = client
        .xadd(keys::escalations(0), "*", &[("e", "{not json")])
        .unwrap();
    let log = json!({"conversation_id": "good", "reason": "low_confidence", "question": "Do you ship to Mars?"});
    let _: String = client
        .xadd(
            keys::escalations(keys::partition("good")),
            "*",
            &[("e", log.to_string())],
        )
        .unwrap();
    // The gateway indexes each conversation when it creates it; so does this seed.
    for id in ["good", "no-channel", "bad-csat"] {
        let _: () = client
            .zadd(keys::conversation_index(keys::partition(id)), id, &created)
            .unwrap();
    }
    let _: () = client.hset(keys::KB_CANDIDATES, "kb-broken", "{").unwrap();
    let pending = json!({"id": "kb-1", "status": "pending", "created_ms": now});
    let _: () = client
        .hset(keys::KB_CANDIDATES, "kb-1", pending.to_string())
        .unwrap();
    let config = test_config(&redis, "");

    // Long ago: nothing happened, and nothing divides by zero.
    let empty = report::run_report(&config, Window::new(1_000, 2_000).unwrap(), None)
        .await
        .expect("report");
    assert_eq!(empty.total_conversations(), 0);
    assert_eq!(empty.ai_resolution_rate(), 0.0);
    assert_eq!(empty.escalation_rate(), 0.0);
    assert_eq!(empty.csat.average(), 0.0);
    assert_eq!(empty.first_response.p90_ms(), 0);
    assert_eq!(
        empty.kb_candidates.pending, 1,
        "the backlog is shown for any window"
    );
    let text = empty.to_string();
    assert!(text.contains("AI resolution rate   0.0%"), "{text}");
    assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    assert!(!report::html::render(&empty).contains("NaN"));

    // Now: the readable records count, each unreadable one is skipped and counted.
    let window = Window::new(now - 60_000, now + 60_000).unwrap();
    let report = report::run_report(&config, window, None)
        .await
        .expect("report");
    assert_eq!(
        report.conversations,
        BTreeMap::from([("email".to_owned(), 1), ("webchat".to_owned(), 1)])
    );
    assert_eq!(report.customer_messages["email"], 1);
    assert_eq!(report.ai_answers["email"], 1);
    assert_eq!(report.first_response.count(), 1);
    assert_eq!(
        report.escalations,
        BTreeMap::from([("low_confidence".to_owned(), 1)])
    );
    assert_eq!(report.escalated_conversations, 1);
    assert_eq!(
        report.knowledge_gaps[0].representative,
        "Do you ship to Mars?"
    );
    let skipped = BTreeMap::from([
        ("conversation records".to_owned(), 1),
        ("csat ratings".to_owned(), 1),
        ("escalation log entries".to_owned(), 1),
        ("knowledge-base candidates".to_owned(), 1),
    ]);
    assert_eq!(report.skipped, skipped);
    assert!(report.to_string().contains("Skipped unreadable records: 4"));
    assert!(report::html::render(&report).contains("Skipped 4 unreadable records"));
}

#[test]
fn a_window_is_checked_and_cli_bounds_are_read() {
    assert!(Window::new(5, 5).is_err());
    assert!(Window::new(6, 5).is_err());
    let now = 1_700_000_000_000;
    assert_eq!(
        Window::parse_bound("7d", now).unwrap(),
        now - 7 * 86_400_000
    );
    assert_eq!(Window::parse_bound("24h", now).unwrap(), now - 86_400_000);
    assert_eq!(Window::parse_bound("now", now).unwrap(), now);
    assert_eq!(
        Window::parse_bound("1690000000000", now).unwrap(),
        1_690_000_000_000
    );
    let error = Window::parse_bound("last tuesday", now)
        .unwrap_err()
        .to_string();
    assert!(error.contains("7d"), "{error}");
}

#[test]
fn escalated_questions_are_grouped_by_topic() {
    let asked = |text: &str, reason: &str| EscalatedQuestion {
        text: text.into(),
        reason: reason.into(),
    };
    let questions = [
        asked("I was charged twice this month", "always_human_category"),
        asked("Do you ship to Antarctica?", "low_confidence"),
        asked("Why was I charged twice?", "always_human_category"),
        asked("charged twice!!", "always_human_category"),
        asked("   ", "low_confidence"),
        asked("Can I pay with bitcoin?", "low_confidence"),
        asked("do you ship to antarctica", "low_confidence"),
    ];
    let clusters = cluster_questions(&questions, 0.5);
    let sizes: Vec<usize> = clusters.iter().map(|c| c.size).collect();
    assert_eq!(sizes, [3, 2, 1]);
    assert_eq!(clusters[0].top_reason(), "always_human_category");
    assert_eq!(clusters[0].examples.len(), 2);
    assert!(clusters[1]
        .representative
        .to_lowercase()
        .contains("antarctica"));
    assert_eq!(clusters[2].representative, "Can I pay with bitcoin?");
    assert!(cluster_questions(&[], 0.5).is_empty());
    let empty = Report::default();
    assert_eq!(empty.ai_resolution_rate(), 0.0);
}

// On a cluster too: every conversation and work stream lives in its partition's slot.
on_single_and_cluster!(the_report_matches_a_scripted_day_and_the_gateways_metrics,);
