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
//! To chat as a known user, the site's *server* signs claims about the user (id, expiry, tier,
//! email, ...) with the secret named by `identity_secret_env` and adds
//! `data-user-claims="<base64url JSON>" data-user-sig="<hex HMAC-SHA256(secret, claims)>"`
//! (see [`sign_user_claims`] and `claims.rs`). Unsigned or forged claims are refused; unsigned
//! `data-attributes` reach agents marked unverified and never route.
//!
//! Files: `config.rs` (settings), `identity.rs` (session tokens, conversation keys),
//! `claims.rs` (signed user claims), `convert.rs` (frames <-> neutral messages), `connector.rs` (the [`Connector`]
//! impl and intake), `socket.rs` (one WebSocket), `http.rs` (routes), `hub.rs` (live
//! sockets per conversation), `ratelimit.rs` (per-visitor and
//! per-IP limits), `client_ip.rs` (whose address a request is, behind trusted proxies),
//! `upload.rs` (file uploads and their quotas), `demo.rs` (the opt-in demo pages),
//! `assets/` (widget, demo).
//!
//! [`Connector`]: switchboard_api::Connector

pub mod claims;
mod client_ip;
mod config;
mod connector;
pub mod convert;
mod demo;
mod from_config;
mod http;
mod hub;
pub mod identity;
mod quota;
mod ratelimit;
mod socket;
mod upload;

#[cfg(test)]
mod client_ip_tests;
#[cfg(test)]
mod socket_tests;
#[cfg(test)]
mod test_server;

pub use claims::sign_user_claims;
pub use config::WebchatConfig;
pub use connector::{Fanout, WebchatConnector};
pub use identity::{sign_user_id, verify_user_sig};
pub use switchboard_api::{QuotaRefusal, UploadQuota, UploadReservation};

/// This channel's name in keys, config and logs: The embeddable web chat widget.
pub const CHANNEL: switchboard_api::ChannelKind = switchboard_api::ChannelKind::new("webchat");
