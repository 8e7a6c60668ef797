//! Export and erasure of one customer (`switchboard contact export|forget|audit`): a customer
//! linked across the API channel and a signed web chat user, escalated into the Slack desk
//! (stand-in) with a file, then exported, forgotten and back as a stranger. Single Redis and
//! cluster.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard::archive::{Archive, LocalDirStore};
use switchboard_api::BuildContext;
use switchboard_slack::standin::{SlackStandIn, BOT_USER_ID};

use crate::harness::{
    eventually, http, http_with_headers, on_single_and_cluster, start_gateway, test_config,
    TempDir, TestRedis,
};
use crate::slack_desk::{agent_reply, briefing, AGENT};

const SUPPORT: &str = "C0SUPPORT";
const SITE_SECRET: &str = "erasure-site-secret";
const API_TOKEN: &str = "erasure-api-token-000001";
const EMAIL: &str = "zed.quartermain@example.org";
/// Words only this customer wrote: none may be left anywhere after `forget`.
const THEIR_WORDS: [&str; 4] = ["ZQ-77311", "Quartermain", "+15550177", "zed.quartermain"];

fn config_text(standin: &SlackStandIn) -> String {
    std::env::set_var("SB_TEST_ERASURE_SITE", SITE_SECRET);
    std::env::set_var("SB_TEST_ERASURE_API", API_TOKEN);
    std::env::set_var("SB_TEST_SLACK_BOT", "xoxb-test-token");
    std::env::set_var("SB_TEST_SLACK_APP", "xapp-test-token");
    format!(
        r#"
[connectors.webchat]
enabled = true
identity_secret_env = "SB_TEST_ERASURE_SITE"
[connectors.api]
enabled = true
[[connectors.api.integrations]]
name = "sms"
auth = "bearer"
secret_env = "SB_TEST_ERASURE_API"
# Nothing listens here: replies to the API wait in the outbox, holding the customer's address.
webhook_url = "http://127.0.0.1:9/unreachable"
emails_verified = true
[desk.slack]
enabled = true
mode = "socket"
channel = "{SUPPORT}"
api_url = "{}"
bot_token_env = "SB_TEST_SLACK_BOT"
app_token_env = "SB_TEST_SLACK_APP"
posts_per_second_per_channel = 50.0
"#,
        standin.api_url()
    )
}

/// Every key in Redis with its value as text (on a cluster, every node's).
pub(crate) fn redis_contents(redis: &TestRedis) -> Vec<(String, String)> {
    let urls = match redis {
        TestRedis::Single(server) => vec![server.url()],
        TestRedis::Cluster(cluster) => cluster.urls(),
    };
    let mut contents = Vec::new();
    for url in urls {
        let mut conn = redis::Client::open(url)
            .and_then(|client| client.get_connection())
            .expect("connect to a node");
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
            let command = match kind.as_str() {
                "string" => redis::cmd("GET").arg(&key).clone(),
                "hash" => redis::cmd("HGETALL").arg(&key).clone(),
                "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
                "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
                "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).clone(),
                "stream" => redis::cmd("XRANGE").arg(&key).arg("-").arg("+").clone(),
                _ => continue,
            };
            let value: redis::Value = command.query(&mut conn).unwrap();
            contents.push((key, text_of(&value)));
        }
    }
    contents
}

/// The `(key, value)` pairs mentioning any of `needles` (case-insensitive).
pub(crate) fn mentions(contents: &[(String, String)], needles: &[&str]) -> Vec<String> {
    contents
        .iter()
        .filter(|(key, value)| {
            let text = format!("{key} {value}").to_lowercase();
            needles
                .iter()
                .any(|needle| text.contains(&needle.to_lowercase()))
        })
        .map(|(key, _)| key.clone())
        .collect()
}

/// A reply's strings, bytes read as (lossy) UTF-8.
fn text_of(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(text) => text.clone(),
        redis::Value::Int(number) => number.to_string(),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().map(text_of).collect::<Vec<_>>().join(" ")
        }
        redis::Value::Map(pairs) => (pairs.iter())
            .map(|(key, value)| format!("{} {}", text_of(key), text_of(value)))
            .collect::<Vec<_>>()
            .join(" "),
        other => format!("{other:?}"),
    }
}

async fn api_message(addr: std::net::SocketAddr, id: &str, text: &str, kind: &str) {
    let body = json!({
        "message_id": id, "conversation_id": "+15550177", "text": text, "kind": kind,
        "customer": {"id": "u-zed", "name": "Zed Quartermain", "email": EMAIL},
    })
    .to_string();
    let headers = [
        ("content-type".to_owned(), "application/json".to_owned()),
        ("authorization".to_owned(), format!("Bearer {API_TOKEN}")),
    ];
    let (status, answer) =
        http_with_headers(addr, "POST", "/api/v1/messages", &headers, Some(&body)).await;
    assert!(status == 202 || status == 200, "{status}: {answer}");
}

