//! Crash safety: a known set of customer messages from three channels (web chat over HTTP,
//! Telegram long polling, Slack customers over Socket Mode) goes into two gateway processes
//! while a killer SIGKILLs one of them at random moments and starts it again.
//!
//! Each platform behaves as the real one does when the gateway did not acknowledge: web chat
//! clients resend with the same client id, the Telegram stand-in hands out every update past
//! the confirmed offset again, and Slack redelivers an envelope nobody acked. Once everything
//! has settled, the test reads Redis and the stand-ins and checks what customers would: every
//! message stored exactly once, every reply delivered, and each reply shown on the platform
//! once, except what the README documents: Telegram offers no idempotency key, so a reply
//! Telegram accepted just before a kill, while its receipt was not yet written, is shown again
//! when the reply is reclaimed. Each such extra copy must be explained by its own kill.
//!
//! The schedule is seeded: [`DEFAULT_SEED`] unless `SWITCHBOARD_SOAK_SEED=<n>` is set (e.g. to
//! a random number, to explore); the seed is printed so any failure can be replayed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use redis::Commands;
use serde_json::{json, Value};
use switchboard::model::conversation_id;
use switchboard::store::keys;
use switchboard_api::ChannelKind;
use switchboard_slack::standin::{event_callback, SlackStandIn};
use switchboard_telegram::standin::{TelegramStandIn, TOKEN};

use crate::harness::{on_single_and_cluster, TempDir, TestRedis};
use crate::processes::{
    is_reply, quiet, request, start_gateway_pair, tail, transcript, write_process_config,
};
use crate::work::work_left;

/// Distinct questions the embedded answerer answers; a conversation never repeats one, so
/// none escalates for asking the same thing twice.
pub(crate) const QUESTIONS: &[&str] = &[
    "How do I reset my password?",
    "What plans and prices do you offer?",
    "Where can I download my invoices?",
    "How do I create an API key?",
    "What are the API rate limits?",
    "How do I export my data?",
    "When is your support team available?",
    "Which integrations do you support?",
];
const MESSAGES_PER_CONVERSATION: usize = 5;
const WEBCHAT_VISITORS: usize = 24;
const TELEGRAM_CHATS: usize = 12;
const SLACK_THREADS: usize = 12;
const SHARED_CHANNEL: &str = "C0SOAKSHARED";
pub(crate) const SLACK_BOT_ENV: &str = "SB_SOAK_SLACK_BOT";
pub(crate) const SLACK_APP_ENV: &str = "SB_SOAK_SLACK_APP";
pub(crate) const TELEGRAM_ENV: &str = "SB_SOAK_TELEGRAM";
pub(crate) const SLACK_BOT_TOKEN: &str = "xoxb-soak-customers";
pub(crate) const SLACK_APP_TOKEN: &str = "xapp-soak-customers";
/// The schedule CI runs (the same in every run, so a failure is not a matter of luck).
const DEFAULT_SEED: u64 = 16_004;
/// The longest a live instance takes from Telegram's accept to the receipt written (one Redis
/// call, bounded by the 500 ms `command_timeout_ms` below): a copy accepted longer than this
/// before a kill was not lost to that kill.
const ACCEPT_TO_RECEIPT: Duration = Duration::from_secs(2);

fn write_config(
    dir: &Path,
    name: &str,
    addr: SocketAddr,
    redis: &str,
    telegram: &str,
    slack: &str,
) -> PathBuf {
    let slack_customers = format!(
        r#"[connectors.slack]
enabled = true
mode = "socket"
channels = ["{SHARED_CHANNEL}"]
api_url = "{slack}"
bot_token_env = "{SLACK_BOT_ENV}"
app_token_env = "{SLACK_APP_ENV}"
posts_per_second_per_channel = 50.0
"#
    );
    write_process_config(dir, name, addr, redis, telegram, "", &slack_customers)
}

/// What the test sent and must find stored once: (channel, conversation key, channel message id).
type Expected = Arc<Mutex<Vec<(ChannelKind, String, String)>>>;

