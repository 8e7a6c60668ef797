//! Gateway processes for the crash and rolling-restart tests: a process slot on a fixed port
//! that is killed and started again, its config, a raw HTTP request that tolerates a dead
//! process, and what Redis holds once the processes are done.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::streams::StreamRangeReply;
use redis::Commands;
use switchboard::model::conversation_id;
use switchboard::store::keys;
use switchboard_api::ChannelKind;
use switchboard_telegram::standin::TOKEN;

use crate::harness::config_dir;
use crate::soak::{SLACK_APP_ENV, SLACK_APP_TOKEN, SLACK_BOT_ENV, SLACK_BOT_TOKEN, TELEGRAM_ENV};
use crate::work::work_left;

/// One gateway process slot: a fixed port and config, restarted after each kill.
pub(crate) struct Slot {
    pub(crate) name: &'static str,
    pub(crate) addr: SocketAddr,
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) child: Option<Child>,
    pub(crate) starts: usize,
}

impl Slot {
    pub(crate) fn start(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open gateway log");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            // Each Telegram send is logged with its outbound id, to explain a duplicate.
            .env("RUST_LOG", "info,switchboard_telegram=debug")
            .env("NO_COLOR", "1")
            .env(TELEGRAM_ENV, TOKEN)
            .env(SLACK_BOT_ENV, SLACK_BOT_TOKEN)
            .env(SLACK_APP_ENV, SLACK_APP_TOKEN)
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the switchboard binary");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) async fn wait_healthy(&mut self, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("{} exited ({status}); log: {}", self.name, tail(&self.log));
            }
            if let Some((200, _)) = request(self.addr, "GET", "/healthz", None).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} did not come up within {limit:?}; log: {}",
            self.name,
            tail(&self.log)
        );
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two gateway processes, `gateway-a` and `gateway-b`, on free ports with the config
/// `config_for(name, addr)` writes, started and healthy.
pub(crate) async fn start_gateway_pair(
    dir: &Path,
    config_for: impl Fn(&str, SocketAddr) -> PathBuf,
) -> Vec<Slot> {
    let mut slots: Vec<Slot> = ["gateway-a", "gateway-b"]
        .into_iter()
        .map(|name| {
            let addr = free_port();
            Slot {
                name,
                addr,
                config: config_for(name, addr),
                log: dir.join(format!("{name}.log")),
                child: None,
                starts: 0,
            }
        })
        .collect();
    for slot in &mut slots {
        slot.start();
    }
    for slot in &mut slots {
        slot.wait_healthy(Duration::from_secs(20)).await;
    }
    slots
}

pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("address")
}

/// The config of one gateway process: web chat and Telegram polling, time compressed for
/// tests; `gateway` goes into `[gateway]`, `sections` after the rest.
pub(crate) fn write_process_config(
    dir: &Path,
    name: &str,
    addr: SocketAddr,
    redis: &str,
    telegram: &str,
    gateway: &str,
    sections: &str,
) -> PathBuf {
    let knowledge = config_dir().join("knowledge");
    let text = format!(
        r#"
[gateway]
listen = "{addr}"
admin_listen = "127.0.0.1:0"
{gateway}
[redis]
url = "{redis}"
command_timeout_ms = 500
[outbox]
claim_idle_ms = 4000
initial_backoff_ms = 50
max_backoff_ms = 400
send_timeout_ms = 3000
[triage]
knowledge_dir = "{knowledge}"
[connectors.webchat]
enabled = true
rate_limit_per_minute = 10000
rate_limit_per_ip_per_minute = 100000
[connectors.telegram]
enabled = true
bot_token_env = "{TELEGRAM_ENV}"
api_url = "{telegram}"
poll_timeout_secs = 1
{sections}"#,
        knowledge = knowledge.display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write gateway config");
    path
}

/// One HTTP/1.1 request; `None` when the gateway is not there (killed) or too slow.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let body = body.unwrap_or("");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             content-type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response).to_string();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .ok()
        .flatten()
}

/// A transcript entry: (stream id, role, channel message id).
pub(crate) type Entry = (String, String, String);

pub(crate) fn transcript(
    client: &mut impl redis::ConnectionLike,
    channel: ChannelKind,
    key: &str,
) -> Vec<Entry> {
    let id = conversation_id(channel, key);
    let range: StreamRangeReply = client
        .xrange_all(keys::messages(&id))
        .expect("read transcript");
    range
        .ids
        .iter()
        .map(|entry| {
            (
                entry.id.clone(),
                entry.get::<String>("role").unwrap_or_default(),
                entry.get::<String>("cmid").unwrap_or_default(),
            )
        })
        .collect()
}

pub(crate) fn is_reply(role: &str) -> bool {
    matches!(role, "ai" | "system" | "agent")
}

/// True when no work is left anywhere: inbound and outbox empty, nothing pending or parked.
pub(crate) fn quiet(client: &mut impl redis::ConnectionLike) -> bool {
    let left = work_left(client);
    // Acked entries are deleted, so an empty stream has nothing pending either.
    left.inbound == 0 && left.outbox == 0 && left.parked == 0
}
