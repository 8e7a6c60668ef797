//! One customer across channels: a signed web chat user and their email are linked into one
//! conversation.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::desk::{reply, start_with_fake_desk, FakeDesk};
use crate::email_gateway::through_the_gateway::{captured, email_toml};
use crate::harness::{eventually, http, test_config, RedisServer};
use crate::mailservers::{Dovecot, SmtpSink};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_web_chat_user_and_their_email_share_one_conversation() {
    let redis = RedisServer::start();
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start();
    std::env::set_var("SB_TEST_LINK_SECRET", "site-secret");
    let extra = format!(
        "[connectors.webchat]\nenabled = true\nidentity_secret_env = \"SB_TEST_LINK_SECRET\"\n{}",
        email_toml(&dovecot, &smtp)
    );
    let desk = Arc::new(FakeDesk::default());
    let gateway = start_with_fake_desk(test_config(&redis, &extra), desk.clone()).await;

    let user = "alice@example.org";
    let signature = switchboard_webchat::sign_user_id(b"site-secret", user);
    let body = json!({
        "session": "linked-visitor-000000001", "client_id": "w1", "user_id": user, "user_sig": signature,
        "text": "I need to talk to a human about my account",
    });
    let (status, response) = http(
        gateway.local_addr,
        "POST",
        "/webchat/messages",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{response}");
    let (_, thread) = desk.thread().await;

    // Later she writes by email: it lands in the same conversation, and the same thread.
    dovecot.deliver(
        "From: Alice Doe <alice@example.org>\nTo: support@example.com\nSubject: My account\n\
         Message-ID: <linked-1@example.org>\n\nHere is the screenshot you asked for.\n",
    );
    eventually(
        Duration::from_secs(30),
        "the mail mirrored into the web chat's thread",
        || async {
            desk.mirrored_in(&thread)
                .iter()
                .any(|(_, text)| text.contains("screenshot"))
                .then_some(())
        },
    )
    .await;
    let view = gateway
        .store
        .customer_view(switchboard_webchat::CHANNEL, &format!("u:{user}"), None)
        .await
        .unwrap()
        .expect("one conversation");
    let texts: Vec<&str> = view.messages.iter().map(|m| m.text.as_str()).collect();
    assert!(
        texts.iter().any(|t| t.contains("talk to a human"))
            && texts.iter().any(|t| t.contains("screenshot")),
        "{texts:?}"
    );
    assert_eq!(
        desk.threads.lock().unwrap().len(),
        1,
        "one thread for one customer"
    );

    // The agent answers; the reply goes where she wrote last: by email.
    desk.agent(reply(
        &thread,
        "1800000030.000100",
        "Sam",
        "Thanks Alice, got the screenshot.",
    ))
    .await;
    let mail = captured(&smtp, "the reply by email", "got the screenshot").await;
    assert!(mail.contains("alice@example.org"), "{mail}");
}
