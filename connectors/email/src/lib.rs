//! Email channel for Switchboard: IMAP in (IDLE, polling as fallback), SMTP out.
//!
//! Files, one concern each: `config` (the `[connectors.email]` section), `convert` (raw mail
//! -> `Inbound`, pure), `trim` (reply trimming), `noise` (auto-replies, bounces, rate limit),
//! `thread` (conversation key and `+token` reply addresses), `compose` (`Outbound` -> mail,
//! pure), `imap` (the IMAP protocol side), `connector` (the loop and SMTP delivery).

pub mod cli;
pub mod compose;
pub mod config;
pub mod connector;
pub mod convert;
mod from_config;
pub mod imap;
pub mod noise;
pub mod oauth;
mod oauth_config;
mod smtp;
pub mod thread;
#[cfg(feature = "tls")]
mod tls;
pub mod trim;

pub use config::{
    AuthMethod, EmailConfig, ImapConfig, OAuthConfig, OAuthProvider, ProcessedAction, SmtpConfig,
    TlsMode,
};
pub use connector::EmailConnector;

/// This channel's name in keys, config and logs: Email over IMAP and SMTP.
pub const CHANNEL: switchboard_api::ChannelKind = switchboard_api::ChannelKind::new("email");
