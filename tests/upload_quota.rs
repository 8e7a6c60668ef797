//! Anonymous uploads cannot fill Redis: byte quotas per conversation, per client address and
//! in total, counted in Redis so two gateway instances count the same; and no file is taken
//! while Redis is near its `maxmemory`. Meanwhile every visitor keeps chatting.

use std::net::{IpAddr, SocketAddr};

use redis::Commands;
use serde_json::{json, Value};
use tokio::net::TcpSocket;

use crate::attachments::raw_http_over;
use crate::harness::{on_single_and_cluster, start_gateway, test_config, RedisServer, TestRedis};
use crate::webchat::{Widget, WEBCHAT};

/// Just under the 1 MiB file limit the tests configure.
const FILE: usize = 1_000_000;
const MIB: u64 = 1024 * 1024;

/// 1 MiB files; a conversation holds 3 MiB, an address sends 5 MiB a day, 8 MiB in all.
fn quota_config(extra_files: &str) -> String {
    format!(
        "{WEBCHAT}[files]\nmax_bytes = {MIB}\nmax_bytes_per_conversation = {}\nmax_bytes_per_address_per_day = {}\nmax_bytes_total = {}\n{extra_files}",
        3 * MIB,
        5 * MIB,
        8 * MIB
    )
}

/// Redis with `maxmemory` and the policy the README asks for.
fn redis_with_maxmemory(bytes: u64) -> RedisServer {
    let redis = RedisServer::start();
    let mut client = redis.client();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(bytes)
        .arg("maxmemory-policy")
        .arg("noeviction")
        .exec(&mut client)
        .expect("CONFIG SET maxmemory");
    redis
}

/// (used_memory, maxmemory) from `INFO memory`.
fn memory(redis: &RedisServer) -> (u64, u64) {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut redis.client())
        .expect("INFO memory");
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("used_memory"), field("maxmemory"))
}

