//! The widget in a real browser (headless Debian chromium driven by playwright-core) against
//! the real gateway and a real Redis.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use redis::Commands;
use serde_json::Value;

use crate::harness::{start_gateway, test_config, RedisServer};
use crate::webchat::WEBCHAT;

/// The widget runs on the demo page, which is off unless asked for.
fn with_demo(config: &str) -> String {
    config.replacen(
        "[connectors.webchat]\n",
        "[connectors.webchat]\ndemo = true\n",
        1,
    )
}

static NPM_INSTALL: Mutex<bool> = Mutex::new(false);

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Checks node and chromium are installed and installs playwright-core (no browser download).
fn ensure_browser_tooling() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "the browser tests need Debian's chromium at /usr/bin/chromium: apt-get install chromium (.ci/run does this)"
    );
    ensure_node_packages();
}

/// Checks node is installed and installs `tests/browser`'s packages (playwright-core,
/// typescript) from its lock file; returns that folder.
pub(crate) fn ensure_node_packages() -> PathBuf {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|out| out.status.success()),
        "these tests need node: apt-get install nodejs npm (.ci/run does this)"
    );
    let mut installed = NPM_INSTALL
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let packages = ["playwright-core", "typescript"];
    let missing = packages
        .iter()
        .any(|package| !browser_dir().join("node_modules").join(package).exists());
    if !*installed && missing {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(browser_dir())
            .status()
            .expect("run npm");
        assert!(status.success(), "npm ci in tests/browser failed");
    }
    *installed = true;
    browser_dir()
}

async fn run_script(script: &str, args: &[String]) -> Value {
    ensure_browser_tooling();
    let output = tokio::process::Command::new("node")
        .arg(browser_dir().join(script))
        .args(args)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    let last = stdout.trim().lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|_| panic!("{script} printed no report: {stdout}"))
}

/// `test-artifacts` in the build's target folder (CARGO_TARGET_DIR when set).
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create the test-artifacts folder");
    dir
}

#[tokio::test]
async fn a_visitor_in_a_real_browser_gets_an_answer_and_reaches_a_human() {
    let redis = RedisServer::start();
    let gateway = start_gateway(test_config(&redis, &with_demo(WEBCHAT))).await;
    let screenshots = artifacts_dir();
    let _ = std::fs::remove_file(screenshots.join("widget.png"));
    let report = run_script(
        "webchat.mjs",
        &[
            format!("http://{}", gateway.local_addr),
            screenshots.display().to_string(),
        ],
    )
    .await;

    assert_eq!(report["ok"], true, "{report}");
    let answer = report["ai_answer"].as_str().unwrap_or("").to_lowercase();
    assert!(
        answer.contains("password"),
        "the AI answered from the knowledge base: {report}"
    );
    assert!(
        report["notice"].as_str().unwrap_or("").contains("person"),
        "{report}"
    );
    assert!(
        report["history_after_reload"].as_u64().unwrap_or(0) >= 4,
        "{report}"
    );
    assert!(
        screenshots.join("widget.png").exists(),
        "screenshot saved as a test artifact"
    );

    let mut client = redis.client();
    let escalations = crate::work::work_left(&mut client).escalations;
    assert_eq!(escalations, 1);
}

