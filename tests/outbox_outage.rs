//! A platform that is down for longer than a few minutes: deliveries wait for it, in order,
//! and are given up on only after `outbox.give_up_after_ms` of failing, however many attempts
//! that took; an admin sees what waits and replays what was given up on, once.
//!
//! Time is compressed through config: backoff 10-50 ms (parked retries are put back five times
//! a second, so an outage passes the old give-up point of 12 attempts in about 2.5 s), and
//! give-up windows of seconds.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Commands;
use serde_json::{json, Value};
use switchboard::config::{Config, OutboxConfig};
use switchboard::model::{Delivery, Role};
use switchboard::outbox::admin::{AdminError, OutboxAdmin};
use switchboard::outbox::{DeliveryOutcome, OutboxWorker};
use switchboard::store::{keys, Commit, ReplyToQueue, Store};
use switchboard_api::{
    Author, ChannelKind, Connector, Identity, Inbound, InboundKind, Outbound, RecordingConnector,
};
use switchboard_slack::standin::{RecordedPost, SlackStandIn};

use crate::harness::{
    eventually, http, on_single_and_cluster, start_gateway, RedisServer, RedisUrl, TempDir,
    TestRedis,
};
use crate::slack_desk::{desk_config, visitor_asks_for_a_human, AGENT};
use crate::work::work_left;

/// The attempts after which earlier builds gave up on a delivery.
const OLD_GIVE_UP_ATTEMPTS: u32 = 12;

/// A gateway config with the Slack desk and time compressed: backoff 10-50 ms.
fn outage_config(redis: &impl RedisUrl, standin: &SlackStandIn, give_up_after_ms: u64) -> String {
    format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[redis]
url = "{}"
command_timeout_ms = 500
[outbox]
claim_idle_ms = 1000
initial_backoff_ms = 10
max_backoff_ms = 50
give_up_after_ms = {give_up_after_ms}
unhealthy_after_ms = 1000
[triage]
knowledge_dir = "{}"
{}
"#,
        redis.url(),
        crate::harness::config_dir().join("knowledge").display(),
        desk_config(standin, "socket")
    )
}

fn parse(text: &str) -> Config {
    crate::harness::init_logging();
    Config::parse(text, crate::harness::config_dir())
        .unwrap_or_else(|problems| panic!("test config: {problems:?}"))
}

fn briefings(posts: &[RecordedPost]) -> Vec<&RecordedPost> {
    posts
        .iter()
        .filter(|post| post.method == "chat.postMessage" && post.thread_ts.is_none())
        .collect()
}