async fn webchat_message(addr: std::net::SocketAddr, client_id: &str, text: &str) {
    let body = json!({
        "session": "erasure-session-000000001", "client_id": client_id, "user_id": EMAIL,
        "user_sig": switchboard_webchat::sign_user_id(SITE_SECRET.as_bytes(), EMAIL), "text": text,
    });
    let (status, answer) = http(addr, "POST", "/webchat/messages", Some(&body.to_string())).await;
    assert_eq!(status, 200, "{answer}");
}

async fn webchat_file(addr: std::net::SocketAddr) {
    let sig = switchboard_webchat::sign_user_id(SITE_SECRET.as_bytes(), EMAIL);
    let path = format!(
        "/webchat/files?session=erasure-session-000000001&client_id=f1&name=zq-77311-receipt.txt\
         &user_id={EMAIL}&user_sig={sig}"
    );
    let headers = [("content-type".to_owned(), "text/plain".to_owned())];
    let (status, answer) = http_with_headers(
        addr,
        "POST",
        &path,
        &headers,
        Some("receipt for ZQ-77311, Zed Quartermain"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

async fn a_forgotten_customer_is_gone_from_redis_the_archive_and_slack(redis: TestRedis) {
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let config = || test_config(&redis, &config_text(&standin));
    let gateway = start_gateway(config()).await;
    let addr = gateway.local_addr;

    // The customer asks for a person over the API, then writes and sends a file as a signed
    // web chat user with the same address: one conversation, one thread.
    api_message(
        addr,
        "sms-1",
        "Where is order ZQ-77311? - Zed Quartermain",
        "human_request",
    )
    .await;
    let parent = briefing(&standin).await;
    webchat_message(addr, "w1", "The ZQ-77311 box arrived crushed").await;
    webchat_file(addr).await;
    let file_uploaded = || async { (!standin.files().is_empty()).then_some(()) };
    eventually(
        Duration::from_secs(15),
        "the file in the thread",
        file_uploaded,
    )
    .await;
    standin.send_event(agent_reply(
        &parent.ts,
        "1800000000.000100",
        "Sorry Zed, the ZQ-77311 refund is on its way.",
    ));
    // Someone else, who must keep everything.
    let bystander = json!({"session": "bystander-session-0000001", "client_id": "b1",
                           "text": "How do I reset my password? bystander-unique-41"});
    http(
        addr,
        "POST",
        "/webchat/messages",
        Some(&bystander.to_string()),
    )
    .await;
    let store = gateway.store.clone();
    let view = || async {
        let view = (store.customer_view(switchboard_webchat::CHANNEL, &format!("u:{EMAIL}"), None))
            .await
            .ok()??;
        view.messages
            .iter()
            .any(|message| message.text.contains("refund is on its way"))
            .then_some(view)
    };
    let view = eventually(Duration::from_secs(15), "the agent's reply stored", view).await;
    assert!(view
        .messages
        .iter()
        .any(|m| m.text.contains("Where is order")));
    gateway.shutdown().await;

    let archive_dir = TempDir::new("erasure-archive");
    let archive = Archive::new(Arc::new(LocalDirStore::new(&archive_dir.0)));
    let export = switchboard::contact::export(&store, Some(&archive), EMAIL)
        .await
        .expect("export");
    assert_eq!(
        export.conversations.len(),
        1,
        "both channels, one conversation"
    );
    let exported = serde_json::to_string(&export).unwrap();
    for text in [
        "Where is order ZQ-77311",
        "box arrived crushed",
        "refund is on its way",
    ] {
        assert!(exported.contains(text), "export lacks {text:?}");
    }
    let conversation = &export.conversations[0];
    assert!(
        !conversation.escalations.is_empty(),
        "the decision log is exported"
    );
    assert_eq!(conversation.links, vec![format!("webchat:u:{EMAIL}")]);
    let file = conversation.files.first().expect("the file is exported");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&file.data_base64)
        .unwrap();
    assert_eq!(bytes, b"receipt for ZQ-77311, Zed Quartermain");
    let before = redis_contents(&redis);
    assert!(!mentions(&before, &THEIR_WORDS).is_empty());

    let mut desk_config = config();
    let section = desk_config.desk.take_enabled().expect("the slack desk");
    let desk = section
        .config
        .build(&BuildContext::single_instance("forget", 1 << 20))
        .expect("desk");
    let forgotten = switchboard::contact::forget(
        &store,
        Some(&archive),
        Some(desk.as_ref()),
        &[],
        EMAIL,
        "dpo@acme.example",
        Some("DSR-2041"),
    )
    .await
    .expect("forget");
    assert_eq!(forgotten.redis.conversations, 1);
    assert!(
        forgotten.redis.files >= 1 && forgotten.redis.work_items >= 1,
        "{forgotten:?}"
    );
    assert!(forgotten.desk.deleted >= 3, "{forgotten:?}");

    let after = redis_contents(&redis);
    assert_eq!(mentions(&after, &THEIR_WORDS), Vec::<String>::new());
    assert!(
        !mentions(&after, &["bystander-unique-41"]).is_empty(),
        "someone else's conversation is untouched"
    );
    let thread = standin.thread(SUPPORT, &parent.ts);
    assert!(
        thread.iter().all(|message| message["user"] != BOT_USER_ID),
        "none of the bot's posts is left: {thread:?}"
    );
    assert!(
        standin.files().is_empty(),
        "the uploaded file is deleted from Slack"
    );
    assert!(standin.deleted().iter().any(|(_, ts)| *ts == parent.ts));

    let audit = switchboard::contact::audit_log(&store)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].by, "dpo@acme.example");
    assert_eq!(audit[0].ticket.as_deref(), Some("DSR-2041"));
    assert_eq!(audit[0].removed, forgotten);
    let audit_text = serde_json::to_string(&audit).unwrap().to_lowercase();
    for word in THEIR_WORDS {
        assert!(!audit_text.contains(&word.to_lowercase()), "{audit_text}");
    }

    // They write again: a stranger, with no history.
    let gateway = start_gateway(config()).await;
    webchat_message(gateway.local_addr, "w2", "Hello, first time here").await;
    let view = gateway
        .store
        .customer_view(switchboard_webchat::CHANNEL, &format!("u:{EMAIL}"), None)
        .await
        .unwrap()
        .expect("a new conversation");
    let texts: Vec<&str> = view.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts.first(), Some(&"Hello, first time here"), "{texts:?}");
    assert!(
        !texts.iter().any(|text| text.contains("ZQ-77311")),
        "{texts:?}"
    );
    gateway.shutdown().await;
}

