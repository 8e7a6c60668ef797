//! Web chat channel for Switchboard: an embeddable widget, its WebSocket and HTTP endpoints,
//! and a demo page, all served on the gateway's own HTTP listener.
//!
//! A site embeds the widget with one tag:
//!
//! ```html
//! <script src="https://support.example.com/webchat/widget.js"
//!         data-attributes='{"plan":"pro","tier":"standard"}'></script>
//! ```
//!
//! To chat as a known user, the site's *server* signs the user id with the secret named by
//! `identity_secret_env` and adds `data-user-id="42" data-user-sig="<hex HMAC-SHA256(secret, "42")>"`
//! (see [`sign_user_id`]). Unsigned or forged claims are refused.
//!
//! Files: `config.rs` (settings), `identity.rs` (session tokens, signatures, conversation
//! keys), `convert.rs` (frames <-> neutral messages), `connector.rs` (the [`Connector`]
//! impl and intake), `socket.rs` (one WebSocket), `http.rs` (routes), `hub.rs` (live
//! sockets per conversation), `ratelimit.rs` (per-visitor and
//! per-IP limits), `client_ip.rs` (whose address a request is, behind trusted proxies), `assets/` (widget, demo).
//!
//! [`Connector`]: switchboard_api::Connector

mod client_ip;
mod config;
mod connector;
pub mod convert;
mod http;
mod hub;
pub mod identity;
mod ratelimit;
mod socket;
mod upload;

#[cfg(test)]
mod client_ip_tests;
#[cfg(test)]
mod socket_tests;
#[cfg(test)]
mod testkit;

pub use config::WebchatConfig;
pub use connector::{Fanout, WebchatConnector};
pub use identity::{sign_user_id, verify_user_sig};
