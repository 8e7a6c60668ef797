//! Retention (`switchboard archive run`): resolved conversations past
//! `retention.archive_after_days` move to the archive and out of Redis, Redis memory drops,
//! the archive reads back equal, a crash at either step of a run loses and doubles nothing,
//! export reads the archive and forget erases from it. Time is compressed by passing the
//! run's clock, never by sleeping. Single Redis and cluster, with the archive in a local
//! directory; and on a single Redis with the archive in an S3 bucket (a moto server).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use switchboard::archive::{Archive, ArchiveStore, LocalDirStore};
use switchboard::model::{now_ms, Role};
use switchboard::store::{keys, Commit, ConversationDump, NewFile, ReplyToQueue, Store};
use switchboard_api::FileRef;

use crate::erasure::{mentions, redis_contents};
use crate::harness::{on_single_and_cluster, RedisServer, TempDir, TestRedis};
use crate::moto::MotoServer;
use crate::store::inbound;

const DAY_MS: u64 = 86_400_000;
const AFTER_DAYS: u32 = 90;
const RESOLVED: usize = 120;
const OPEN: usize = 10;

/// A conversation of five customer messages (the first with a file) and an agent's answer,
/// escalated and then resolved or left open; returns its id.
pub(crate) async fn seed(store: &Store, key: &str, resolved: bool) -> String {
    let file = NewFile {
        file: FileRef {
            id: format!("{key}-f"),
            name: "photo.png".into(),
            content_type: "image/png".into(),
            size: 2048,
            url: None,
            bytes: None,
        },
        bytes: Bytes::from(vec![7u8; 2048]),
    };
    let first = inbound(
        key,
        &format!("{key}-0"),
        &format!("{key} says: my invoice is wrong"),
    );
    let id = store
        .ingest_with_files(&first, &[file], Duration::from_secs(30 * 86_400))
        .await
        .expect("ingest")
        .conversation_id;
    for n in 1..5 {
        let text = format!("{key} message {n}: the amount differs from the quote we agreed on");
        store
            .ingest(&inbound(key, &format!("{key}-{n}"), &text))
            .await
            .expect("ingest");
    }
    let status = if resolved { "resolved" } else { "escalated" };
    let log = serde_json::json!({"conversation_id": id, "reason": "human_requested",
                                 "question": format!("{key} says: my invoice is wrong")});
    store
        .commit(&Commit {
            conversation_id: id.clone(),
            fields: vec![
                ("status".into(), status.into()),
                ("resolved_ms".into(), now_ms().to_string()),
                ("csat".into(), "5".into()),
            ],
            reply: Some(ReplyToQueue {
                role: Role::Agent,
                author: "Sam".into(),
                text: format!("{key}: corrected invoice sent"),
                ..Default::default()
            }),
            escalation_log: Some(log.to_string()),
            ..Default::default()
        })
        .await
        .expect("commit");
    id
}

/// `used_memory` of every node, summed.
fn used_memory(redis: &TestRedis) -> u64 {
    let urls = match redis {
        TestRedis::Single(server) => vec![server.url()],
        TestRedis::Cluster(cluster) => cluster.urls(),
    };
    urls.into_iter()
        .map(|url| {
            let mut conn = redis::Client::open(url)
                .and_then(|client| client.get_connection())
                .unwrap();
            let info: String = redis::cmd("INFO").arg("memory").query(&mut conn).unwrap();
            (info.lines())
                .find_map(|line| line.strip_prefix("used_memory:"))
                .and_then(|bytes| bytes.trim().parse::<u64>().ok())
                .unwrap()
        })
        .sum()
}

/// `MEMORY USAGE` of a conversation's own keys, summed (0 when gone).
fn conversation_memory(redis: &TestRedis, id: &str) -> u64 {
    let mut conn = redis.client();
    [keys::conversation(id), keys::messages(id), keys::seen(id)]
        .iter()
        .map(|key| {
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .query::<Option<u64>>(&mut conn)
                .unwrap()
                .unwrap_or(0)
        })
        .sum()
}

#[derive(Clone, Copy, PartialEq)]
enum Crash {
    /// The process dies after writing a segment, before its manifest.
    BeforeManifest,
    /// The manifest is written, then the process dies before Redis is touched.
    AfterManifest,
}

/// A store whose manifest writes "crash" as scripted.
struct CrashingStore {
    inner: Arc<dyn ArchiveStore>,
    crash: Crash,
}