/// The gauge's value for `target` on `/metrics`, if it is there.
async fn oldest_waiting_seconds(addr: std::net::SocketAddr, target: &str) -> Option<f64> {
    let (_, body) = http(addr, "GET", "/metrics", None).await;
    let prefix = format!("switchboard_outbox_oldest_waiting_seconds{{target=\"{target}\"}} ");
    body.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

async fn readyz(addr: std::net::SocketAddr) -> (u16, Value) {
    let (status, body) = http(addr, "GET", "/readyz", None).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_outage_past_the_old_give_up_point_loses_no_briefing_and_no_thread_reply() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let gateway = start_gateway(parse(&outage_config(&redis, &standin, 60_000))).await;
    let admin = OutboxAdmin::new(gateway.store.clone());
    let addr = gateway.local_addr;
    let admin_http = gateway.admin_addr;

    // Slack refuses every post from before the first escalation until after the old give-up.
    standin.set_outage(true);
    let outage_began = Instant::now();
    let mut widgets = Vec::new();
    for visitor in 1..=3 {
        let session = format!("outage-visitor-00000000{visitor}");
        let mut widget = visitor_asks_for_a_human(addr, &session).await;
        for line in 1..=2 {
            let text = format!("Still waiting, order ACME-{visitor}0{line}");
            widget
                .send(json!({"type": "message", "client_id": format!("m{line}"), "text": text}))
                .await;
        }
        widgets.push(widget);
    }

    // Far more attempts than the old limit, and nothing was given up on.
    let status = eventually(
        Duration::from_secs(20),
        "a briefing retried twice as often as the old give-up point",
        || async {
            let status = admin.status().await.ok()?;
            let desk = status.target("desk")?.clone();
            (desk.most_attempts > 2 * OLD_GIVE_UP_ATTEMPTS).then_some(desk)
        },
    )
    .await;
    assert_eq!(status.dead, 0, "{status:?}");
    assert_eq!(
        status.waiting, 9,
        "3 briefings and 6 thread replies wait: {status:?}"
    );
    assert!(status.longest_failing.is_some(), "{status:?}");
    assert_eq!(work_left(&mut redis.client()).dead, 0);
    assert!(briefings(&standin.posts()).is_empty(), "Slack is down");

    // An operator sees the outage: the oldest waiting delivery's age, and /readyz names the
    // desk (failing for longer than unhealthy_after_ms = 1 s).
    let age = eventually(
        Duration::from_secs(10),
        "the oldest-waiting gauge",
        || async {
            oldest_waiting_seconds(admin_http, "desk")
                .await
                .filter(|age| *age >= 1.0)
        },
    )
    .await;
    assert!(
        age <= outage_began.elapsed().as_secs_f64() + 1.0,
        "the age counts from when the first briefing was queued: {age}"
    );
    // Reported without failing readiness by itself (the platform is down, not this instance).
    let (_, ready) = readyz(admin_http).await;
    let desk = ready["outbox"]["desk"].as_str().unwrap_or_default();
    assert!(
        desk.starts_with("down: no delivery got through for") && desk.contains("503"),
        "{ready}"
    );

    standin.set_outage(false);
    let posts = eventually(
        Duration::from_secs(20),
        "every briefing and thread reply after Slack came back",
        || async {
            let posts = standin.posts();
            let replies = posts
                .iter()
                .filter(|post| post.thread_ts.is_some() && post.text.contains("ACME-"))
                .count();
            (briefings(&posts).len() >= 3 && replies >= 6).then_some(posts)
        },
    )
    .await;
    let parents = briefings(&posts);
    assert_eq!(parents.len(), 3, "one briefing per escalation");
    let mut threads: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for post in posts.iter().filter(|post| post.text.contains("ACME-")) {
        // The briefings show the whole conversation so far, the orders included.
        let Some(thread) = post.thread_ts.clone() else {
            continue;
        };
        assert!(
            parents.iter().any(|parent| parent.ts == thread),
            "a reply in a thread that has its briefing: {post:?}"
        );
        let order = post.text.split("ACME-").nth(1).unwrap_or_default();
        threads.entry(thread).or_default().push(order.to_owned());
    }
    let mut seen: Vec<Vec<String>> = threads.into_values().collect();
    seen.sort();
    assert_eq!(
        seen,
        [["101", "102"], ["201", "202"], ["301", "302"]],
        "each visitor's replies once, in order, in their own thread"
    );

    // Everything drained, nothing given up on, and the operator's views say so.
    eventually(Duration::from_secs(10), "the outbox drained", || async {
        let left = work_left(&mut redis.client());
        (left.parked == 0 && left.outbox == 0).then_some(())
    })
    .await;
    assert_eq!(work_left(&mut redis.client()).dead, 0);
    let status = admin.status().await.unwrap();
    assert!(status.target("desk").is_none(), "{status:?}");
    eventually(Duration::from_secs(10), "/readyz healthy again", || async {
        let (code, ready) = readyz(admin_http).await;
        (code == 200 && ready.get("outbox").is_none()).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "the gauge back to 0", || async {
        (oldest_waiting_seconds(admin_http, "desk").await == Some(0.0)).then_some(())
    })
    .await;
    drop(widgets);
}

/// Runs the real `switchboard outbox ...`; returns (success, stdout + stderr).
async fn outbox_cli(config: &Path, args: &[&str]) -> (bool, String) {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("outbox")
            .args(&args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run switchboard outbox");
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_briefing_given_up_after_the_window_is_replayed_from_the_cli_and_posted_once_before_its_thread(
) {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let window = Duration::from_secs(4);
    let text = outage_config(&redis, &standin, window.as_millis() as u64);
    let gateway = start_gateway(parse(&text)).await;
    let dir = TempDir::new("outbox-cli");
    let config_file = dir.0.join("switchboard.toml");
    std::fs::write(&config_file, &text).unwrap();

    standin.set_outage(true);
    let escalated = Instant::now();
    let mut widget = visitor_asks_for_a_human(gateway.local_addr, "outage-visitor-000000009").await;
    // A reply for the thread, queued behind the briefing: it waits, and is not given up on
    // with the briefing.
    widget
        .send(json!({"type": "message", "client_id": "m1", "text": "My order is ACME-901"}))
        .await;
    eventually(
        Duration::from_secs(15),
        "the briefing given up on",
        || async { (work_left(&mut redis.client()).dead == 1).then_some(()) },
    )
    .await;
    assert!(
        escalated.elapsed() >= window,
        "given up only after the window: {:?}",
        escalated.elapsed()
    );

    let (ok, listed) = outbox_cli(&config_file, &["dead"]).await;
    assert!(ok, "{listed}");
    assert!(
        listed.contains("desk") && listed.contains("briefing (opens the thread)"),
        "{listed}"
    );
    assert!(listed.contains("gave up after"), "{listed}");
    let attempts: u32 = listed
        .split(" after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("attempts listed: {listed}"));
    assert!(
        attempts > OLD_GIVE_UP_ATTEMPTS,
        "the window decided, not the count: {attempts} attempts"
    );
    let id = listed
        .split_whitespace()
        .next()
        .expect("the dead letter's id")
        .to_owned();
    let (ok, status) = outbox_cli(&config_file, &["status"]).await;
    assert!(ok, "{status}");
    let desk_line = status
        .lines()
        .find(|line| line.starts_with("desk"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(desk_line.trim_end().ends_with(" 1"), "one dead: {status}");

    // Slack is back; the thread reply cannot go before its thread exists. The admin replays
    // the briefing: it takes its place in line again, ahead of the reply, and is posted once.
    standin.set_outage(false);
    let (ok, replayed) = outbox_cli(&config_file, &["replay", &id]).await;
    assert!(ok && replayed.contains("replayed"), "{replayed}");
    let posts = eventually(
        Duration::from_secs(15),
        "the replayed briefing, then the reply in its thread",
        || async {
            let posts = standin.posts();
            let reply = posts
                .iter()
                .any(|post| post.thread_ts.is_some() && post.text.contains("ACME-901"));
            reply.then_some(posts)
        },
    )
    .await;
    let parents = briefings(&posts);
    assert_eq!(parents.len(), 1);
    let reply = posts
        .iter()
        .position(|post| {
            post.thread_ts.as_ref() == Some(&parents[0].ts) && post.text.contains("ACME-901")
        })
        .expect("the reply in the briefing's thread");
    let briefing = posts
        .iter()
        .position(|post| post.ts == parents[0].ts)
        .unwrap();
    assert!(briefing < reply);
    assert_eq!(
        work_left(&mut redis.client()).dead,
        0,
        "the reply was not given up on"
    );

    // Replaying it again finds nothing and queues nothing.
    let (ok, again) = outbox_cli(&config_file, &["replay", &id]).await;
    assert!(!ok && again.contains("no dead letter"), "{again}");
    let (ok, all) = outbox_cli(&config_file, &["replay", "--all"]).await;
    assert!(ok && all.contains("0 dead letter(s)"), "{all}");
    let left = work_left(&mut redis.client());
    assert_eq!((left.outbox, left.parked, left.dead), (0, 0, 0), "{left:?}");
    assert_eq!(briefings(&standin.posts()).len(), 1, "posted once");
}

/// The web chat channel as the outbox sees it, down (refusing every send) until told.
fn down_channel() -> Arc<RecordingConnector> {
    let channel = RecordingConnector::new(switchboard_webchat::CHANNEL);
    channel.set_down(true);
    Arc::new(channel)
}

/// Queues an AI reply to the web chat customer `key`; returns its transcript id.
async fn queue_reply(store: &Store, key: &str, text: &str) -> String {
    let ingested = store
        .ingest(&Inbound {
            channel: switchboard_webchat::CHANNEL,
            conversation_key: key.into(),
            message_id: format!("wc:{text}"),
            kind: InboundKind::Text,
            author: Identity {
                id: key.into(),
                ..Default::default()
            },
            text: "question".into(),
            context: Default::default(),
            files: Vec::new(),
        })
        .await
        .unwrap();
    let outbound = Outbound {
        id: String::new(),
        conversation_id: ingested.conversation_id.clone(),
        channel: switchboard_webchat::CHANNEL,
        conversation_key: key.into(),
        author: Author::Ai,
        text: text.into(),
        actions: vec![],
        reply_context: Default::default(),
        files: Vec::new(),
        maybe_sent: false,
    };
    store
        .commit(&Commit {
            conversation_id: ingested.conversation_id,
            reply: Some(ReplyToQueue {
                role: Role::Ai,
                author: String::new(),
                text: text.into(),
                payload: serde_json::to_string(&Delivery::Customer(outbound)).unwrap(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .entry_id
        .expect("reply queued")
}

fn sender(store: Store, channel: Arc<RecordingConnector>, give_up_after_ms: u64) -> OutboxWorker {
    let connectors: HashMap<ChannelKind, Arc<dyn Connector>> =
        HashMap::from([(switchboard_webchat::CHANNEL, channel as Arc<dyn Connector>)]);
    let config = OutboxConfig {
        claim_idle_ms: 1000,
        initial_backoff_ms: 10,
        max_backoff_ms: 50,
        give_up_after_ms,
        ..OutboxConfig::default()
    };
    OutboxWorker::new(store, connectors, config, "sender".into())
}

/// Runs the sender until `done` holds of everything it did so far (bounded).
async fn work_until(
    sender: &OutboxWorker,
    what: &str,
    outcomes: &mut Vec<DeliveryOutcome>,
    done: impl Fn(&[DeliveryOutcome]) -> bool,
) {
    let start = Instant::now();
    while !done(outcomes) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}: {outcomes:?}"
        );
        outcomes.extend(sender.work_once(Duration::from_millis(20)).await.unwrap());
    }
}

fn dead_count(outcomes: &[DeliveryOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|outcome| matches!(outcome, DeliveryOutcome::DeadLettered(_)))
        .count()
}

async fn a_reply_waiting_behind_a_given_up_one_is_not_given_up_with_it_and_replays_deliver_once(
    redis: TestRedis,
) {
    let store = Store::connect(&redis.url(), Duration::from_millis(500))
        .await
        .unwrap();
    store.ensure_groups().await.unwrap();
    let admin = OutboxAdmin::new(store.clone());
    let channel = down_channel();
    let window = Duration::from_millis(600);
    let sender = sender(store.clone(), channel.clone(), window.as_millis() as u64);
    let first_attempt = Instant::now();
    queue_reply(&store, "s:dana", "First answer").await;
    queue_reply(&store, "s:dana", "Second answer").await;

    let mut outcomes = Vec::new();
    work_until(&sender, "both replies held back", &mut outcomes, |done| {
        done.iter().any(|o| matches!(o, DeliveryOutcome::Waiting))
    })
    .await;
    let status = admin.status().await.unwrap();
    let webchat = status.target("webchat").expect("web chat deliveries wait");
    assert_eq!(webchat.waiting, 2, "{status:?}");
    assert!(webchat.oldest_waiting.is_some(), "{status:?}");

    // The first is given up on after the window; the second, which only waited behind it
    // all that time, is tried and not given up on with it.
    work_until(
        &sender,
        "the first reply given up on",
        &mut outcomes,
        |done| dead_count(done) == 1,
    )
    .await;
    assert!(first_attempt.elapsed() >= window);
    let mut after_first = Vec::new();
    work_until(
        &sender,
        "the second reply tried",
        &mut after_first,
        |done| {
            done.iter()
                .any(|o| matches!(o, DeliveryOutcome::Retrying { .. }))
        },
    )
    .await;
    assert_eq!(dead_count(&after_first), 0, "{after_first:?}");
    channel.set_down(false);
    work_until(
        &sender,
        "the second reply delivered",
        &mut after_first,
        |done| done.contains(&DeliveryOutcome::Delivered),
    )
    .await;
    assert_eq!(dead_count(&after_first), 0, "{after_first:?}");
    assert_eq!(channel.sent_texts(), ["Second answer"]);

    // The admin finds it with its reason, and replays it: delivered once.
    let dead = admin.dead().await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].target, "webchat");
    assert!(dead[0].what.contains("First answer"), "{:?}", dead[0]);
    assert!(
        dead[0].reason.starts_with("gave up after") && dead[0].reason.contains("HTTP 503"),
        "{}",
        dead[0].reason
    );
    assert!(dead[0].attempts.unwrap_or(0) > 1, "{:?}", dead[0]);
    let id = admin.resolve(&dead[0].id.to_string()).await.unwrap();
    assert_eq!(
        admin.resolve(&id.entry_id).await.unwrap(),
        id,
        "a bare stream id is enough when one partition has it"
    );
    admin.replay(&id).await.unwrap();
    let mut replayed = Vec::new();
    work_until(
        &sender,
        "the replayed reply delivered",
        &mut replayed,
        |done| done.contains(&DeliveryOutcome::Delivered),
    )
    .await;
    assert_eq!(channel.sent_texts(), ["Second answer", "First answer"]);
    assert!(matches!(
        admin.replay(&id).await,
        Err(AdminError::NotFound(_))
    ));
    for _ in 0..5 {
        sender.work_once(Duration::from_millis(20)).await.unwrap();
    }
    assert_eq!(
        channel.sent_texts().len(),
        2,
        "a second replay sends nothing"
    );

    // A dead letter whose reply reached the customer after all (its receipt is stored, as
    // when a copy taken over from a stalled instance got through) is not sent again.
    channel.set_down(true);
    let third = queue_reply(&store, "s:dana", "Third answer").await;
    let mut outcomes = Vec::new();
    work_until(
        &sender,
        "the third reply given up on",
        &mut outcomes,
        |done| dead_count(done) == 1,
    )
    .await;
    channel.set_down(false);
    let conversation = switchboard::model::conversation_id(switchboard_webchat::CHANNEL, "s:dana");
    let _: () = redis
        .client()
        .hset(keys::deliveries(&conversation), &third, "platform-earlier")
        .unwrap();
    assert_eq!(admin.replay_all().await.unwrap().len(), 1);
    let mut outcomes = Vec::new();
    work_until(&sender, "the receipt found", &mut outcomes, |done| {
        done.contains(&DeliveryOutcome::Delivered)
    })
    .await;
    assert_eq!(channel.sent_texts().len(), 2, "not sent twice");

    // And one dropped is gone for good.
    channel.set_down(true);
    queue_reply(&store, "s:dana", "Fourth answer").await;
    let mut outcomes = Vec::new();
    work_until(
        &sender,
        "the fourth reply given up on",
        &mut outcomes,
        |done| dead_count(done) == 1,
    )
    .await;
    let dead = admin.dead().await.unwrap();
    assert_eq!(dead.len(), 1);
    admin.drop(&dead[0].id).await.unwrap();
    assert!(matches!(
        admin.drop(&dead[0].id).await,
        Err(AdminError::NotFound(_))
    ));
    let left = work_left(&mut redis.client());
    assert_eq!((left.outbox, left.parked, left.dead), (0, 0, 0), "{left:?}");
    let status = admin.status().await.unwrap();
    assert!(status.targets.is_empty(), "nothing waits: {status:?}");
}

on_single_and_cluster!(
    a_reply_waiting_behind_a_given_up_one_is_not_given_up_with_it_and_replays_deliver_once,
);