on_single_and_cluster!(a_forgotten_customer_is_gone_from_redis_the_archive_and_slack);

/// Runs the `switchboard` binary; returns success, stdout and stderr.
fn switchboard(args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .expect("run switchboard");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_and_archive_commands_work_from_the_command_line() {
    let redis = TestRedis::Single(crate::harness::RedisServer::start());
    let dir = TempDir::new("erasure-cli");
    let config = dir.0.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[redis]\nurl = \"{}\"\n[triage]\nknowledge_dir = \"{}\"\n\
             [retention]\narchive_after_days = 30\narchive_dir = \"archive\"\n",
            redis.url(),
            crate::harness::config_dir().join("knowledge").display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let store = switchboard::store::Store::connect(&redis.url(), Duration::from_secs(2))
        .await
        .unwrap();
    let inbound = switchboard_api::Inbound {
        channel: switchboard_telegram::CHANNEL,
        conversation_key: "4242".into(),
        message_id: "t-1".into(),
        kind: switchboard_api::InboundKind::Text,
        author: switchboard_api::Identity {
            id: "4242".into(),
            ..Default::default()
        },
        text: "cli-unique-text-9917".into(),
        context: Default::default(),
        files: Vec::new(),
    };
    store.ingest(&inbound).await.unwrap();

    let out = dir.0.join("export.json");
    let (ok, _, stderr) = switchboard(&[
        "contact",
        "export",
        "telegram:4242",
        "--out",
        out.to_str().unwrap(),
        "--config",
        config,
    ]);
    assert!(ok, "{stderr}");
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(export["conversations"][0]["transcript"]
        .to_string()
        .contains("cli-unique-text-9917"));

    let (ok, stdout, stderr) = switchboard(&[
        "contact",
        "forget",
        "telegram:4242",
        "--by",
        "dpo",
        "--ticket",
        "DSR-7",
        "-c",
        config,
    ]);
    assert!(ok, "{stderr}");
    let forgotten: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(forgotten["redis"]["conversations"], 1);
    let (ok, stdout, _) = switchboard(&["contact", "audit", "-c", config]);
    assert!(ok);
    let entry: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (entry["by"].as_str(), entry["ticket"].as_str()),
        (Some("dpo"), Some("DSR-7"))
    );
    assert!(
        !stdout.contains("4242") && !stdout.contains("cli-unique"),
        "{stdout}"
    );
    assert!(mentions(&redis_contents(&redis), &["cli-unique"]).is_empty());

    let (ok, stdout, stderr) = switchboard(&["archive", "run", "-c", config]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("\"archived\": 0"), "{stdout}");
    let (ok, stdout, _) = switchboard(&["archive", "status", "-c", config]);
    assert!(ok && stdout.contains("\"due_in_redis\": 0"), "{stdout}");
    let (ok, _, stderr) = switchboard(&["contact", "export", "nobody", "-c", config]);
    assert!(
        !ok && stderr.contains("is not an email address"),
        "{stderr}"
    );
}

