//! The whole gateway over the wire: visitors on real WebSocket connections to the web chat,
//! each message timed from the frame leaving the visitor to the answer's frame arriving
//! (the web chat is its own platform, so "accepted by the platform" is the visitor's socket).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchboard::app::RunningGateway;
use switchboard::config::Config;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::{collect, Outcome, RunFigures};

/// Starts a whole gateway (web chat, embedded answerer) on a free port against `redis_url`.
pub async fn start_gateway(redis_url: &str) -> RunningGateway {
    let text = format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[redis]
url = "{redis_url}"
[triage]
knowledge_dir = "knowledge"
[connectors.webchat]
enabled = true
rate_limit_per_minute = 1000000
rate_limit_per_ip_per_minute = 1000000
"#
    );
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let config = Config::parse(&text, base).unwrap_or_else(|problems| panic!("{problems:?}"));
    switchboard::app::start(config)
        .await
        .unwrap_or_else(|error| panic!("gateway did not start: {error}"))
}

/// One visitor on its own WebSocket: asks `messages` questions, each after the previous answer.
async fn visitor(
    addr: SocketAddr,
    session: String,
    questions: std::sync::Arc<Vec<&'static str>>,
    first_question: usize,
    messages: usize,
) -> Outcome {
    let mut outcome = Outcome::default();
    let Ok((mut socket, _)) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/webchat/ws")).await
    else {
        outcome.refused = messages;
        return outcome;
    };
    let hello =
        json!({"type": "hello", "session": session, "page": {"url": "https://acme.example/"}});
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
        || next_frame(&mut socket, |frame| frame["type"] == "welcome")
            .await
            .is_none()
    {
        outcome.refused = messages;
        return outcome;
    }
    for m in 0..messages {
        let text = questions[(first_question + m) % questions.len()];
        let frame = json!({"type": "message", "client_id": format!("m{m}"), "text": text});
        let started = Instant::now();
        if socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .is_err()
        {
            outcome.refused += 1;
            continue;
        }
        let answered = next_frame(&mut socket, |frame| {
            frame["type"] == "message"
                && matches!(
                    frame["message"]["author"]["kind"].as_str(),
                    Some("ai" | "system")
                )
        })
        .await;
        match answered {
            Some(_) => outcome
                .latencies_us
                .push(started.elapsed().as_micros() as u64),
            None => outcome.lost += 1,
        }
    }
    outcome
}

/// The next text frame `wanted` accepts, skipping others; `None` after 30 s or a closed socket.
async fn next_frame<S>(socket: &mut S, wanted: impl Fn(&Value) -> bool) -> Option<Value>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).ok()?;
            if wanted(&value) {
                return Some(value);
            }
        }
    }
}

/// Visitors arrive every `gap` (all at once when zero), spread over `gateways`.
pub async fn run(
    gateways: &[SocketAddr],
    questions: &std::sync::Arc<Vec<&'static str>>,
    run: &str,
    visitors: usize,
    messages: usize,
    gap: Duration,
) -> RunFigures {
    let started = Instant::now();
    let mut tasks: Vec<JoinHandle<Outcome>> = Vec::with_capacity(visitors);
    for v in 0..visitors {
        if !gap.is_zero() {
            tokio::time::sleep_until((started + gap * v as u32).into()).await;
        }
        tasks.push(tokio::spawn(visitor(
            gateways[v % gateways.len()],
            format!("wire-{run}-visitor-{v:08}"),
            questions.clone(),
            v,
            messages,
        )));
    }
    collect(tasks, started).await
}
