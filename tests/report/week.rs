//! The report over a busy week seeded straight into Redis (four channels, 120 conversations,
//! every escalation reason, CSAT, KB candidates): the page a support lead would open on Monday.

use redis::Commands;
use serde_json::json;
use switchboard::model::now_ms;
use switchboard::report::{self, Window};
use switchboard::store::keys;

use super::{artifacts_dir, screenshot};
use crate::harness::{test_config, RedisServer};

/// Questions of the seeded week: (text, escalation reason or "" when the AI answered).
const WEEK: &[(&str, &str)] = &[
    ("How do I reset my password?", ""),
    ("I was charged twice this month", "always_human_category"),
    ("Where can I download my invoices?", ""),
    ("Can I get a refund for the annual plan?", "low_confidence"),
    ("Do you support SAML SSO with Okta?", "low_confidence"),
    ("What are the API rate limits?", ""),
    ("Why was I charged twice?", "always_human_category"),
    ("I want to talk to a real person", "human_requested"),
    ("refund for annual plan please", "low_confidence"),
    ("How do I export my data?", ""),
    ("Okta SSO setup with SAML?", "low_confidence"),
    (
        "This is the third time I ask and nothing works!!",
        "negative_sentiment",
    ),
];

#[tokio::test]
async fn a_busy_week_renders_as_a_readable_page() {
    let redis = RedisServer::start();
    let mut client = redis.client();
    let now = now_ms();
    let week = 7 * 86_400_000;
    let channels = [
        "webchat", "webchat", "email", "webchat", "telegram", "slack", "email",
    ];
    let mut escalations = Vec::new();
    for i in 0..120u64 {
        let id = format!("week-{i}");
        let created = now - week + i * (week / 120) + (i * 7919) % 600_000;
        let channel = channels[i as usize % channels.len()];
        let (question, reason) = WEEK[i as usize % WEEK.len()];
        let mut fields = vec![
            ("channel", channel.to_owned()),
            ("key", id.clone()),
            ("created_ms", created.to_string()),
            ("updated_ms", (created + 3_600_000).to_string()),
            ("status", "bot".to_owned()),
        ];
        let mut transcript = vec![(created, "customer", question)];
        let replied = created + 400 + (i * 131) % 2_500;
        if reason.is_empty() {
            transcript.push((replied, "ai", "Here is how."));
        } else {
            transcript.push((replied, "system", "A person will reply."));
            fields.push(("escalated_ms", replied.to_string()));
            escalations.push((
                replied,
                json!({"conversation_id": id, "reason": reason, "question": question}),
            ));
            if i % 4 != 0 {
                let human = replied + 60_000 + (i * 104_729) % 2_400_000;
                transcript.push((human, "agent", "Sam here, let me help."));
                fields.push(("first_human_reply_ms", human.to_string()));
                fields.push(("resolved_ms", (human + 600_000).to_string()));
                fields.push(("status", "resolved".to_owned()));
                fields.push(("csat", (1 + (i * 7) % 5).max(3 - i % 2).to_string()));
                fields.push(("csat_ms", (human + 700_000).to_string()));
            } else {
                fields.push(("status", "escalated".to_owned()));
            }
        }
        let _: () = client
            .hset_multiple(keys::conversation(&id), &fields)
            .unwrap();
        let _: () = client
            .zadd(keys::conversation_index(keys::partition(&id)), &id, created)
            .unwrap();
        for (seq, (at, role, text)) in transcript.into_iter().enumerate() {
            let entry = format!("{at}-{seq}");
            let _: String = client
                .xadd(
                    keys::messages(&id),
                    entry,
                    &[("role", role), ("text", text)],
                )
                .unwrap();
        }
    }
    escalations.sort_by_key(|(at, _)| *at);
    for (seq, (at, log)) in escalations.iter().enumerate() {
        let entry = format!("{at}-{seq}");
        let _: String = client
            .xadd(
                keys::escalations(keys::partition(log["conversation_id"].as_str().unwrap())),
                entry,
                &[("e", log.to_string())],
            )
            .unwrap();
    }
    for (n, status) in ["pending", "pending", "approved", "rejected", "pending"]
        .iter()
        .enumerate()
    {
        let candidate = json!({"id": format!("kb-{n}"), "status": status, "created_ms": now - 3_600_000, "decided_ms": now - 60_000});
        let _: () = client
            .hset(
                keys::KB_CANDIDATES,
                format!("kb-{n}"),
                candidate.to_string(),
            )
            .unwrap();
    }

    let window = Window::new(now - week, now + 1).unwrap();
    let html_path = artifacts_dir().join("report-week.html");
    let report = report::run_report(&test_config(&redis, ""), window, Some(&html_path))
        .await
        .expect("report");
    assert_eq!(report.total_conversations(), 120);
    assert_eq!(report.total_escalations(), escalations.len() as u64);
    assert_eq!(report.kb_candidates.pending, 3);
    assert_eq!(
        report.knowledge_gaps[0].size, 20,
        "{:?}",
        report.knowledge_gaps
    );
    assert!(report.time_to_human.p90_ms() > report.time_to_human.p50_ms());
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    println!("{report}");
    let png = artifacts_dir().join("report-week.png");
    screenshot(&html_path, &png);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 30_000,
        "screenshot {} is only {size} bytes",
        png.display()
    );
}
