//! The Slack agent desk end to end: the real slack-morphism client against a loopback
//! stand-in of Slack's Web API and Socket Mode, a real gateway, Redis and a web chat visitor.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard::desk::inbox::RESOLVED_NOTICE;
use switchboard_slack::manifest::{ScopeNeed, CUSTOMER_SCOPES, DESK_SCOPES, METHOD_SCOPES};
use switchboard_slack::standin::{event_callback, signed_request, RecordedPost, SlackStandIn};

use crate::harness::{eventually, http_with_headers, start_gateway, test_config, RedisServer};
use crate::webchat::{Widget, WEBCHAT};

const SUPPORT: &str = "C0SUPPORT";
pub(crate) const AGENT: &str = "U0AGENTSAM";

pub(crate) fn desk_config(standin: &SlackStandIn, mode: &str) -> String {
    std::env::set_var("SB_TEST_SLACK_BOT", "xoxb-test-token");
    std::env::set_var("SB_TEST_SLACK_APP", "xapp-test-token");
    std::env::set_var("SB_TEST_SLACK_SIGNING", "test-signing-secret");
    format!(
        r#"{WEBCHAT}
[desk.slack]
enabled = true
mode = "{mode}"
channel = "{SUPPORT}"
api_url = "{}"
bot_token_env = "SB_TEST_SLACK_BOT"
app_token_env = "SB_TEST_SLACK_APP"
signing_secret_env = "SB_TEST_SLACK_SIGNING"
posts_per_second_per_channel = 20.0
"#,
        standin.api_url()
    )
}

/// A thread reply by an agent, shaped like Slack's `message` event.
pub(crate) fn agent_reply(thread_ts: &str, ts: &str, text: &str) -> Value {
    json!({
        "type": "message", "channel": SUPPORT, "user": AGENT, "text": text,
        "ts": ts, "thread_ts": thread_ts, "event_ts": ts, "channel_type": "channel",
    })
}

pub(crate) async fn briefing(standin: &SlackStandIn) -> RecordedPost {
    eventually(
        Duration::from_secs(15),
        "the briefing in the support channel",
        || async {
            standin
                .posts()
                .into_iter()
                .find(|post| post.method == "chat.postMessage" && post.thread_ts.is_none())
        },
    )
    .await
}

/// Every Web API method the app called on `standin` needs only scopes its manifest asks for.
pub(crate) fn assert_calls_covered_by(standin: &SlackStandIn, asked: &[ScopeNeed]) {
    let called = standin.methods_called();
    assert!(
        called.contains(&"chat.postMessage".to_owned()),
        "{called:?}"
    );
    for method in called {
        let scope = METHOD_SCOPES
            .iter()
            .find(|(name, _)| *name == method)
            .unwrap_or_else(|| panic!("{method} is called but has no scope in METHOD_SCOPES"))
            .1;
        assert!(
            scope.is_empty() || asked.iter().any(|need| need.scope == scope),
            "{method} needs {scope}, which the manifest does not ask for"
        );
    }
}

async fn thread_post(standin: &SlackStandIn, thread_ts: &str, needle: &str) -> RecordedPost {
    eventually(Duration::from_secs(15), needle, || async {
        standin
            .posts()
            .into_iter()
            .find(|post| post.thread_ts.as_deref() == Some(thread_ts) && post.text.contains(needle))
    })
    .await
}

pub(crate) async fn visitor_asks_for_a_human(addr: std::net::SocketAddr, session: &str) -> Widget {
    let (mut widget, _) = Widget::connect(addr, session, None).await;
    widget
        .send(json!({"type": "message", "client_id": "q1", "text": "How do I reset my password?"}))
        .await;
    widget.message_from("ai").await;
    widget
        .send(json!({"type": "talk_to_human", "client_id": "q2"}))
        .await;
    widget.message_from("system").await;
    widget
}

