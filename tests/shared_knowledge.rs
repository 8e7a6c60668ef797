//! One knowledge base for every instance: an entry approved on one gateway process is answered
//! by another one, each running from its own working directory and knowledge folder, and by
//! both again after they restart from folders holding only the base knowledge (as containers
//! recreated by docker compose would). `switchboard kb export` writes what the instances
//! answer from, in a file the knowledge loader reads back as it is.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::Commands;
use serde_json::{json, Value};
use switchboard::learning::{Candidate, KnowledgeLoop, LearningError, LEARNED_FILE};
use switchboard::store::{keys, Store};
use switchboard::triage::{Triage, TriageConfig};

use crate::harness::{config_dir, http, on_single_and_cluster, TempDir, TestRedis};

const QUESTION: &str = "Do you offer a discount for students?";
const ANSWER: &str = "Yes! Students get 50% off the Pro plan with a school email address.";

/// A `switchboard run` process in a working directory of its own, with a copy of the base
/// knowledge in `knowledge/` there.
struct Instance {
    dir: TempDir,
    addr: SocketAddr,
    child: Child,
}

impl Instance {
    async fn start(name: &str, redis: &str) -> Instance {
        let dir = TempDir::new(name);
        copy_base_knowledge(&dir.0.join("knowledge"));
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        std::fs::write(
            dir.0.join("switchboard.toml"),
            format!(
                "[gateway]\nlisten = \"{addr}\"\nadmin_listen = \"127.0.0.1:0\"\n[redis]\nurl = \"{redis}\"\ncommand_timeout_ms = 500\n\
                 [triage]\nknowledge_dir = \"knowledge\"\n\
                 [connectors.webchat]\nenabled = true\nrate_limit_per_minute = 1000\n"
            ),
        )
        .expect("write config");
        let log = std::fs::File::create(dir.0.join("gateway.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["run", "--config", "switchboard.toml"])
            .current_dir(&dir.0)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the switchboard binary");
        let mut instance = Instance { dir, addr, child };
        instance.wait_healthy().await;
        instance
    }

    async fn wait_healthy(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gateway exited ({status}): {}", self.log());
            }
            // `http` insists on an answer; until the port is open there is none to insist on.
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                let health = tokio::time::timeout(
                    Duration::from_secs(2),
                    http(self.addr, "GET", "/healthz", None),
                );
                if let Ok((200, _)) = health.await {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway did not come up: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("gateway.log")).unwrap_or_default()
    }

    /// Runs `switchboard kb …` with this instance's config, from its working directory.
    fn kb(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("kb")
            .args(args)
            .args(["--config", "switchboard.toml"])
            .current_dir(&self.dir.0)
            .env("RUST_LOG", "off")
            .output()
            .expect("run switchboard kb");
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    }

    /// A new web chat visitor asks `question`; returns the first reply they see (an AI
    /// answer, or the notice that a person will answer).
    async fn ask(&self, visitor: &str, question: &str) -> Value {
        let visitor = format!("shared-knowledge-{visitor}");
        let body = json!({"session": visitor, "client_id": "q1", "text": question}).to_string();
        let (status, reply) = http(self.addr, "POST", "/webchat/messages", Some(&body)).await;
        assert_eq!(status, 200, "{reply}");
        let path = format!("/webchat/messages?session={visitor}");
        let started = Instant::now();
        loop {
            let (_, history) = http(self.addr, "GET", &path, None).await;
            let history: Value = serde_json::from_str(&history).unwrap_or(Value::Null);
            let reply = history["messages"].as_array().and_then(|messages| {
                messages
                    .iter()
                    .find(|message| message["author"]["kind"] != "customer")
                    .cloned()
            });
            if let Some(reply) = reply {
                return reply;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no reply to {visitor}: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_base_knowledge(to: &Path) {
    std::fs::create_dir_all(to).expect("knowledge folder");
    for entry in std::fs::read_dir(config_dir().join("knowledge")).expect("base knowledge") {
        let path = entry.expect("base knowledge file").path();
        std::fs::copy(&path, to.join(path.file_name().expect("file name"))).expect("copy");
    }
}

fn answered_from_learning(reply: &Value) -> bool {
    reply["author"]["kind"] == "ai" && reply["text"].as_str().unwrap_or("").contains("50% off")
}

fn candidate(id: &str, question: &str, answer: &str) -> Candidate {
    Candidate {
        id: id.into(),
        conversation_id: "c-learned".into(),
        question: question.into(),
        answer: answer.into(),
        agent: "Priya".into(),
        status: "pending".into(),
        created_ms: switchboard::model::now_ms(),
        decided_ms: None,
        error: None,
    }
}

async fn store(redis: &TestRedis) -> Store {
    Store::connect(&redis.url(), Duration::from_millis(500))
        .await
        .expect("connect to redis")
}

async fn an_entry_approved_on_one_instance_is_answered_by_every_instance_and_after_recreation(
    redis: TestRedis,
) {
    let url = redis.url();
    let first = Instance::start("kb-first", &url).await;
    let second = Instance::start("kb-second", &url).await;
    let reply = second.ask("kb-visitor-before", QUESTION).await;
    assert!(
        !answered_from_learning(&reply),
        "nobody knows it yet: {reply}"
    );

    // An agent's answer waits for review; an admin approves it on the first instance's host.
    let learning = KnowledgeLoop::new(store(&redis).await, None);
    learning
        .propose(&candidate("kb-0a1b2c3d4e", QUESTION, ANSWER))
        .await
        .expect("propose");
    let (ok, out) = first.kb(&["approve", "kb-0a1b2c3d4e"]);
    assert!(ok, "{out}");
    assert!(
        !first.dir.0.join("knowledge").join(LEARNED_FILE).exists(),
        "nothing is written to the instance's disk"
    );

    // The other process answers it within seconds; each try is a new visitor, so no
    // repeated-question rule gets in the way.
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let reply = second.ask(&format!("kb-visitor-{tries}"), QUESTION).await;
        if answered_from_learning(&reply) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the second instance still does not answer after {tries} tries: {reply}\n{}",
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = first.ask("kb-visitor-first", QUESTION).await;
    assert!(answered_from_learning(&reply), "{reply}");
    let (ok, listed) = second.kb(&["list"]);
    assert!(
        ok && listed.contains("learned-0a1b2c3d4e") && listed.contains(QUESTION),
        "{listed}"
    );

    // Both containers are recreated: fresh folders with only the base knowledge.
    drop(first);
    drop(second);
    let first = Instance::start("kb-first-again", &url).await;
    let second = Instance::start("kb-second-again", &url).await;
    for (instance, visitor) in [(&first, "kb-after-1"), (&second, "kb-after-2")] {
        let reply = instance.ask(visitor, QUESTION).await;
        assert!(
            answered_from_learning(&reply),
            "answered from the first message after a restart: {reply}"
        );
    }

    // Taking the entry out is seen by every instance too.
    let (ok, out) = first.kb(&["remove", "learned-0a1b2c3d4e"]);
    assert!(ok, "{out}");
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let reply = second.ask(&format!("kb-removed-{tries}"), QUESTION).await;
        if !answered_from_learning(&reply) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still answered after removal: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, out) = first.kb(&["remove", "learned-0a1b2c3d4e"]);
    assert!(!ok && out.contains("no learned entry"), "{out}");
}

on_single_and_cluster!(
    an_entry_approved_on_one_instance_is_answered_by_every_instance_and_after_recreation,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_is_a_knowledge_file_that_loads_as_what_the_instances_answer_from() {
    let redis = TestRedis::Single(crate::harness::RedisServer::start());
    let knowledge = TempDir::new("kb-export");
    copy_base_knowledge(&knowledge.0.join("knowledge"));
    let config = knowledge.0.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[redis]\nurl = \"{}\"\n[triage]\nknowledge_dir = \"knowledge\"\n",
            redis.url()
        ),
    )
    .expect("write config");
    let triage = std::sync::Arc::new(
        Triage::from_config(&TriageConfig::default(), &knowledge.0).expect("base knowledge"),
    );
    let base_entries = triage.entries().len();
    let learning = KnowledgeLoop::new(store(&redis).await, Some(triage.clone()));
    // Answers as agents write them: markdown, a code block, a heading, a line that reads like
    // metadata; one is approved with an edited answer.
    let approvals = [
        ("kb-e1", QUESTION, ANSWER, None),
        (
            "kb-e2",
            "How do I call the API from curl?",
            "Like this:\n\n```sh\n## not a heading\ncurl -H 'Authorization: Bearer KEY' https://api.acme.cloud/v1/me\n```\n\n## Then\nCheck the `id` field.",
            None,
        ),
        (
            "kb-e3",
            "What is my order id?",
            "draft",
            Some("Id: the number in your confirmation email, starting with AC-."),
        ),
    ];
    for (id, question, answer, edited) in approvals {
        learning
            .propose(&candidate(id, question, answer))
            .await
            .expect("propose");
        learning.approve(id, edited).await.expect("approve");
    }
    let answered: Vec<_> = triage.entries().split_off(base_entries);
    assert_eq!(answered.len(), 3, "{answered:?}");
    assert!(answered[2]
        .answer
        .contains("the number in your confirmation email"));

    let out = knowledge.0.join("exported.md");
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["kb", "export", "--out"])
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "off")
        .output()
        .expect("run switchboard kb export");
    assert!(output.status.success(), "{output:?}");
    let to_stdout = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["kb", "export", "--config"])
        .arg(&config)
        .env("RUST_LOG", "off")
        .output()
        .expect("run switchboard kb export");
    let exported = std::fs::read_to_string(&out).expect("exported file");
    assert_eq!(String::from_utf8_lossy(&to_stdout.stdout), exported);

