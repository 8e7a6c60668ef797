//! The replay phase: `switchboard replay` over a week of stored conversations.
//!
//! Redis is seeded with the store's own writes (ingest, then the commit triage would make),
//! not through the gateway, so seeding takes seconds; every fifth conversation's last question
//! escalated (an escalation log entry and the notice), so the recorded decisions are read from
//! both sources. Then the whole window is replayed through the same triage config.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::model::{now_ms, Role};
use switchboard::report::replay::replay;
use switchboard::report::Window;
use switchboard::store::{Commit, ReplyToQueue, Store};
use switchboard::triage::{Decision, Triage, TriageInput};
use switchboard_api::InboundKind;
use tokio::task::JoinHandle;

use super::{env_usize, inbound, Admin, RedisServer};

/// Customer messages per seeded conversation.
const PER_CONVERSATION: usize = 5;

/// One question with what triage made of it: its answer and the stored decision.
struct Step {
    question: &'static str,
    answer: String,
    record: String,
}

pub(super) async fn replay_phase(
    redis: &RedisServer,
    triage: &Arc<Triage>,
    questions: &[&'static str],
) {
    let messages = env_usize("SB_BENCH_REPLAY_MESSAGES", 100_000);
    let conversations = messages.div_ceil(PER_CONVERSATION);
    println!(
        "\n== switchboard replay over {} stored customer messages ({conversations} conversations of {PER_CONVERSATION} questions) ==",
        conversations * PER_CONVERSATION
    );
    let mut admin = Admin::connect(&redis.url()).await;
    admin.flush().await;
    let mut steps = Vec::new();
    for question in questions {
        let input = TriageInput {
            text: question,
            kind: InboundKind::Text,
            channel: switchboard_webchat::CHANNEL,
            tier: None,
            email: None,
            history: &[],
        };
        let record = triage.decide(&input).await;
        if let Decision::Answer { text, .. } = &record.decision {
            steps.push(Step {
                question,
                answer: text.clone(),
                record: serde_json::to_string(&record).expect("record json"),
            });
        }
    }
    assert!(
        steps.len() >= PER_CONVERSATION,
        "too few answered questions"
    );
    let steps = Arc::new(steps);

    let since = now_ms();
    let seeding = Instant::now();
    let mut stores = Vec::new();
    for _ in 0..4 {
        let store = Store::connect(&redis.url(), Duration::from_secs(5))
            .await
            .expect("connect");
        stores.push(store);
    }
    stores[0].ensure_groups().await.expect("groups");
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<JoinHandle<()>> = (0..128)
        .map(|w| {
            let store = stores[w % stores.len()].clone();
            let (next, steps) = (next.clone(), steps.clone());
            tokio::spawn(async move {
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= conversations {
                        return;
                    }
                    seed_conversation(&store, &steps, c).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("seeding worker");
    }
    let seeded_s = seeding.elapsed().as_secs_f64();
    println!(
        "  seeded in {seeded_s:.1} s ({:.0} customer messages/s, store writes only)",
        (conversations * PER_CONVERSATION) as f64 / seeded_s
    );

    let window = Window::new(since, now_ms() + 1).expect("window");
    let started = Instant::now();
    let result = replay(&stores[0], triage.clone(), window, None)
        .await
        .expect("replay");
    let took = started.elapsed().as_secs_f64();
    println!(
        "  replayed {} messages ({} not triaged, {} changes) in {took:.1} s = {:.0} messages/s",
        result.replayed,
        result.not_triaged,
        result.changes.len(),
        result.replayed as f64 / took
    );
    println!(
        "  target: 100000 messages under 60 s ({})",
        if took * 100_000.0 / (result.replayed.max(1) as f64) < 60.0 {
            "met at this rate"
        } else {
            "NOT met at this rate"
        }
    );
}

/// One conversation as the pipeline would have left it: questions answered, the last one of
/// every fifth conversation escalated.
async fn seed_conversation(store: &Store, steps: &[Step], c: usize) {
    let session = format!("replay-{c:010}-abcdef");
    for m in 0..PER_CONVERSATION {
        let step = &steps[(c + m) % steps.len()];
        let ingested = store
            .ingest(&inbound(&session, m, step.question))
            .await
            .expect("ingest");
        let escalates = c.is_multiple_of(5) && m == PER_CONVERSATION - 1;
        let commit = if escalates {
            let log = serde_json::json!({
                "conversation_id": ingested.conversation_id,
                "channel": "webchat",
                "reason": "human_requested",
                "at_ms": now_ms().to_string(),
                "question": step.question,
            });
            Commit {
                conversation_id: ingested.conversation_id.clone(),
                fields: vec![
                    ("status".into(), "escalated".into()),
                    ("escalation_reason".into(), "human_requested".into()),
                ],
                reply: Some(ReplyToQueue {
                    role: Role::System,
                    text: "A person will answer here shortly.".into(),
                    ..Default::default()
                }),
                escalation_log: Some(log.to_string()),
                ..Default::default()
            }
        } else {
            Commit {
                conversation_id: ingested.conversation_id.clone(),
                fields: vec![
                    ("last_decision".into(), step.record.clone()),
                    ("status".into(), "bot".into()),
                ],
                reply: Some(ReplyToQueue {
                    role: Role::Ai,
                    text: step.answer.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        };
        store.commit(&commit).await.expect("commit");
    }
}