#[tokio::test]
async fn a_web_chat_escalation_becomes_a_slack_thread_and_the_agents_reply_reaches_the_browser() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    // Slack is rate limiting when the briefing goes out: it must still arrive, once.
    standin.fail_next_with_429(1, 1);
    let gateway = start_gateway(test_config(&redis, &desk_config(&standin, "socket"))).await;
    let mut widget = visitor_asks_for_a_human(gateway.local_addr, "slack-visitor-000000001").await;

    let parent = briefing(&standin).await;
    assert_eq!(parent.channel, SUPPORT);
    let blocks = parent.blocks.to_string();
    for field in [
        "Dana",
        "webchat",
        "standard",
        "acme.example/pricing",
        "Pricing - Acme Cloud",
        "plan",
        "asked for a person",
        "How do I reset my password?",
        "Forgot password",
    ] {
        assert!(blocks.contains(field), "briefing lacks {field:?}: {blocks}");
    }
    assert!(blocks.contains('%'), "AI confidence shown: {blocks}");

    // The customer's next message lands in the thread.
    widget.send(json!({"type": "message", "client_id": "q3", "text": "I'm on the Pro plan, workspace acme-42"})).await;
    thread_post(&standin, &parent.ts, "acme-42").await;

    // The agent replies in the thread: the visitor sees it, signed with the agent's name.
    let reply = agent_reply(
        &parent.ts,
        "1800000000.000100",
        "Hi Dana, I've sent you a fresh reset link.",
    );
    let envelope = standin.send_event(reply.clone());
    assert!(
        standin
            .wait_for_ack(&envelope, Duration::from_secs(10))
            .await,
        "envelope acked"
    );
    let message = widget.message_from("agent").await;
    assert_eq!(message["author"]["name"], "Sam Rivera");
    assert!(message["text"]
        .as_str()
        .unwrap()
        .contains("fresh reset link"));

    // Slack redelivers the same event: relayed once.
    standin.send_callback(event_callback("EvReplay0001", reply.clone()));
    standin.send_callback(event_callback("EvReplay0001", reply));
    // An internal note never leaves Slack.
    standin.send_event(agent_reply(
        &parent.ts,
        "1800000000.000200",
        "// she is on the legacy SSO",
    ));
    standin.send_event(agent_reply(&parent.ts, "1800000000.000300", "!resolve"));
    let notice = widget.message_from("system").await;
    assert!(
        notice["text"]
            .as_str()
            .unwrap_or("")
            .starts_with(RESOLVED_NOTICE),
        "{notice}"
    );
    let view = gateway
        .store
        .customer_view(
            switchboard_webchat::CHANNEL,
            "s:slack-visitor-000000001",
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let agent_messages = view
        .messages
        .iter()
        .filter(|m| m.text.contains("fresh reset link"))
        .count();
    assert_eq!(agent_messages, 1, "relayed once");
    assert!(
        !view.messages.iter().any(|m| m.text.contains("legacy SSO")),
        "notes stay in Slack"
    );
    assert_eq!(view.status, "resolved");

    // The briefing is updated to show who took it and that it is resolved.
    eventually(Duration::from_secs(15), "the briefing update", || async {
        standin.posts().into_iter().find(|post| {
            post.method == "chat.update"
                && post.ts == parent.ts
                && post.blocks.to_string().contains("Sam Rivera")
                && post.blocks.to_string().to_lowercase().contains("resolved")
        })
    })
    .await;
    let briefings = standin
        .posts()
        .iter()
        .filter(|p| p.method == "chat.postMessage" && p.thread_ts.is_none())
        .count();
    assert_eq!(briefings, 1, "the 429 was retried, not duplicated");
    assert_calls_covered_by(&standin, DESK_SCOPES);
}

