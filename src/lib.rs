//! Switchboard: an AI-first, human-backed omnichannel support gateway.
//!
//! Connectors (crates under `connectors/`) turn platform events into neutral
//! [`switchboard_api::Inbound`] messages; the [`pipeline`] stores them in Redis, routes
//! them by conversation status through [`triage`], and the [`outbox`] delivers the replies.

pub mod admin;
pub mod app;
pub mod archive;
pub mod cases;
pub mod config;
pub mod contact;
pub mod desk;
pub mod fanout;
pub mod files;
pub mod https;
pub mod learning;
pub mod lease;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod outbox;
pub mod periodic;
pub mod pipeline;
pub mod receipts;
pub mod registry;
pub mod report;
pub mod server;
pub mod shared;
pub mod store;
pub mod triage;
