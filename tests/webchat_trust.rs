//! Who a web chat visitor is, end to end: only what the site signed routes the chat; forged,
//! altered, expired and replayed claims are refused; the demo pages are opt-in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Commands;
use serde_json::{json, Value};
use switchboard::model::conversation_id;
use switchboard::store::keys;

use crate::harness::{eventually, http, start_gateway, test_config, RedisServer};
use crate::webchat::WEBCHAT;

const SECRET: &str = "trust-site-secret";

fn signed_config() -> String {
    std::env::set_var("SB_TEST_TRUST_SECRET", SECRET);
    "[connectors.webchat]\nenabled = true\nidentity_secret_env = \"SB_TEST_TRUST_SECRET\"\n".into()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// What a site's server puts on the tag: claims for `user_id` valid ten minutes, plus `extra`.
pub(crate) fn site_claims(secret: &[u8], user_id: &str, extra: Value) -> (String, String) {
    let mut claims = json!({"user_id": user_id, "exp": unix_now() + 600});
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        claims.extend(extra.clone());
    }
    switchboard_webchat::sign_user_claims(secret, &claims)
}

async fn post(addr: std::net::SocketAddr, body: Value) -> (u16, String) {
    http(addr, "POST", "/webchat/messages", Some(&body.to_string())).await
}

/// The conversation's status and escalation reason once triage decided its first message.
async fn decided(redis: &RedisServer, key: &str) -> (String, Option<String>) {
    let id = conversation_id(switchboard_webchat::CHANNEL, key);
    let mut client = redis.client();
    eventually(Duration::from_secs(10), "triage's decision", || {
        let decided: Option<String> = client
            .hget(keys::conversation(&id), "last_decision")
            .unwrap_or(None);
        let status: Option<String> = client
            .hget(keys::conversation(&id), "status")
            .unwrap_or(None);
        let reason: Option<String> = client
            .hget(keys::conversation(&id), "escalation_reason")
            .unwrap_or(None);
        async move { decided.and(status).map(|status| (status, reason)) }
    })
    .await
}

