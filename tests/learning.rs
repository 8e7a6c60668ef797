//! The learning loop end to end: escalate -> agent answers -> resolve -> CSAT -> approve ->
//! the same question is answered by the AI, with no restart. (Several instances sharing what
//! was learned: `shared_knowledge.rs`.)

use std::sync::Arc;
use std::time::Duration;

use redis::Commands;
use serde_json::json;

use switchboard::desk::inbox::CSAT_QUESTION;
use switchboard::learning::{KnowledgeLoop, LearningError, LEARNED_FILE};
use switchboard::model::conversation_id;
use switchboard::pipeline::CSAT_THANKS;
use switchboard::store::keys;

use crate::desk::{reply, start_with_fake_desk, FakeDesk};
use switchboard_api::{DeskNotice, ThreadPost};

use crate::harness::{config_dir, eventually, test_config, RedisServer, TempDir};
use crate::webchat::{Widget, WEBCHAT};

const QUESTION: &str = "Do you offer a discount for students?";
const AGENT_ANSWER: &str = "Yes! Students get 50% off the Pro plan with a school email address. Apply at acme.cloud/students.";

fn knowledge_copy() -> TempDir {
    let dir = TempDir::new("knowledge");
    for entry in std::fs::read_dir(config_dir().join("knowledge")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.0.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

#[tokio::test]
async fn a_question_that_escalated_once_is_answered_by_the_ai_after_approval() {
    let redis = RedisServer::start();
    let knowledge = knowledge_copy();
    let mut config = test_config(&redis, WEBCHAT);
    config.triage.knowledge_dir = knowledge.0.display().to_string();
    let desk = Arc::new(FakeDesk::default());
    let gateway = start_with_fake_desk(config, desk.clone()).await;

    // 1. The AI does not know: it escalates.
    let (mut first, _) =
        Widget::connect(gateway.local_addr, "learning-visitor-0000001", None).await;
    first
        .send(json!({"type": "message", "client_id": "l1", "text": QUESTION}))
        .await;
    first.message_from("system").await;
    let (briefing, thread) = desk.thread().await;
    assert_eq!(briefing.reason, "low_confidence", "{briefing:?}");

    // 2. An agent answers and resolves; the customer rates the help.
    desk.agent(reply(&thread, "1800000010.000100", "Priya", AGENT_ANSWER))
        .await;
    first.message_from("agent").await;
    desk.agent(reply(&thread, "1800000010.000200", "Priya", "!resolve"))
        .await;
    let frame = first
        .next_matching("message", |frame| {
            frame["message"]["author"]["kind"] == "system"
        })
        .await;
    assert!(
        frame["message"]["text"]
            .as_str()
            .unwrap()
            .contains(CSAT_QUESTION),
        "{frame}"
    );
    assert_eq!(
        frame["actions"],
        json!(["rate_service"]),
        "rating buttons where the channel has them"
    );
    first
        .send(json!({"type": "message", "client_id": "l2", "text": "5"}))
        .await;
    assert_eq!(first.message_from("system").await["text"], CSAT_THANKS);
    let id = conversation_id(switchboard_webchat::CHANNEL, "s:learning-visitor-0000001");
    let csat: String = redis
        .client()
        .hget(keys::conversation(&id), "csat")
        .unwrap();
    assert_eq!(csat, "5");
    let status: String = redis
        .client()
        .hget(keys::conversation(&id), "status")
        .unwrap();
    assert_eq!(
        status, "resolved",
        "a rating does not reopen the conversation"
    );

    // 3. The resolution became a candidate, announced in the thread.
    let candidate = eventually(
        Duration::from_secs(10),
        "a knowledge-base candidate",
        || async {
            gateway
                .learning
                .candidates()
                .await
                .unwrap()
                .into_iter()
                .next()
        },
    )
    .await;
    assert_eq!(candidate.question, QUESTION);
    assert_eq!(candidate.answer, AGENT_ANSWER);
    assert_eq!(candidate.status, "pending");
    eventually(
        Duration::from_secs(10),
        "the candidate notice in the thread",
        || async {
            desk.posts
                .lock()
                .unwrap()
                .iter()
                .any(|(_, post)| {
                    matches!(post, ThreadPost::Notice(DeskNotice::KnowledgeCandidate { id, .. })
                        if *id == candidate.id)
                })
                .then_some(())
        },
    )
    .await;

    // 4. Two approvals race (an agent in Slack, an admin on the command line): one wins.
    let ((), from_cli) = tokio::join!(
        desk.agent(reply(&thread, "1800000010.000300", "Priya", "!kb approve")),
        gateway.learning.approve(&candidate.id, None),
    );
    let learned = gateway.learning.learned().await.unwrap();
    assert_eq!(
        learned
            .iter()
            .filter(|entry| entry.question == QUESTION)
            .count(),
        1,
        "written once: {learned:?}"
    );
    assert!(
        !knowledge.0.join(LEARNED_FILE).exists(),
        "kept in Redis, not on this instance's disk"
    );
    if let Err(error) = from_cli {
        assert!(
            matches!(error, LearningError::AlreadyDecided { .. }),
            "{error}"
        );
    }
    eventually(Duration::from_secs(10), "approved", || async {
        gateway
            .learning
            .candidates()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.status == "approved")
    })
    .await;

    // 5. The next customer asking the same thing gets the AI's answer.
    let (mut second, _) =
        Widget::connect(gateway.local_addr, "learning-visitor-0000002", None).await;
    second
        .send(json!({"type": "message", "client_id": "l3", "text": QUESTION}))
        .await;
    let answer = second.message_from("ai").await;
    assert!(
        answer["text"].as_str().unwrap().contains("50% off"),
        "{answer}"
    );
}

fn switchboard(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run switchboard");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_review_candidates_and_read_the_report_on_the_command_line() {
    let redis = RedisServer::start();
    let knowledge = knowledge_copy();
    let config = knowledge.0.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[redis]\nurl = \"{}\"\n[triage]\nknowledge_dir = \".\"\n",
            redis.url()
        ),
    )
    .unwrap();
    let store = switchboard::store::Store::connect(&redis.url(), Duration::from_millis(500))
        .await
        .unwrap();
    let learning = KnowledgeLoop::new(store, None);
    for (id, question) in [
        ("kb-cli-1", "Can I pay by bank transfer?"),
        ("kb-cli-2", "Do you have an office in Berlin?"),
    ] {
        learning
            .propose(&switchboard::learning::Candidate {
                id: id.into(),
                conversation_id: "c1".into(),
                question: question.into(),
                answer: "Yes, on yearly plans.".into(),
                agent: "Priya".into(),
                status: "pending".into(),
                created_ms: switchboard::model::now_ms(),
                decided_ms: None,
                error: None,
            })
            .await
            .unwrap();
    }
    let config = config.display().to_string();

    let (ok, listed) = switchboard(&["kb", "review", "--config", &config]);
    assert!(
        ok && listed.contains("kb-cli-1") && listed.contains("bank transfer"),
        "{listed}"
    );
    let (ok, out) = switchboard(&[
        "kb",
        "approve",
        "kb-cli-1",
        "--answer",
        "Yes: yearly plans can pay by bank transfer.",
        "--config",
        &config,
    ]);
    assert!(ok, "{out}");
    let (ok, learned) = switchboard(&["kb", "list", "--config", &config]);
    assert!(
        ok && learned.contains("Q: Can I pay by bank transfer?")
            && learned.contains("yearly plans can pay by bank transfer"),
        "{learned}"
    );
    let (ok, out) = switchboard(&["kb", "approve", "kb-cli-1", "--config", &config]);
    assert!(!ok && out.contains("already approved"), "{out}");
    let (ok, out) = switchboard(&["kb", "reject", "kb-cli-2", "--config", &config]);
    assert!(ok, "{out}");
    let (_, listed) = switchboard(&["kb", "review", "--config", &config]);
    assert!(listed.contains("no candidates waiting"), "{listed}");

    let html = knowledge.0.join("report.html");
    let (ok, report) = switchboard(&[
        "report",
        "--config",
        &config,
        "--since",
        "1d",
        "--html",
        &html.display().to_string(),
    ]);
    assert!(ok, "{report}");
    assert!(html.exists());
    let (ok, out) = switchboard(&["report", "--config", &config, "--since", "yesterday-ish"]);
    assert!(!ok && out.starts_with("error:"), "{out}");
}
