//! The gateway websocket, through serenity's `Client`: one shard, the intents the channel
//! needs, and an event handler that only forwards what we use to the connector's run loop.
//!
//! serenity asks `GET /api/v10/gateway` (through the HTTP proxy setting, so a stand-in's
//! `ws://` URL is used as is), identifies, heartbeats, resumes with `resume_gateway_url`
//! after a drop, and parses each dispatch into its model types. The handler does no I/O: the
//! run loop owns thread creation, storage and acks, so a slow core never stalls the shard.

use std::sync::Arc;

use async_trait::async_trait;
use serenity::client::{Client, ClientBuilder, Context, EventHandler};
use serenity::gateway::ShardManager;
use serenity::http::Http;
use serenity::model::application::{ComponentInteraction, Interaction};
use serenity::model::channel::Message;
use serenity::model::gateway::{GatewayIntents, Ready};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::rest::CONNECTOR;
use switchboard_api::ConnectorError;

/// What the shard hands the run loop.
#[derive(Debug)]
pub(crate) enum GatewayEvent {
    /// The session is ready; the bot's own user id, so it ignores itself.
    Ready {
        /// The bot's user id.
        bot_user_id: u64,
    },
    /// A new message (MESSAGE_CREATE).
    Message(Box<Message>),
    /// A component (button) was pressed (INTERACTION_CREATE, type 3).
    Click(Box<ComponentInteraction>),
}

/// The intents the channel needs. `MESSAGE_CONTENT` is privileged: without it in the
/// Developer Portal, Discord refuses the identify (close code 4014).
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
}

struct Forwarder {
    events: mpsc::UnboundedSender<GatewayEvent>,
}

#[async_trait]
impl EventHandler for Forwarder {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        let bot_user_id = ready.user.id.get();
        let _ = self.events.send(GatewayEvent::Ready { bot_user_id });
    }

    async fn message(&self, _ctx: Context, message: Message) {
        let _ = self.events.send(GatewayEvent::Message(Box::new(message)));
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        if let Interaction::Component(click) = interaction {
            let _ = self.events.send(GatewayEvent::Click(Box::new(click)));
        }
    }
}

/// A running gateway connection; shuts its shard down when dropped.
pub(crate) struct GatewaySession {
    shard_manager: Arc<ShardManager>,
    task: Option<JoinHandle<Result<(), serenity::Error>>>,
}

impl GatewaySession {
    /// Connects one shard and forwards its events to `events`.
    pub(crate) async fn connect(
        http: Http,
        events: mpsc::UnboundedSender<GatewayEvent>,
    ) -> Result<GatewaySession, ConnectorError> {
        let mut client: Client = ClientBuilder::new_with_http(http, intents())
            .event_handler(Forwarder { events })
            .await
            .map_err(|error| ConnectorError::Transient {
                connector: CONNECTOR,
                detail: format!("cannot set up the gateway client: {error}"),
            })?;
        let shard_manager = Arc::clone(&client.shard_manager);
        let task = tokio::spawn(async move { client.start().await });
        Ok(GatewaySession {
            shard_manager,
            task: Some(task),
        })
    }

    /// Waits until the shard stops for good; returns serenity's reason.
    pub(crate) async fn ended(&mut self) -> String {
        let Some(task) = self.task.as_mut() else {
            return "the gateway session already ended".to_string();
        };
        let outcome = task.await;
        self.task = None;
        match outcome {
            Ok(Ok(())) => "the gateway connection closed".to_string(),
            Ok(Err(error)) => format!("the gateway connection failed: {error}"),
            Err(error) => format!("the gateway task stopped: {error}"),
        }
    }
}

impl Drop for GatewaySession {
    fn drop(&mut self) {
        // The shard runners are tasks of their own; without this they would outlive `run`.
        let manager = Arc::clone(&self.shard_manager);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { manager.shutdown_all().await });
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
