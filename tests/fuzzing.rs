//! The bounded fuzz run of `cargo test`: every parser of outside input replays its corpus
//! and then a seeded, time-bounded mutation loop over it.
//!
//! The deep runs use cargo-fuzz (`fuzz/`, see `fuzz/README.md`); building its instrumented
//! targets alone takes longer than CI can spend, so CI runs this instead: the same property
//! checks (`fuzz/checks.rs`) on the same entry points, the committed corpus (`fuzz/corpus/`,
//! what the deep runs found) and the seeds named in `fuzz/seeds.txt`, then mutations (bit
//! flips, truncation, splicing, repeated chunks, JSON-aware value swaps) until the budget is
//! spent. A failing input is written to `tests/artifacts/fuzz/` and the failure names it, so
//! `cargo fuzz run <target> <file>` reproduces it.
//!
//! `SWITCHBOARD_FUZZ_SECS` sets the budget per parser (default 4), `SWITCHBOARD_FUZZ_SEED`
//! the mutation seed (default fixed, so a CI failure reproduces).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

/// One input may take this long before it counts as a hang (a debug build, shared cores).
const HANG_LIMIT: Duration = Duration::from_secs(5);
/// Mutants are cut to this size: the parsers bound their own work, not the fuzzer's memory.
const MAX_INPUT: usize = 256 * 1024;
const DEFAULT_SECS: u64 = 4;
const DEFAULT_SEED: u64 = 0x5b_2026;

#[test]
fn email_mime_survives_fuzzing() {
    fuzz("email_mime");
}

#[test]
fn email_trim_survives_fuzzing() {
    fuzz("email_trim");
}

#[test]
fn slack_events_survive_fuzzing() {
    fuzz("slack_events");
}

#[test]
fn telegram_updates_survive_fuzzing() {
    fuzz("telegram_update");
}

#[test]
fn discord_payloads_survive_fuzzing() {
    fuzz("discord_payload");
}

#[test]
fn webchat_frames_survive_fuzzing() {
    fuzz("webchat_frame");
}

#[test]
fn config_files_survive_fuzzing() {
    fuzz("config_toml");
}

#[test]
fn every_target_has_a_test_and_inputs() {
    let names: Vec<&str> = checks::TARGETS.iter().map(|(name, _)| *name).collect();
    let source = include_str!("fuzzing.rs");
    for name in &names {
        assert!(
            source.contains(&format!("fuzz(\"{name}\")")),
            "{name} has no test"
        );
        assert!(!inputs_of(name).is_empty(), "{name} has no corpus or seeds");
        assert!(
            repo()
                .join("fuzz/fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "{name} has no cargo-fuzz target"
        );
    }
}

fn fuzz(name: &str) {
    let check = checks::TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map(|(_, check)| *check)
        .expect("a known target");
    let corpus = inputs_of(name);
    assert!(!corpus.is_empty(), "{name}: no corpus and no seeds");
    let budget = Duration::from_secs(env_number("SWITCHBOARD_FUZZ_SECS", DEFAULT_SECS));
    let seed = env_number("SWITCHBOARD_FUZZ_SEED", DEFAULT_SEED);
    let mut rng = StdRng::seed_from_u64(seed);
    let runner = Runner::start(name, check);

    for input in &corpus {
        runner.run(input, "corpus");
    }
    let started = Instant::now();
    let mut executions = 0u64;
    while started.elapsed() < budget {
        let mutant = mutate(&corpus, &mut rng);
        runner.run(&mutant, &format!("mutant (seed {seed})"));
        executions += 1;
    }
    println!(
        "{name}: {} corpus inputs, {executions} mutants in {:.1?} (seed {seed})",
        corpus.len(),
        started.elapsed()
    );
}

/// Runs inputs on one worker thread, so a hang is reported (with its input) instead of
/// stalling the test run.
struct Runner {
    name: String,
    inputs: mpsc::Sender<Vec<u8>>,
    outcomes: mpsc::Receiver<Result<(), String>>,
}

impl Runner {
    fn start(name: &str, check: fn(&[u8])) -> Runner {
        let (inputs, input_rx) = mpsc::channel::<Vec<u8>>();
        let (outcome_tx, outcomes) = mpsc::channel();
        std::thread::spawn(move || {
            for input in input_rx {
                let outcome = catch_unwind(AssertUnwindSafe(|| check(&input))).map_err(|panic| {
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "panic".to_owned())
                });
                if outcome_tx.send(outcome).is_err() {
                    return;
                }
            }
        });
        Runner {
            name: name.to_owned(),
            inputs,
            outcomes,
        }
    }

    fn run(&self, input: &[u8], what: &str) {
        self.inputs
            .send(input.to_vec())
            .expect("the worker is alive");
        let failure = match self.outcomes.recv_timeout(HANG_LIMIT) {
            Ok(Ok(())) => return,
            Ok(Err(panic)) => format!("panicked: {panic}"),
            Err(_) => format!("did not finish within {HANG_LIMIT:?}"),
        };
        let saved = save_artifact(&self.name, input);
        panic!(
            "{}: a {what} input {failure}\ninput saved to {} ({} bytes): {:?}",
            self.name,
            saved.display(),
            input.len(),
            String::from_utf8_lossy(&input[..input.len().min(300)])
        );
    }
}

