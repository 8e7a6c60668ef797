//! Several instances behind the load balancer that docker compose runs: a real nginx with the
//! shipped `config/nginx/switchboard.conf`, in front of two gateways on one Redis.
//!
//! Docker's DNS is not here, so the test swaps the upstream's one `server gateway:8080;` for
//! the two gateways' addresses, and the listen port for a free one; everything else a
//! visitor's request passes through is the shipped file. Visitors connect from distinct
//! loopback addresses (127.0.0.2, ...), so the balancer and the per-IP limit tell them apart.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};

use crate::attachments::raw_http_over;
use crate::harness::{config_dir, start_gateway, test_config, RedisServer, TempDir};
use crate::mailservers::{find_binary, free_port, wait_for_port};
use crate::webchat::Widget;

/// The lines of the shipped site that name Docker's addresses, replaced by the test's.
const SHIPPED_LISTEN: &str = "listen 8080;";
const SHIPPED_UPSTREAM: &str = "server gateway:8080;";

/// nginx with the shipped site in front of `gateways`; stopped on drop.
struct Nginx {
    addr: SocketAddr,
    child: Child,
    _dir: TempDir,
}

impl Nginx {
    fn start(gateways: &[SocketAddr]) -> Nginx {
        let binary = find_binary(
            "nginx",
            "install it with `apt-get install -y nginx` (.ci/run does this)",
        );
        let dir = TempDir::new("nginx");
        // The workers may run as another user (nginx as root drops to `nobody`) and buffer
        // large request bodies in the temp paths under this directory.
        set_mode(&dir.0, 0o777);
        let port = free_port();
        let shipped = std::fs::read_to_string(config_dir().join("nginx/switchboard.conf"))
            .expect("read config/nginx/switchboard.conf");
        for line in [SHIPPED_LISTEN, SHIPPED_UPSTREAM] {
            assert!(
                shipped.contains(line),
                "config/nginx/switchboard.conf should have `{line}` (the test replaces it)"
            );
        }
        let servers: String = gateways
            .iter()
            .map(|addr| format!("server {addr}; "))
            .collect();
        let site = shipped
            .replace(SHIPPED_LISTEN, &format!("listen 127.0.0.1:{port};"))
            .replace(SHIPPED_UPSTREAM, &servers);
        std::fs::write(dir.0.join("switchboard.conf"), site).expect("write the site");
        let root = dir.0.display();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n    access_log {root}/access.log;\n\
             client_body_temp_path {root}/body;\n    proxy_temp_path {root}/proxy;\n\
             fastcgi_temp_path {root}/fastcgi;\n    uwsgi_temp_path {root}/uwsgi;\n    scgi_temp_path {root}/scgi;\n\
             include {root}/switchboard.conf;\n}}\n"
        );
        let config = dir.0.join("nginx.conf");
        std::fs::write(&config, main).expect("write nginx.conf");
        let error_log = dir.0.join("error.log");
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&config)
            .arg("-e")
            .arg(&error_log)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.0.join("stderr.log")).expect("nginx stderr log"),
            ))
            .spawn()
            .expect("start nginx");
        wait_for_port(port, "nginx", &error_log);
        Nginx {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|error| panic!("chmod {}: {error}", path.display()));
}

/// A connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let local: IpAddr = from.parse().expect("a loopback address");
    socket
        .bind(SocketAddr::new(local, 0))
        .expect("bind a loopback address");
    socket.connect(to).await.expect("connect to nginx")
}

