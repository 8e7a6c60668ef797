//! Throughput, latency, Redis round trips and memory of the whole pipeline, on this machine.
//!
//! `cargo bench --bench pipeline` starts its own redis-server on a private unix socket
//! (persistence off), runs one or two gateway instances in-process (Intake, TriageWorker and
//! OutboxWorker with the embedded knowledge-base answerer over `config/knowledge`) and a
//! loopback connector that stands in for the web chat, then prints figures. Nothing is
//! asserted about timing: the numbers are for the README and the issue.
//!
//! Tunables (environment): `SB_BENCH_CONVERSATIONS` (saturation run, default 2000),
//! `SB_BENCH_MESSAGES` (customer messages per conversation, default 5),
//! `SB_BENCH_WORKERS` (triage+outbox worker pairs per instance, default `gateway.workers`'s 2),
//! `SB_BENCH_MEMORY_CONVERSATIONS` (default 100000), `SB_BENCH_MEMORY_BUDGET_S` (default 120),
//! `SB_BENCH_SKIP` (comma list of phases to skip:
//! `baseline,throughput,cluster,latency,wire,trips,memory,replay,archive`; `cluster` is the
//! saturation run on a local 3-master Redis Cluster), `SB_BENCH_REPLAY_MESSAGES` (customer
//! messages `switchboard replay` goes over, default 100000),
//! `SB_BENCH_ARCHIVE_CONVERSATIONS` (resolved conversations the `archive` phase moves out of
//! Redis, default 100000), `SB_BENCH_ARCHIVE_BUDGET_S` (its population time limit, default 120),
//! `SB_BENCH_RATES` (comma list of msgs/s for the steady-load latency phase).