#[tokio::test]
async fn the_events_api_verifies_signatures_and_relays_agent_replies() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let gateway = start_gateway(test_config(&redis, &desk_config(&standin, "events_api"))).await;
    let mut widget = visitor_asks_for_a_human(gateway.local_addr, "slack-visitor-000000002").await;
    let parent = briefing(&standin).await;

    let body = event_callback(
        "EvHttp0001",
        agent_reply(&parent.ts, "1800000001.000100", "Looking into it now."),
    )
    .to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    let forged = signed_request("not-the-secret", &body, now);
    let (status, _) = http_with_headers(
        gateway.local_addr,
        "POST",
        "/slack/events",
        &forged.headers,
        Some(&forged.body),
    )
    .await;
    assert_eq!(status, 401);
    let stale = signed_request("test-signing-secret", &body, now - 600);
    let (status, _) = http_with_headers(
        gateway.local_addr,
        "POST",
        "/slack/events",
        &stale.headers,
        Some(&stale.body),
    )
    .await;
    assert_eq!(status, 401);
    let view = gateway
        .store
        .customer_view(
            switchboard_webchat::CHANNEL,
            "s:slack-visitor-000000002",
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        !view
            .messages
            .iter()
            .any(|m| m.text.contains("Looking into it")),
        "nothing relayed from forged requests"
    );

    let signed = signed_request("test-signing-secret", &body, now);
    let mut retry_headers = signed.headers.clone();
    retry_headers.push(("x-slack-retry-num".into(), "1".into()));
    retry_headers.push(("x-slack-retry-reason".into(), "http_timeout".into()));
    let (status, _) = http_with_headers(
        gateway.local_addr,
        "POST",
        "/slack/events",
        &signed.headers,
        Some(&signed.body),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = http_with_headers(
        gateway.local_addr,
        "POST",
        "/slack/events",
        &retry_headers,
        Some(&signed.body),
    )
    .await;
    assert_eq!(status, 200);
    let message = widget.message_from("agent").await;
    assert_eq!(message["author"]["name"], "Sam Rivera");
    // The agent writes again: the visitor's next agent message is that one, not a second copy.
    let next = event_callback(
        "EvHttp0002",
        agent_reply(&parent.ts, "1800000002.000100", "Found it, one moment."),
    )
    .to_string();
    let next = signed_request("test-signing-secret", &next, now);
    let (status, _) = http_with_headers(
        gateway.local_addr,
        "POST",
        "/slack/events",
        &next.headers,
        Some(&next.body),
    )
    .await;
    assert_eq!(status, 200);
    let message = widget.message_from("agent").await;
    assert_eq!(
        message["text"], "Found it, one moment.",
        "a retried event is shown once"
    );
    let view = gateway
        .store
        .customer_view(
            switchboard_webchat::CHANNEL,
            "s:slack-visitor-000000002",
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        view.messages
            .iter()
            .filter(|m| m.text.contains("Looking into it"))
            .count(),
        1,
        "a retried event is relayed once"
    );
}

#[tokio::test]
async fn during_a_slack_outage_desk_posts_wait_in_the_outbox_and_arrive_when_slack_is_back() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let gateway = start_gateway(test_config(&redis, &desk_config(&standin, "socket"))).await;
    let mut widget = visitor_asks_for_a_human(gateway.local_addr, "slack-visitor-000000003").await;
    let parent = briefing(&standin).await;

    standin.set_outage(true);
    widget
        .send(json!({"type": "message", "client_id": "q5", "text": "Hello? Is anyone there?"}))
        .await;
    widget
        .send(
            json!({"type": "message", "client_id": "q6", "text": "My invoice number is INV-2041"}),
        )
        .await;
    let mut client = redis.client();
    eventually(
        Duration::from_secs(10),
        "the mirror waiting for a retry in the outbox",
        || {
            let parked = crate::work::work_left(&mut client).parked;
            async move { (parked >= 1).then_some(()) }
        },
    )
    .await;
    assert!(
        !standin
            .posts()
            .iter()
            .any(|post| post.text.contains("INV-2041")),
        "nothing can be posted while Slack is down"
    );

    standin.set_outage(false);
    thread_post(&standin, &parent.ts, "Is anyone there?").await;
    thread_post(&standin, &parent.ts, "INV-2041").await;
    let dead = crate::work::work_left(&mut client).dead;
    assert_eq!(dead, 0, "nothing was given up on");
}

