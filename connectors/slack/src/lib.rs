//! The Slack agent desk: escalations become Slack threads with a full briefing, and agents'
//! replies, edits, deletions and reactions come back as neutral desk events.
//!
//! The core decides what a briefing says and what an agent's message means; this crate only
//! renders (Block Kit) and transports (slack-morphism: Web API, Socket Mode or the Events API).
//!
//! - [`config`]: `[desk.slack]`, secrets from the environment, offline validation
//! - [`blocks`]: briefing -> Block Kit (pure)
//! - [`convert`]: Slack event JSON -> desk events (pure)
//! - [`signature`]: Events API request signing
//! - [`SlackDesk`]: the `Desk` implementation (I/O)
//! - `standin` (feature `standin`, always on in this crate's own tests): a loopback Slack for
//!   tests
//!
//! Slack as a customer channel (`[connectors.slack]`, a separate Slack app):
//! - [`customer_config`]: its typed config; [`customer_convert`]: Slack JSON <-> model (pure)
//! - [`SlackCustomerConnector`]: the `Connector` implementation (I/O)

pub mod blocks;
mod client;
pub mod config;
pub mod convert;
mod customer;
pub mod customer_config;
pub mod customer_convert;
mod customer_http;
#[cfg(test)]
mod customer_tests;
mod desk;
mod events_http;
mod from_config;
mod pacing;
mod shared_files;
pub mod signature;
#[cfg(any(test, feature = "standin"))]
pub mod standin;
#[cfg(test)]
mod standin_tests;

pub use client::CONNECTOR;
pub use config::{SlackDeskConfig, SlackMode};
pub use customer::{SlackCustomerConnector, CUSTOMER_CONNECTOR};
pub use customer_config::SlackCustomerConfig;
pub use desk::SlackDesk;
