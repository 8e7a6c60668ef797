//! Discord and Slack customers served through the Slack desk, end to end: each customer
//! channel's real client against its stand-in, the Slack desk's real client against a second
//! stand-in, one gateway and Redis between. Agents claim by reaction, reply, correct and delete
//! in the thread; the customer sees it on their own channel.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_discord::standin::DiscordStandIn;
use switchboard_slack::standin::{RecordedPost, SlackStandIn};

use crate::harness::{eventually, start_gateway, test_config, RedisServer};
use crate::slack_desk::{agent_reply, briefing, desk_config, AGENT};

const SUPPORT: &str = "C0SUPPORT";
const WAIT: Duration = Duration::from_secs(20);

fn reaction(emoji: &str, parent_ts: &str, event_ts: &str) -> Value {
    json!({"type": "reaction_added", "user": AGENT, "reaction": emoji, "item_user": "U0SWITCHBOARD",
           "item": {"type": "message", "channel": SUPPORT, "ts": parent_ts}, "event_ts": event_ts})
}

fn agent_edit(parent_ts: &str, reply_ts: &str, old: &str, new: &str, event_ts: &str) -> Value {
    json!({"type": "message", "subtype": "message_changed", "channel": SUPPORT, "hidden": true,
           "ts": event_ts, "event_ts": event_ts, "channel_type": "channel",
           "message": {"type": "message", "user": AGENT, "text": new, "ts": reply_ts,
                       "thread_ts": parent_ts, "edited": {"user": AGENT, "ts": event_ts}},
           "previous_message": {"type": "message", "user": AGENT, "text": old, "ts": reply_ts,
                                "thread_ts": parent_ts}})
}

fn agent_delete(parent_ts: &str, reply_ts: &str, text: &str, event_ts: &str) -> Value {
    json!({"type": "message", "subtype": "message_deleted", "channel": SUPPORT, "hidden": true,
           "ts": event_ts, "event_ts": event_ts, "deleted_ts": reply_ts, "channel_type": "channel",
           "previous_message": {"type": "message", "user": AGENT, "text": text, "ts": reply_ts,
                                "thread_ts": parent_ts}})
}

async fn desk_post(
    desk: &SlackStandIn,
    what: &str,
    check: impl Fn(&RecordedPost) -> bool,
) -> RecordedPost {
    eventually(WAIT, what, || async {
        desk.posts().into_iter().find(|post| check(post))
    })
    .await
}

