//! A generic API/webhook channel: any system that can make an HTTP request becomes a customer
//! channel. Your own app, or an SMS or WhatsApp provider's callbacks, post customer messages
//! to `POST /api/v1/messages`; the AI's answers, agents' replies and status notices go back
//! as signed JSON events to the integration's webhook, through the gateway's outbox (retried
//! with backoff, `Retry-After` honoured, nothing lost while the webhook is down).
//!
//! - [`config`]: `[connectors.api]` and its `[[connectors.api.integrations]]`
//! - [`signature`]: `v1=` HMAC-SHA256 of `{timestamp}.{body}`, both ways
//! - [`inbound`]: the route, authentication and the request body
//! - [`webhook`]: the event sent out and what the webhook's answer means
//! - [`ApiConnector`]: the `Connector`

pub mod config;
mod connector;
mod from_config;
pub mod inbound;
pub mod signature;
pub mod webhook;

pub use config::{ApiChannelConfig, AuthMode, IntegrationConfig};
pub use connector::ApiConnector;
pub use inbound::MESSAGES_PATH;

/// This channel's name in keys, config and logs: a system posting through the HTTP API.
pub const CHANNEL: switchboard_api::ChannelKind = switchboard_api::ChannelKind::new("api");
