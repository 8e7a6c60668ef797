//! The per-IP limit through the real endpoints, with clients on different loopback addresses
//! (127.0.0.2, 127.0.0.3, ... all reach a server on 127.0.0.1 on Linux).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{client_async, WebSocketStream};

use crate::test_server::TestServer;
use crate::WebchatConfig;

/// A connection to the server from the loopback address `from`.
async fn connect_from(server: &TestServer, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    let local: IpAddr = from.parse().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    socket.connect(server.addr).await.unwrap()
}

/// Posts one message as visitor `session` from `from`, with extra request headers.
async fn post_from(
    server: &TestServer,
    from: &str,
    headers: &str,
    session: &str,
) -> (u16, String, Value) {
    // The fake core dedupes on the message id alone, so every post gets its own.
    let client_id = format!("m-{session}");
    let mut stream = connect_from(server, from).await;
    let body = json!({"session": session, "client_id": client_id, "text": "hello"}).to_string();
    let request = format!(
        "POST /webchat/messages HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn session(n: usize) -> String {
    format!("visitor-session-{n:08}")
}

fn limited(per_ip: u32, trusted_proxies: &[&str]) -> WebchatConfig {
    WebchatConfig {
        rate_limit_per_minute: 2,
        rate_limit_per_ip_per_minute: per_ip,
        trusted_proxies: trusted_proxies.iter().map(|p| p.to_string()).collect(),
        ..WebchatConfig::default()
    }
}

#[tokio::test]
async fn many_visitors_from_one_address_are_limited_while_another_address_is_not() {
    let server = TestServer::start(limited(5, &[])).await;
    // Five visitors, one message each: each visitor is far below its own limit.
    for n in 0..5 {
        let (status, _, body) = post_from(&server, "127.0.0.2", "", &session(n)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, head, body) = post_from(&server, "127.0.0.2", "", &session(5)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "rate_limited");
    assert!(body["retry_after_ms"].as_u64().unwrap() > 0, "{body}");
    // 5 per minute: the next token is 12 s away.
    let retry_after: u64 = head
        .lines()
        .find_map(|line| line.strip_prefix("retry-after: "))
        .expect("a Retry-After header")
        .trim()
        .parse()
        .unwrap();
    assert!((11..=12).contains(&retry_after), "{retry_after}");

    // A visitor on another address is served as usual.
    let (status, _, body) = post_from(&server, "127.0.0.3", "", &session(6)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        server.gateway.accepted().len(),
        6,
        "the refused one was not stored"
    );
}

#[tokio::test]
async fn a_forged_forwarded_for_from_an_untrusted_peer_does_not_bypass_the_limit() {
    // 127.0.0.1 is a trusted proxy; the client on 127.0.0.4 is not.
    let server = TestServer::start(limited(3, &["127.0.0.1"])).await;
    for n in 0..3 {
        let forged = format!("x-forwarded-for: 198.51.100.{n}\r\n");
        let (status, _, body) = post_from(&server, "127.0.0.4", &forged, &session(n)).await;
        assert_eq!(status, 200, "{body}");
    }
    let forged = "x-forwarded-for: 198.51.100.77\r\n";
    let (status, _, body) = post_from(&server, "127.0.0.4", forged, &session(3)).await;
    assert_eq!(
        status, 429,
        "a new forged address is still the same client: {body}"
    );

    // Through the trusted proxy, the forwarded addresses are the clients: each has its own limit.
    for n in 0..4 {
        let forwarded = format!("x-forwarded-for: 6.6.6.6, 203.0.113.{n}\r\n");
        let (status, _, body) = post_from(&server, "127.0.0.1", &forwarded, &session(10 + n)).await;
        assert_eq!(status, 200, "{body}");
    }
    // ... and a client behind it who sends too much is limited by its own address, whatever
    // it prepends (the proxy appends the address it really saw).
    for n in 0..4 {
        let forwarded = format!("x-forwarded-for: 10.9.9.{n}, 203.0.113.50\r\n");
        let (status, _, body) = post_from(&server, "127.0.0.1", &forwarded, &session(20 + n)).await;
        assert_eq!(status, if n < 3 { 200 } else { 429 }, "{body}");
    }
}

#[tokio::test]
async fn new_chat_sockets_count_against_the_address() {
    let server = TestServer::start(limited(3, &[])).await;
    let open = |from: &'static str| {
        let addr = server.addr;
        let server = &server;
        async move {
            let stream = connect_from(server, from).await;
            let url = format!("ws://{addr}/webchat/ws");
            let (socket, _) = client_async(url, stream).await.expect("upgrade");
            socket
        }
    };
    let mut sockets = Vec::new();
    for n in 0..3 {
        let mut socket = open("127.0.0.5").await;
        let hello = json!({"type": "hello", "session": session(n)});
        socket
            .send(Message::Text(hello.to_string().into()))
            .await
            .unwrap();
        assert_eq!(next(&mut socket).await.unwrap()["type"], "welcome");
        sockets.push(socket);
    }
    let mut refused = open("127.0.0.5").await;
    let frame = next(&mut refused).await.expect("an error frame");
    assert_eq!(frame["code"], "rate_limited", "{frame}");
    assert!(frame["retry_after_ms"].as_u64().unwrap() > 0);
    assert_eq!(next(&mut refused).await, None, "then the socket closes");

    // The open sockets already spent the address's tokens: their messages are limited too.
    let message = json!({"type": "message", "client_id": "c-1", "text": "hi"});
    sockets[0]
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next(&mut sockets[0]).await.unwrap()["code"], "rate_limited");

    let mut other = open("127.0.0.6").await;
    let hello = json!({"type": "hello", "session": session(9)});
    other
        .send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next(&mut other).await.unwrap()["type"], "welcome");
}

async fn next(socket: &mut WebSocketStream<TcpStream>) -> Option<Value> {
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
