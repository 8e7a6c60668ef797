//! Telegram as a Switchboard customer channel: private chats with the bot become support
//! conversations; the AI's answers carry a "Talk to a human" button; agents' replies arrive
//! as messages from the bot, signed with the agent's name.
//!
//! teloxide is the Bot API client (transport, typed requests, error decoding); updates are
//! read leniently from JSON so Telegram's own off-spec examples still parse.
//!
//! - [`config`]: `[connectors.telegram]`, secrets from the environment, offline validation
//! - [`convert`]: update JSON -> actions, outbound -> message parts (pure)
//! - [`PollLease`]: one polling instance at a time (the core implements it over Redis)
//! - [`TelegramConnector`]: the `Connector` (long polling or webhook; paced sends)
//! - `standin` (feature `standin`, always on in this crate's own tests): a loopback Telegram
//!   Bot API for tests

mod client;
pub mod config;
mod connector;
pub mod convert;
mod from_config;
mod pacing;
mod polling;
#[cfg(any(test, feature = "standin"))]
pub mod standin;
mod webhook;

pub use client::CONNECTOR;
pub use config::{TelegramConfig, TelegramMode};
pub use connector::TelegramConnector;
pub use switchboard_api::{MemoryLease, PollLease};
pub use webhook::SECRET_HEADER;

/// This channel's name in keys, config and logs: A Telegram bot.
pub const CHANNEL: switchboard_api::ChannelKind = switchboard_api::ChannelKind::new("telegram");
