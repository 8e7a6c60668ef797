//! `gateway.log_format = "json"`: the real binary writes one JSON object per line (what Loki or
//! ELK ingest), with the same fields and spans as the text form; a wrong value is named by key.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_telegram::standin::{TelegramStandIn, TOKEN};

use crate::harness::{RedisServer, TempDir};

const TELEGRAM_ENV: &str = "SB_LOGGING_TELEGRAM";

fn write_config(dir: &Path, redis: &str, telegram: &str) -> std::path::PathBuf {
    let path = dir.join("switchboard.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
log_format = "json"
[redis]
url = "{redis}"
command_timeout_ms = 500
[triage]
knowledge_dir = "knowledge"
[connectors.telegram]
enabled = true
bot_token_env = "{TELEGRAM_ENV}"
api_url = "{telegram}"
poll_timeout_secs = 1
"#
        ),
    )
    .expect("write config");
    std::fs::create_dir_all(dir.join("knowledge")).expect("knowledge dir");
    path
}

/// Every line of `log` as JSON; panics naming the first line that is not an object.
fn parse_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(value) if value.is_object() => value,
            _ => panic!("a log line is not a JSON object: {line}\nwhole log:\n{log}"),
        })
        .collect()
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

/// Sends SIGTERM (as `docker stop` does) and waits, bounded, for a clean exit.
fn terminate(child: &mut Child, log: &Path) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM failed");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the gateway") {
            assert!(
                status.success(),
                "exited with {status} after SIGTERM: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!(
                "still running 15 s after SIGTERM: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_format_writes_one_object_per_line_with_fields_and_spans() {
    let redis = RedisServer::start();
    let telegram = TelegramStandIn::start().await;
    let dir = TempDir::new("json-logs");
    let config = write_config(&dir.0, &redis.url(), &telegram.api_url());
    let log_path = dir.0.join("gateway.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env(TELEGRAM_ENV, TOKEN)
        .stdout(Stdio::from(log.try_clone().expect("log handle")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start the switchboard binary");

    // "telegram connected" is logged inside the connector's span: the line to check spans on.
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("telegram connected") && text.contains("switchboard is running") {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("gateway exited ({status}): {text}");
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("no 'telegram connected' within 20 s: {text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    terminate(&mut child, &log_path);

    let text = std::fs::read_to_string(&log_path).expect("read the log");
    let lines = parse_lines(&text);
    for line in &lines {
        assert!(
            line["timestamp"].as_str().is_some_and(|t| !t.is_empty()),
            "no timestamp: {line}"
        );
        // RUST_LOG=info still filters: no DEBUG or TRACE lines.
        assert!(
            matches!(line["level"].as_str(), Some("INFO" | "WARN" | "ERROR")),
            "level missing or below RUST_LOG=info: {line}"
        );
        assert!(!message(line).is_empty(), "no fields.message: {line}");
    }
    let connected = lines
        .iter()
        .find(|line| message(line) == "telegram connected")
        .expect("the connected line");
    let spans = connected["spans"].as_array().expect("a span list");
    assert!(
        spans
            .iter()
            .any(|span| span["name"] == "connector" && span["channel"] == "telegram"),
        "the connector span and its channel field are missing: {connected}"
    );
    assert_eq!(connected["span"]["name"], "telegram", "{connected}");
    // The event's own fields sit beside the message, as `key=value` does in the text form.
    assert!(
        connected["fields"]["mode"].is_string(),
        "no mode field: {connected}"
    );
    let running = lines
        .iter()
        .find(|line| message(line) == "switchboard is running")
        .expect("the running line");
    assert!(running["fields"]["local_addr"].is_string(), "{running}");
    assert!(
        lines.iter().any(|line| message(line) == "shut down"),
        "no 'shut down' line after SIGTERM:\n{text}"
    );
    assert!(!text.contains(TOKEN), "the bot token is in the log");
}

#[test]
fn an_unknown_log_format_is_a_config_error_with_its_key() {
    let dir = TempDir::new("log-format");
    let path = dir.0.join("switchboard.toml");
    std::fs::write(&path, "[gateway]\nlog_format = \"xml\"\n").expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run switchboard check-config");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "check-config accepted xml: {text}"
    );
    assert!(text.contains("gateway.log_format"), "{text}");
    assert!(
        text.contains("`text`") && text.contains("`json`"),
        "the valid values are not named: {text}"
    );
}