const SHARED_THREAD: &str = "1700000100.000100";
const SLACK_CUSTOMER: &str = "U0CUSTQUIN";
/// Words only the Slack customer's conversation holds.
const ORDER: &str = "QX-5521";

fn slack_customer_says(ts: &str, text: &str) -> serde_json::Value {
    let mut event = json!({"type": "message", "channel": crate::slack_gateway::SHARED,
        "user": SLACK_CUSTOMER, "text": text, "ts": ts, "event_ts": ts, "channel_type": "channel"});
    if ts != SHARED_THREAD {
        event["thread_ts"] = json!(SHARED_THREAD);
    }
    event
}

/// The bot's posts left in a thread of `standin`.
fn bot_posts(standin: &SlackStandIn, channel: &str, thread_ts: &str) -> usize {
    (standin.thread(channel, thread_ts).iter())
        .filter(|message| message["user"] == BOT_USER_ID)
        .count()
}

/// A desk thread's parent posted after `known` ones, once the gateway has linked it (agents'
/// replies in it reach the customer from then on).
async fn new_briefing(
    desk: &SlackStandIn,
    store: &switchboard::store::Store,
    known: &[String],
) -> String {
    let found = || async {
        let ts = (desk.posts().into_iter())
            .find(|post| {
                post.method == "chat.postMessage"
                    && post.thread_ts.is_none()
                    && !known.contains(&post.ts)
            })?
            .ts;
        let thread = switchboard_api::ThreadRef {
            channel: SUPPORT.into(),
            ts: ts.clone(),
        };
        store.conversation_for_thread(&thread).await.ok()??;
        Some(ts)
    };
    eventually(Duration::from_secs(20), "a new desk thread", found).await
}

/// The agent answers in a desk thread and waits until the customer's Slack thread shows it.
async fn agent_answers(desk: &SlackStandIn, customers: &SlackStandIn, thread: &str, ts: &str) {
    let text = format!("{ORDER} is replaced, sorry (answer {ts})");
    desk.send_event(agent_reply(thread, ts, &text));
    let shown = || async {
        (customers.posts().iter())
            .any(|post| post.text.contains(&format!("answer {ts}")))
            .then_some(())
    };
    eventually(Duration::from_secs(20), "the agent's answer", shown).await;
}