fn save_artifact(name: &str, input: &[u8]) -> PathBuf {
    let dir = repo().join("tests/artifacts/fuzz");
    let _ = std::fs::create_dir_all(&dir);
    let digest = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{name}-{digest:016x}"));
    let _ = std::fs::write(&path, input);
    path
}

/// The committed corpus of a target plus its seeds (the fixtures named in `fuzz/seeds.txt`).
fn inputs_of(name: &str) -> Vec<Vec<u8>> {
    let mut inputs = Vec::new();
    read_files(&repo().join("fuzz/corpus").join(name), "", &mut inputs);
    let seeds = std::fs::read_to_string(repo().join("fuzz/seeds.txt")).expect("fuzz/seeds.txt");
    for line in seeds.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [target, folder, suffix] = fields[..] {
            if target == name {
                let dir = repo().join(folder);
                assert!(dir.is_dir(), "fuzz/seeds.txt names {folder}: not a folder");
                read_files(&dir, suffix, &mut inputs);
            }
        }
    }
    inputs
}

fn read_files(dir: &Path, suffix: &str, into: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            read_files(&path, suffix, into);
        } else if path.to_string_lossy().ends_with(suffix) {
            if let Ok(bytes) = std::fs::read(&path) {
                into.push(bytes);
            }
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// One mutant of a random corpus input: one to four stacked mutations.
fn mutate(corpus: &[Vec<u8>], rng: &mut StdRng) -> Vec<u8> {
    let mut data = corpus[rng.random_range(0..corpus.len())].clone();
    for _ in 0..rng.random_range(1..=4) {
        data = match rng.random_range(0..10) {
            0 | 1 => json_swap(&data, rng).unwrap_or_else(|| flip_bits(data, rng)),
            2 => flip_bits(data, rng),
            3 => interesting_byte(data, rng),
            4 => truncate(data, rng),
            5 => splice(data, &corpus[rng.random_range(0..corpus.len())], rng),
            6 => repeat_chunk(data, rng),
            7 => delete_chunk(data, rng),
            8 => insert_token(data, rng),
            _ => json_swap(&data, rng).unwrap_or_else(|| insert_token(data, rng)),
        };
        data.truncate(MAX_INPUT);
    }
    data
}

fn flip_bits(mut data: Vec<u8>, rng: &mut StdRng) -> Vec<u8> {
    if !data.is_empty() {
        for _ in 0..rng.random_range(1..=8) {
            let at = rng.random_range(0..data.len());
            data[at] ^= 1 << rng.random_range(0..8);
        }
    }
    data
}

fn interesting_byte(mut data: Vec<u8>, rng: &mut StdRng) -> Vec<u8> {
    const BYTES: &[u8] = b"\0\r\n\t \"\\{}[]:,=<>@%+-.0189;'#\x7f\xff\xc3\xe2";
    if !data.is_empty() {
        let at = rng.random_range(0..data.len());
        data[at] = BYTES[rng.random_range(0..BYTES.len())];
    }
    data
}

fn truncate(mut data: Vec<u8>, rng: &mut StdRng) -> Vec<u8> {
    data.truncate(rng.random_range(0..=data.len()));
    data
}

fn splice(data: Vec<u8>, other: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let cut = rng.random_range(0..=data.len());
    let from = rng.random_range(0..=other.len());
    let mut out = data[..cut].to_vec();
    out.extend_from_slice(&other[from..]);
    out
}

fn repeat_chunk(data: Vec<u8>, rng: &mut StdRng) -> Vec<u8> {
    if data.is_empty() {
        return data;
    }
    let start = rng.random_range(0..data.len());
    let end = rng.random_range(start..=data.len().min(start + 256));
    let times = [2, 16, 1000][rng.random_range(0..3)];
    let mut out = data[..end].to_vec();
    for _ in 0..times {
        out.extend_from_slice(&data[start..end]);
    }
    out.extend_from_slice(&data[end..]);
    out
}

fn delete_chunk(mut data: Vec<u8>, rng: &mut StdRng) -> Vec<u8> {
    if !data.is_empty() {
        let start = rng.random_range(0..data.len());
        let end = rng.random_range(start..=data.len().min(start + 512));
        data.drain(start..end);
    }
    data
}

/// Tokens of the formats under test: MIME, JSON, TOML, Slack markup.
const TOKENS: &[&str] = &[
    "\r\n\r\n",
    "\n>",
    "\n-- \n",
    "On Mon, 1 Jan 2024, a@b.c wrote:\n",
    "=?utf-8?B?",
    "?=",
    "=?iso-8859-1?Q?",
    "Content-Type: multipart/mixed; boundary=\"b\"\r\n",
    "--b\r\n",
    "--b--",
    "Content-Transfer-Encoding: base64\r\n",
    "quoted-printable",
    "=\r\n",
    "=C3=A9",
    "From: ",
    "<a@b.c>",
    "Message-ID: <x@y>\r\n",
    "References: ",
    "Auto-Submitted: auto-replied\r\n",
    "support+",
    "@acme.example",
    "\"type\":\"message\"",
    "\"event_callback\"",
    "\"text\":",
    "\"thread_ts\":",
    "\"user\":",
    "null",
    "true",
    "1e400",
    "-1",
    "18446744073709551616",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "[[[[[[[[",
    "{\"a\":",
    "&lt;",
    "&amp;",
    "<@U1|x>",
    "<!here>",
    "[connectors.webchat]\n",
    "[[desk.routes]]\n",
    " = ",
    "\"\"\"",
    "'''",
    "0x7fffffff",
    "inf",
    "nan",
    "9999999999999999999",
    "{\"retry_after\":",
    "\"custom_id\":\"sb:rate:",
    "\u{202e}",
    "\u{feff}",
    "é",
    "👍",
];

fn insert_token(data: Vec<u8>, rng: &mut StdRng) -> Vec<u8> {
    let at = rng.random_range(0..=data.len());
    let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
    let mut out = data[..at].to_vec();
    out.extend_from_slice(token);
    out.extend_from_slice(&data[at..]);
    out
}

/// Replaces one value anywhere in a JSON document with a value parsers tend to mishandle.
fn json_swap(data: &[u8], rng: &mut StdRng) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(data).ok()?;
    let mut slots = 0usize;
    count_slots(&value, &mut slots);
    let target = rng.random_range(0..slots.max(1));
    let replacement = interesting_value(rng);
    let mut seen = 0usize;
    replace_slot(&mut value, target, &mut seen, &replacement);
    serde_json::to_vec(&value).ok()
}

