//! Telegram end to end: the real teloxide client against the loopback Bot API stand-in,
//! through the whole gateway. Included into the root crate's integration binary (see the root
//! `build.rs`), so `crate::` is that binary.

use std::sync::Arc;
use std::time::Duration;

use crate::channels::{customer_messages, gateway};
use crate::desk::{reply, FakeDesk};
use crate::harness::{eventually, RedisServer};
use switchboard_telegram::standin::{TelegramStandIn, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_customer_is_answered_escalated_and_gets_the_agents_reply() {
    let redis = RedisServer::start();
    let standin = TelegramStandIn::start().await;
    std::env::set_var("SB_TEST_TELEGRAM_TOKEN", TOKEN);
    let extra = format!(
        "[connectors.telegram]\nenabled = true\nbot_token_env = \"SB_TEST_TELEGRAM_TOKEN\"\napi_url = \"{}\"\npoll_timeout_secs = 1\n",
        standin.api_url()
    );
    let desk = Arc::new(FakeDesk::default());
    let gateway = gateway(&redis, &extra, desk.clone()).await;
    let chat = 4242;

    let first = standin.push_text(chat, "alice", "How do I reset my password?");
    let answer = eventually(
        Duration::from_secs(20),
        "the AI's answer on Telegram",
        || async {
            standin
                .sent()
                .into_iter()
                .find(|m| m.chat_id == chat && m.text.to_lowercase().contains("password"))
        },
    )
    .await;
    assert!(
        answer.reply_markup.to_string().contains("sb:human"),
        "Talk to a human button: {answer:?}"
    );

    standin.push_callback(chat, "alice", "sb:human");
    eventually(Duration::from_secs(20), "the escalation notice", || async {
        standin
            .sent()
            .into_iter()
            .find(|m| m.chat_id == chat && m.text.contains("person"))
    })
    .await;
    let (briefing, thread) = desk.thread().await;
    assert_eq!(briefing.channel, switchboard_telegram::CHANNEL);
    assert!(briefing.verified, "Telegram vouches for the user id");

    // A crash before the offset moved: Telegram hands the update out again. Updates are
    // handled in order, so once a later one is stored the replay was handled too.
    assert!(standin.replay_update(first));
    let later = (chat + 1).to_string();
    standin.push_text(chat + 1, "bob", "Where can I download my invoices?");
    eventually(Duration::from_secs(20), "a later update stored", || async {
        let stored = customer_messages(&gateway, switchboard_telegram::CHANNEL, &later).await;
        (!stored.is_empty()).then_some(())
    })
    .await;
    let key = chat.to_string();
    let stored = customer_messages(&gateway, switchboard_telegram::CHANNEL, &key).await;
    assert_eq!(
        stored
            .iter()
            .filter(|t| t.contains("reset my password"))
            .count(),
        1,
        "{stored:?}"
    );

    // Telegram is rate limiting when the agent answers: the reply still arrives, once.
    standin.fail_next_with_429(1, 1);
    desk.agent(reply(
        &thread,
        "1800000020.000100",
        "Sam",
        "Hi Alice, I've sent you a new link.",
    ))
    .await;
    let agent = eventually(
        Duration::from_secs(20),
        "the agent's reply on Telegram",
        || async {
            standin
                .sent()
                .into_iter()
                .find(|m| m.chat_id == chat && m.text.contains("new link"))
        },
    )
    .await;
    assert!(
        agent.text.contains("Sam"),
        "signed with the agent's name: {agent:?}"
    );
    // Replies to a customer keep their order: once a later one is shown, a second copy of
    // the retried one would have been too.
    desk.agent(reply(
        &thread,
        "1800000020.000200",
        "Sam",
        "Anything else I can do?",
    ))
    .await;
    eventually(
        Duration::from_secs(20),
        "the agent's next reply",
        || async {
            standin
                .sent()
                .into_iter()
                .find(|m| m.chat_id == chat && m.text.contains("Anything else"))
        },
    )
    .await;
    assert_eq!(
        standin
            .sent()
            .iter()
            .filter(|m| m.text.contains("new link"))
            .count(),
        1
    );
}