/// A visitor's upload from the loopback address `from`: (status, Retry-After, JSON body).
async fn upload_from(
    from: &str,
    gateway: SocketAddr,
    session: &str,
    client_id: &str,
) -> (u16, Option<u64>, Value) {
    let socket = TcpSocket::new_v4().expect("socket");
    let local: IpAddr = from.parse().expect("a loopback address");
    socket
        .bind(SocketAddr::new(local, 0))
        .expect("bind a loopback address");
    let stream = socket.connect(gateway).await.expect("connect");
    let path = format!("/webchat/files?session={session}&client_id={client_id}&name=scan.png");
    let headers = [("Content-Type", "image/png")];
    let body = vec![0x5a_u8; FILE];
    let (status, head, body) = raw_http_over(stream, gateway, "POST", &path, &headers, &body).await;
    let retry_after = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(str::to_owned)
        })
        .and_then(|value| value.trim().parse().ok());
    (
        status,
        retry_after,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn stored_files(redis: &RedisServer) -> usize {
    let keys: Vec<String> = redis.client().keys("sb:{*}:c:*:f:*").unwrap();
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_of_uploads_stops_at_the_quotas_on_both_instances_and_chat_goes_on() {
    // 24 MiB of Redis: without quotas the loops below would try to store far more.
    let redis = redis_with_maxmemory(24 * MIB);
    let first = start_gateway(test_config(&redis, &quota_config(""))).await;
    let second = start_gateway(test_config(&redis, &quota_config(""))).await;
    let instances = [first.local_addr, second.local_addr];

    // One visitor uploads in a loop, through both instances: three files fit the conversation.
    let mut statuses = Vec::new();
    let mut refusal = Value::Null;
    for attempt in 0..8 {
        let gateway = instances[attempt % 2];
        let (status, _, body) = upload_from(
            "127.0.0.1",
            gateway,
            "quota-visitor-0000001",
            &format!("a{attempt}"),
        )
        .await;
        statuses.push(status);
        if status != 200 {
            refusal = body;
        }
    }
    assert_eq!(statuses, [200, 200, 200, 413, 413, 413, 413, 413]);
    assert_eq!(refusal["code"], "too_large", "{refusal}");
    let message = refusal["message"].as_str().unwrap_or("");
    assert!(
        message.contains("this conversation already holds 3 MB"),
        "the widget shows why: {message}"
    );

    // New chats from the same address: two more files, then the address's day is used up.
    let mut statuses = Vec::new();
    let mut refused = None;
    for attempt in 0..8 {
        let gateway = instances[attempt % 2];
        let session = format!("quota-visitor-1{attempt:06}");
        let (status, retry_after, body) = upload_from("127.0.0.1", gateway, &session, "b1").await;
        statuses.push(status);
        if status != 200 && refused.is_none() {
            refused = Some((retry_after, body));
        }
    }
    assert_eq!(statuses, [200, 200, 429, 429, 429, 429, 429, 429]);
    let (retry_after, body) = refused.expect("a refusal");
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("5 MB of files a day"),
        "{body}"
    );
    let retry_after = retry_after.expect("429 says when to retry");
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    assert_eq!(
        stored_files(&redis),
        5,
        "only what the quotas allowed is stored"
    );

    // Other addresses have their own day, until every visitor's files reach the total.
    let others = [
        ("127.0.0.2", 200),
        ("127.0.0.3", 200),
        ("127.0.0.4", 200),
        ("127.0.0.5", 507),
        ("127.0.0.6", 507),
    ];
    for (index, (from, expected)) in others.into_iter().enumerate() {
        let session = format!("quota-visitor-2{index:06}");
        let (status, _, body) = upload_from(from, instances[index % 2], &session, "c1").await;
        assert_eq!(status, expected, "{from}: {body}");
        if expected == 507 {
            assert_eq!(body["code"], "storage_full", "{body}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("cannot take files right now"),
                "{body}"
            );
        }
    }
    assert_eq!(stored_files(&redis), 8);
    let (used, max) = memory(&redis);
    assert!(
        (used as f64) < 0.9 * max as f64,
        "Redis stays under its ceiling: {used} of {max}"
    );

    // Everyone keeps chatting, on both instances, from the uploader's own address too.
    for (gateway, session) in [
        (first.local_addr, "quota-chatter-00000001"),
        (second.local_addr, "quota-chatter-00000002"),
    ] {
        let (mut widget, _) = Widget::connect(gateway, session, None).await;
        widget
            .send(json!({"type": "message", "client_id": "q1", "text": "How do I reset my password?"}))
            .await;
        widget.next_of("ack").await;
        let answer = widget.message_from("ai").await;
        assert!(
            answer["text"]
                .as_str()
                .unwrap_or("")
                .to_lowercase()
                .contains("password"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn files_are_refused_while_redis_is_near_its_maxmemory_and_chat_goes_on() {
    let redis = redis_with_maxmemory(64 * MIB);
    // Refuse above half of maxmemory, so the test keeps plenty of room for the chat.
    let config = quota_config("max_redis_memory_fraction = 0.5\n");
    let gateway = start_gateway(test_config(&redis, &config)).await;
    let addr = gateway.local_addr;

    // Redis fills up (here: its operator lowers maxmemory until it is 60% used). No quota
    // is near: the guard alone refuses.
    let (used, _) = memory(&redis);
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used * 10 / 6)
        .exec(&mut redis.client())
        .expect("CONFIG SET maxmemory");
    let (status, _, body) = upload_from("127.0.0.1", addr, "memory-visitor-000001", "m1").await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["code"], "storage_full", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("we cannot take files right now. You can still write to us."),
        "{body}"
    );
    assert_eq!(stored_files(&redis), 0);

    // Chat messages still go through, and Redis never reached its limit.
    let (mut widget, _) = Widget::connect(addr, "memory-visitor-000001", None).await;
    widget
        .send(json!({"type": "message", "client_id": "q1", "text": "How do I reset my password?"}))
        .await;
    widget.next_of("ack").await;
    widget.message_from("ai").await;
    let (used, max) = memory(&redis);
    assert!(used < max, "{used} of {max}");
}

/// The quota script and the memory reading on a cluster too (counters in one slot, `INFO`
/// answered by every master).
async fn the_quotas_count_on_single_and_cluster(redis: TestRedis) {
    let gateway = start_gateway(test_config(&redis, &quota_config(""))).await;
    let mut statuses = Vec::new();
    for attempt in 0..4 {
        let client_id = format!("k{attempt}");
        let (status, _, body) = upload_from(
            "127.0.0.1",
            gateway.local_addr,
            "cluster-visitor-00001",
            &client_id,
        )
        .await;
        assert!(status == 200 || status == 413, "{status}: {body}");
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 413]);
}

on_single_and_cluster!(the_quotas_count_on_single_and_cluster);