// Many small, short-lived allocations per message: mimalloc carries ~10% more messages/s
// than the system allocator on the pipeline bench (the bench runs with it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchboard::config::{Config, OutboxConfig};
use switchboard::metrics::Metrics;
use switchboard::model::{conversation_id, Role};
use switchboard::outbox::OutboxWorker;
use switchboard::pipeline::{commit_for_answer, Intake, TriageWorker};
use switchboard::store::{keys, Commit, Store, StoredReceipt};
use switchboard::triage::{Decision, TranscriptLine, Triage, TriageInput};
use switchboard_api::{
    Capabilities, ChannelKind, Connector, ConnectorError, CustomerContext, DeliveryReceipt,
    Gateway, Health, Identity, Inbound, InboundKind, Outbound,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod archive;
mod replay;
mod wire;

// The tests' private servers: a redis-server on a unix socket, or a 3-master cluster.
#[allow(dead_code)]
#[path = "../../tests/servers.rs"]
mod servers;

use servers::{RedisCluster, RedisServer};

/// Questions the embedded answerer is expected to answer (checked before use).
const QUESTIONS: &[&str] = &[
    "How do I reset my password?",
    "How do I turn on two-factor authentication?",
    "How do I change the email address on my account?",
    "How do I add or remove team members?",
    "What plans and prices do you offer?",
    "Where can I download my invoices?",
    "How do I update my payment method?",
    "When is your support team available?",
    "How long does shipping take for hardware keys?",
    "Is my data secure? Are you GDPR compliant?",
    "What are the API rate limits?",
    "How do I create an API key?",
    "How do I export my data?",
    "Is Acme Cloud down? Where can I see the service status?",
    "Which integrations do you support?",
    "How do I cancel my subscription?",
    "Do you offer refunds?",
    "How do I delete my account?",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Worker pairs per instance: the gateway's default unless SB_BENCH_WORKERS says otherwise.
fn bench_workers() -> usize {
    env_usize(
        "SB_BENCH_WORKERS",
        switchboard::config::GatewayConfig::default().workers,
    )
    .clamp(1, keys::PARTITIONS)
}

fn skipped(phase: &str) -> bool {
    std::env::var("SB_BENCH_SKIP")
        .map(|list| list.split(',').any(|p| p.trim() == phase))
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// redis-server

/// An administrative connection for INFO, FLUSHALL and MEMORY USAGE.
struct Admin(redis::aio::MultiplexedConnection);

impl Admin {
    async fn connect(url: &str) -> Admin {
        let client = redis::Client::open(url).expect("redis url");
        Admin(
            client
                .get_multiplexed_async_connection()
                .await
                .expect("admin connection"),
        )
    }

    async fn info(&mut self, section: &str) -> HashMap<String, String> {
        let text: String = redis::cmd("INFO")
            .arg(section)
            .query_async(&mut self.0)
            .await
            .expect("INFO");
        text.lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect()
    }

    /// Calls and microseconds spent per command (`cmdstat_evalsha` -> `evalsha`), including
    /// commands run inside scripts (a script's time also counts its commands' time).
    async fn command_calls(&mut self) -> BTreeMap<String, (u64, u64)> {
        self.info("commandstats")
            .await
            .into_iter()
            .filter_map(|(key, value)| {
                let name = key.strip_prefix("cmdstat_")?.to_owned();
                let field = |label: &str| -> Option<u64> {
                    value
                        .split(',')
                        .find_map(|part| part.strip_prefix(label))?
                        .parse()
                        .ok()
                };
                Some((name, (field("calls=")?, field("usec=")?)))
            })
            .collect()
    }

    async fn used_memory(&mut self) -> u64 {
        self.info("memory")
            .await
            .get("used_memory")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    async fn memory_usage(&mut self, key: &str) -> u64 {
        redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query_async::<Option<u64>>(&mut self.0)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    async fn flush(&mut self) {
        redis::cmd("FLUSHALL")
            .arg("SYNC")
            .query_async::<()>(&mut self.0)
            .await
            .expect("FLUSHALL");
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async::<()>(&mut self.0)
            .await
            .expect("RESETSTAT");
    }
}

// ---------------------------------------------------------------------------------------------
// The loopback channel: records when each conversation's reply arrived.

#[derive(Default)]
struct Loopback {
    waiters: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    delivered: AtomicUsize,
    unexpected: AtomicUsize,
}

impl Loopback {
    fn expect(&self, conversation_key: &str) -> oneshot::Receiver<Instant> {
        let (sender, receiver) = oneshot::channel();
        self.waiters
            .lock()
            .expect("waiters")
            .insert(conversation_key.to_owned(), sender);
        receiver
    }
}

#[async_trait]
impl Connector for Loopback {
    fn channel(&self) -> ChannelKind {
        switchboard_webchat::CHANNEL
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn run(&self, _gateway: Arc<dyn Gateway>) -> Result<(), ConnectorError> {
        Ok(())
    }
    async fn send(&self, outbound: &Outbound) -> Result<DeliveryReceipt, ConnectorError> {
        let at = Instant::now();
        self.delivered.fetch_add(1, Ordering::Relaxed);
        let waiter = self
            .waiters
            .lock()
            .expect("waiters")
            .remove(&outbound.conversation_key);
        match waiter {
            Some(waiter) => {
                let _ = waiter.send(at);
            }
            None => {
                self.unexpected.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(DeliveryReceipt {
            platform_message_id: Some(outbound.id.clone()),
            ..DeliveryReceipt::default()
        })
    }
    async fn health(&self) -> Health {
        Health::Up
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway instances: the same pieces `app::start_with_desk` wires, minus HTTP.

struct Instance {
    intake: Arc<Intake>,
    /// Counts the instance's round trips (its dedicated worker stores share the counter).
    store: Store,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn start_instance(
    url: &str,
    name: &str,
    triage: Arc<Triage>,
    channel: Arc<Loopback>,
) -> Instance {
    let store = Store::connect(url, Duration::from_millis(2000))
        .await
        .expect("connect");
    store.ensure_groups().await.expect("groups");
    let metrics = Arc::new(Metrics::default());
    let intake = Arc::new(Intake::new(store.clone(), 16_000).with_metrics(metrics.clone()));
    let block = Duration::from_secs(1);
    // Worker pairs per instance, each owning a share of the partitions, as the gateway runs
    // them (`gateway.workers`, default 2; SB_BENCH_WORKERS to compare).
    let mut tasks = Vec::new();
    let workers = bench_workers();
    for w in 0..workers {
        let consumer = if w == 0 {
            name.to_owned()
        } else {
            format!("{name}-w{w}")
        };
        let triage_store = store.dedicated(block).await.expect("dedicated");
        let outbox_store = store.dedicated(block).await.expect("dedicated");
        let connectors: HashMap<ChannelKind, Arc<dyn Connector>> = HashMap::from([(
            switchboard_webchat::CHANNEL,
            channel.clone() as Arc<dyn Connector>,
        )]);
        let partitions = keys::partitions_of_worker(w, workers);
        let triage_worker = TriageWorker::new(
            triage_store,
            triage.clone(),
            consumer.clone(),
            Duration::from_secs(30),
        )
        .with_metrics(metrics.clone())
        .with_partitions(partitions.clone());
        let outbox_worker =
            OutboxWorker::new(outbox_store, connectors, OutboxConfig::default(), consumer)
                .with_metrics(metrics.clone())
                .with_partitions(partitions);
        let forever = tokio_util::sync::CancellationToken::new();
        tasks.push(tokio::spawn(triage_worker.run(forever.clone())));
        tasks.push(tokio::spawn(outbox_worker.run(forever)));
    }
    Instance {
        intake,
        store,
        tasks,
    }
}

fn inbound(session: &str, message: usize, text: &str) -> Inbound {
    let key = format!("s:{session}");
    Inbound {
        channel: switchboard_webchat::CHANNEL,
        conversation_key: key.clone(),
        message_id: format!("wc:{session}-{message}"),
        kind: InboundKind::Text,
        author: Identity {
            id: key,
            display_name: Some("Dana".into()),
            ..Default::default()
        },
        text: text.to_owned(),
        context: CustomerContext {
            page_url: Some("https://acme.example/pricing".into()),
            page_title: Some("Pricing - Acme Cloud".into()),
            tier: Some("standard".into()),
            locale: None,
            attributes: BTreeMap::from([
                ("plan".to_owned(), "pro".to_owned()),
                ("tier".to_owned(), "standard".to_owned()),
                ("name".to_owned(), "Dana".to_owned()),
            ]),
            ..CustomerContext::default()
        },
        files: Vec::new(),
    }
}

/// What one closed-loop conversation measured.
#[derive(Default)]
struct Outcome {
    latencies_us: Vec<u64>,
    accept_us: Vec<u64>,
    lost: usize,
    refused: usize,
}

/// One visitor: asks `messages` questions, each after the previous one was answered.
async fn converse(
    intake: Arc<Intake>,
    channel: Arc<Loopback>,
    questions: Arc<Vec<&'static str>>,
    session: String,
    first_question: usize,
    messages: usize,
) -> Outcome {
    let mut outcome = Outcome::default();
    let key = format!("s:{session}");
    for m in 0..messages {
        let text = questions[(first_question + m) % questions.len()];
        let reply = channel.expect(&key);
        let started = Instant::now();
        let accepted = intake.accept(inbound(&session, m, text)).await;
        outcome.accept_us.push(started.elapsed().as_micros() as u64);
        if accepted.is_err() {
            outcome.refused += 1;
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(30), reply).await {
            Ok(Ok(at)) => outcome
                .latencies_us
                .push(at.duration_since(started).as_micros() as u64),
            _ => outcome.lost += 1,
        }
    }
    outcome
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

struct RunFigures {
    messages: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
    accept_us: Vec<u64>,
    lost: usize,
    refused: usize,
}

impl RunFigures {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    fn print(&self, label: &str) {
        let mut latencies = self.latencies_us.clone();
        latencies.sort_unstable();
        let mut accept = self.accept_us.clone();
        accept.sort_unstable();
        // Over the wire there is no accept() call to time: the visitor only sees the answer.
        let accept_figures = if accept.is_empty() {
            String::new()
        } else {
            format!(
                " | accept() p50 {:.2} ms p99 {:.2} ms",
                percentile(&accept, 50.0),
                percentile(&accept, 99.0)
            )
        };
        println!(
            "  {label}: {} msgs in {:.2} s = {:.0} msgs/s | accepted->delivered p50 {:.1} ms p99 {:.1} ms max {:.1} ms{accept_figures} | lost {} refused {}",
            self.messages,
            self.seconds,
            self.rate(),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            percentile(&latencies, 100.0),
            self.lost,
            self.refused,
        );
    }
}

/// All `conversations` start at once (saturation): the sustained rate the pipeline can carry.
async fn saturate(
    instances: &[Instance],
    channel: &Arc<Loopback>,
    questions: &Arc<Vec<&'static str>>,
    run: &str,
    conversations: usize,
    messages: usize,
) -> RunFigures {
    let started = Instant::now();
    let visitors: Vec<JoinHandle<Outcome>> = (0..conversations)
        .map(|c| {
            let intake = instances[c % instances.len()].intake.clone();
            tokio::spawn(converse(
                intake,
                channel.clone(),
                questions.clone(),
                format!("bench-{run}-{c:08}"),
                c,
                messages,
            ))
        })
        .collect();
    collect(visitors, started).await
}

/// Conversations arrive at a fixed rate (open loop), each asking its questions in turn:
/// latency at a load the pipeline can carry, not queueing at saturation.
async fn paced(
    instances: &[Instance],
    channel: &Arc<Loopback>,
    questions: &Arc<Vec<&'static str>>,
    run: &str,
    messages_per_second: f64,
    seconds: f64,
    messages: usize,
) -> RunFigures {
    let conversations = ((messages_per_second * seconds) / messages as f64).round() as usize;
    let gap = Duration::from_secs_f64(seconds / conversations.max(1) as f64);
    let started = Instant::now();
    let mut visitors = Vec::with_capacity(conversations);
    for c in 0..conversations {
        let due = started + gap * c as u32;
        tokio::time::sleep_until(due.into()).await;
        let intake = instances[c % instances.len()].intake.clone();
        visitors.push(tokio::spawn(converse(
            intake,
            channel.clone(),
            questions.clone(),
            format!("paced-{run}-{c:08}"),
            c,
            messages,
        )));
    }
    collect(visitors, started).await
}

async fn collect(visitors: Vec<JoinHandle<Outcome>>, started: Instant) -> RunFigures {
    let mut figures = RunFigures {
        messages: 0,
        seconds: 0.0,
        latencies_us: Vec::new(),
        accept_us: Vec::new(),
        lost: 0,
        refused: 0,
    };
    for visitor in visitors {
        let outcome = visitor.await.expect("visitor task");
        figures.messages += outcome.latencies_us.len();
        figures.latencies_us.extend(outcome.latencies_us);
        figures.accept_us.extend(outcome.accept_us);
        figures.lost += outcome.lost;
        figures.refused += outcome.refused;
    }
    figures.seconds = started.elapsed().as_secs_f64();
    figures
}

fn print_command_delta(
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
    messages: usize,
) -> f64 {
    let mut total = 0u64;
    let mut parts = Vec::new();
    let mut time = Vec::new();
    for (name, (calls, usec)) in after {
        let (calls_before, usec_before) = before.get(name).copied().unwrap_or((0, 0));
        let delta = calls - calls_before;
        if delta == 0 || name == "info" {
            continue;
        }
        total += delta;
        parts.push(format!("{name} {:.2}", delta as f64 / messages as f64));
        let spent = (usec - usec_before) as f64 / messages as f64;
        if spent >= 0.5 {
            time.push((spent, name.clone()));
        }
    }
    let per_message = total as f64 / messages as f64;
    println!(
        "    redis commands per message (INFO commandstats, counts commands inside scripts too): {per_message:.2} = {}",
        parts.join(", ")
    );
    time.sort_by(|a, b| b.0.total_cmp(&a.0));
    let time: Vec<String> = time
        .iter()
        .map(|(spent, name)| format!("{name} {spent:.1}"))
        .collect();
    println!(
        "    redis time per message in us (a script's time includes its commands'): {}",
        time.join(", ")
    );
    per_message
}

// ---------------------------------------------------------------------------------------------
// Phases

async fn baseline(redis: &RedisServer) -> Option<f64> {
    println!("\n== redis-benchmark (single commands on the same server, same socket) ==");
    let mut best = None;
    for test in ["ping", "set"] {
        let output = Command::new("redis-benchmark")
            .arg("-s")
            .arg(&redis.socket)
            .args(["-t", test, "-n", "200000", "-q"])
            .output();
        let Ok(output) = output else {
            println!("  redis-benchmark not available");
            return None;
        };
        let text = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
        for line in text
            .lines()
            .filter(|line| line.contains("requests per second"))
        {
            println!(
                "  redis-benchmark -s <socket> -t {test} -n 200000 -q: {}",
                line.trim()
            );
            if test == "set" {
                best = line
                    .split_whitespace()
                    .find_map(|word| word.parse::<f64>().ok());
            }
        }
    }
    best
}

async fn check_questions(triage: &Triage) -> Vec<&'static str> {
    let mut answered = Vec::new();
    for question in QUESTIONS {
        let input = TriageInput {
            text: question,
            kind: InboundKind::Text,
            channel: switchboard_webchat::CHANNEL,
            tier: None,
            email: None,
            history: &[],
        };
        if matches!(
            triage.decide(&input).await.decision,
            Decision::Answer { .. }
        ) {
            answered.push(*question);
        }
    }
    answered
}

/// Time triage spends deciding, without Redis: the CPU floor of one triage worker.
async fn time_decide(triage: &Triage, questions: &[&str]) -> f64 {
    let history: Vec<TranscriptLine> = questions
        .iter()
        .take(4)
        .flat_map(|q| {
            [
                TranscriptLine {
                    role: Role::Customer,
                    text: (*q).into(),
                },
                TranscriptLine {
                    role: Role::Ai,
                    text: "An answer of a typical length from the knowledge base, about two sentences long, with a link.".into(),
                },
            ]
        })
        .collect();
    let rounds = 2000;
    let started = Instant::now();
    for i in 0..rounds {
        let input = TriageInput {
            text: questions[i % questions.len()],
            kind: InboundKind::Text,
            channel: switchboard_webchat::CHANNEL,
            tier: None,
            email: None,
            history: &history[..(i % 5) * 2 % (history.len() + 1)],
        };
        std::hint::black_box(triage.decide(&input).await);
    }
    started.elapsed().as_secs_f64() * 1e6 / rounds as f64
}

async fn round_trips_by_monitor(
    redis: &RedisServer,
    triage: Arc<Triage>,
    questions: &Arc<Vec<&'static str>>,
    conversations: usize,
    messages: usize,
    paced_rate: f64,
) -> f64 {
    let mut admin = Admin::connect(&redis.url()).await;
    admin.flush().await;
    let channel = Arc::new(Loopback::default());
    let instance = start_instance(&redis.url(), "monitor-a", triage, channel.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = redis.dir.0.join("monitor.log");
    let mut monitor = Command::new("redis-cli")
        .arg("-s")
        .arg(&redis.socket)
        .arg("monitor")
        .stdout(std::fs::File::create(&log).expect("monitor log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let instances = [instance];
    let trips_before = instances[0].store.round_trips();
    let saturated = saturate(
        &instances,
        &channel,
        questions,
        "mon",
        conversations,
        messages,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = monitor.kill();
    let _ = monitor.wait();
    let trips = instances[0].store.round_trips() - trips_before;
    let (top, in_scripts) = parse_monitor(&log);
    let saturated_trips =
        print_round_trips("saturated", trips, &top, in_scripts, saturated.messages);

    // The same at a light, steady load: batches are small, so per-batch commands weigh more.
    let log = redis.dir.0.join("monitor-paced.log");
    let mut monitor = Command::new("redis-cli")
        .arg("-s")
        .arg(&redis.socket)
        .arg("monitor")
        .stdout(std::fs::File::create(&log).expect("monitor log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let trips_before = instances[0].store.round_trips();
    let light = paced(
        &instances, &channel, questions, "mon", paced_rate, 3.0, messages,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = monitor.kill();
    let _ = monitor.wait();
    let trips = instances[0].store.round_trips() - trips_before;
    let (top, in_scripts) = parse_monitor(&log);
    print_round_trips(
        &format!("paced at {paced_rate:.0} msgs/s"),
        trips,
        &top,
        in_scripts,
        light.messages,
    );
    saturated_trips
}

/// Top-level commands by name, and the number of commands scripts ran.
fn parse_monitor(log: &Path) -> (BTreeMap<String, u64>, u64) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut top = BTreeMap::new();
    let mut in_scripts = 0;
    for line in text.lines() {
        let Some((origin, command)) = line.split_once("] \"") else {
            continue;
        };
        let name = command.split('"').next().unwrap_or("").to_lowercase();
        if origin.ends_with(" lua") {
            in_scripts += 1;
        } else {
            *top.entry(name).or_insert(0) += 1;
        }
    }
    (top, in_scripts)
}

fn print_round_trips(
    label: &str,
    trips: u64,
    top: &BTreeMap<String, u64>,
    in_scripts: u64,
    messages: usize,
) -> f64 {
    // `trips` is counted by the store itself (each pipeline or script call is one round trip;
    // MONITOR lists a pipeline's commands one by one and cannot tell them apart). Round trips
    // made while the phase ran but before its messages (idle blocking reads) are included.
    let commands: u64 = top.values().sum();
    let per = |n: u64| n as f64 / messages.max(1) as f64;
    let breakdown: Vec<String> = top
        .iter()
        .map(|(name, n)| format!("{name} {:.2}", per(*n)))
        .collect();
    println!(
        "  {label} ({messages} msgs, MONITOR): {:.2} round trips per inbound message ({:.2} top-level commands; {:.2} more run inside scripts)",
        per(trips),
        per(commands),
        per(in_scripts)
    );
    println!(
        "    top-level commands per message: {}",
        breakdown.join(", ")
    );
    per(trips)
}

/// Commits an AI answer and the delivery receipt the outbox writes once it is delivered (the
/// web chat's id for a message is its transcript entry's).
pub(crate) async fn commit_delivered_answer(store: &Store, commit: &Commit) {
    let committed = store.commit(commit).await.expect("commit");
    let entry = committed.entry_id.unwrap_or_default();
    let receipts = keys::deliveries(&commit.conversation_id);
    let receipt = StoredReceipt {
        id: entry.clone(),
        earlier: Vec::new(),
        channel: Some(switchboard_webchat::CHANNEL.as_str().to_owned()),
    };
    store
        .run(|mut conn| async move {
            redis::cmd("HSET")
                .arg(receipts)
                .arg(&entry)
                .arg(receipt.to_value())
                .query_async::<()>(&mut conn)
                .await
        })
        .await
        .expect("record delivery");
}

/// A realistic 10-message conversation (5 questions, 5 AI answers) written through the store
/// as the pipeline writes it, for up to `SB_BENCH_MEMORY_CONVERSATIONS` conversations.
async fn memory(redis: &RedisServer, triage: &Triage, questions: &[&'static str]) {
    let target = env_usize("SB_BENCH_MEMORY_CONVERSATIONS", 100_000);
    let budget = Duration::from_secs(env_usize("SB_BENCH_MEMORY_BUDGET_S", 120) as u64);
    println!("\n== Redis memory per 10-message conversation (5 questions + 5 AI answers) ==");
    let mut admin = Admin::connect(&redis.url()).await;
    admin.flush().await;
    let store = Store::connect(&redis.url(), Duration::from_secs(5))
        .await
        .expect("connect");
    store.ensure_groups().await.expect("groups");
    // What the pipeline would write for each question: its answer and decision record.
    let mut steps = Vec::new();
    for question in questions.iter().take(5) {
        let input = TriageInput {
            text: question,
            kind: InboundKind::Text,
            channel: switchboard_webchat::CHANNEL,
            tier: None,
            email: None,
            history: &[],
        };
        let record = triage.decide(&input).await;
        if matches!(record.decision, Decision::Answer { .. }) {
            steps.push((*question, record));
        }
    }
    let steps = Arc::new(steps);
    let before = admin.used_memory().await;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + budget;
    let mut stores = vec![store.clone()];
    for _ in 0..3 {
        stores.push(
            Store::connect(&redis.url(), Duration::from_secs(5))
                .await
                .expect("connect"),
        );
    }
    let workers: Vec<JoinHandle<()>> = (0..256)
        .map(|w| {
            let store = stores[w % stores.len()].clone();
            let (next, done, steps) = (next.clone(), done.clone(), steps.clone());
            tokio::spawn(async move {
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= target || Instant::now() > deadline {
                        return;
                    }
                    let session = format!("memory-{c:010}-abcdef");
                    for (m, (question, record)) in steps.iter().enumerate() {
                        let ingested = store
                            .ingest(&inbound(&session, m, question))
                            .await
                            .expect("ingest");
                        // What the triage worker commits for an answer, from the record it
                        // reads, so the figure follows the pipeline's fields.
                        let conversation = store
                            .conversation(&ingested.conversation_id)
                            .await
                            .expect("read")
                            .expect("conversation");
                        let commit = commit_for_answer(&conversation, question, record);
                        commit_delivered_answer(&store, &commit).await;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("memory worker");
    }
    let conversations = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    // The answers' outbox entries leave once delivered (nothing delivers them here).
    for partition in keys::partitions() {
        redis::cmd("DEL")
            .arg(keys::outbox(partition))
            .query_async::<()>(&mut admin.0)
            .await
            .expect("DEL outbox");
    }
    let after = admin.used_memory().await;
    let mut work_streams = 0;
    for partition in keys::partitions() {
        work_streams += admin.memory_usage(&keys::inbound(partition)).await
            + admin
                .memory_usage(&keys::conversation_index(partition))
                .await;
    }
    let total_per = (after - before) as f64 / conversations.max(1) as f64;
    println!(
        "  {conversations} conversations populated in {elapsed:.1} s ({}), {} transcript entries each",
        if conversations < target {
            format!("time budget reached before {target}")
        } else {
            "as asked".into()
        },
        steps.len() * 2
    );
    println!(
        "  used_memory delta / conversation: {:.0} B ({:.2} KB); of which the partitions' inbound streams and conversation indexes: {:.0} B",
        total_per,
        total_per / 1024.0,
        work_streams as f64 / conversations.max(1) as f64
    );
    // Per-key breakdown on a sample (MEMORY USAGE, exact with SAMPLES 0).
    let sample = 200.min(conversations);
    let mut per_key: BTreeMap<&str, u64> = BTreeMap::new();
    for c in 0..sample {
        let id = conversation_id(
            switchboard_webchat::CHANNEL,
            &format!("s:memory-{c:010}-abcdef"),
        );
        *per_key.entry("record hash").or_default() +=
            admin.memory_usage(&keys::conversation(&id)).await;
        *per_key.entry("transcript stream :m").or_default() +=
            admin.memory_usage(&keys::messages(&id)).await;
        *per_key.entry("seen ids hash :seen").or_default() +=
            admin.memory_usage(&keys::seen(&id)).await;
        *per_key.entry("receipts hash :d").or_default() +=
            admin.memory_usage(&keys::deliveries(&id)).await;
    }
    let breakdown: Vec<String> = per_key
        .iter()
        .map(|(name, bytes)| format!("{name} {:.0} B", *bytes as f64 / sample.max(1) as f64))
        .collect();
    println!(
        "  per conversation (MEMORY USAGE over {sample}): {}",
        breakdown.join(", ")
    );
    let answers: usize = (steps.iter())
        .map(|(_, record)| match &record.decision {
            Decision::Answer { text, .. } => text.len(),
            Decision::Escalate { .. } => 0,
        })
        .sum();
    println!(
        "  payload in it: {answers} B of answer text, {} B of questions",
        steps.iter().map(|(q, _)| q.len()).sum::<usize>()
    );
    // What the record holds, field by field: where an open conversation's bytes go.
    let sample_id = conversation_id(
        switchboard_webchat::CHANNEL,
        &format!("s:memory-{:010}-abcdef", 0),
    );
    let record: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(keys::conversation(&sample_id))
        .query_async(&mut admin.0)
        .await
        .expect("HGETALL");
    let fields: Vec<String> = (record.iter())
        .map(|(name, value)| format!("{name} {}", value.len()))
        .collect();
    println!(
        "  record fields (value bytes): {} ({} fields)",
        fields.join(", "),
        record.len()
    );
}

/// The saturation run on a local 3-master Redis Cluster: the same gateway code, with batches
/// split per partition and workers polling each partition (see `store::streams`). The three
/// redis-servers share this machine's cores with the gateway, over loopback TCP.
async fn cluster_saturation(
    triage: &Arc<Triage>,
    questions: &Arc<Vec<&'static str>>,
    conversations: usize,
    messages: usize,
) {
    let cluster = RedisCluster::start();
    println!(
        "\n== Saturation on a 3-master Redis Cluster (loopback TCP): {conversations} conversations x {messages} questions =="
    );
    for repeat in 0..2 {
        for url in cluster.urls() {
            let mut node = redis::Client::open(url.as_str())
                .and_then(|client| client.get_connection())
                .expect("cluster node");
            let _: () = redis::cmd("FLUSHALL").query(&mut node).expect("FLUSHALL");
        }
        let channel = Arc::new(Loopback::default());
        let instances = vec![
            start_instance(
                &cluster.url(),
                &format!("cluster-{repeat}"),
                triage.clone(),
                channel.clone(),
            )
            .await,
        ];
        saturate(&instances, &channel, questions, "warm", 50, 1).await;
        let figures = saturate(
            &instances,
            &channel,
            questions,
            &format!("cluster-{repeat}"),
            conversations,
            messages,
        )
        .await;
        figures.print(&format!("1 instance on the cluster, run {}", repeat + 1));
        println!(
            "    duplicate deliveries {}",
            channel.unexpected.load(Ordering::Relaxed)
        );
    }
}

async fn bench() {
    let conversations = env_usize("SB_BENCH_CONVERSATIONS", 2000);
    let messages = env_usize("SB_BENCH_MESSAGES", 5);
    let redis = RedisServer::start();
    println!(
        "switchboard pipeline bench: redis-server {} (unix socket, no persistence), {} worker pair(s) per instance, {} cpus",
        redis.socket.display(),
        bench_workers(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );

    let bound = if skipped("baseline") {
        None
    } else {
        baseline(&redis).await
    };

    let config = Config::parse(
        "[triage]\nknowledge_dir = \"knowledge\"\n",
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"),
    )
    .expect("bench config");
    let triage = Arc::new(Triage::from_config(&config.triage, &config.base_dir).expect("triage"));
    let questions = check_questions(&triage).await;
    println!(
        "\n{} of {} bench questions are answered by the embedded answerer; using those",
        questions.len(),
        QUESTIONS.len()
    );
    let questions = Arc::new(questions);
    let decide_us = time_decide(&triage, &questions).await;
    println!(
        "triage.decide() alone (embedded answerer, no Redis): {decide_us:.0} us per message = {:.0} msgs/s per core",
        1e6 / decide_us
    );

    let mut admin = Admin::connect(&redis.url()).await;
    let mut best_rate = 0.0f64;
    let mut commands_per_message = f64::NAN;
    if !skipped("throughput") {
        println!(
            "\n== Saturation: {conversations} conversations x {messages} questions, all at once (each question after the previous answer) =="
        );
        for instances_count in [1usize, 2] {
            for repeat in 0..2 {
                admin.flush().await;
                let channel = Arc::new(Loopback::default());
                let mut instances = Vec::new();
                for i in 0..instances_count {
                    instances.push(
                        start_instance(
                            &redis.url(),
                            &format!("bench-{instances_count}-{i}"),
                            triage.clone(),
                            channel.clone(),
                        )
                        .await,
                    );
                }
                // Warm up connections and script caches.
                saturate(&instances, &channel, &questions, "warm", 50, 1).await;
                let before = admin.command_calls().await;
                let used_before = admin.used_memory().await;
                let figures = saturate(
                    &instances,
                    &channel,
                    &questions,
                    &format!("{instances_count}-{repeat}"),
                    conversations,
                    messages,
                )
                .await;
                let after = admin.command_calls().await;
                let used_after = admin.used_memory().await;
                figures.print(&format!(
                    "{instances_count} instance(s), run {}",
                    repeat + 1
                ));
                commands_per_message = print_command_delta(&before, &after, figures.messages);
                println!(
                    "    used_memory grew {:.1} MB ({:.0} B per conversation incl. work streams); duplicate deliveries {}",
                    (used_after as f64 - used_before as f64) / 1e6,
                    (used_after as f64 - used_before as f64) / conversations as f64,
                    channel.unexpected.load(Ordering::Relaxed)
                );
                best_rate = best_rate.max(figures.rate());
            }
        }
    }

    if !skipped("cluster") {
        cluster_saturation(&triage, &questions, conversations, messages).await;
    }

    let mut best_wire_rate = 0.0f64;
    let paced_rate = if best_rate > 0.0 {
        (best_rate * 0.5).max(100.0)
    } else {
        500.0
    };
    if !skipped("latency") {
        println!(
            "\n== Latency at a steady load (open loop: conversations arrive at a fixed rate) =="
        );
        for instances_count in [1usize, 2] {
            // `SB_BENCH_RATES` (comma list of msgs/s) checks a target rate directly.
            let rates: Vec<f64> = std::env::var("SB_BENCH_RATES")
                .ok()
                .map(|list| {
                    list.split(',')
                        .filter_map(|r| r.trim().parse().ok())
                        .collect()
                })
                .unwrap_or_else(|| vec![paced_rate * 0.5, paced_rate]);
            for rate in rates {
                admin.flush().await;
                let channel = Arc::new(Loopback::default());
                let mut instances = Vec::new();
                for i in 0..instances_count {
                    instances.push(
                        start_instance(
                            &redis.url(),
                            &format!("paced-{instances_count}-{i}"),
                            triage.clone(),
                            channel.clone(),
                        )
                        .await,
                    );
                }
                saturate(&instances, &channel, &questions, "warm", 50, 1).await;
                let figures =
                    paced(&instances, &channel, &questions, "p", rate, 5.0, messages).await;
                figures.print(&format!(
                    "{instances_count} instance(s) offered {rate:.0} msgs/s"
                ));
            }
        }
    }

    if !skipped("wire") {
        println!("\n== Over the wire: visitors on WebSocket connections to whole gateways (frame sent -> answer frame received) ==");
        for gateways_count in [1usize, 2] {
            admin.flush().await;
            let mut gateways = Vec::new();
            for _ in 0..gateways_count {
                gateways.push(wire::start_gateway(&redis.url()).await);
            }
            let addrs: Vec<_> = gateways.iter().map(|g| g.local_addr).collect();
            wire::run(&addrs, &questions, "warm", 50, 1, Duration::ZERO).await;
            let visitors = (conversations / 2).max(100);
            let saturated = wire::run(
                &addrs,
                &questions,
                &format!("sat-{gateways_count}"),
                visitors,
                messages,
                Duration::ZERO,
            )
            .await;
            saturated.print(&format!(
                "{gateways_count} gateway(s), {visitors} visitors at once"
            ));
            best_wire_rate = best_wire_rate.max(saturated.rate());
            // Then a steady load at half that rate: latency without a queue.
            let rate = (saturated.rate() * 0.5).max(50.0);
            let arrivals = ((rate * 5.0) / messages as f64).round().max(1.0) as usize;
            let gap = Duration::from_secs_f64(5.0 / arrivals as f64);
            let steady = wire::run(
                &addrs,
                &questions,
                &format!("steady-{gateways_count}"),
                arrivals,
                messages,
                gap,
            )
            .await;
            steady.print(&format!(
                "{gateways_count} gateway(s) offered {rate:.0} msgs/s"
            ));
        }
    }

    let mut trips_per_message = f64::NAN;
    if !skipped("trips") {
        println!("\n== Redis round trips per inbound message (1 instance, counted by the store; MONITOR for the commands) ==");
        trips_per_message = round_trips_by_monitor(
            &redis,
            triage.clone(),
            &questions,
            (conversations / 4).max(50),
            messages,
            (paced_rate * 0.25).max(50.0),
        )
        .await;
    }

    if let Some(bound) = bound {
        println!("\n== Against the machine's single-command bound ==");
        println!(
            "  redis-benchmark SET: {bound:.0} commands/s; our best sustained rate {best_rate:.0} msgs/s; {trips_per_message:.2} round trips per message (saturated); {commands_per_message:.1} commands per message counting those inside scripts"
        );
        if best_rate > 0.0 && trips_per_message.is_finite() {
            let ceiling = bound / trips_per_message;
            println!(
                "  bound / round trips per message = {ceiling:.0} msgs/s; we reach {:.0}% of it ({:.0}% of bound / commands incl. scripts = {:.0} msgs/s)",
                100.0 * best_rate / ceiling,
                100.0 * best_rate * commands_per_message / bound,
                bound / commands_per_message
            );
        }
    }

    if !skipped("memory") {
        memory(&redis, &triage, &questions).await;
    }
    if !skipped("replay") {
        replay::replay_phase(&redis, &triage, &questions).await;
    }
    if !skipped("archive") {
        archive::archive_phase(&redis, &questions).await;
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench());
}