/// A visitor's widget from `from`, through the proxy.
async fn widget_from(from: &str, proxy: SocketAddr, session: &str) -> Widget {
    let stream = connect_from(from, proxy).await;
    let (socket, _) = tokio_tungstenite::client_async(
        format!("ws://{proxy}/webchat/ws"),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("the web chat socket upgrades through nginx");
    Widget::hello(socket, session, None).await.0
}

/// Posts a message over the widget's HTTP path from `from`, optionally with a forged
/// X-Forwarded-For.
async fn post_from(
    from: &str,
    proxy: SocketAddr,
    session: &str,
    client_id: &str,
    forwarded_for: Option<&str>,
) -> (u16, Value) {
    let body =
        json!({"session": session, "client_id": client_id, "text": "How do I export my data?"});
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend(forwarded_for.map(|forged| ("X-Forwarded-For", forged)));
    let (status, _, reply) = raw_http_over(
        connect_from(from, proxy).await,
        proxy,
        "POST",
        "/webchat/messages",
        &headers,
        body.to_string().as_bytes(),
    )
    .await;
    (
        status,
        serde_json::from_slice(&reply).unwrap_or(Value::Null),
    )
}

fn inbound_webchat(gateway: &switchboard::app::RunningGateway) -> u64 {
    gateway
        .metrics
        .inbound_messages
        .get_or_create(&vec![
            ("channel", "webchat".into()),
            ("delivery", "new".into()),
        ])
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_compose_load_balancer_visitors_chat_upload_and_are_limited_each_by_their_address(
) {
    let redis = RedisServer::start();
    let webchat = "[connectors.webchat]\nenabled = true\nrate_limit_per_minute = 30\n\
                   rate_limit_per_ip_per_minute = 6\ntrusted_proxies = [\"127.0.0.1\"]\n";
    let a = start_gateway(test_config(&redis, webchat)).await;
    let b = start_gateway(test_config(&redis, webchat)).await;
    let nginx = Nginx::start(&[a.local_addr, b.local_addr]);

    // Visitors on sockets through the proxy, each from its own address, answered live. The
    // balancer spreads addresses over both instances (which address meets which depends on
    // the gateways' random ports): visitors keep coming until both have taken some.
    let mut visitors = 0;
    while inbound_webchat(&a) == 0 || inbound_webchat(&b) == 0 {
        assert!(
            visitors < 40,
            "40 visitors from distinct addresses all reached one instance (a took {}, b {})",
            inbound_webchat(&a),
            inbound_webchat(&b)
        );
        let from = format!("127.0.0.{}", 100 + visitors);
        let session = format!("proxied-visitor-{visitors:04}-session");
        let mut widget = widget_from(&from, nginx.addr, &session).await;
        widget
            .send(json!({"type": "message", "client_id": "q1", "text": "How do I reset my password?"}))
            .await;
        let answer = widget.message_from("ai").await;
        assert!(
            answer["text"].as_str().unwrap_or("").contains("password"),
            "{answer}"
        );
        visitors += 1;
    }

    // A 2 MB screenshot passes (nginx alone would refuse anything over 1 MB); one over the
    // gateway's 10 MiB limit is refused by the gateway, with its message, not nginx's page.
    let proxy = nginx.addr;
    let upload = |client_id: &'static str, bytes: Vec<u8>| async move {
        let path = format!(
            "/webchat/files?session=proxied-uploader-0001-session&client_id={client_id}&name=shot.png"
        );
        let stream = connect_from("127.0.0.20", proxy).await;
        let (status, _, body) = raw_http_over(
            stream,
            proxy,
            "POST",
            &path,
            &[("Content-Type", "image/png")],
            &bytes,
        )
        .await;
        (status, String::from_utf8_lossy(&body).to_string())
    };
    let (status, body) = upload("f1", vec![0x42; 2 * 1024 * 1024]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload("f2", vec![0x42; 10 * 1024 * 1024 + 512 * 1024]).await;
    assert_eq!(status, 413, "{body}");
    let refusal: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_eq!(
        refusal["code"], "too_large",
        "the gateway's refusal: {body}"
    );

    // The per-IP limit counts the visitor's address that nginx forwards, not nginx's own, on
    // the one instance the balancer sends that address to: 127.0.0.30 is refused after its 6
    // messages, forging X-Forwarded-For does not help, and 127.0.0.31 is not held up.
    let mut statuses = Vec::new();
    for n in 0..7 {
        let session = format!("limited-visitor-{n:04}-session");
        let forged = (n % 2 == 1).then_some("203.0.113.9");
        let (status, body) = post_from("127.0.0.30", nginx.addr, &session, "m1", forged).await;
        if status == 429 {
            assert_eq!(body["code"], "rate_limited", "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 429]);
    let (status, body) = post_from(
        "127.0.0.31",
        nginx.addr,
        "other-visitor-0001-session",
        "m1",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn admin_endpoints_are_served_only_on_the_admin_listener_and_never_through_the_proxy() {
    let redis = RedisServer::start();
    let mut config = test_config(&redis, "[connectors.webchat]\nenabled = true\n");
    let token = "admin-token-for-the-proxy-test-0123";
    config.gateway.admin_token = Some(switchboard_api::Secret::new(token));
    let gateway = start_gateway(config).await;
    let nginx = Nginx::start(&[gateway.local_addr]);
    let get = |addr: SocketAddr, path: &'static str, token: Option<&'static str>| async move {
        let headers: Vec<(String, String)> = token
            .map(|token| ("Authorization".to_owned(), format!("Bearer {token}")))
            .into_iter()
            .collect();
        crate::harness::http_with_headers(addr, "GET", path, &headers, None).await
    };

    // Through the shipped site, a stranger reaches the customer paths only.
    for path in ["/metrics", "/readyz", "/metrics?x=1", "/admin", "/kb"] {
        let (status, body) = get(nginx.addr, path, None).await;
        assert_eq!(status, 404, "{path} through nginx: {body}");
        assert!(!body.contains("switchboard_"), "{path}: {body}");
    }
    let (status, body) = get(nginx.addr, "/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _) = get(nginx.addr, "/webchat/widget.js", None).await;
    assert_eq!(status, 200, "the widget still passes");

    // The public listener itself does not serve them either.
    for path in ["/metrics", "/readyz"] {
        let (status, body) = get(gateway.local_addr, path, None).await;
        assert_eq!(status, 404, "{path} on the public listener: {body}");
    }

    // The admin listener (loopback) wants the token, compared whole.
    let admin = gateway.admin_addr;
    assert!(admin.ip().is_loopback());
    let (status, _) = get(admin, "/metrics", None).await;
    assert_eq!(status, 401);
    let (status, _) = get(admin, "/readyz", Some("admin-token-for-the-proxy-test-012")).await;
    assert_eq!(status, 401, "a prefix of the token is refused");
    let (status, body) = get(admin, "/metrics", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("switchboard_conversations_escalated_total"),
        "{body}"
    );
    let (status, body) = get(admin, "/readyz", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("readyz is json");
    assert_eq!(ready["redis"], "up", "{body}");
}