/// Every desk gesture an agent makes on one escalated customer, checked on the customer's side.
async fn agent_works_the_thread(
    desk: &SlackStandIn,
    parent: &RecordedPost,
    customer_sees: impl Fn(&str) -> bool + Copy,
) {
    // :eyes: claims: the briefing is updated in place with the agent's name.
    desk.send_event(reaction("eyes", &parent.ts, "1800000001.000001"));
    desk_post(desk, "the briefing updated as claimed", |post| {
        post.method == "chat.update"
            && post.ts == parent.ts
            && post.blocks.to_string().contains("Sam Rivera")
    })
    .await;

    let reply_ts = "1800000002.000100";
    desk.send_event(agent_reply(
        &parent.ts,
        reply_ts,
        "Hi! Invoices are under Settings, then Billing.",
    ));
    eventually(
        WAIT,
        "the agent's reply on the customer's channel",
        || async { customer_sees("Settings, then Billing").then_some(()) },
    )
    .await;

    // A correction reaches the customer as the corrected text.
    desk.send_event(agent_edit(
        &parent.ts,
        reply_ts,
        "Hi! Invoices are under Settings, then Billing.",
        "Hi! Invoices are under Account, then Invoices.",
        "1800000003.000100",
    ));
    eventually(WAIT, "the corrected reply", || async {
        customer_sees("Account, then Invoices").then_some(())
    })
    .await;

    // A deleted reply cannot be unsent: the thread is told.
    desk.send_event(agent_delete(
        &parent.ts,
        reply_ts,
        "Hi! Invoices are under Account, then Invoices.",
        "1800000004.000100",
    ));
    desk_post(desk, "the deletion notice", |post| {
        post.thread_ts.as_deref() == Some(parent.ts.as_str())
            && post.text.contains("already received")
    })
    .await;

    // :white_check_mark: resolves: the customer is told, the briefing says so.
    desk.send_event(reaction(
        "white_check_mark",
        &parent.ts,
        "1800000005.000001",
    ));
    eventually(WAIT, "the resolution notice", || async {
        customer_sees("resolved").then_some(())
    })
    .await;
    desk_post(desk, "the briefing updated as resolved", |post| {
        post.method == "chat.update"
            && post.ts == parent.ts
            && post.blocks.to_string().to_lowercase().contains("resolved")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discord_customer_is_served_from_the_slack_desk() {
    let redis = RedisServer::start();
    let discord = DiscordStandIn::start().await;
    let desk = SlackStandIn::start().await;
    desk.set_user(AGENT, "Sam Rivera");
    std::env::set_var("SB_TEST_DISCORD_TOKEN", "standin-discord-token");
    let config = format!(
        "{}\n[connectors.discord]\nenabled = true\nbot_token_env = \"SB_TEST_DISCORD_TOKEN\"\napi_url = \"{}\"\n",
        desk_config(&desk, "socket"),
        discord.api_url()
    );
    let _gateway = start_gateway(test_config(&redis, &config)).await;
    assert!(
        discord.wait_for_ready(WAIT).await,
        "the bot connected to Discord"
    );
    let dm = discord.dm_channel("bob");

    discord.push_dm("bob", "I want to talk to a real person about my invoices");
    let parent = briefing(&desk).await;
    assert_eq!(parent.channel, SUPPORT);
    assert!(
        parent.blocks.to_string().contains("discord"),
        "{}",
        parent.blocks
    );

    let customer_sees = |needle: &str| {
        discord
            .sent()
            .iter()
            .any(|message| message.channel_id == dm && message.content.contains(needle))
    };
    agent_works_the_thread(&desk, &parent, customer_sees).await;
    let signed = discord
        .sent()
        .into_iter()
        .find(|message| message.content.contains("Settings, then Billing"))
        .unwrap();
    assert!(signed.content.contains("Sam Rivera"), "{signed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_connect_customer_is_served_from_the_team_s_own_slack_desk() {
    use crate::slack_gateway::SHARED;
    const QUESTION_TS: &str = "1700000100.000100";
    let redis = RedisServer::start();
    // The customer's shared channel and the team's support channel are two apps, as a team
    // installs them: one stand-in each.
    let customers = SlackStandIn::start().await;
    customers.set_user_with_email("U0CUSTDANA", "Dana", "dana@acme.example");
    let desk = SlackStandIn::start().await;
    desk.set_user(AGENT, "Sam Rivera");
    let config = format!(
        "{}{}",
        desk_config(&desk, "socket"),
        crate::slack_gateway::customer_config(&customers)
    );
    let _gateway = start_gateway(test_config(&redis, &config)).await;
    eventually(
        WAIT,
        "the customer app's Socket Mode connection",
        || async { (customers.socket_clients() > 0).then_some(()) },
    )
    .await;

    customers.send_event(
        json!({"type": "message", "channel": SHARED, "user": "U0CUSTDANA",
        "text": "I want to talk to a real person about my invoices", "ts": QUESTION_TS,
        "event_ts": QUESTION_TS, "channel_type": "channel"}),
    );
    let parent = briefing(&desk).await;
    assert!(
        parent.blocks.to_string().contains("Dana"),
        "{}",
        parent.blocks
    );
    assert!(
        customers.posts().iter().all(|post| post.channel == SHARED),
        "nothing of the desk is posted in the customer's workspace"
    );

    let customer_sees = |needle: &str| {
        customers.posts().iter().any(|post| {
            post.channel == SHARED
                && post.thread_ts.as_deref() == Some(QUESTION_TS)
                && post.text.contains(needle)
        })
    };
    agent_works_the_thread(&desk, &parent, customer_sees).await;
    assert!(
        desk.posts().iter().all(|post| post.channel == SUPPORT),
        "nothing of the customer's workspace is posted in the desk's"
    );
}