#[async_trait]
impl ArchiveStore for CrashingStore {
    async fn put(&self, name: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        if name.starts_with("manifests/") {
            if self.crash == Crash::AfterManifest {
                self.inner.put(name, bytes).await?;
            }
            return Err(std::io::Error::other("killed"));
        }
        self.inner.put(name, bytes).await
    }
    async fn get(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        self.inner.get(name).await
    }
    async fn list(&self, prefix: &str) -> std::io::Result<Vec<String>> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, name: &str) -> std::io::Result<()> {
        self.inner.delete(name).await
    }
}

/// Entries in every partition's case log.
fn case_log_len(redis: &TestRedis) -> u64 {
    per_partition_total(redis, "XLEN", keys::case_log)
}

/// `command` (a length) over every partition's `key`, added up.
fn per_partition_total(redis: &TestRedis, command: &str, key: fn(usize) -> String) -> u64 {
    let mut conn = redis.client();
    keys::partitions()
        .map(|partition| {
            redis::cmd(command)
                .arg(key(partition))
                .query::<u64>(&mut conn)
                .unwrap()
        })
        .sum()
}

async fn indexed(store: &Store) -> usize {
    let mut count = 0;
    for partition in keys::partitions() {
        count += store
            .indexed_conversations(partition, u64::MAX)
            .await
            .unwrap()
            .len();
    }
    count
}

/// Every segment object's text, unzipped, as the store holds it.
pub(crate) async fn segment_texts(objects: &dyn ArchiveStore) -> String {
    let mut all = String::new();
    for name in objects.list("segments/").await.unwrap() {
        let bytes = objects.get(&name).await.unwrap().expect("a listed segment");
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut all)
            .unwrap();
    }
    all
}

/// Where a test keeps its archive: a local directory, or a bucket on a moto server.
enum Place {
    Dir(TempDir),
    Bucket(MotoServer, String),
}

impl Place {
    /// A store on the place (each call a new one, as each run of the command builds).
    fn objects(&self) -> Arc<dyn ArchiveStore> {
        match self {
            Place::Dir(dir) => Arc::new(LocalDirStore::new(&dir.0)),
            Place::Bucket(moto, bucket) => Arc::new(moto.store(bucket, "support/archive")),
        }
    }
}

