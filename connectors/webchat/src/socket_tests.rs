//! The connector through its real interface: a WebSocket and HTTP client against the
//! router served on a free port, with an in-memory gateway behind it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchboard_api::{Author, Connector, InboundKind, Outbound};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use crate::test_server::TestServer;
use crate::{sign_user_id, WebchatConfig};

const SESSION: &str = "Zq8Xv3Lm9Tn2Rb7Wk4Hs6Jd1";
const SECRET: &str = "test-identity-secret";

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn config() -> WebchatConfig {
    WebchatConfig {
        identity_secret: Some(SECRET.to_owned()),
        max_message_bytes: 100,
        ..WebchatConfig::default()
    }
}

async fn connect(server: &TestServer) -> Socket {
    let url = format!("ws://{}/webchat/ws", server.addr);
    connect_async(url).await.expect("websocket connects").0
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON frame, skipping pings; `None` when the server closed the socket.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s");
        match message {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn hello(socket: &mut Socket, extra: Value) -> Value {
    let mut frame = json!({
        "type": "hello",
        "session": SESSION,
        "page": {"url": "http://acme.test/pricing", "title": "Pricing"},
        "attributes": {"plan": "pro", "tier": "standard", "name": "Robin"},
    });
    for (key, value) in extra.as_object().unwrap() {
        frame[key] = value.clone();
    }
    send(socket, frame).await;
    next(socket).await.expect("a reply to hello")
}

#[tokio::test]
async fn visitor_says_hello_sends_and_replays_without_duplicates() {
    let server = TestServer::start(config()).await;
    let mut socket = connect(&server).await;

    let welcome = hello(&mut socket, json!({})).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["status"], "bot");
    assert_eq!(welcome["messages"], json!([]));
    assert_eq!(welcome["limits"]["max_message_bytes"], 100);

    let message =
        json!({"type": "message", "client_id": "c-1", "text": "  How do I reset my password? "});
    send(&mut socket, message.clone()).await;
    // The customer's own message comes back (for other tabs) after the ack.
    let ack = next(&mut socket).await.unwrap();
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["client_id"], "c-1");
    let message_id = ack["message_id"].as_str().unwrap().to_owned();
    let echo = next(&mut socket).await.unwrap();
    assert_eq!(echo["message"]["id"], message_id.as_str());

    // A resend after a lost ack is acked with the same id and stored once.
    send(&mut socket, message).await;
    let again = next(&mut socket).await.unwrap();
    assert_eq!(
        again,
        json!({"type": "ack", "client_id": "c-1", "message_id": message_id})
    );

    let accepted = server.gateway.accepted();
    assert_eq!(accepted.len(), 1);
    let inbound = &accepted[0];
    assert_eq!(inbound.channel, crate::CHANNEL);
    assert_eq!(inbound.conversation_key, format!("s:{SESSION}"));
    assert_eq!(inbound.message_id, "wc:c-1");
    assert_eq!(inbound.kind, InboundKind::Text);
    assert_eq!(inbound.text, "How do I reset my password?");
    assert_eq!(inbound.author.display_name.as_deref(), Some("Robin"));
    assert!(!inbound.author.verified);
    // The page's attributes are unsigned: kept for agents, marked unverified, never routed.
    assert_eq!(inbound.context.tier, None);
    assert!(inbound.context.unverified.contains("tier"));
    assert_eq!(
        inbound.context.page_url.as_deref(),
        Some("http://acme.test/pricing")
    );

    // "Talk to a human" is an inbound of its own kind.
    send(
        &mut socket,
        json!({"type": "talk_to_human", "client_id": "c-2"}),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "ack");
    assert_eq!(server.gateway.accepted()[1].kind, InboundKind::HumanRequest);

    // A new socket (a reload) sees the history; `after` skips what was already shown.
    let mut reload = connect(&server).await;
    let welcome = hello(&mut reload, json!({})).await;
    assert_eq!(welcome["conversation_id"], "conv-1");
    assert_eq!(welcome["messages"].as_array().unwrap().len(), 2);
    assert_eq!(welcome["messages"][0]["channel_message_id"], "wc:c-1");
    let mut resumed = connect(&server).await;
    let welcome = hello(&mut resumed, json!({"after": message_id})).await;
    assert_eq!(welcome["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn send_reaches_every_open_socket_of_the_conversation() {
    let server = TestServer::start(config()).await;
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;
    hello(&mut first, json!({})).await;
    hello(&mut second, json!({})).await;

    let outbound = Outbound {
        id: "42-0".to_owned(),
        conversation_id: "conv-1".to_owned(),
        channel: crate::CHANNEL,
        conversation_key: format!("s:{SESSION}"),
        author: Author::Agent {
            name: "Sam".to_owned(),
        },
        text: "Hi, Sam here from Acme.".to_owned(),
        actions: Vec::new(),
        reply_context: Default::default(),
        files: Vec::new(),
        maybe_sent: false,
    };
    let receipt = server.connector.send(&outbound).await.unwrap();
    assert_eq!(receipt.platform_message_id.as_deref(), Some("42-0"));
    for socket in [&mut first, &mut second] {
        let frame = next(socket).await.unwrap();
        assert_eq!(frame["type"], "message");
        assert_eq!(frame["message"]["id"], "42-0");
        assert_eq!(
            frame["message"]["author"],
            json!({"kind": "agent", "name": "Sam"})
        );
    }

    // Nobody connected: still a success, the widget fetches it from history later.
    let elsewhere = Outbound {
        conversation_key: "s:nobody-is-here-now".to_owned(),
        ..outbound
    };
    assert!(server.connector.send(&elsewhere).await.is_ok());
}

#[tokio::test]
async fn forged_signature_is_refused_and_closed() {
    let server = TestServer::start(config()).await;
    let mut socket = connect(&server).await;
    let forged = sign_user_id(b"not the secret", "user-7");
    let reply = hello(
        &mut socket,
        json!({"user_id": "user-7", "user_sig": forged}),
    )
    .await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "unauthorized");
    assert_eq!(next(&mut socket).await, None, "socket is closed");

    // An unsigned claim is refused too, never downgraded to anonymous.
    let mut socket = connect(&server).await;
    let reply = hello(&mut socket, json!({"user_id": "user-7"})).await;
    assert_eq!(reply["code"], "unauthorized");

    // The right signature gets the user's own conversation.
    let mut socket = connect(&server).await;
    let signature = sign_user_id(SECRET.as_bytes(), "user-7");
    let reply = hello(
        &mut socket,
        json!({"user_id": "user-7", "user_sig": signature}),
    )
    .await;
    assert_eq!(reply["type"], "welcome");
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-9", "text": "hi"}),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "ack");
    let inbound = &server.gateway.accepted()[0];
    assert_eq!(inbound.conversation_key, "u:user-7");
    assert!(inbound.author.verified);
    assert_eq!(server.gateway.accepted().len(), 1);
}

#[tokio::test]
async fn bad_frames_are_refused_and_the_socket_stays_open() {
    let server = TestServer::start(config()).await;
    let mut socket = connect(&server).await;
    // Anything before hello is refused, but hello may still follow.
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c", "text": "hi"}),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["code"], "invalid");
    hello(&mut socket, json!({})).await;

    let too_large = "x".repeat(101);
    let cases = [
        (
            json!({"type": "message", "client_id": "c-1", "text": too_large}).to_string(),
            "too_large",
        ),
        (
            json!({"type": "message", "client_id": "c-2", "text": " \n "}).to_string(),
            "empty",
        ),
        (json!({"type": "launch_rockets"}).to_string(), "invalid"),
        ("{not json".to_owned(), "invalid"),
        (
            json!({"type": "message", "client_id": "bad id!", "text": "hi"}).to_string(),
            "invalid",
        ),
    ];
    for (frame, code) in cases {
        socket
            .send(Message::Text(frame.clone().into()))
            .await
            .unwrap();
        let reply = next(&mut socket).await.unwrap();
        assert_eq!(reply["type"], "error", "{frame}");
        assert_eq!(reply["code"], code, "{frame}");
    }
    socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(next(&mut socket).await.unwrap()["code"], "invalid");
    assert!(server.gateway.accepted().is_empty(), "nothing was stored");

    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-3", "text": "still here?"}),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "ack");
}

#[tokio::test]
async fn bad_sessions_rate_limits_and_outages_are_reported() {
    let server = TestServer::start(WebchatConfig {
        rate_limit_per_minute: 2,
        ..config()
    })
    .await;
    let mut socket = connect(&server).await;
    let reply = hello(&mut socket, json!({"session": "short"})).await;
    assert_eq!(reply["code"], "invalid");
    assert_eq!(next(&mut socket).await, None);

    let mut socket = connect(&server).await;
    hello(&mut socket, json!({})).await;
    for n in 0..2 {
        send(
            &mut socket,
            json!({"type": "message", "client_id": format!("r-{n}"), "text": "hi"}),
        )
        .await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "ack");
        next(&mut socket).await; // the echo
    }
    send(
        &mut socket,
        json!({"type": "message", "client_id": "r-2", "text": "hi"}),
    )
    .await;
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["code"], "rate_limited");
    assert_eq!(reply["client_id"], "r-2");

    let server = TestServer::start(config()).await;
    let mut socket = connect(&server).await;
    hello(&mut socket, json!({})).await;
    server.gateway.set_unavailable(true);
    send(
        &mut socket,
        json!({"type": "message", "client_id": "u-1", "text": "hi"}),
    )
    .await;
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["code"], "unavailable");
    assert_eq!(reply["client_id"], "u-1");
    // Storage back: the widget's retry goes through, no restart needed.
    server.gateway.set_unavailable(false);
    send(
        &mut socket,
        json!({"type": "message", "client_id": "u-1", "text": "hi"}),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "ack");
}