/// The signed-in path of the widget: the page carries signed claims (the demo's own key),
/// the widget passes them on, the chat is the demo user's and survives a reload.
#[tokio::test]
async fn a_signed_in_visitor_in_a_real_browser_chats_as_the_signed_user() {
    let redis = RedisServer::start();
    let gateway = start_gateway(test_config(&redis, &with_demo(WEBCHAT))).await;
    let screenshots = artifacts_dir().join("signed-in");
    let report = run_script(
        "webchat.mjs",
        &[
            format!("http://{}", gateway.local_addr),
            screenshots.display().to_string(),
            "/webchat/demo/signed".to_owned(),
        ],
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        report["history_after_reload"].as_u64().unwrap_or(0) >= 4,
        "the same signed user after a reload: {report}"
    );

    let mut client = redis.client();
    let keys: Vec<String> = client.keys("sb:{*}:c:*").unwrap();
    let conversation_keys: Vec<String> = keys
        .iter()
        .filter_map(|key| {
            client
                .hget::<_, _, Option<String>>(key, "key")
                .ok()
                .flatten()
        })
        .collect();
    assert_eq!(conversation_keys.len(), 1, "{conversation_keys:?}");
    assert!(
        conversation_keys[0].starts_with("d:demo-"),
        "a demo user, never a site's user: {conversation_keys:?}"
    );
}