async fn resolved_conversations_move_to_the_archive_and_out_of_redis(redis: TestRedis) {
    let dir = TempDir::new("archive");
    archive_scenario(redis, Place::Dir(dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_conversations_move_to_an_s3_bucket_and_out_of_redis() {
    let moto = MotoServer::start();
    let bucket = moto.bucket().await;
    let redis = TestRedis::Single(RedisServer::start());
    archive_scenario(redis, Place::Bucket(moto, bucket)).await;
}

async fn archive_scenario(redis: TestRedis, place: Place) {
    let store = Store::connect(&redis.url(), Duration::from_millis(2000))
        .await
        .expect("connect");
    store.ensure_groups().await.unwrap();
    let mut resolved = Vec::new();
    for n in 0..RESOLVED {
        resolved.push(seed(&store, &format!("s:old-{n:04}"), true).await);
    }
    for n in 0..OPEN {
        seed(&store, &format!("s:open-{n:04}"), false).await;
    }
    // A customer writing between the read and the removal keeps the conversation in Redis.
    let busy = seed(&store, "s:busy-0001", true).await;
    let stale = store
        .dump_conversation(&busy, Vec::new())
        .await
        .unwrap()
        .unwrap();
    store
        .ingest(&inbound("s:busy-0001", "busy-late", "one more thing"))
        .await
        .unwrap();
    assert_eq!(store.purge_conversation(&stale, true).await.unwrap(), None);
    assert_eq!(
        store
            .transcript_after(&busy, None, 100)
            .await
            .unwrap()
            .len(),
        7
    );
    switchboard::contact::forget(&store, None, None, &[], &busy, "t", None)
        .await
        .unwrap();
    let mut before: BTreeMap<String, ConversationDump> = BTreeMap::new();
    for partition in keys::partitions() {
        let mut log = store.escalations_by_conversation(partition).await.unwrap();
        let mut case_log = store.case_log_by_conversation(partition).await.unwrap();
        for id in resolved
            .iter()
            .filter(|id| keys::partition(id) == partition)
        {
            let mut dump = store
                .dump_conversation(id, log.remove(id).unwrap_or_default())
                .await
                .unwrap()
                .unwrap();
            dump.case_events = case_log.remove(id).unwrap_or_default();
            assert!(!dump.case_events.is_empty(), "its case opened");
            before.insert(id.clone(), dump);
        }
    }
    let archive = Archive::new(place.objects());

    // A day short of the retention, nothing is due.
    let early = now_ms() + (u64::from(AFTER_DAYS) - 1) * DAY_MS;
    let report = archive.run(&store, early, AFTER_DAYS).await.unwrap();
    assert_eq!(report.archived, 0);

    // Crashes: after a segment, before its manifest; then after a manifest, before Redis.
    let later = now_ms() + (u64::from(AFTER_DAYS) + 1) * DAY_MS;
    for crash in [Crash::BeforeManifest, Crash::AfterManifest] {
        let crashing = Archive::new(Arc::new(CrashingStore {
            inner: place.objects(),
            crash,
        }));
        assert!(crashing.run(&store, later, AFTER_DAYS).await.is_err());
        assert_eq!(indexed(&store).await, RESOLVED + OPEN, "nothing left Redis");
    }
    let memory_before = used_memory(&redis);
    let one = &resolved[0];
    let conversation_bytes = conversation_memory(&redis, one);
    assert!(conversation_bytes > 0);

    let report = archive.run(&store, later, AFTER_DAYS).await.unwrap();
    assert_eq!(
        (report.archived + report.finished_from_earlier_run) as usize,
        RESOLVED,
        "{report:?}"
    );
    assert!(report.finished_from_earlier_run > 0, "{report:?}");
    assert_eq!(indexed(&store).await, OPEN, "only the open ones stay");
    // The case log keeps nothing older than the retention: what the report needs of it
    // travels in the archive lines (checked equal below).
    assert!(report.case_events_trimmed > 0, "{report:?}");
    assert_eq!(case_log_len(&redis), 0);
    // No sweeper ran here: the open cases' first checks moved from the trimmed log to the
    // deadlines; the archived conversations need none.
    assert_eq!(
        per_partition_total(&redis, "ZCARD", keys::case_deadlines),
        OPEN as u64
    );
    assert_eq!(conversation_memory(&redis, one), 0);
    let memory_after = used_memory(&redis);
    println!(
        "redis used_memory before {memory_before} after {memory_after}; one conversation's keys {conversation_bytes} bytes"
    );
    assert!(
        memory_after + (RESOLVED as u64 * conversation_bytes) / 2 < memory_before,
        "memory {memory_before} -> {memory_after}"
    );

    // Each conversation exactly once, read back equal to what Redis held.
    let lines = archive.read_all().await.unwrap();
    let archived: BTreeMap<String, ConversationDump> = (lines.into_iter())
        .map(|line| (line.conversation.id.clone(), line.conversation))
        .collect();
    assert_eq!(archived.len(), RESOLVED);
    assert_eq!(archived, before);
    let raw = segment_texts(place.objects().as_ref()).await;
    assert_eq!(
        raw.lines().count(),
        RESOLVED,
        "no line twice on disk either"
    );
    let status = archive.status().await.unwrap();
    assert_eq!(status.conversations as usize, RESOLVED);
    assert_eq!(
        archive
            .run(&store, later, AFTER_DAYS)
            .await
            .unwrap()
            .archived,
        0,
        "a second run has nothing to do"
    );

    // Export reads the archive; the customer coming back starts afresh.
    let subject = format!("webchat:s:old-{:04}", 3);
    let export = switchboard::contact::export(&store, Some(&archive), &subject)
        .await
        .unwrap();
    assert!(export.conversations.is_empty());
    assert_eq!(export.archived.len(), 1);
    assert!(serde_json::to_string(&export)
        .unwrap()
        .contains("s:old-0003 says: my invoice is wrong"));
    store
        .ingest(&inbound("s:old-0003", "again-1", "back again"))
        .await
        .unwrap();
    let id = &export.archived[0].conversation.id;
    let transcript = store.transcript_after(id, None, 100).await.unwrap();
    assert_eq!(transcript.len(), 1, "a new conversation, no history");

    // Forget reaches the archive too.
    let forgotten =
        switchboard::contact::forget(&store, Some(&archive), None, &[], &subject, "t", None)
            .await
            .unwrap();
    assert_eq!(forgotten.archived_conversations, 1);
    assert_eq!(forgotten.redis.conversations, 1);
    let raw = segment_texts(place.objects().as_ref()).await;
    assert!(!raw.contains("s:old-0003"), "erased from the archive");
    assert!(raw.contains("s:old-0004"), "the others stay");
    assert_eq!(archive.read_all().await.unwrap().len(), RESOLVED - 1);
    assert!(mentions(&redis_contents(&redis), &["s:old-0003", "back again"]).is_empty());
}

on_single_and_cluster!(resolved_conversations_move_to_the_archive_and_out_of_redis);

/// Archive runs of `gateway` with `outcome`, from its metrics.
fn runs(gateway: &switchboard::app::RunningGateway, outcome: &str) -> u64 {
    let label = switchboard::metrics::Metrics::label("outcome", outcome);
    gateway.metrics.archive_runs.get_or_create(&label).get()
}

/// Two gateways with `retention.run_every_minutes` (0.3 s) and a retention of 0.86 s: while
/// the archive is unreachable their runs fail, are counted, and leave the conversations in
/// Redis; once it is back the next run archives each resolved conversation exactly once, by
/// one instance only, later runs add nothing, and the open ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_gateways_archive_by_themselves_one_instance_at_a_time() {
    let redis = TestRedis::Single(crate::harness::RedisServer::start());
    let store = Store::connect(&redis.url(), Duration::from_secs(2))
        .await
        .expect("connect");
    let mut resolved = Vec::new();
    let mut open = Vec::new();
    for n in 0..6 {
        resolved.push(seed(&store, &format!("self-archived-{n}"), true).await);
    }
    for n in 0..2 {
        open.push(seed(&store, &format!("still-open-{n}"), false).await);
    }
    // Seeded as done: no triage or delivery is left to change them once gateways run.
    for id in resolved.iter().chain(&open) {
        store.purge_work_of(id).await.expect("purge work");
    }
    let dir = TempDir::new("self-archive");
    let archive_dir = dir.0.join("archive");
    // A file where the archive's directory should be: every write to the archive fails.
    std::fs::write(&archive_dir, b"not a directory").unwrap();
    let text = format!(
        "{}[retention]\narchive_after_days = 0.00001\narchive_dir = {:?}\n\
         run_every_minutes = 0.005\n",
        crate::webchat::WEBCHAT,
        archive_dir.to_str().unwrap()
    );
    let config = || crate::harness::test_config(&redis, &text);
    let gateways = [
        crate::harness::start_gateway(config()).await,
        crate::harness::start_gateway(config()).await,
    ];
    let failed = || async {
        let failed: u64 = gateways.iter().map(|gateway| runs(gateway, "failed")).sum();
        (failed >= 2).then_some(())
    };
    crate::harness::eventually(Duration::from_secs(20), "two failed runs", failed).await;
    for id in &resolved {
        let status: Option<String> =
            redis::Commands::hget(&mut redis.client(), keys::conversation(id), "status").unwrap();
        assert_eq!(
            status.as_deref(),
            Some("resolved"),
            "{id} is still in Redis"
        );
    }

    std::fs::remove_file(&archive_dir).unwrap();
    std::fs::create_dir(&archive_dir).unwrap();
    let archived = || async {
        let archived: u64 = (gateways.iter())
            .map(|gateway| gateway.metrics.archived_conversations.get())
            .sum();
        (archived >= resolved.len() as u64).then_some(())
    };
    crate::harness::eventually(Duration::from_secs(20), "the archive run", archived).await;
    // A few more periods: nothing more is due, nothing is archived again.
    let later_runs = || async {
        let ok: u64 = gateways.iter().map(|gateway| runs(gateway, "ok")).sum();
        (ok >= 3).then_some(())
    };
    crate::harness::eventually(Duration::from_secs(20), "later runs", later_runs).await;

    let archive = Archive::new(Arc::new(LocalDirStore::new(&archive_dir)));
    let lines = archive.read_all().await.expect("read the archive");
    let mut ids: Vec<String> = lines
        .iter()
        .map(|line| line.conversation.id.clone())
        .collect();
    ids.sort();
    let mut expected = resolved.clone();
    expected.sort();
    assert_eq!(ids, expected, "each resolved conversation archived once");
    assert_eq!(
        archive.status().await.unwrap().conversations,
        resolved.len() as u64,
        "no segment holds one twice"
    );
    for id in &resolved {
        assert_eq!(conversation_memory(&redis, id), 0, "{id} left Redis");
    }
    for id in &open {
        assert!(conversation_memory(&redis, id) > 0, "{id} stays");
    }
    let working: Vec<&switchboard::app::RunningGateway> = (gateways.iter())
        .filter(|gateway| runs(gateway, "ok") + runs(gateway, "failed") > 0)
        .collect();
    assert_eq!(working.len(), 1, "one instance archives");
    let metrics = crate::harness::http(working[0].admin_addr, "GET", "/metrics", None)
        .await
        .1;
    assert!(
        metrics.contains("switchboard_archived_conversations_total 6"),
        "{metrics}"
    );
    assert!(metrics.contains("switchboard_archive_runs_total{outcome=\"failed\"}"));
    for gateway in gateways {
        gateway.shutdown().await;
    }
}