#[tokio::test]
async fn anonymous_visitors_are_refused_when_identity_is_required() {
    let server = TestServer::start(WebchatConfig {
        require_verified_identity: true,
        ..config()
    })
    .await;
    let mut socket = connect(&server).await;
    assert_eq!(hello(&mut socket, json!({})).await["code"], "unauthorized");
}

/// A minimal HTTP/1.1 client: returns the status and the JSON body (or Null).
async fn http(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn http_variant_follows_the_same_rules() {
    let server = TestServer::start(config()).await;
    let target = &server;
    let post = move |body: Value| http(target, "POST", "/webchat/messages", Some(body));

    let (status, body) =
        post(json!({"session": SESSION, "client_id": "h-1", "text": "hello"})).await;
    assert_eq!(status, 200, "{body}");
    let message_id = body["message_id"].as_str().unwrap().to_owned();
    let (status, again) =
        post(json!({"session": SESSION, "client_id": "h-1", "text": "hello"})).await;
    assert_eq!(
        (status, again["message_id"].as_str()),
        (200, Some(message_id.as_str()))
    );

    let forged = json!({"session": SESSION, "user_id": "u-1", "user_sig": "00ff", "client_id": "h-2", "text": "hi"});
    assert_eq!(post(forged).await.0, 401);
    let big = json!({"session": SESSION, "client_id": "h-3", "text": "y".repeat(101)});
    let (status, body) = post(big).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("too_large")));
    assert_eq!(
        post(json!({"session": SESSION, "client_id": "h-4", "text": ""}))
            .await
            .0,
        400
    );
    assert_eq!(
        post(json!({"session": SESSION, "client_id": "h-5", "type": "nope"}))
            .await
            .0,
        400
    );
    assert_eq!(
        http(&server, "POST", "/webchat/messages", None).await.0,
        400
    );

    let human = json!({"session": SESSION, "client_id": "h-6", "type": "talk_to_human"});
    assert_eq!(post(human).await.0, 200);
    assert_eq!(server.gateway.accepted().len(), 2);

    server.gateway.set_unavailable(true);
    assert_eq!(
        post(json!({"session": SESSION, "client_id": "h-7", "text": "hi"}))
            .await
            .0,
        503
    );
    let path = format!("/webchat/messages?session={SESSION}");
    assert_eq!(http(&server, "GET", &path, None).await.0, 503);
    server.gateway.set_unavailable(false);

    let (status, history) = http(&server, "GET", &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);
    let (status, history) = http(&server, "GET", &format!("{path}&after={message_id}"), None).await;
    assert_eq!(
        (status, history["messages"].as_array().unwrap().len()),
        (200, 1)
    );
    let path = format!("/webchat/messages?session={SESSION}&user_id=u-1&user_sig=abcd");
    assert_eq!(http(&server, "GET", &path, None).await.0, 401);
}