#[tokio::test]
async fn the_widget_resends_after_drops_and_reloads_without_duplicates() {
    let redis = RedisServer::start();
    let gateway = start_gateway(test_config(&redis, &with_demo(WEBCHAT))).await;
    let questions = [
        "How do I reset my password?",
        "How do I download my invoices?",
        "What plans do you offer?",
        "How do I turn on two-factor authentication?",
    ];
    let report = run_script(
        "reconnect.mjs",
        &[
            format!("http://{}", gateway.local_addr),
            serde_json::to_string(&questions).unwrap(),
        ],
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");

    let mut client = redis.client();
    let streams: Vec<String> = client.keys("sb:{*}:c:*:m").unwrap();
    assert_eq!(streams.len(), 1, "one visitor, one conversation");
    let entries: redis::streams::StreamRangeReply = client.xrange_all(&streams[0]).unwrap();
    for question in questions {
        let stored = entries
            .ids
            .iter()
            .filter(|entry| entry.get::<String>("text").as_deref() == Some(question))
            .count();
        assert_eq!(stored, 1, "{question:?} stored {stored} times");
    }
}

/// The end-to-end story: a visitor in a real browser asks for a person, the Slack
/// stand-in sees the briefing, an agent answers in the thread, and the visitor's page shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_slack_reply_reaches_the_visitors_browser() {
    use switchboard_slack::standin::SlackStandIn;
    use tokio::io::{AsyncBufReadExt, BufReader};

    use crate::slack_desk::{agent_reply, briefing, desk_config, AGENT};

    ensure_browser_tooling();
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let gateway = start_gateway(test_config(
        &redis,
        &with_demo(&desk_config(&standin, "socket")),
    ))
    .await;
    let screenshots = artifacts_dir().join("agent-reply");
    let mut node = tokio::process::Command::new("node")
        .arg(browser_dir().join("webchat.mjs"))
        .arg(format!("http://{}", gateway.local_addr))
        .arg(&screenshots)
        .env("SB_WAIT_FOR_AGENT", "1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();

    let escalated = lines
        .next_line()
        .await
        .expect("read")
        .expect("a line from the browser");
    assert!(escalated.contains("\"escalated\":true"), "{escalated}");
    let parent = briefing(&standin).await;
    assert!(
        parent.blocks.to_string().contains("reset my password"),
        "the briefing carries the transcript"
    );
    standin.send_event(agent_reply(
        &parent.ts,
        "1800000050.000100",
        "Hi! I'm Sam, I'll take it from here.",
    ));

    let last = lines
        .next_line()
        .await
        .expect("read")
        .expect("the browser's report");
    let report: Value = serde_json::from_str(&last).unwrap_or_else(|_| panic!("{last}"));
    assert_eq!(report["ok"], true, "{report}");
    let shown = report["agent_message"].as_str().unwrap_or("");
    assert!(
        shown.contains("Sam Rivera") && shown.contains("take it from here"),
        "{report}"
    );
    assert!(node.wait().await.expect("node exits").success());
}

/// The web desk as an agent uses it in Chromium: sign in through the form, find the
/// escalation, read its briefing, claim, reply, resolve; and the same desk at a phone's width.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_answers_a_visitor_from_the_web_desk_in_a_real_browser() {
    use futures_util::StreamExt;
    use switchboard::desk::inbox::CSAT_QUESTION;
    use tokio_tungstenite::tungstenite::Message;

    use crate::webdesk_gateway::{desk_config, escalated_visitor};

    ensure_browser_tooling();
    let redis = RedisServer::start();
    let sam = switchboard_webdesk::hash_password("sam-password-1").unwrap();
    let gateway = start_gateway(test_config(&redis, &desk_config(&sam, &sam))).await;
    let widget = escalated_visitor(gateway.local_addr, "webdesk-browser-visitor-01").await;
    // The visitor keeps reading (and answering pings) while the agent works in the browser.
    let (frames_tx, mut frames) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let mut socket = widget.socket;
    let visitor = tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            if let Message::Text(text) = frame {
                let value = serde_json::from_str(&text).expect("server frames are json");
                if frames_tx.send(value).is_err() {
                    break;
                }
            }
        }
    });

    let screenshots = artifacts_dir().join("webdesk");
    let reply = "Hi Dana, I'm Sam: I have reset it for you.";
    let report = run_script(
        "webdesk.mjs",
        &[
            format!("http://{}", gateway.local_addr),
            screenshots.display().to_string(),
            "sam".to_owned(),
            "sam-password-1".to_owned(),
            "Dana".to_owned(),
            reply.to_owned(),
        ],
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");
    let text = |field: &str| report[field].as_str().unwrap_or_default().to_owned();
    assert!(text("queued").contains("webchat"), "{report}");
    assert!(
        text("facts").contains("asked for a person")
            && text("facts").contains("Pricing - Acme Cloud"),
        "the briefing's reason and page: {report}"
    );
    assert!(text("transcript").contains("reset my password"), "{report}");
    assert!(
        text("title_after_claim").contains("claimed by Sam"),
        "{report}"
    );
    assert_eq!(text("reply_box_after_send"), "", "{report}");
    for view in ["phone_queue", "phone_conversation"] {
        let scroll = report[view]["scroll_width"].as_u64().unwrap_or(u64::MAX);
        let inner = report[view]["inner_width"].as_u64().unwrap_or(0);
        assert!(scroll <= inner, "{view} scrolls sideways: {report}");
    }
    let reply_box = &report["phone_reply_box"];
    let right_edge = reply_box["x"].as_f64().unwrap_or(f64::MAX)
        + reply_box["width"].as_f64().unwrap_or(f64::MAX);
    assert!(
        right_edge <= 390.0,
        "the reply box fits the phone: {report}"
    );
    assert_eq!(report["phone_back_button"], true, "{report}");
    assert_eq!(report["queue_empty_after_resolve"], true, "{report}");
    assert_eq!(report["page_errors"], serde_json::json!([]), "{report}");
    for shot in [
        "desk-queue.png",
        "desk-conversation.png",
        "phone-queue.png",
        "phone-conversation.png",
    ] {
        assert!(screenshots.join(shot).exists(), "{shot} saved");
    }

    // The visitor got the reply signed with the agent's name, then the rating question.
    let mut agent_message = None;
    let mut rating_asked = false;
    while agent_message.is_none() || !rating_asked {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), frames.recv())
            .await
            .expect("the visitor's frames within 10 s")
            .expect("the visitor's socket open");
        if frame["type"] != "message" {
            continue;
        }
        let message = &frame["message"];
        if message["author"]["kind"] == "agent" {
            agent_message = Some(message.clone());
        }
        if message["text"]
            .as_str()
            .is_some_and(|text| text.ends_with(CSAT_QUESTION))
        {
            rating_asked = true;
        }
    }
    let agent_message = agent_message.unwrap_or_default();
    assert_eq!(agent_message["text"], reply);
    assert_eq!(agent_message["author"]["name"], "Sam");
    visitor.abort();
}
