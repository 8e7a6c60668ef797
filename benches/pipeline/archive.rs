//! The `archive` phase: what archiving resolved conversations frees in Redis, what the
//! archive weighs on disk, and how fast a run goes.
//!
//! Conversations are written straight through the store the way the memory phase writes
//! them (5 questions, 5 answers, receipts), then resolved; the run's clock is moved past the
//! retention, as the archive tests do, so nothing waits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::archive::{Archive, LocalDirStore};
use switchboard::model::{now_ms, Role};
use switchboard::store::{Commit, ReplyToQueue, Store};
use tokio::task::JoinHandle;

use super::servers::{RedisServer, TempDir};
use super::{commit_delivered_answer, env_usize, inbound, Admin};

const AFTER_DAYS: u32 = 90;
const DAY_MS: u64 = 86_400_000;

/// Populates, resolves and archives `SB_BENCH_ARCHIVE_CONVERSATIONS` conversations.
pub async fn archive_phase(redis: &RedisServer, questions: &[&'static str]) {
    let target = env_usize("SB_BENCH_ARCHIVE_CONVERSATIONS", 100_000);
    let budget = Duration::from_secs(env_usize("SB_BENCH_ARCHIVE_BUDGET_S", 120) as u64);
    println!("\n== Archive: resolved 10-message conversations moved out of Redis ==");
    let mut admin = Admin::connect(&redis.url()).await;
    admin.flush().await;
    let store = Store::connect(&redis.url(), Duration::from_secs(30))
        .await
        .expect("connect");
    store.ensure_groups().await.expect("groups");
    let questions: Arc<Vec<&'static str>> = Arc::new(questions.iter().take(5).copied().collect());
    let empty = admin.used_memory().await;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + budget;
    let workers: Vec<JoinHandle<()>> = (0..256)
        .map(|_| {
            let (store, next, done, questions) =
                (store.clone(), next.clone(), done.clone(), questions.clone());
            tokio::spawn(async move {
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= target || Instant::now() > deadline {
                        return;
                    }
                    let session = format!("archive-{c:010}-abcdef");
                    for (m, question) in questions.iter().enumerate() {
                        let ingested = store
                            .ingest(&inbound(&session, m, question))
                            .await
                            .expect("ingest");
                        let last = m + 1 == questions.len();
                        let mut fields = vec![("status".to_owned(), "bot".to_owned())];
                        if last {
                            fields = vec![
                                ("status".to_owned(), "resolved".to_owned()),
                                ("resolved_ms".to_owned(), now_ms().to_string()),
                                ("csat".to_owned(), "5".to_owned()),
                            ];
                        }
                        let commit = Commit {
                            conversation_id: ingested.conversation_id,
                            fields,
                            reply: Some(ReplyToQueue {
                                role: Role::Ai,
                                text: format!("Here is how, step by step, for: {question}"),
                                ..Default::default()
                            }),
                            ..Default::default()
                        };
                        commit_delivered_answer(&store, &commit).await;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("archive population worker");
    }
    let conversations = done.load(Ordering::Relaxed);
    println!(
        "  {conversations} resolved conversations populated in {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if conversations < target {
            format!(" (time budget reached before {target})")
        } else {
            String::new()
        }
    );

    let dir = TempDir::new("bench-archive");
    let archive = Archive::new(Arc::new(LocalDirStore::new(&dir.0)));
    let before = admin.used_memory().await;
    let later = now_ms() + (u64::from(AFTER_DAYS) + 1) * DAY_MS;
    let started = Instant::now();
    let run = archive
        .run(&store, later, AFTER_DAYS)
        .await
        .expect("archive run");
    let elapsed = started.elapsed().as_secs_f64();
    let after = admin.used_memory().await;
    let status = archive.status().await.expect("archive status");
    let archived = run.archived.max(1) as f64;
    println!(
        "  archive run: {} conversations in {elapsed:.1} s ({:.0} conversations/s), {} segments, {} case events trimmed",
        run.archived,
        run.archived as f64 / elapsed.max(1e-9),
        run.segments,
        run.case_events_trimmed
    );
    println!(
        "  redis used_memory: empty {:.1} MB, before {:.1} MB, after {:.1} MB; freed {:.0} B per conversation",
        empty as f64 / 1e6,
        before as f64 / 1e6,
        after as f64 / 1e6,
        before.saturating_sub(after) as f64 / archived
    );
    println!(
        "  archive on disk: {:.1} MB ({:.0} B per conversation, gzip'd JSON lines)",
        status.bytes as f64 / 1e6,
        status.bytes as f64 / archived
    );
}