#[tokio::test]
async fn routing_rules_naming_channels_the_app_cannot_post_in_are_reported_at_start() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    let extra = format!(
        "{}\n[[desk.routes]]\nchannel = \"CNOTMEMBERVIP\"\ntiers = [\"vip\"]\n[[desk.routes]]\nchannel = \"CMISSINGBILLING\"\ncategories = [\"billing_dispute\"]\n[[desk.routes]]\nchannel = \"C0SECURITY\"\ncategories = [\"security\"]\n",
        desk_config(&standin, "socket")
    );
    let gateway = start_gateway(test_config(&redis, &extra)).await;
    let addr = gateway.admin_addr;
    let channels = eventually(
        Duration::from_secs(10),
        "the start-up channel check",
        || async move {
            let (_, body) = crate::harness::http(addr, "GET", "/readyz", None).await;
            let ready: Value = serde_json::from_str(&body).ok()?;
            let channels = ready.get("desk_channels")?.clone();
            (channels.as_object()?.len() == 4).then_some(channels)
        },
    )
    .await;
    assert_eq!(channels[SUPPORT], "ok");
    assert_eq!(channels["C0SECURITY"], "ok");
    let vip = channels["CNOTMEMBERVIP"].as_str().unwrap();
    assert!(
        vip.contains("falls back to C0SUPPORT") && vip.contains("not a member"),
        "{vip}"
    );
    let billing = channels["CMISSINGBILLING"].as_str().unwrap();
    assert!(
        billing.contains("falls back") && billing.contains("channel_not_found"),
        "{billing}"
    );

    // An admin can ask the same before deploying: `check-config --online`.
    let dir = crate::harness::TempDir::new("check-config-online");
    let file = dir.0.join("desk.toml");
    let knowledge = crate::harness::config_dir().join("knowledge");
    std::fs::write(
        &file,
        format!(
            "[triage]\nknowledge_dir = \"{}\"\n{extra}",
            knowledge.display()
        ),
    )
    .unwrap();
    // The app was installed before reaction commands existed: one scope is missing.
    let granted: Vec<&str> = (DESK_SCOPES.iter())
        .map(|need| need.scope)
        .filter(|scope| *scope != "reactions:read")
        .collect();
    standin.grant_scopes(&granted);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["check-config", "--online"])
            .arg(&file)
            .output()
            .expect("run check-config")
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(
        printed.contains("desk.routes[0].channel: the desk cannot post in CNOTMEMBERVIP")
            && printed.contains("would fall back to C0SUPPORT"),
        "{printed}"
    );
    assert!(
        printed.contains("desk.routes[1].channel") && printed.contains("channel_not_found"),
        "{printed}"
    );
    assert!(
        !printed.contains("C0SECURITY") && !printed.contains("desk.slack.channel"),
        "{printed}"
    );
    let missing: Vec<&str> = printed
        .lines()
        .filter(|line| line.contains("scope"))
        .collect();
    assert_eq!(missing.len(), 1, "{printed}");
    assert!(
        missing[0].contains("desk.slack: the app lacks the `reactions:read` scope")
            && missing[0].contains("reaction commands"),
        "{printed}"
    );

    // And an escalation routed to the missing channel lands in the default one.
    let mut widget = Widget::connect(gateway.local_addr, "slack-visitor-000000009", None)
        .await
        .0;
    widget
        .send(json!({"type": "message", "client_id": "b1", "text": "I was charged twice and I dispute this charge"}))
        .await;
    widget.message_from("system").await;
    let parent = briefing(&standin).await;
    assert_eq!(parent.channel, SUPPORT);
}

#[tokio::test]
async fn the_thread_keeps_working_after_slack_asks_the_app_to_reconnect() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    let gateway = start_gateway(test_config(&redis, &desk_config(&standin, "socket"))).await;
    let mut widget = visitor_asks_for_a_human(gateway.local_addr, "slack-visitor-000000011").await;
    let parent = briefing(&standin).await;
    // slack-morphism keeps two connections, the second opened a few seconds after the first.
    eventually(
        Duration::from_secs(15),
        "both Socket Mode connections",
        || async { (standin.socket_clients() == 2).then_some(()) },
    )
    .await;
    let opened = standin.socket_connections_opened();

    // Slack moves the app to another server: each connection is told to go, then closed.
    standin.refresh_socket_connections();
    eventually(
        Duration::from_secs(15),
        "two new Socket Mode connections",
        || async {
            (standin.socket_connections_opened() >= opened + 2 && standin.socket_clients() >= 1)
                .then_some(())
        },
    )
    .await;
    let envelope = standin.send_event(agent_reply(
        &parent.ts,
        "1800000000.000400",
        "Still here: your reset link is on its way.",
    ));
    assert!(
        standin
            .wait_for_ack(&envelope, Duration::from_secs(10))
            .await,
        "the agent's reply is acked on a new connection"
    );
    let message = widget.message_from("agent").await;
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .contains("reset link is on its way"),
        "{message}"
    );

    // The customer's next message still lands in the same thread.
    widget
        .send(json!({"type": "message", "client_id": "q3", "text": "Got it, thanks, order ACME-7731"}))
        .await;
    thread_post(&standin, &parent.ts, "ACME-7731").await;
}

