//! Discord as a customer channel for Switchboard, over serenity: direct messages to the bot,
//! and a support channel where each customer's first message becomes a Discord thread.
//!
//! # Bot setup
//! In the Developer Portal (Applications -> your app -> Bot) enable the **privileged
//! `MESSAGE_CONTENT` intent**; without it Discord sends messages with empty content (or refuses
//! the identify with close code 4014). The bot identifies with `GUILD_MESSAGES`,
//! `DIRECT_MESSAGES` and `MESSAGE_CONTENT`. Invite it with *View Channel*, *Send Messages*,
//! *Create Public Threads* and *Send Messages in Threads* on the support channel.
//!
//! # Conversations
//! - a DM: key `dm:<DM channel id>`; the bot answers in the DM;
//! - a top-level message in `support_channel_id` starts a thread from that message: key
//!   `thread:<thread id>` (= the message id); messages in the thread continue it;
//! - messages from bots (the bot itself included), webhooks, other channels and Discord's own
//!   system messages are ignored; edits are ignored (the first version is what was answered);
//! - attachments and stickers are stored as text lines (`[attachment: name (type) url]`,
//!   `[sticker: name]`); embeds alone are ignored (their link is in the content);
//! - message ids are `dc:<message id>` and `dc:i:<interaction id>`, so a gateway re-delivery or
//!   a RESUME replay is stored once.
//!
//! AI answers carry a "Talk to a human" button (`custom_id` `sb:human`); a click arrives as a
//! `HumanRequest` and is acknowledged with a deferred update (type 6).
//!
//! Files: [`config`] (settings), [`convert`] (pure payload <-> message), `rest.rs` (the REST
//! calls, errors mapped for the outbox), `gateway.rs` (serenity's client), `connector.rs` (the
//! [`Connector`] impl), `standin` (feature `standin`, always on in this crate's own tests: a
//! loopback Discord for tests).
//!
//! [`Connector`]: switchboard_api::Connector

pub mod config;
mod connector;
pub mod convert;
mod from_config;
mod gateway;
mod rest;
#[cfg(any(test, feature = "standin"))]
pub mod standin;

pub use config::DiscordConfig;
pub use connector::DiscordConnector;
pub use gateway::intents;
pub use rest::CONNECTOR;

/// This channel's name in keys, config and logs: A Discord bot.
pub const CHANNEL: switchboard_api::ChannelKind = switchboard_api::ChannelKind::new("discord");
