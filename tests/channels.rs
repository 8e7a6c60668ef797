//! Telegram and Discord through the whole gateway, beside other channels; each channel's own
//! end-to-end tests are in `connectors/<name>/tests/gateway.rs`, which use the helpers here.

use std::sync::Arc;
use std::time::Duration;

use switchboard::app::RunningGateway;
use switchboard_api::ChannelKind;

use crate::desk::{start_with_fake_desk, FakeDesk};
use crate::harness::{eventually, test_config, RedisServer};

pub(crate) async fn gateway(
    redis: &RedisServer,
    extra: &str,
    desk: Arc<FakeDesk>,
) -> RunningGateway {
    start_with_fake_desk(test_config(redis, extra), desk).await
}

/// Customer messages stored for a conversation.
pub(crate) async fn customer_messages(
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