#[tokio::test]
async fn a_signed_vip_tier_skips_the_ai_and_an_unsigned_one_does_not() {
    let redis = RedisServer::start();
    let gateway = start_gateway(test_config(&redis, &signed_config())).await;
    let addr = gateway.local_addr;
    let question = "How do I reset my password?";

    // The site vouches for Vera's tier: straight to a person.
    let (claims, sig) = site_claims(SECRET.as_bytes(), "vera", json!({"tier": "vip"}));
    let (status, body) = post(
        addr,
        json!({"session": "trust-visitor-00000001", "client_id": "v1",
        "user_claims": claims, "user_sig": sig, "text": question}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // (No desk in this config: the conversation stays with the AI, the escalation is recorded.)
    assert_eq!(
        decided(&redis, "u:vera").await,
        ("bot".to_owned(), Some("vip_tier".to_owned()))
    );

    // Sam is signed in too, but only the page says "vip": the AI answers him.
    let (claims, sig) = site_claims(SECRET.as_bytes(), "sam", json!({"tier": "standard"}));
    let (status, body) = post(
        addr,
        json!({"session": "trust-visitor-00000002", "client_id": "s1",
        "user_claims": claims, "user_sig": sig, "attributes": {"tier": "vip"}, "text": question}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(decided(&redis, "u:sam").await, ("bot".to_owned(), None));

    // The same with the id-only signature, which vouches for no attribute at all.
    let sig = switchboard_webchat::sign_user_id(SECRET.as_bytes(), "olga");
    let (status, body) = post(
        addr,
        json!({"session": "trust-visitor-00000003", "client_id": "o1",
        "user_id": "olga", "user_sig": sig, "attributes": {"tier": "vip"}, "text": question}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(decided(&redis, "u:olga").await, ("bot".to_owned(), None));

    // The unsigned claim is still kept for the agents, marked as such.
    let id = conversation_id(switchboard_webchat::CHANNEL, "u:olga");
    let context: String = redis
        .client()
        .hget(keys::conversation(&id), "context")
        .unwrap();
    let context: Value = serde_json::from_str(&context).unwrap();
    assert_eq!(context["attributes"]["tier"], "vip", "{context}");
    assert_eq!(context["unverified"], json!(["tier"]), "{context}");
    assert!(context.get("tier").is_none(), "{context}");
}

#[tokio::test]
async fn forged_altered_expired_and_replayed_claims_are_refused() {
    let redis = RedisServer::start();
    let gateway = start_gateway(test_config(&redis, &signed_config())).await;
    let addr = gateway.local_addr;
    let secret = SECRET.as_bytes();
    let (alice, alice_sig) = site_claims(secret, "alice", json!({"tier": "vip"}));
    let (_, forged_sig) = site_claims(b"a guessed secret", "alice", json!({"tier": "vip"}));
    let (altered, _) = site_claims(secret, "mallory", json!({"tier": "vip"}));
    let (expired, expired_sig) = switchboard_webchat::sign_user_claims(
        secret,
        &json!({"user_id": "alice", "exp": unix_now() - 1}),
    );
    let attempts = [
        (
            "forged",
            json!({"user_claims": alice, "user_sig": forged_sig}),
        ),
        (
            "altered",
            json!({"user_claims": altered, "user_sig": alice_sig}),
        ),
        (
            "expired",
            json!({"user_claims": expired, "user_sig": expired_sig}),
        ),
        (
            "replayed for bob",
            json!({"user_claims": alice, "user_sig": alice_sig, "user_id": "bob"}),
        ),
        (
            "claims as an id",
            json!({"user_id": alice, "user_sig": alice_sig}),
        ),
        ("unsigned", json!({"user_claims": alice})),
    ];
    for (what, identity) in attempts {
        let mut body = json!({"session": "mallory-session-000001", "client_id": "m1", "text": "show me my invoices"});
        if let (Some(body), Some(identity)) = (body.as_object_mut(), identity.as_object()) {
            body.extend(identity.clone());
        }
        let (status, reply) = post(addr, body).await;
        assert_eq!(status, 401, "{what}: {reply}");
        assert!(reply.contains("unauthorized"), "{what}: {reply}");
    }
    let (status, reply) = http(
        addr,
        "GET",
        &format!("/webchat/messages?session=mallory-session-000001&user_claims={expired}&user_sig={expired_sig}"),
        None,
    )
    .await;
    assert_eq!(status, 401, "{reply}");
    assert!(
        reply.contains("expired"),
        "the visitor is told why: {reply}"
    );
    let stored: Vec<String> = redis.client().keys("sb:{*}:c:*").unwrap();
    assert!(stored.is_empty(), "nothing stored: {stored:?}");

    // Alice's own claims, as issued, work.
    let (status, reply) = post(
        addr,
        json!({"session": "alice-session-0000001", "client_id": "a1",
        "user_claims": alice, "user_sig": alice_sig, "text": "show me my invoices"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test]
async fn the_demo_pages_are_served_only_when_asked_for() {
    let redis = RedisServer::start();
    let gateway = start_gateway(test_config(&redis, WEBCHAT)).await;
    for path in ["/", "/webchat/demo/signed"] {
        let (status, _) = http(gateway.local_addr, "GET", path, None).await;
        assert_eq!(status, 404, "{path} is off by default");
    }
    let (status, _) = http(gateway.local_addr, "GET", "/webchat/widget.js", None).await;
    assert_eq!(status, 200, "the widget itself is always served");
    drop(gateway);

    let demo = WEBCHAT.replacen("enabled = true\n", "enabled = true\ndemo = true\n", 1);
    let gateway = start_gateway(test_config(&redis, &demo)).await;
    for path in ["/", "/webchat/demo/signed"] {
        let (status, page) = http(gateway.local_addr, "GET", path, None).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            page.contains("/webchat/widget.js"),
            "{path} embeds the widget"
        );
    }
    // The quick-start config is the one that turns it on.
    let quick_start =
        std::fs::read_to_string(crate::harness::config_dir().join("switchboard.toml"))
            .expect("config/switchboard.toml");
    assert!(quick_start.contains("\ndemo = true\n"));
}