    // Loaded as a normal knowledge file from a folder of its own, it holds the same entries.
    let folder = TempDir::new("kb-export-load");
    std::fs::create_dir_all(folder.0.join("knowledge")).expect("folder");
    std::fs::copy(&out, folder.0.join("knowledge").join("learned.md")).expect("copy");
    let loaded = Triage::from_config(&TriageConfig::default(), &folder.0)
        .expect("the export loads as a knowledge file")
        .entries();
    assert_eq!(loaded, answered, "{exported}");

    // Committed into the knowledge folder next to the same entries in Redis, each is answered
    // once (the folder's copy wins).
    std::fs::copy(&out, knowledge.0.join("knowledge").join("exported.md")).expect("copy");
    assert_eq!(
        triage.reload_knowledge().expect("reloads"),
        base_entries + 3
    );

    // An older version's learned.md is loaded as it is, and `kb import` moves it to Redis.
    redis
        .client()
        .del::<_, ()>(keys::KB_LEARNED)
        .expect("forget the learned entries");
    std::fs::remove_file(knowledge.0.join("knowledge").join("exported.md")).expect("rm");
    let legacy = knowledge.0.join("knowledge").join(LEARNED_FILE);
    std::fs::write(
        &legacy,
        "+++\ncategory = \"learned\"\n+++\n\n## Can I pay by bank transfer?\nId: learned-legacy01\n\nYes, on yearly plans.\n",
    )
    .expect("legacy file");
    learning.reload().await.expect("reload");
    assert_eq!(
        triage.reload_knowledge().expect("reloads"),
        base_entries + 1
    );
    let import = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["kb", "import"])
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "off")
            .output()
            .expect("run switchboard kb import")
    };
    let output = import(&[]);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.contains("1 of 1"),
        "{output:?}"
    );
    let output = import(&[]);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("0 of 1"), "importing twice keeps one: {said}");
    std::fs::remove_file(&legacy).expect("rm legacy");
    triage.reload_knowledge().expect("reloads");
    assert_eq!(learning.reload().await.expect("reload"), 1);
    let answered = triage.entries();
    assert_eq!(answered.len(), base_entries + 1);
    assert!(
        answered.iter().any(|entry| entry.id == "learned-legacy01"),
        "still answered once the file is gone"
    );
    let output = import(&["/nonexistent/learned.md"]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && said.contains("cannot read /nonexistent/learned.md"),
        "{said}"
    );
}

