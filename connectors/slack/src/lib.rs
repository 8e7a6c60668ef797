//! The Slack agent desk: escalations become Slack threads with a full briefing, and agents'
//! replies, edits, deletions and reactions come back as neutral desk events.
//!
//! The core decides what a briefing says and what an agent's message means; this crate only
//! renders (Block Kit) and transports (slack-morphism: Web API, Socket Mode or the Events API).
//!
//! The crate is in three parts:
//! - `app/`: what any Slack app of ours needs: the Web API client, per-channel pacing,
//!   request signatures ([`signature`]), the bot's identity, health, and the Socket Mode /
//!   Events API runner
//! - `desk/`: the agent desk, [`SlackDesk`] (`[desk.slack]`): [`config`], [`blocks`]
//!   (briefing -> Block Kit, pure), [`convert`] (Slack event JSON -> desk events, pure)
//! - `customer/`: Slack as a customer channel, [`SlackCustomerConnector`] (`[connectors.slack]`,
//!   a separate Slack app): [`customer_config`], [`customer_convert`] (Slack JSON <-> model)
//!
//! `standin` (feature `standin`): a loopback Slack (Web API + Socket Mode) for tests.

mod app;
pub mod cli;
mod customer;
mod desk;
mod from_config;
pub mod manifest;
#[cfg(any(test, feature = "standin"))]
pub mod standin;

pub use app::client::CONNECTOR;
pub use app::signature;
pub use config::{SlackDeskConfig, SlackMode};
pub use customer::{config as customer_config, convert as customer_convert};
pub use customer::{SlackCustomerConnector, CUSTOMER_CONNECTOR};
pub use customer_config::SlackCustomerConfig;
pub use desk::SlackDesk;
pub use desk::{blocks, config, convert};

/// This channel's name in keys, config and logs: Slack as a customer channel (shared or community channels).
pub const CHANNEL: switchboard_api::ChannelKind = switchboard_api::ChannelKind::new("slack");
