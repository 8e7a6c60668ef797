//! Telegram and Discord end to end: the real teloxide and serenity clients against loopback
//! stand-ins of the Bot API and of Discord's REST + gateway, through the whole gateway.

use std::sync::Arc;
use std::time::Duration;

use switchboard::app::RunningGateway;
use switchboard_api::ChannelKind;

use crate::desk::{reply, start_with_fake_desk, FakeDesk};
use crate::harness::{eventually, test_config, RedisServer};

async fn gateway(redis: &RedisServer, extra: &str, desk: Arc<FakeDesk>) -> RunningGateway {
    start_with_fake_desk(test_config(redis, extra), desk).await
}

/// Customer messages stored for a conversation.
async fn customer_messages(
    gateway: &RunningGateway,
    channel: ChannelKind,
    key: &str,
) -> Vec<String> {
    gateway
        .store
        .customer_view(channel, key, None)
        .await
        .unwrap()
        .map(|view| {
            view.messages
                .into_iter()
                .filter(|m| m.author == switchboard_api::Author::Customer)
                .map(|m| m.text)
                .collect()
        })
        .unwrap_or_default()
}

mod telegram {
    use super::*;
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
}

mod discord {
    use super::*;
    use switchboard_discord::standin::DiscordStandIn;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_discord_customer_is_answered_escalated_and_gets_the_agents_reply() {
        let redis = RedisServer::start();
        let standin = DiscordStandIn::start().await;
        std::env::set_var("SB_TEST_DISCORD_TOKEN", "standin-discord-token");
        let extra = format!(
            "[connectors.discord]\nenabled = true\nbot_token_env = \"SB_TEST_DISCORD_TOKEN\"\napi_url = \"{}\"\n",
            standin.api_url()
        );
        let desk = Arc::new(FakeDesk::default());
        let gateway = gateway(&redis, &extra, desk.clone()).await;
        assert!(
            standin.wait_for_ready(Duration::from_secs(20)).await,
            "the bot connected to the gateway"
        );
        let dm = standin.dm_channel("bob");

        standin.push_dm("bob", "How do I download my invoices?");
        let answer = eventually(
            Duration::from_secs(20),
            "the AI's answer on Discord",
            || async {
                standin
                    .sent()
                    .into_iter()
                    .find(|m| m.channel_id == dm && m.content.to_lowercase().contains("invoice"))
            },
        )
        .await;
        assert!(
            answer.button_ids().contains(&"sb:human".to_owned()),
            "{answer:?}"
        );

        // The gateway redelivers the message (a RESUME replay): stored once.
        standin.replay_last();
        standin.push_button_click(dm, "bob", "sb:human");
        eventually(Duration::from_secs(20), "the escalation notice", || async {
            standin
                .sent()
                .into_iter()
                .find(|m| m.channel_id == dm && m.content.contains("person"))
        })
        .await;
        let (briefing, thread) = desk.thread().await;
        assert_eq!(briefing.channel, switchboard_discord::CHANNEL);
        let stored =
            customer_messages(&gateway, switchboard_discord::CHANNEL, &format!("dm:{dm}")).await;
        assert_eq!(
            stored.iter().filter(|t| t.contains("invoices")).count(),
            1,
            "{stored:?}"
        );

        standin.fail_next_with_429(1, Duration::from_millis(500));
        desk.agent(reply(
            &thread,
            "1800000021.000100",
            "Sam",
            "Hi Bob, they're under Settings > Billing.",
        ))
        .await;
        let agent = eventually(
            Duration::from_secs(20),
            "the agent's reply on Discord",
            || async {
                standin
                    .sent()
                    .into_iter()
                    .find(|m| m.channel_id == dm && m.content.contains("Settings > Billing"))
            },
        )
        .await;
        assert!(agent.content.contains("Sam"), "{agent:?}");
    }
}

/// A revoked bot token stops that connector with a clear error; the others keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_telegram_token_is_named_and_web_chat_keeps_working() {
    use serde_json::{json, Value};
    use switchboard_telegram::standin::{TelegramStandIn, TOKEN};

    use crate::webchat::{Widget, WEBCHAT};

    let redis = RedisServer::start();
    let standin = TelegramStandIn::start().await;
    standin.revoke_token();
    std::env::set_var("SB_TEST_TELEGRAM_REVOKED", TOKEN);
    let extra = format!(
        "{WEBCHAT}[connectors.telegram]\nenabled = true\nbot_token_env = \"SB_TEST_TELEGRAM_REVOKED\"\napi_url = \"{}\"\npoll_timeout_secs = 1\n",
        standin.api_url()
    );
    let gateway = gateway(&redis, &extra, Arc::new(FakeDesk::default())).await;
    let admin = gateway.admin_addr;
    let telegram = eventually(
        Duration::from_secs(20),
        "telegram reported down",
        || async move {
            let (status, body) = crate::harness::http(admin, "GET", "/readyz", None).await;
            let ready: Value = serde_json::from_str(&body).ok()?;
            let telegram = ready["telegram"].as_str()?.to_owned();
            (status == 503 && telegram.contains("401")).then_some(telegram)
        },
    )
    .await;
    assert!(
        telegram.starts_with("down") && telegram.contains("telegram"),
        "{telegram}"
    );

    let (mut widget, _) =
        Widget::connect(gateway.local_addr, "revoked-visitor-0000001", None).await;
    widget
        .send(json!({"type": "message", "client_id": "t1", "text": "How do I reset my password?"}))
        .await;
    assert!(widget.message_from("ai").await["text"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("password"));
}