fn count_slots(value: &Value, slots: &mut usize) {
    *slots += 1;
    match value {
        Value::Array(items) => items.iter().for_each(|item| count_slots(item, slots)),
        Value::Object(map) => map.values().for_each(|item| count_slots(item, slots)),
        _ => {}
    }
}

fn replace_slot(value: &mut Value, target: usize, seen: &mut usize, replacement: &Value) -> bool {
    if *seen == target {
        *value = replacement.clone();
        return true;
    }
    *seen += 1;
    match value {
        Value::Array(items) => items
            .iter_mut()
            .any(|item| replace_slot(item, target, seen, replacement)),
        Value::Object(map) => map
            .values_mut()
            .any(|item| replace_slot(item, target, seen, replacement)),
        _ => false,
    }
}

fn interesting_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..16) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => serde_json::json!(i64::MIN),
        3 => serde_json::json!(u64::MAX),
        4 => serde_json::json!(-1),
        5 => serde_json::json!(1e300),
        6 => serde_json::json!(-0.5),
        7 => Value::String(String::new()),
        8 => Value::String(" \n\t ".to_owned()),
        9 => Value::String("x".repeat(rng.random_range(1..70_000))),
        10 => Value::String("é👍\u{202e}\u{0}\u{7}".repeat(rng.random_range(1..300))),
        11 => serde_json::json!([]),
        12 => serde_json::json!({}),
        13 => serde_json::json!([[[[[[[[[[1]]]]]]]]]]),
        14 => Value::String(":::".to_owned()),
        _ => serde_json::json!("1700000000.000100"),
    }
}