/// A Slack Connect customer with three cases (three desk threads) and a Telegram customer: after
/// `forget`, none of the bot's posts is left in either desk thread nor in the customer's own
/// Slack thread, the Telegram answer is deleted, and Redis holds none of their words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_reaches_every_desk_thread_and_the_gateway_s_messages_in_the_customer_s_chats() {
    let redis = TestRedis::Single(crate::harness::RedisServer::start());
    let customers = SlackStandIn::start().await;
    customers.set_user_with_email(SLACK_CUSTOMER, "Quin", "quin@acme.example");
    let desk = SlackStandIn::start().await;
    desk.set_user(AGENT, "Sam Rivera");
    let telegram = switchboard_telegram::standin::TelegramStandIn::start().await;
    std::env::set_var("SB_TEST_ERASURE_TELEGRAM", telegram.token());
    // A case closed by the agent reopens only within 0.36 s: the customer's next message
    // after that opens a new case, in a new desk thread.
    let text = format!(
        "{}{}[connectors.telegram]\nenabled = true\nbot_token_env = \"SB_TEST_ERASURE_TELEGRAM\"\n\
         api_url = \"{}\"\npoll_timeout_secs = 1\n[case]\nreopen_window_hours = 0.0001\n",
        crate::slack_desk::desk_config(&desk, "socket"),
        crate::slack_gateway::customer_config(&customers),
        telegram.api_url()
    );
    let config = || test_config(&redis, &text);
    let gateway = start_gateway(config()).await;
    let sockets = || async { (customers.socket_clients() > 0).then_some(()) };
    eventually(
        Duration::from_secs(20),
        "the customer app's socket",
        sockets,
    )
    .await;

    let shared = crate::slack_gateway::SHARED;
    let store = gateway.store.clone();
    let key = format!("{shared}:{SHARED_THREAD}");
    // Three cases, three desk threads: the record names the current and the previous one,
    // the first only in its list of past threads.
    let mut threads: Vec<String> = Vec::new();
    for case in 1..=3 {
        let ts = if case == 1 {
            SHARED_THREAD.to_owned()
        } else {
            format!("170000030{case}.000100")
        };
        customers.send_event(slack_customer_says(
            &ts,
            &format!("I want to talk to a real person about order {ORDER} ({case})"),
        ));
        let thread = new_briefing(&desk, &store, &threads).await;
        agent_answers(
            &desk,
            &customers,
            &thread,
            &format!("180000000{case}.000100"),
        )
        .await;
        threads.push(thread);
        if case == 3 {
            break;
        }
        let thread = threads.last().unwrap();
        desk.send_event(agent_reply(
            thread,
            &format!("180000000{case}.000200"),
            "!resolve",
        ));
        let resolved = || async {
            let view = (store
                .customer_view(switchboard_slack::CHANNEL, &key, None)
                .await)
                .ok()??;
            (view.status == "resolved").then_some(())
        };
        eventually(Duration::from_secs(20), "the case resolved", resolved).await;
        // Past the 0.36 s reopen window: the next message opens a new case.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    telegram.push_text(
        5550123,
        "Tess",
        "How do I reset my password? tg-unique-8812",
    );
    let answered = || async {
        (telegram.sent().into_iter())
            .find(|sent| sent.chat_id == 5550123)
            .map(|sent| sent.message_id)
    };
    let telegram_answer =
        eventually(Duration::from_secs(20), "the Telegram answer", answered).await;
    // Its receipt is written right after Telegram took it.
    let receipt = || async {
        let id = store
            .resolve_conversation(switchboard_telegram::CHANNEL, "5550123")
            .await
            .ok()?;
        let dump = (store.dump_conversation(&id, Vec::new()).await).ok()??;
        (!dump.deliveries.is_empty()).then_some(())
    };
    eventually(Duration::from_secs(20), "the Telegram receipt", receipt).await;
    gateway.shutdown().await;

    let in_customer_thread = bot_posts(&customers, shared, SHARED_THREAD);
    assert!(in_customer_thread >= 3, "three answers at least");
    for thread in &threads {
        assert!(
            bot_posts(&desk, SUPPORT, thread) >= 1,
            "desk thread {thread}"
        );
    }

    let mut forget_config = config();
    let section = forget_config.desk.take_enabled().expect("the slack desk");
    let cx = BuildContext::single_instance("forget", 1 << 20);
    let desk_connector = section.config.build(&cx).expect("desk");
    let channels = std::mem::take(&mut forget_config.connectors)
        .build(&cx)
        .expect("channels");
    let forgotten = switchboard::contact::forget(
        &store,
        None,
        Some(desk_connector.as_ref()),
        &channels,
        &format!("slack:{key}"),
        "dpo",
        None,
    )
    .await
    .expect("forget");
    assert_eq!(forgotten.redis.conversations, 1);
    for thread in &threads {
        assert_eq!(bot_posts(&desk, SUPPORT, thread), 0, "desk thread {thread}");
        assert!(desk.deleted().iter().any(|(_, ts)| ts == thread));
    }
    assert_eq!(bot_posts(&customers, shared, SHARED_THREAD), 0);
    assert_eq!(
        forgotten.channel_messages.deleted, in_customer_thread as u64,
        "{forgotten:?}"
    );
    assert_eq!(
        (
            forgotten.channel_messages.left,
            forgotten.channel_messages.not_erasable
        ),
        (0, 0)
    );
    assert_eq!(forgotten.channel_messages_not_reached, 0);
    assert_eq!(
        mentions(
            &redis_contents(&redis),
            &[ORDER, "quin@acme", SHARED_THREAD]
        ),
        Vec::<String>::new()
    );

    let forgotten = switchboard::contact::forget(
        &store,
        None,
        None,
        &channels,
        "telegram:5550123",
        "dpo",
        None,
    )
    .await
    .expect("forget the Telegram customer");
    assert_eq!(forgotten.channel_messages.deleted, 1, "{forgotten:?}");
    assert_eq!(telegram.deleted(), vec![(5550123, telegram_answer)]);
    assert_eq!(
        mentions(&redis_contents(&redis), &["tg-unique-8812", "5550123"]),
        Vec::<String>::new()
    );
}