/// A web chat visitor posting over HTTP to whichever instance it picks; a refused or
/// unanswered post is resent with the same client id, as the widget does.
async fn webchat_visitor(
    visitor: usize,
    addrs: [SocketAddr; 2],
    seed: u64,
    expected: Expected,
    resends: Arc<AtomicUsize>,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ (visitor as u64).wrapping_mul(0x9e37));
    let session = format!("soak-visitor-{visitor:06}");
    for m in 0..MESSAGES_PER_CONVERSATION {
        let client_id = format!("m-{m}");
        let body = json!({"session": session, "client_id": client_id,
                          "text": QUESTIONS[(visitor + m) % QUESTIONS.len()]})
        .to_string();
        loop {
            let addr = addrs[rng.random_range(0..2)];
            match request(addr, "POST", "/webchat/messages", Some(&body)).await {
                Some((200, _)) => break,
                Some((503, _)) | None => {
                    resends.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Some((status, body)) => panic!("web chat post refused: {status} {body}"),
            }
        }
        expected.lock().unwrap().push((
            switchboard_webchat::CHANNEL,
            format!("s:{session}"),
            format!("wc:{client_id}"),
        ));
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1200))).await;
    }
}

/// A Slack customer starting a thread in the shared channel and following up in it; an
/// envelope nobody acked within two seconds is redelivered with the same event id.
async fn slack_customer(
    thread: usize,
    slack: Arc<SlackStandIn>,
    seed: u64,
    expected: Expected,
    resends: Arc<AtomicUsize>,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ (thread as u64).wrapping_mul(0x7f4a_7c15));
    let user = format!("U0SOAK{thread:04}");
    let parent = format!("1700{thread:06}.000000");
    for m in 0..MESSAGES_PER_CONVERSATION {
        let ts = format!("1700{thread:06}.{m:06}");
        let mut event = json!({"type": "message", "channel": SHARED_CHANNEL, "user": user,
            "text": QUESTIONS[(thread + m + 3) % QUESTIONS.len()], "ts": ts, "event_ts": ts,
            "channel_type": "channel"});
        if m > 0 {
            event["thread_ts"] = json!(parent);
        }
        let callback = event_callback(&format!("EvSoak{thread:04}x{m}"), event);
        loop {
            let envelope = slack.send_callback(callback.clone());
            if slack.wait_for_ack(&envelope, Duration::from_secs(2)).await {
                break;
            }
            resends.fetch_add(1, Ordering::SeqCst);
        }
        expected.lock().unwrap().push((
            switchboard_slack::CHANNEL,
            format!("{SHARED_CHANNEL}:{parent}"),
            format!("slack:{SHARED_CHANNEL}:{ts}"),
        ));
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1200))).await;
    }
}

