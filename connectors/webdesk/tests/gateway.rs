//! The web desk end to end: a real gateway on real Redis, an agent signing in over HTTP and
//! listening on the desk's WebSocket, a scripted web chat visitor on the other side.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use switchboard::desk::inbox::{CSAT_QUESTION, HANDBACK_NOTICE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{eventually, start_gateway, test_config, RedisServer};
use crate::webchat::{Widget, WEBCHAT};

const WAIT: Duration = Duration::from_secs(10);

/// A response: status, headers (lower-case names) and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(header, _)| header == "set-cookie")
            .find_map(|(_, value)| value.strip_prefix(&format!("{name}=")))
            .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
    }

    fn set_cookie(&self) -> String {
        self.headers
            .iter()
            .filter(|(header, _)| header == "set-cookie")
            .map(|(_, value)| value.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not json: {}", self.body))
    }
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(text.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A browser signed in to the desk: its session cookie and CSRF token.
struct Agent {
    addr: SocketAddr,
    cookie: String,
    csrf: String,
}

fn form_field<'a>(html: &'a str, name: &str) -> &'a str {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("field in form") + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    &html[start..end]
}

/// Loads the sign-in form and posts it; returns the answer to the post.
async fn sign_in(addr: SocketAddr, user: &str, password: &str) -> Reply {
    let form = request(addr, "GET", "/desk", &[], "").await;
    assert_eq!(form.status, 200);
    let csrf = form_field(&form.body, "csrf").to_owned();
    let login_cookie = format!("sb_desk_login={}", form.cookie("sb_desk_login").unwrap());
    let origin = format!("http://{addr}");
    let body = format!("csrf={csrf}&user={user}&password={password}");
    request(
        addr,
        "POST",
        "/desk/login",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &login_cookie),
            ("origin", &origin),
        ],
        &body,
    )
    .await
}

impl Agent {
    async fn sign_in(addr: SocketAddr, user: &str, password: &str) -> Agent {
        let answer = sign_in(addr, user, password).await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        let set = answer.set_cookie();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        let cookie = format!("sb_desk={}", answer.cookie("sb_desk").expect("session"));
        let page = request(addr, "GET", "/desk", &[("cookie", &cookie)], "").await;
        let marker = "name=\"csrf-token\" content=\"";
        let start = page.body.find(marker).expect("the desk page") + marker.len();
        let csrf = page.body[start..start + 64].to_owned();
        Agent { addr, cookie, csrf }
    }

    async fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[("cookie", &self.cookie)], "").await
    }

    async fn act_with(&self, thread: &str, body: Value, csrf: Option<&str>, origin: &str) -> Reply {
        let path = format!("/desk/api/threads/{thread}/actions");
        let mut headers = vec![
            ("cookie", self.cookie.as_str()),
            ("content-type", "application/json"),
            ("origin", origin),
        ];
        if let Some(csrf) = csrf {
            headers.push(("x-csrf-token", csrf));
        }
        request(self.addr, "POST", &path, &headers, &body.to_string()).await
    }

    async fn act(&self, thread: &str, kind: &str, text: &str) {
        let origin = format!("http://{}", self.addr);
        let answer = self
            .act_with(thread, json!({"kind": kind, "text": text}), Some(&self.csrf), &origin)
            .await;
        assert_eq!(answer.status, 200, "{kind}: {}", answer.body);
    }

    async fn queue(&self) -> Vec<Value> {
        let answer = self.get("/desk/api/queue").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()["threads"].as_array().cloned().unwrap_or_default()
    }

    /// The first thread in the queue whose customer is `customer`.
    async fn waiting(&self, customer: &str) -> Value {
        eventually(WAIT, "the escalation in the desk's queue", || async {
            self.queue()
                .await
                .into_iter()
                .find(|thread| thread["customer"] == customer)
        })
        .await
    }

    async fn thread(&self, id: &str) -> Value {
        let answer = self.get(&format!("/desk/api/threads/{id}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    }

    async fn live(&self) -> crate::webchat::Socket {
        let mut request = format!("ws://{}/desk/ws", self.addr)
            .into_client_request()
            .expect("ws request");
        request
            .headers_mut()
            .insert("cookie", self.cookie.parse().expect("header value"));
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the desk's websocket");
        socket
    }
}

/// Waits for a desk frame about `thread`.
async fn change_of(socket: &mut crate::webchat::Socket, thread: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, socket.next())
            .await
            .expect("a live change within 10 s")
            .expect("socket open")
            .expect("frame");
        if let Ok(text) = frame.to_text() {
            let value: Value = serde_json::from_str(text).unwrap_or_default();
            if value["thread"] == thread {
                return;
            }
        }
    }
}

