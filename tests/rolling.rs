//! A rolling restart: two gateway processes serve web chat (live sockets), Telegram (long
//! polling under a lease) and the Slack desk (Socket Mode) under steady traffic, and each is
//! sent SIGTERM in turn and started again, as `docker compose up` with a new image or a
//! Kubernetes rollout does.
//!
//! What customers and agents would check afterwards: every message stored once, every reply
//! delivered and shown once (on Telegram, in the widget, in the desk thread), each web chat
//! visitor reconnected by itself and saw every answer, and the Telegram poller's lease went to
//! the other instance in under two seconds, not after its TTL.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use redis::Commands;
use serde_json::{json, Value};
use switchboard::model::conversation_id;
use switchboard::store::keys;
use switchboard_slack::standin::{event_callback, SlackStandIn};
use switchboard_telegram::standin::{TelegramStandIn, TOKEN};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{RedisServer, TempDir};
use crate::processes::{
    is_reply, quiet, start_gateway_pair, tail, transcript, write_process_config, Slot,
};
use crate::soak::{QUESTIONS, SLACK_APP_ENV, SLACK_BOT_ENV};
use crate::webchat::Socket;
use crate::work::work_left;

const DESK_CHANNEL: &str = "C0ROLLDESK";
const VISITORS: usize = 6;
const ESCALATING_VISITORS: usize = 2;
/// At most one of each of the distinct questions: a repeated one escalates.
const QUESTIONS_PER_VISITOR: usize = 8;
const AGENT_REPLIES: usize = 3;
const TELEGRAM_CHATS: usize = 4;
const TELEGRAM_MESSAGES: usize = 8;
const GRACE_MS: u64 = 5_000;

fn write_config(
    dir: &Path,
    name: &str,
    addr: SocketAddr,
    redis: &str,
    telegram: &str,
    slack: &str,
) -> PathBuf {
    let gateway = format!("instance_id = \"{name}\"\nshutdown_grace_ms = {GRACE_MS}\n");
    let desk = format!(
        r#"[desk.slack]
enabled = true
mode = "socket"
channel = "{DESK_CHANNEL}"
api_url = "{slack}"
bot_token_env = "{SLACK_BOT_ENV}"
app_token_env = "{SLACK_APP_ENV}"
posts_per_second_per_channel = 50.0
"#
    );
    write_process_config(dir, name, addr, redis, telegram, &gateway, &desk)
}