/// A GET over a raw connection: (status line and headers, body).
async fn get(server: &TestServer, path: &str, cookie: Option<&str>) -> (String, String) {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let cookie = cookie
        .map(|cookie| format!("cookie: {cookie}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n{cookie}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_owned(), body.to_owned())
}

/// The value of the last `name="..."` in a page (the widget's tag is last).
fn html_attribute(page: &str, name: &str) -> String {
    let start = page.rfind(&format!("{name}=\"")).expect(name) + name.len() + 2;
    page[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_widget_is_served_and_the_demo_pages_only_when_asked_for() {
    let server = TestServer::start(config()).await;
    let (head, body) = get(&server, "/webchat/widget.js", None).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!body.contains("SB_SERVER_CONFIG"), "unfilled slot");
    for path in ["/", "/webchat/demo/signed"] {
        let (head, _) = get(&server, path, None).await;
        assert!(
            head.starts_with("HTTP/1.1 404"),
            "{path} is off by default: {head}"
        );
    }

    let demo = TestServer::start(WebchatConfig {
        demo: true,
        ..config()
    })
    .await;
    for path in ["/", "/webchat/demo/signed"] {
        let (head, body) = get(&demo, path, None).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert!(!body.contains("{{"), "{path} has an unfilled slot");
    }
}

#[tokio::test]
async fn the_signed_demo_never_signs_with_the_sites_secret() {
    let server = TestServer::start(WebchatConfig {
        demo: true,
        ..config()
    })
    .await;
    let (head, page) = get(&server, "/webchat/demo/signed", None).await;
    let claims = html_attribute(&page, "data-user-claims");
    let sig = html_attribute(&page, "data-user-sig");
    assert_ne!(
        sig,
        crate::claims::mac_hex(SECRET.as_bytes(), claims.as_bytes()),
        "signed with the production secret"
    );
    // The same browser keeps its demo user; another browser gets its own.
    let cookie = head
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .and_then(|cookie| cookie.split(';').next())
        .expect("a demo user cookie")
        .to_owned();
    let (_, again) = get(&server, "/webchat/demo/signed", Some(&cookie)).await;
    let user = |page: &str| {
        page.split("<code>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(user(&again), user(&page));
    let (_, other) = get(&server, "/webchat/demo/signed", None).await;
    assert_ne!(user(&other), user(&page));

    // The demo's claims sign in a demo user, under a key no real user has.
    let mut socket = connect(&server).await;
    let welcome = hello(&mut socket, json!({"user_claims": claims, "user_sig": sig})).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    send(
        &mut socket,
        json!({"type": "message", "client_id": "d-1", "text": "hi"}),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "ack");
    let inbound = &server.gateway.accepted()[0];
    assert_eq!(inbound.conversation_key, format!("d:{}", user(&page)));
    assert!(inbound.author.verified);

    // Without the demo the same claims verify nothing.
    let plain = TestServer::start(config()).await;
    let mut socket = connect(&plain).await;
    let refused = hello(&mut socket, json!({"user_claims": claims, "user_sig": sig})).await;
    assert_eq!(refused["code"], "unauthorized", "{refused}");
}