async fn sigkilled_instances_lose_nothing_store_once_and_show_each_reply_once(redis: TestRedis) {
    let seed: u64 = std::env::var("SWITCHBOARD_SOAK_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("soak seed: {seed} (replay with SWITCHBOARD_SOAK_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let telegram = Arc::new(TelegramStandIn::start().await);
    let slack = Arc::new(SlackStandIn::start().await);
    for thread in 0..SLACK_THREADS {
        slack.set_user(&format!("U0SOAK{thread:04}"), &format!("Customer {thread}"));
    }
    let dir = TempDir::new("soak");
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

    let expected: Expected = Arc::default();
    let resends = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for visitor in 0..WEBCHAT_VISITORS {
        senders.push(tokio::spawn(webchat_visitor(
            visitor,
            addrs,
            seed,
            expected.clone(),
            resends.clone(),
        )));
    }
    for thread in 0..SLACK_THREADS {
        senders.push(tokio::spawn(slack_customer(
            thread,
            slack.clone(),
            seed,
            expected.clone(),
            resends.clone(),
        )));
    }
    // Telegram customers: the stand-in queues each update until an offset confirms it.
    let telegram_sender = {
        let (telegram, expected) = (telegram.clone(), expected.clone());
        let mut rng = StdRng::seed_from_u64(seed.rotate_left(17));
        tokio::spawn(async move {
            for m in 0..MESSAGES_PER_CONVERSATION {
                for chat in 0..TELEGRAM_CHATS {
                    let chat_id = 7_000_000 + chat as i64;
                    let text = QUESTIONS[(chat + m + 5) % QUESTIONS.len()];
                    let update = telegram.push_text(chat_id, &format!("tg{chat}"), text);
                    expected.lock().unwrap().push((
                        switchboard_telegram::CHANNEL,
                        chat_id.to_string(),
                        format!("tg:{update}"),
                    ));
                    tokio::time::sleep(Duration::from_millis(rng.random_range(20..150))).await;
                }
            }
        })
    };

    // The killer: one instance at a time, so a platform always has somewhere to go, at random
    // moments while traffic flows.
    let mut kills = Vec::new();
    let mut killed_at = Vec::new();
    let killing_until = Instant::now() + Duration::from_secs(24);
    while Instant::now() < killing_until {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1500..4000))).await;
        let victim = rng.random_range(0..2);
        let slot = &mut slots[victim];
        slot.kill();
        // The process is gone by now: nothing it sends is accepted after this instant.
        killed_at.push(Instant::now());
        kills.push((slot.name, started.elapsed()));
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..1500))).await;
        slot.start();
        slot.wait_healthy(Duration::from_secs(20)).await;
    }
    eprintln!("soak: {} kills: {kills:?}", kills.len());

    for sender in senders {
        sender.await.expect("a customer task panicked");
    }
    telegram_sender
        .await
        .expect("the telegram customers panicked");
    let sent_at = started.elapsed();

    // Quiescence: every expected message stored, and no work left in any stream.
    let expected = expected.lock().unwrap().clone();
    let total = WEBCHAT_VISITORS * MESSAGES_PER_CONVERSATION
        + (TELEGRAM_CHATS + SLACK_THREADS) * MESSAGES_PER_CONVERSATION;
    assert_eq!(expected.len(), total);
    let mut client = redis.client();
    let settle_limit = Duration::from_secs(45);
    let settling = Instant::now();
    loop {
        let stored = expected
            .iter()
            .filter(|(channel, key, cmid)| {
                transcript(&mut client, *channel, key)
                    .iter()
                    .any(|(_, role, stored)| role == "customer" && stored == cmid)
            })
            .count();
        if stored == total && quiet(&mut client) && telegram.unconfirmed().is_empty() {
            break;
        }
        if settling.elapsed() > settle_limit {
            panic!(
                "not settled after {settle_limit:?}: {stored}/{total} stored, quiet: {}; \
                 logs:\n{}\n{}",
                quiet(&mut client),
                tail(&slots[0].log),
                tail(&slots[1].log)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A duplicate (a second delivery, a second decision) would come from work still on its
    // way; new customers asking on every channel and instance, answered, prove that all of it
    // went through before anything is counted.
    markers_answered(addrs, &telegram, &slack).await;
    let requiet = Instant::now();
    while !quiet(&mut client) {
        assert!(
            requiet.elapsed() < settle_limit,
            "work left after the markers were answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every inbound message stored exactly once, in its own conversation.
    let mut conversations: HashMap<(ChannelKind, String), Vec<String>> = HashMap::new();
    for (channel, key, cmid) in &expected {
        conversations
            .entry((*channel, key.clone()))
            .or_default()
            .push(cmid.clone());
    }
    assert_eq!(work_left(&mut client).dead, 0, "no reply was dead-lettered");
    let (mut replies, mut duplicates) = (0, Vec::new());
    // Telegram: (first copy accepted, extra copy accepted, chat) of each reply shown again.
    let (mut telegram_copies, mut telegram_extra) = (Vec::new(), 0);
    for ((channel, key), cmids) in &conversations {
        let entries = transcript(&mut client, *channel, key);
        for cmid in cmids {
            let copies = entries
                .iter()
                .filter(|(_, role, stored)| role == "customer" && stored == cmid)
                .count();
            assert_eq!(
                copies, 1,
                "{channel} {key}: {cmid} stored {copies} times: {entries:?}"
            );
        }
        let customer = entries
            .iter()
            .filter(|(_, role, _)| role == "customer")
            .count();
        assert_eq!(customer, cmids.len(), "{channel} {key}: {entries:?}");

        // Every reply the store queued was delivered: its receipt is in the conversation.
        let reply_ids: Vec<&String> = entries
            .iter()
            .filter(|(_, role, _)| is_reply(role))
            .map(|(id, _, _)| id)
            .collect();
        assert!(!reply_ids.is_empty(), "{channel} {key}: never answered");
        replies += reply_ids.len();
        let id = conversation_id(*channel, key);
        let receipts: HashMap<String, String> =
            client.hgetall(keys::deliveries(&id)).expect("receipts");
        for reply in &reply_ids {
            assert!(
                receipts.contains_key(*reply),
                "{channel} {key}: reply {reply} has no delivery receipt"
            );
        }

        // On the platform, each reply is shown once.
        let shown = match *channel {
            switchboard_telegram::CHANNEL => {
                let chat: i64 = key.parse().unwrap();
                telegram.sent().iter().filter(|m| m.chat_id == chat).count()
            }
            switchboard_slack::CHANNEL => {
                let parent = key.split_once(':').unwrap().1;
                slack
                    .posts()
                    .iter()
                    .filter(|p| p.thread_ts.as_deref() == Some(parent))
                    .count()
            }
            _ => {
                let session = key.trim_start_matches("s:");
                let (status, body) = request(
                    addrs[0],
                    "GET",
                    &format!("/webchat/messages?session={session}"),
                    None,
                )
                .await
                .expect("history");
                assert_eq!(status, 200, "{body}");
                let view: Value = serde_json::from_str(&body).expect("history json");
                let mut ids: Vec<&str> = view["messages"]
                    .as_array()
                    .expect("messages")
                    .iter()
                    .filter(|m| m["author"]["kind"] != "customer")
                    .filter_map(|m| m["id"].as_str())
                    .collect();
                let before = ids.len();
                ids.dedup();
                assert_eq!(ids.len(), before, "{key}: a reply shown twice: {view}");
                ids.len()
            }
        };
        assert!(
            shown >= reply_ids.len(),
            "{channel} {key}: {} replies stored, {shown} shown",
            reply_ids.len()
        );
        if shown > reply_ids.len() {
            if *channel == switchboard_telegram::CHANNEL {
                let chat: i64 = key.parse().unwrap();
                let sent: Vec<_> = telegram
                    .sent()
                    .into_iter()
                    .filter(|m| m.chat_id == chat)
                    .collect();
                telegram_copies.extend(extra_copies(&sent));
                telegram_extra += shown - reply_ids.len();
            } else {
                duplicates.push((*channel, key.clone(), shown - reply_ids.len()));
            }
            let logs: Vec<String> = slots
                .iter()
                .flat_map(|slot| {
                    let text = std::fs::read_to_string(&slot.log).unwrap_or_default();
                    text.lines()
                        .filter(|line| line.contains(&format!("chat={key}")))
                        .map(|line| format!("{}: {line}", slot.name))
                        .collect::<Vec<_>>()
                })
                .collect();
            eprintln!(
                "soak: {channel} {key} replies {reply_ids:?} shown {shown}; logs:\n{}",
                logs.join("\n")
            );
        }
    }
    let logs: String = slots
        .iter()
        .map(|slot| std::fs::read_to_string(&slot.log).unwrap_or_default())
        .collect();
    let retried: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("will retry"))
        .collect();
    eprintln!(
        "soak: {} failed attempts retried: {retried:#?}",
        retried.len()
    );
    let unexplained = unexplained_by_kills(&telegram_copies, &killed_at);
    eprintln!(
        "soak: seed {seed}, {total} messages, {replies} replies, {} kills, {} resends, \
         traffic for {sent_at:?}, settled in {:?}, Telegram replies shown again after a kill: \
         {}, duplicates shown elsewhere: {duplicates:?}",
        kills.len(),
        resends.load(Ordering::SeqCst),
        settling.elapsed(),
        telegram_copies.len()
    );
    assert!(kills.len() >= 5, "the killer struck {} times", kills.len());
    // Tokens went to the platforms in every poll and post, through starts, crashes and
    // reconnects; none of them may be in what the processes wrote.
    for secret in [TOKEN, SLACK_BOT_TOKEN, SLACK_APP_TOKEN] {
        assert!(!logs.contains(secret), "a token is in the gateway's log");
    }
    assert!(
        duplicates.is_empty(),
        "replies shown more than once (channel, conversation, extra copies): {duplicates:?} \
         (seed {seed})"
    );
    // Telegram's documented exception, and nothing beyond it: every extra copy repeats a reply
    // already shown, and a kill of its own came within ACCEPT_TO_RECEIPT after that reply was
    // accepted and before the copy.
    assert_eq!(
        telegram_copies.len(),
        telegram_extra,
        "Telegram messages shown that are neither a reply nor a copy of one (seed {seed})"
    );
    assert!(
        unexplained.is_empty(),
        "Telegram replies shown twice without a kill to explain them (chat, first copy and \
         copy after the start): {:?}; kills after the start: {kills:?} (seed {seed})",
        unexplained
            .iter()
            .map(|copy| (copy.chat, copy.first - started, copy.again - started))
            .collect::<Vec<_>>()
    );
}

/// A Telegram message shown again: when the first copy and the repeat were accepted.
#[derive(Debug, Clone, Copy)]
struct ExtraCopy {
    chat: i64,
    first: Instant,
    again: Instant,
}

/// The messages of one chat that repeat an earlier one (same text and button), in order.
fn extra_copies(sent: &[switchboard_telegram::standin::SentMessage]) -> Vec<ExtraCopy> {
    let mut copies = Vec::new();
    for (index, message) in sent.iter().enumerate() {
        let earlier = sent[..index].iter().rev().find(|earlier| {
            earlier.text == message.text && earlier.reply_markup == message.reply_markup
        });
        if let Some(earlier) = earlier {
            copies.push(ExtraCopy {
                chat: message.chat_id,
                first: earlier.accepted_at,
                again: message.accepted_at,
            });
        }
    }
    copies
}

/// The copies no kill explains, each kill explaining at most one: a kill explains a copy when
/// it came after the first copy was accepted (within [`ACCEPT_TO_RECEIPT`]) and before the
/// repeat. Matched greedily by the end of each copy's window, which finds a match for every
/// copy whenever one exists.
fn unexplained_by_kills(copies: &[ExtraCopy], kills: &[Instant]) -> Vec<ExtraCopy> {
    let mut copies = copies.to_vec();
    copies.sort_by_key(|copy| copy.again.min(copy.first + ACCEPT_TO_RECEIPT));
    let mut used = vec![false; kills.len()];
    let mut unexplained = Vec::new();
    for copy in copies {
        let explaining = kills.iter().enumerate().find(|(index, &kill)| {
            !used[*index]
                && kill >= copy.first
                && kill <= copy.first + ACCEPT_TO_RECEIPT
                && kill < copy.again
        });
        match explaining {
            Some((index, _)) => used[index] = true,
            None => unexplained.push(copy),
        }
    }
    unexplained
}

/// After quiescence, a new web chat visitor on each instance, a new Telegram chat and a new
/// Slack thread each ask a question and get their answer: whatever was still on its way when
/// the streams went quiet has gone through by then, so a late duplicate would be visible.
async fn markers_answered(
    addrs: [SocketAddr; 2],
    telegram: &TelegramStandIn,
    slack: &SlackStandIn,
) {
    const LIMIT: Duration = Duration::from_secs(20);
    let question = QUESTIONS[0];
    let chat = 7_999_999;
    telegram.push_text(chat, "marker", question);
    let (user, ts) = ("U0SOAKMARK", "1799000000.000000");
    slack.set_user(user, "Marker");
    slack.send_callback(event_callback(
        "EvSoakMarker",
        json!({"type": "message", "channel": SHARED_CHANNEL, "user": user, "text": question,
               "ts": ts, "event_ts": ts, "channel_type": "channel"}),
    ));
    let mut sessions = Vec::new();
    for (n, addr) in addrs.into_iter().enumerate() {
        let session = format!("soak-marker-{n:06}");
        let body = json!({"session": session, "client_id": "m-0", "text": question}).to_string();
        let posted = request(addr, "POST", "/webchat/messages", Some(&body)).await;
        assert!(
            matches!(posted, Some((200, _))),
            "marker post to {addr}: {posted:?}"
        );
        sessions.push((addr, session));
    }
    let started = Instant::now();
    loop {
        let on_telegram = telegram.sent().iter().any(|m| m.chat_id == chat);
        let on_slack = slack
            .posts()
            .iter()
            .any(|post| post.thread_ts.as_deref() == Some(ts));
        let mut on_webchat = true;
        for (addr, session) in &sessions {
            let path = format!("/webchat/messages?session={session}");
            let answered = match request(*addr, "GET", &path, None).await {
                Some((200, body)) => serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|view| {
                        view["messages"].as_array().map(|messages| {
                            messages.iter().any(|m| m["author"]["kind"] != "customer")
                        })
                    })
                    .unwrap_or(false),
                _ => false,
            };
            on_webchat &= answered;
        }
        if on_telegram && on_slack && on_webchat {
            return;
        }
        assert!(
            started.elapsed() < LIMIT,
            "markers not answered within {LIMIT:?}: telegram {on_telegram}, slack {on_slack}, \
             web chat {on_webchat}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// On a cluster too: reclaims, leases and trims work per partition there.
on_single_and_cluster!(sigkilled_instances_lose_nothing_store_once_and_show_each_reply_once);

#[test]
fn a_telegram_copy_is_explained_only_by_a_kill_of_its_own_right_after_the_first_copy() {
    let start = Instant::now();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let copy = |first: u64, again: u64| ExtraCopy {
        chat: 7,
        first: at(first),
        again: at(again),
    };
    // A kill 5 ms after Telegram accepted the first copy, before the repeat: explained.
    assert!(unexplained_by_kills(&[copy(100, 4000)], &[at(105)]).is_empty());
    // No kill, a kill long after the accept (the receipt had time), or one after the repeat.
    assert_eq!(unexplained_by_kills(&[copy(100, 4000)], &[]).len(), 1);
    assert_eq!(
        unexplained_by_kills(&[copy(100, 9000)], &[at(5000)]).len(),
        1
    );
    assert_eq!(unexplained_by_kills(&[copy(100, 150)], &[at(200)]).len(), 1);
    // One kill explains one copy, never two.
    let two = [copy(100, 4000), copy(110, 4100)];
    assert_eq!(unexplained_by_kills(&two, &[at(120)]).len(), 1);
    assert!(unexplained_by_kills(&two, &[at(105), at(1000)]).is_empty());

    // In a chat, a copy is a message repeating an earlier one's text and buttons.
    let sent = |text: &str, ms: u64| switchboard_telegram::standin::SentMessage {
        chat_id: 7,
        text: text.into(),
        reply_markup: Value::Null,
        entities: Value::Null,
        message_id: ms as i64,
        accepted_at: at(ms),
    };
    let copies = extra_copies(&[sent("a", 10), sent("b", 20), sent("a", 30)]);
    assert_eq!(copies.len(), 1);
    assert_eq!((copies[0].first, copies[0].again), (at(10), at(30)));
}