impl Slot {
    /// SIGTERM, as `docker stop` sends; returns how long the process took to exit.
    fn terminate(&mut self, limit: Duration) -> Duration {
        let mut child = self.child.take().expect("a running gateway");
        let sent = Instant::now();
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        loop {
            if let Some(status) = child.try_wait().expect("wait for the gateway") {
                assert!(
                    status.success(),
                    "{} exited with {status} after SIGTERM; log: {}",
                    self.name,
                    tail(&self.log)
                );
                return sent.elapsed();
            }
            if sent.elapsed() > limit {
                let _ = child.kill();
                panic!(
                    "{} still running {limit:?} after SIGTERM; log: {}",
                    self.name,
                    tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// What one visitor's widget saw: reply ids (ai, system, agent) and how often it reconnected.
#[derive(Default, Debug)]
struct Seen {
    replies: BTreeSet<String>,
    reconnects: usize,
}

/// A widget as the real one behaves: one socket at a time, to either instance; when the
/// gateway says `reconnect` (or the socket drops) it connects again with `after` set to the
/// newest id it shows and resends what was not acknowledged, with the same client id.
struct Visitor {
    session: String,
    name: String,
    addrs: [SocketAddr; 2],
    next_addr: usize,
    socket: Option<Socket>,
    last_seen: Option<String>,
    seen: Seen,
    unacked: Vec<Value>,
}

impl Visitor {
    fn new(n: usize, addrs: [SocketAddr; 2]) -> Visitor {
        Visitor {
            session: format!("rolling-visitor-{n:06}"),
            name: format!("Rolling Visitor {n}"),
            addrs,
            next_addr: n % 2,
            socket: None,
            last_seen: None,
            seen: Seen::default(),
            unacked: Vec::new(),
        }
    }

    async fn connect(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let addr = self.addrs[self.next_addr % 2];
            self.next_addr += 1;
            if let Ok(Ok((mut socket, _))) = tokio::time::timeout(
                Duration::from_secs(2),
                tokio_tungstenite::connect_async(format!("ws://{addr}/webchat/ws")),
            )
            .await
            {
                let hello = json!({"type": "hello", "session": self.session,
                    "page": {"url": "https://acme.example/", "title": "Acme"},
                    "attributes": {"name": self.name}, "after": self.last_seen});
                if socket
                    .send(Message::Text(hello.to_string().into()))
                    .await
                    .is_ok()
                {
                    self.socket = Some(socket);
                    for frame in self.unacked.clone() {
                        self.send_now(&frame).await;
                    }
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}: no instance took the socket for 20 s",
                self.session
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn send_now(&mut self, frame: &Value) {
        if let Some(socket) = &mut self.socket {
            if socket
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                self.socket = None;
            }
        }
    }

    async fn send(&mut self, frame: Value) {
        self.unacked.push(frame.clone());
        self.send_now(&frame).await;
    }

    fn note(&mut self, message: &Value) {
        let Some(id) = message["id"].as_str() else {
            return;
        };
        if message["author"]["kind"] != "customer" {
            self.seen.replies.insert(id.to_owned());
        }
        if self.last_seen.as_deref().is_none_or(|last| newer(id, last)) {
            self.last_seen = Some(id.to_owned());
        }
    }

    /// Reads frames (reconnecting as needed) until `done` holds of what was seen.
    async fn until(&mut self, limit: Duration, what: &str, done: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.seen) || !self.unacked.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{}: {what} not seen within {limit:?}; saw {:?}, unacked {:?}",
                self.session,
                self.seen,
                self.unacked
            );
            if self.socket.is_none() {
                self.seen.reconnects += 1;
                self.connect().await;
            }
            let socket = self.socket.as_mut().expect("connected");
            let frame = match tokio::time::timeout(Duration::from_millis(200), socket.next()).await
            {
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => {
                    self.socket = None;
                    continue;
                }
                Ok(Some(Ok(_))) => continue,
            };
            let frame: Value = serde_json::from_str(&frame).expect("server frames are json");
            match frame["type"].as_str() {
                Some("welcome") => {
                    for message in frame["messages"].as_array().into_iter().flatten() {
                        self.note(message);
                    }
                }
                Some("message") => self.note(&frame["message"]),
                Some("ack") => self
                    .unacked
                    .retain(|sent| sent["client_id"] != frame["client_id"]),
                Some("error") => {
                    // Storage briefly unavailable: the widget resends after a moment.
                    assert_eq!(frame["code"], "unavailable", "{frame}");
                }
                _ => {}
            }
        }
    }
}

/// Stream ids compare by time, then sequence.
fn newer(id: &str, than: &str) -> bool {
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (
            ms.parse::<u64>().unwrap_or(0),
            seq.parse::<u64>().unwrap_or(0),
        )
    };
    parse(id) > parse(than)
}

/// Which instance holds the Telegram polling lease, if any.
fn telegram_lease_holder(client: &mut redis::Connection) -> Option<String> {
    let keys: Vec<String> = client
        .keys("sb:{lease:telegram:poll:*}")
        .unwrap_or_default();
    keys.first().and_then(|key| client.get(key).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_with_sigterm_loses_nothing_and_shows_each_reply_once() {
    let redis = RedisServer::start();
    let telegram = Arc::new(TelegramStandIn::start().await);
    let slack = Arc::new(SlackStandIn::start().await);
    slack.set_user("U0ROLLAGENT", "Sam");
    let dir = TempDir::new("rolling");
    let mut slots = start_gateway_pair(&dir.0, |name, addr| {
        write_config(
            &dir.0,
            name,
            addr,
            &redis.url(),
            &telegram.api_url(),
            &slack.api_url(),
        )
    })
    .await;
    let addrs = [slots[0].addr, slots[1].addr];
    let mut client = redis.client();

    // Web chat visitors with live sockets; the first ones ask for a person and get agents'
    // replies through the desk thread while the instances restart.
    let agent_replies_sent = Arc::new(AtomicUsize::new(0));
    let mut visitors = Vec::new();
    for n in 0..VISITORS {
        let (slack, sent) = (slack.clone(), agent_replies_sent.clone());
        let redis_url = redis.url();
        visitors.push(tokio::spawn(async move {
            let mut visitor = Visitor::new(n, addrs);
            visitor.connect().await;
            let escalating = n < ESCALATING_VISITORS;
            let mut expected = 0;
            for m in 0..QUESTIONS_PER_VISITOR {
                let text = QUESTIONS[(n + m) % QUESTIONS.len()];
                visitor
                    .send(json!({"type": "message", "client_id": format!("q{m}"), "text": text}))
                    .await;
                // Once a person was asked for, the AI stays silent: the message goes to the
                // desk thread, and only its acknowledgement comes back.
                if !(escalating && m >= 1) {
                    expected += 1;
                }
                visitor
                    .until(Duration::from_secs(20), "the answer", |seen| seen.replies.len() >= expected)
                    .await;
                tokio::time::sleep(Duration::from_millis(700 + 150 * (m as u64 % 3))).await;
                if escalating && m == 0 {
                    visitor
                        .send(json!({"type": "talk_to_human", "client_id": "human"}))
                        .await;
                    expected += 1;
                    visitor
                        .until(Duration::from_secs(20), "the escalation notice", |seen| seen.replies.len() >= expected)
                        .await;
                }
                if escalating && (1..=AGENT_REPLIES).contains(&m) {
                    // An agent answers in the desk thread; Slack redelivers an event nobody
                    // acked (an instance that went away), with the same id.
                    let id = conversation_id(switchboard_webchat::CHANNEL, &format!("s:{}", visitor.session));
                    let thread_ts = {
                        let url = redis_url.clone();
                        crate::harness::eventually(Duration::from_secs(20), "the desk thread", move || {
                            let url = url.clone();
                            let id = id.clone();
                            async move {
                                let mut client = redis::Client::open(url).ok()?.get_connection().ok()?;
                                client.hget::<_, _, Option<String>>(keys::conversation(&id), "desk_ts").ok().flatten()
                            }
                        })
                        .await
                    };
                    let ts = format!("1800000{n:03}.{m:06}");
                    let event = json!({"type": "message", "channel": DESK_CHANNEL, "user": "U0ROLLAGENT",
                        "text": format!("Agent answer {m} for visitor {n}"), "ts": ts, "thread_ts": thread_ts,
                        "event_ts": ts, "channel_type": "channel"});
                    let callback = event_callback(&format!("EvRoll{n:03}x{m}"), event);
                    loop {
                        let envelope = slack.send_callback(callback.clone());
                        if slack.wait_for_ack(&envelope, Duration::from_secs(2)).await {
                            break;
                        }
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    expected += 1;
                    visitor
                        .until(Duration::from_secs(20), "the agent's reply", |seen| seen.replies.len() >= expected)
                        .await;
                }
            }
            visitor
        }));
    }

    // Telegram customers: the stand-in hands out each update until an offset confirms it.
    let expected_telegram: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let telegram_sender = {
        let (telegram, expected) = (telegram.clone(), expected_telegram.clone());
        tokio::spawn(async move {
            for m in 0..TELEGRAM_MESSAGES {
                for chat in 0..TELEGRAM_CHATS {
                    let chat_id = 8_000_000 + chat as i64;
                    let text = QUESTIONS[(chat + m + 2) % QUESTIONS.len()];
                    let update = telegram.push_text(chat_id, &format!("tg{chat}"), text);
                    expected.lock().unwrap().push((chat_id, update));
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        })
    };

    // The rollout: the instance holding the Telegram lease first, then the other.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first_holder =
        crate::harness::eventually(Duration::from_secs(10), "a telegram poller", || {
            let holder = telegram_lease_holder(&mut client);
            async move { holder }
        })
        .await;
    let order: Vec<usize> = if first_holder == slots[0].name {
        vec![0, 1]
    } else {
        vec![1, 0]
    };
    let mut handovers = Vec::new();
    for &victim in &order {
        let other = slots[1 - victim].name;
        assert!(
            !telegram_sender.is_finished(),
            "traffic ended before {} was restarted: the test would prove nothing",
            slots[victim].name
        );
        let stopped_in = slots[victim].terminate(Duration::from_millis(GRACE_MS + 5_000));
        let exited = Instant::now();
        let mut lease_client = redis.client();
        crate::harness::eventually(
            Duration::from_secs(10),
            "the lease on the other instance",
            || {
                let holder = telegram_lease_holder(&mut lease_client);
                async move { (holder.as_deref() == Some(other)).then_some(()) }
            },
        )
        .await;
        handovers.push((slots[victim].name, stopped_in, exited.elapsed()));
        let log = std::fs::read_to_string(&slots[victim].log).unwrap_or_default();
        assert!(
            log.contains("shut down"),
            "{} did not drain: {}",
            slots[victim].name,
            tail(&slots[victim].log)
        );
        slots[victim].start();
        slots[victim].wait_healthy(Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    eprintln!("rolling: (instance, SIGTERM to exit, exit to lease on the other): {handovers:?}");
    for (name, _, handover) in &handovers {
        assert!(
            *handover < Duration::from_secs(2),
            "the telegram lease of {name} took {handover:?} to reach the other instance"
        );
    }

    let mut seen_by_visitor = HashMap::new();
    for (n, visitor) in visitors.into_iter().enumerate() {
        let visitor = match visitor.await {
            Ok(visitor) => visitor,
            Err(error) => panic!(
                "a visitor failed: {error}\nlogs:\n{}\n{}",
                tail(&slots[0].log),
                tail(&slots[1].log)
            ),
        };
        seen_by_visitor.insert(n, visitor);
    }
    telegram_sender
        .await
        .expect("the telegram customers failed");
    assert_eq!(
        agent_replies_sent.load(Ordering::SeqCst),
        ESCALATING_VISITORS * AGENT_REPLIES
    );

    // Settled: every Telegram update stored and confirmed, no work left in any stream.
    let expected_telegram = expected_telegram.lock().unwrap().clone();
    crate::harness::eventually(Duration::from_secs(30), "every stream drained", || {
        let stored = expected_telegram.iter().all(|(chat, update)| {
            transcript(
                &mut client,
                switchboard_telegram::CHANNEL,
                &chat.to_string(),
            )
            .iter()
            .any(|(_, role, cmid)| role == "customer" && *cmid == format!("tg:{update}"))
        });
        let settled = stored && quiet(&mut client) && telegram.unconfirmed().is_empty();
        async move { settled.then_some(()) }
    })
    .await;
    assert_eq!(work_left(&mut client).dead, 0, "no reply was dead-lettered");

    // Telegram: each message stored once; each reply has a receipt and was shown once.
    for chat in 0..TELEGRAM_CHATS {
        let chat_id = 8_000_000 + chat as i64;
        let entries = transcript(
            &mut client,
            switchboard_telegram::CHANNEL,
            &chat_id.to_string(),
        );
        for (_, update) in expected_telegram.iter().filter(|(c, _)| *c == chat_id) {
            let copies = entries
                .iter()
                .filter(|(_, role, cmid)| role == "customer" && *cmid == format!("tg:{update}"))
                .count();
            assert_eq!(
                copies, 1,
                "telegram {chat_id}: update {update} stored {copies} times"
            );
        }
        let replies: Vec<&String> = entries
            .iter()
            .filter(|(_, role, _)| is_reply(role))
            .map(|(id, _, _)| id)
            .collect();
        assert!(!replies.is_empty(), "telegram {chat_id} never answered");
        let receipts: HashMap<String, String> = client
            .hgetall(keys::deliveries(&conversation_id(
                switchboard_telegram::CHANNEL,
                &chat_id.to_string(),
            )))
            .expect("receipts");
        for reply in &replies {
            assert!(
                receipts.contains_key(*reply),
                "telegram {chat_id}: reply {reply} has no receipt"
            );
        }
        let shown = telegram
            .sent()
            .iter()
            .filter(|m| m.chat_id == chat_id)
            .count();
        assert_eq!(
            shown,
            replies.len(),
            "telegram {chat_id}: {} replies stored, {shown} shown",
            replies.len()
        );
    }

    // Web chat: each message stored once, and each visitor's widget showed every reply.
    for (n, visitor) in &seen_by_visitor {
        let key = format!("s:{}", visitor.session);
        let entries = transcript(&mut client, switchboard_webchat::CHANNEL, &key);
        let customer = entries
            .iter()
            .filter(|(_, role, _)| role == "customer")
            .count();
        let asked = QUESTIONS_PER_VISITOR + usize::from(*n < ESCALATING_VISITORS);
        assert_eq!(customer, asked, "visitor {n}: {entries:?}");
        let stored: BTreeSet<String> = entries
            .iter()
            .filter(|(_, role, _)| is_reply(role))
            .map(|(id, _, _)| id.clone())
            .collect();
        assert_eq!(
            visitor.seen.replies, stored,
            "visitor {n}: replies seen vs stored"
        );
        let agent = entries
            .iter()
            .filter(|(_, role, _)| role == "agent")
            .count();
        let expected_agent = if *n < ESCALATING_VISITORS {
            AGENT_REPLIES
        } else {
            0
        };
        assert_eq!(agent, expected_agent, "visitor {n}: agent replies stored");
    }
    let reconnects: usize = seen_by_visitor.values().map(|v| v.seen.reconnects).sum();
    assert!(reconnects >= 1, "no visitor was asked to reconnect");

    // The desk: one briefing thread per escalated visitor, each posted once.
    let posts = slack.posts();
    for n in 0..ESCALATING_VISITORS {
        let id = conversation_id(
            switchboard_webchat::CHANNEL,
            &format!("s:rolling-visitor-{n:06}"),
        );
        let thread: String = client
            .hget(keys::conversation(&id), "desk_ts")
            .expect("desk thread");
        let briefings = posts
            .iter()
            .filter(|post| {
                post.method == "chat.postMessage"
                    && post.channel == DESK_CHANNEL
                    && post.ts == thread
            })
            .count();
        assert_eq!(
            briefings, 1,
            "visitor {n}: the briefing was posted {briefings} times"
        );
    }
    let roots = posts
        .iter()
        .filter(|post| {
            post.method == "chat.postMessage"
                && post.channel == DESK_CHANNEL
                && post.thread_ts.is_none()
        })
        .count();
    assert_eq!(roots, ESCALATING_VISITORS, "one desk thread per escalation");

    let logs: String = slots
        .iter()
        .map(|slot| std::fs::read_to_string(&slot.log).unwrap_or_default())
        .collect();
    assert!(!logs.contains(TOKEN), "a token is in the gateway's log");
    eprintln!(
        "rolling: {reconnects} widget reconnects, {} telegram replies",
        telegram.sent().len()
    );
}

#[tokio::test]
async fn a_gateway_started_before_its_redis_waits_for_it_instead_of_exiting() {
    let mut redis = RedisServer::start();
    redis.kill();
    let mut config = crate::harness::test_config(&redis, crate::webchat::WEBCHAT);
    config.redis.startup_wait_ms = 20_000;
    let starting = tokio::spawn(switchboard::app::start(config));
    // Redis is down for this long while the gateway starts (compose starting both at once).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !starting.is_finished(),
        "the gateway gave up on a Redis that was only starting"
    );
    redis.restart();
    let gateway = tokio::time::timeout(Duration::from_secs(15), starting)
        .await
        .expect("the gateway started once Redis was up")
        .expect("the start task")
        .unwrap_or_else(|error| panic!("gateway did not start: {error}"));
    let (mut widget, _) =
        crate::webchat::Widget::connect(gateway.local_addr, "late-redis-visitor-0001", None).await;
    widget
        .send(json!({"type": "message", "client_id": "q1", "text": "How do I reset my password?"}))
        .await;
    assert!(widget.message_from("ai").await["text"]
        .as_str()
        .unwrap_or_default()
        .contains("password"));
}
