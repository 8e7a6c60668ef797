//! Discord end to end: the real serenity client against the loopback stand-in of Discord's
//! REST and gateway, through the whole gateway. Included into the root crate's integration
//! binary (see the root `build.rs`), so `crate::` is that binary.

use std::sync::Arc;
use std::time::Duration;

use crate::channels::{customer_messages, gateway};
use crate::desk::{reply, FakeDesk};
use crate::harness::{eventually, RedisServer};
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