pub(crate) fn desk_config(sam: &str, bill: &str) -> String {
    format!(
        r#"{WEBCHAT}
[desk.web]
enabled = true
channel = "support"
login_attempts = 5
[[desk.web.agents]]
id = "sam"
name = "Sam"
password_hash = "{sam}"
[[desk.web.agents]]
id = "bill"
name = "Bill"
password_hash = "{bill}"
teams = ["billing"]
"#
    )
}

pub(crate) async fn escalated_visitor(addr: SocketAddr, session: &str) -> Widget {
    let (mut widget, _) = Widget::connect(addr, session, None).await;
    widget
        .send(json!({"type": "message", "client_id": "q1", "text": "How do I reset my password?"}))
        .await;
    widget.message_from("ai").await;
    widget
        .send(json!({"type": "message", "client_id": "q2", "text": "I want to talk to a real person"}))
        .await;
    widget.message_from("system").await;
    widget
}

#[tokio::test]
async fn an_agent_signs_in_claims_replies_hands_back_and_resolves_on_the_web_desk() {
    let redis = RedisServer::start();
    let sam = switchboard_webdesk::hash_password("sam-password-1").unwrap();
    let bill = switchboard_webdesk::hash_password("bill-password-1").unwrap();
    // A message after the resolve opens a new case rather than reopening this one.
    let config = format!("{}[case]\nreopen_window_hours = 0\n", desk_config(&sam, &bill));
    let gateway = start_gateway(test_config(&redis, &config)).await;
    let addr = gateway.local_addr;

    let wrong = sign_in(addr, "sam", "not-the-password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.cookie("sb_desk").is_none());
    let agent = Agent::sign_in(addr, "sam", "sam-password-1").await;
    let mut live = agent.live().await;

    let mut widget = escalated_visitor(addr, "webdesk-visitor-00000001").await;
    let waiting = agent.waiting("Dana").await;
    let id = waiting["id"].as_str().unwrap().to_owned();
    assert_eq!(waiting["channel"], "support");
    assert_eq!(waiting["customer_channel"], "webchat");
    change_of(&mut live, &id).await;
    let view = agent.thread(&id).await;
    let briefing = &view["thread"]["briefing"];
    assert_eq!(briefing["reason"], "human_requested");
    assert_eq!(briefing["page_url"], "https://acme.example/pricing");
    assert!(briefing["transcript"][0]["text"]
        .as_str()
        .unwrap()
        .contains("reset my password"));

    agent.act(&id, "claim", "").await;
    eventually(WAIT, "the claim in the briefing", || async {
        (agent.thread(&id).await["thread"]["briefing"]["claimed_by"] == "Sam").then_some(())
    })
    .await;

    agent.act(&id, "reply", "Hi Dana, I'm Sam. Done.").await;
    let answer = widget.message_from("agent").await;
    assert_eq!(answer["author"]["name"], "Sam");
    assert_eq!(answer["text"], "Hi Dana, I'm Sam. Done.");
    agent.act(&id, "note", "asked twice already").await;

    widget
        .send(json!({"type": "message", "client_id": "q3", "text": "My workspace is acme-42"}))
        .await;
    eventually(WAIT, "the customer's message on the desk", || async {
        let posts = agent.thread(&id).await["posts"].clone();
        posts
            .as_array()?
            .iter()
            .any(|post| post["kind"] == "customer" && post["text"] == "My workspace is acme-42")
            .then_some(())
    })
    .await;
    let posts = agent.thread(&id).await["posts"].clone();
    let kinds: Vec<&str> = posts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|post| post["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"agent") && kinds.contains(&"note"), "{kinds:?}");

    agent.act(&id, "hand_back", "").await;
    assert_eq!(widget.message_from("system").await["text"], HANDBACK_NOTICE);
    eventually(WAIT, "the handed-back thread to leave the queue", || async {
        agent.queue().await.is_empty().then_some(())
    })
    .await;

    // Asking again brings the same thread back to the queue.
    widget
        .send(json!({"type": "message", "client_id": "q4", "text": "Please, a real person again"}))
        .await;
    let again = agent.waiting("Dana").await;
    assert_eq!(again["id"], id.as_str());
    agent.act(&id, "resolve", "").await;
    // The visitor is asked for a rating.
    widget
        .next_matching("message", |frame| {
            (frame["message"]["text"].as_str()).is_some_and(|text| text.ends_with(CSAT_QUESTION))
        })
        .await;
    eventually(WAIT, "the resolved thread to leave the queue", || async {
        agent.queue().await.is_empty().then_some(())
    })
    .await;
    assert!(
        view["thread"]["briefing"].get("previous_case").is_none(),
        "her first case had none"
    );

    // Back with a new problem: a new case in a new thread, whose briefing links the old one.
    widget
        .send(json!({"type": "message", "client_id": "q5", "text": "I want to talk to a real person"}))
        .await;
    let next = agent.waiting("Dana").await;
    let next_id = next["id"].as_str().unwrap().to_owned();
    assert_ne!(next_id, id, "a new thread");
    let previous = &agent.thread(&next_id).await["thread"]["briefing"]["previous_case"];
    assert_eq!(previous["thread"]["ts"], id.as_str(), "{previous}");
    let script = agent.get("/desk/desk.js").await;
    assert!(script.body.contains("Previous case"));
}

#[tokio::test]
async fn the_desk_refuses_strangers_forgeries_other_teams_and_brute_force() {
    let redis = RedisServer::start();
    let sam = switchboard_webdesk::hash_password("sam-password-1").unwrap();
    let bill = switchboard_webdesk::hash_password("bill-password-1").unwrap();
    let gateway = start_gateway(test_config(&redis, &desk_config(&sam, &bill))).await;
    let addr = gateway.local_addr;
    let agent = Agent::sign_in(addr, "sam", "sam-password-1").await;
    escalated_visitor(addr, "webdesk-visitor-00000002").await;
    let id = agent.waiting("Dana").await["id"].as_str().unwrap().to_owned();

    // Without a session, and with a forged one, every desk route refuses.
    let thread_path = format!("/desk/api/threads/{id}");
    let action_path = format!("{thread_path}/actions");
    for cookie in ["", "sb_desk=forged0000000000000000000000000000"] {
        for (method, path) in [
            ("GET", "/desk/api/queue"),
            ("GET", thread_path.as_str()),
            ("POST", action_path.as_str()),
            ("GET", "/desk/ws"),
        ] {
            let answer = request(
                addr,
                method,
                path,
                &[("cookie", cookie), ("content-type", "application/json")],
                r#"{"kind":"claim"}"#,
            )
            .await;
            assert_eq!(answer.status, 401, "{method} {path} with {cookie:?}");
        }
        let page = request(addr, "GET", "/desk", &[("cookie", cookie)], "").await;
        assert!(page.body.contains("name=\"password\"") && !page.body.contains("csrf-token"));
    }

    // A signed-in agent still needs the CSRF token, from a page of this site.
    let own = format!("http://{addr}");
    let claim = json!({"kind": "claim"});
    let missing = agent.act_with(&id, claim.clone(), None, &own).await;
    assert_eq!(missing.status, 403, "{}", missing.body);
    let wrong = agent.act_with(&id, claim.clone(), Some("0".repeat(64).as_str()), &own).await;
    assert_eq!(wrong.status, 403);
    let cross = agent
        .act_with(&id, claim.clone(), Some(&agent.csrf), "https://evil.example")
        .await;
    assert_eq!(cross.status, 403);
    assert_eq!(
        agent.thread(&id).await["thread"]["briefing"]["claimed_by"],
        Value::Null,
        "nothing refused was carried out"
    );

    // An agent of the billing team sees neither the support queue nor its threads.
    let bill = Agent::sign_in(addr, "bill", "bill-password-1").await;
    assert!(bill.queue().await.is_empty());
    assert_eq!(bill.get(&thread_path).await.status, 404);

    // Guessing is throttled: past the limit even the right password is refused for a while.
    for _ in 0..5 {
        assert_eq!(sign_in(addr, "sam", "guess-guess").await.status, 401);
    }
    assert_eq!(sign_in(addr, "sam", "sam-password-1").await.status, 429);
}

#[tokio::test]
async fn an_agent_on_one_instance_sees_live_what_arrived_on_another() {
    let redis = RedisServer::start();
    let sam = switchboard_webdesk::hash_password("sam-password-1").unwrap();
    let config = desk_config(&sam, &sam);
    let first = start_gateway(test_config(&redis, &config)).await;
    let second = start_gateway(test_config(&redis, &config)).await;
    // Signed in on the first instance, the session works on the second (it lives in Redis).
    let mut agent = Agent::sign_in(first.local_addr, "sam", "sam-password-1").await;
    agent.addr = second.local_addr;
    let mut live = agent.live().await;

    let mut widget = escalated_visitor(first.local_addr, "webdesk-visitor-00000003").await;
    let id = agent.waiting("Dana").await["id"].as_str().unwrap().to_owned();
    widget
        .send(json!({"type": "message", "client_id": "q3", "text": "Still there?"}))
        .await;
    change_of(&mut live, &id).await;
    eventually(WAIT, "the message on the other instance's desk", || async {
        let posts = agent.thread(&id).await["posts"].clone();
        posts
            .as_array()?
            .iter()
            .any(|post| post["text"] == "Still there?")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn beside_the_slack_desk_a_claim_or_reply_on_either_desk_shows_on_the_other() {
    use crate::slack_desk::{agent_reply, briefing, AGENT};
    use switchboard_slack::standin::SlackStandIn;

    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let ola = switchboard_webdesk::hash_password("ola-password-1").unwrap();
    let config = format!(
        r#"{}
[desk.web]
enabled = true
channel = "support"
[[desk.web.agents]]
id = "ola"
name = "Ola"
password_hash = "{ola}"
"#,
        crate::slack_desk::desk_config(&standin, "socket")
    );
    let gateway = start_gateway(test_config(&redis, &config)).await;
    let addr = gateway.local_addr;
    let agent = Agent::sign_in(addr, "ola", "ola-password-1").await;
    let mut widget = escalated_visitor(addr, "webdesk-beside-00000001").await;

    // One escalation, one Slack thread, shown on the web desk under the same thread.
    let parent = briefing(&standin).await;
    let waiting = agent.waiting("Dana").await;
    assert_eq!(waiting["id"], parent.ts.as_str());
    let id = parent.ts.clone();
    let header_of = |post: &switchboard_slack::standin::RecordedPost| {
        post.blocks[0]["text"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let latest_briefing = || {
        standin
            .posts()
            .into_iter()
            .rfind(|post| post.ts == parent.ts)
            .expect("the briefing")
    };

    // Claimed on the web: Slack's briefing says so.
    agent.act(&id, "claim", "").await;
    eventually(WAIT, "the web claim on Slack's briefing", || async {
        header_of(&latest_briefing())
            .starts_with("🙋 Claimed by Ola")
            .then_some(())
    })
    .await;

    // Replied on the web: the customer has it, and Slack's briefing transcript shows it.
    agent.act(&id, "reply", "Ola here, on it.").await;
    assert_eq!(widget.message_from("agent").await["text"], "Ola here, on it.");
    eventually(WAIT, "the web reply in Slack's briefing", || async {
        latest_briefing()
            .blocks
            .to_string()
            .contains("Ola here, on it.")
            .then_some(())
    })
    .await;

    // Replied in Slack: the customer has it, and the web desk's briefing shows it.
    standin.send_event(agent_reply(&parent.ts, "1800000000.000700", "Sam from Slack here."));
    assert_eq!(
        widget.message_from("agent").await["text"],
        "Sam from Slack here."
    );
    eventually(WAIT, "the Slack reply on the web desk", || async {
        agent.thread(&id).await["thread"]["briefing"]["transcript"]
            .to_string()
            .contains("Sam from Slack here.")
            .then_some(())
    })
    .await;
    let posts = agent.thread(&id).await["posts"].clone();
    let shown_twice = posts
        .as_array()
        .unwrap()
        .iter()
        .filter(|post| post["text"] == "Ola here, on it.")
        .count();
    assert_eq!(shown_twice, 1, "the web desk keeps its own post once");

    // Resolved in Slack: the web desk's queue lets it go.
    standin.send_event(agent_reply(&parent.ts, "1800000000.000800", "!resolve"));
    eventually(WAIT, "the Slack resolution on the web desk", || async {
        agent.queue().await.is_empty().then_some(())
    })
    .await;
    assert_eq!(
        agent.thread(&id).await["thread"]["briefing"]["status"],
        "resolved"
    );
    eventually(WAIT, "Slack's briefing resolved", || async {
        header_of(&latest_briefing())
            .contains("Resolved")
            .then_some(())
    })
    .await;
}