#[tokio::test]
async fn a_failed_knowledge_base_write_keeps_the_candidate_and_says_why() {
    let redis = TestRedis::Single(crate::harness::RedisServer::start());
    let learning = KnowledgeLoop::new(store(&redis).await, None);
    assert!(learning
        .propose(&candidate("kb-test", "Can I pay by bank transfer?", "Yes."))
        .await
        .unwrap());
    assert!(
        !learning
            .propose(&candidate("kb-test", "Can I pay by bank transfer?", "Yes."))
            .await
            .unwrap(),
        "proposing twice keeps one"
    );
    // Something else holds the key: Redis refuses the write.
    redis
        .client()
        .set::<_, _, ()>(keys::KB_LEARNED, "not a hash")
        .unwrap();
    let error = learning
        .approve("kb-test", None)
        .await
        .expect_err("the write is refused");
    assert!(matches!(error, LearningError::Write { .. }), "{error}");
    assert!(error.to_string().contains(keys::KB_LEARNED), "{error}");
    let kept = learning.candidates().await.unwrap().remove(0);
    assert_eq!(kept.status, "pending", "kept for another try");
    assert!(
        kept.error.as_deref().unwrap_or("").contains("WRONGTYPE"),
        "and says why: {kept:?}"
    );

    // Once the key is fixed, the same candidate is approved.
    redis.client().del::<_, ()>(keys::KB_LEARNED).unwrap();
    learning.approve("kb-test", None).await.expect("approves");
    assert_eq!(learning.learned().await.unwrap().len(), 1);

    // A candidate with nothing to answer stays pending too, with what to do.
    learning
        .propose(&candidate("kb-empty", "Hello?", " "))
        .await
        .unwrap();
    let error = learning.approve("kb-empty", None).await.expect_err("empty");
    assert!(error.to_string().contains("edited answer"), "{error}");
    let error = learning.reject("kb-missing").await.expect_err("unknown id");
    assert!(matches!(error, LearningError::NotFound(_)));
}