/// Type-checks each manifest against Slack's published app manifest schema (as SchemaStore's
/// TypeScript rendering, `tests/fixtures/slack-app-manifest`): unknown or misspelt keys, wrong
/// types and missing required fields fail `tsc --strict`.
async fn conforms_to_slacks_manifest_schema(dir: &std::path::Path, manifests: &[&Value]) {
    let packages = tokio::task::spawn_blocking(crate::browser::ensure_node_packages)
        .await
        .unwrap();
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slack-app-manifest");
    std::fs::copy(
        fixtures.join("slack-app-manifest.d.ts"),
        dir.join("slack-app-manifest.d.ts"),
    )
    .unwrap();
    let mut source =
        String::from("import type { SlackAppManifest } from \"./slack-app-manifest\";\n");
    for (n, manifest) in manifests.iter().enumerate() {
        source.push_str(&format!(
            "export const manifest{n}: SlackAppManifest = {manifest};\n"
        ));
    }
    std::fs::write(dir.join("manifests.ts"), source).unwrap();
    let output = tokio::process::Command::new("node")
        .arg(packages.join("node_modules/typescript/bin/tsc"))
        .args([
            "--noEmit", "--strict", "--target", "es2020", "--module", "es2020",
        ])
        .arg(dir.join("manifests.ts"))
        .output()
        .await
        .expect("run tsc");
    assert!(
        output.status.success(),
        "a manifest does not match Slack's schema:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test]
async fn the_manifest_command_prints_the_apps_the_config_describes_before_any_token_exists() {
    let dir = crate::harness::TempDir::new("slack-manifest");
    let file = dir.0.join("switchboard.toml");
    std::fs::write(
        &file,
        r#"
[files]
public_base_url = "https://support.example.com"

[desk.slack]
enabled = true
mode = "events_api"
channel = "C0SUPPORT"
bot_token_env = "NO_SUCH_TOKEN_YET"

[connectors.slack]
enabled = true
channels = ["C0SHARED"]
"#,
    )
    .unwrap();
    let run = |customers: bool| {
        let file = file.clone();
        async move {
            let output = tokio::task::spawn_blocking(move || {
                let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
                command.args(["slack", "manifest", "--config"]).arg(&file);
                if customers {
                    command.arg("--customers");
                }
                command.output().expect("run slack manifest")
            })
            .await
            .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_slice::<Value>(&output.stdout).expect("the manifest is JSON")
        }
    };
    let desk = run(false).await;
    let customers = run(true).await;
    conforms_to_slacks_manifest_schema(&dir.0, &[&desk, &customers]).await;
    assert_eq!(desk["settings"]["socket_mode_enabled"], false);
    assert_eq!(
        desk["settings"]["event_subscriptions"]["request_url"],
        "https://support.example.com/slack/events"
    );
    let scopes: Vec<&str> = desk["oauth_config"]["scopes"]["bot"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expected: Vec<&str> = DESK_SCOPES.iter().map(|need| need.scope).collect();
    assert_eq!(scopes, expected);
    let events = desk["settings"]["event_subscriptions"]["bot_events"].to_string();
    assert!(events.contains("message.groups") && events.contains("reaction_added"));

    assert_eq!(customers["settings"]["socket_mode_enabled"], true);
    assert_eq!(customers["settings"]["interactivity"]["is_enabled"], true);
    let scopes = customers["oauth_config"]["scopes"]["bot"].to_string();
    for need in CUSTOMER_SCOPES {
        assert!(
            scopes.contains(need.scope),
            "{} missing: {scopes}",
            need.scope
        );
    }
}

#[tokio::test]
async fn card_numbers_and_secrets_are_hidden_in_slack_while_redis_keeps_what_the_customer_wrote() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    let gateway = start_gateway(test_config(&redis, &desk_config(&standin, "socket"))).await;
    let mut widget = visitor_asks_for_a_human(gateway.local_addr, "slack-visitor-000000007").await;
    let parent = briefing(&standin).await;

    let card = "4111 1111 1111 1111";
    widget
        .send(json!({"type": "message", "client_id": "q3", "text": format!("charged twice on {card}, my password: Tr0ub4dor&3")}))
        .await;
    let post = thread_post(&standin, &parent.ts, "charged twice").await;
    assert!(post.text.contains("[card •••• 1111]"), "{}", post.text);
    assert!(!post.text.contains(card), "{}", post.text);
    assert!(!post.text.contains("Tr0ub4dor"), "{}", post.text);
    let in_slack: String = standin
        .posts()
        .iter()
        .map(|post| post.text.clone() + &post.blocks.to_string())
        .collect();
    assert!(!in_slack.contains(card) && !in_slack.contains("Tr0ub4dor"));

    let view = gateway
        .store
        .customer_view(
            switchboard_webchat::CHANNEL,
            "s:slack-visitor-000000007",
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        view.messages
            .iter()
            .any(|m| m.text.contains(card) && m.text.contains("Tr0ub4dor&3")),
        "Redis keeps the original"
    );
}
