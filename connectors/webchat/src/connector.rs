//! The web chat [`Connector`]: shared state, message intake and delivery to live sockets.
//!
//! Web chat has no platform to poll: visitors reach us over the gateway's own HTTP server
//! (see `http.rs` and `socket.rs`), and delivery is a push to whatever sockets are open.
//! A message with no open socket is still delivered: it is in the stored transcript, and
//! the widget fetches it when it reconnects.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use switchboard_api::Attachment;
use switchboard_api::{
    Accepted, Capabilities, ChannelKind, Connector, ConnectorError, DeliveryReceipt, Gateway,
    Health, InboundKind, IngestError, Outbound,
};

use crate::client_ip::{self, ClientKey, IpBlock};
use crate::config::WebchatConfig;
use crate::convert::{self, ErrorCode, Limits, Refusal, ServerFrame, VisitorContext};
use crate::hub::Hub;
use crate::identity::{self, Claims, IdentityError, SigningKeys, Visitor};
use crate::ratelimit::RateLimiter;
use switchboard_api::UploadQuota;

/// The upload limit when the gateway sets none.
const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// How often idle rate-limit buckets are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The web chat channel: the widget, its endpoints, and delivery to open chats.
pub struct WebchatConnector {
    shared: Arc<Shared>,
    fanout: Option<Arc<dyn Fanout>>,
}

/// Carries frames to the sockets other gateway instances hold (the gateway's fan-out).
pub use switchboard_api::Broadcast as Fanout;

/// State the HTTP handlers, the sockets and `send` share.
pub(crate) struct Shared {
    pub(crate) config: WebchatConfig,
    secret: Option<Vec<u8>>,
    /// The demo page's signing key: random per process, only when the demo is on.
    demo_secret: Option<[u8; 32]>,
    pub(crate) hub: Arc<Hub>,
    limiter: RateLimiter,
    /// Per client address, over all its visitors: new sockets and messages.
    ip_limiter: RateLimiter,
    trusted_proxies: Vec<IpBlock>,
    /// Largest file a visitor may upload (the gateway's `files.max_bytes`).
    pub(crate) max_file_bytes: u64,
    /// The gateway's byte quotas on uploads, when it counts them.
    quota: Option<Arc<dyn UploadQuota>>,
}

impl WebchatConnector {
    /// Builds the connector from its config; opens nothing.
    pub fn new(config: WebchatConfig) -> Self {
        let secret = config.secret_bytes();
        let limiter = RateLimiter::new(config.rate_limit_per_minute);
        let ip_limiter = RateLimiter::new(config.rate_limit_per_ip_per_minute);
        let trusted_proxies = config.trusted_proxy_blocks();
        let demo_secret = config.demo.then(rand::random::<[u8; 32]>);
        WebchatConnector {
            shared: Arc::new(Shared {
                config,
                secret,
                demo_secret,
                hub: Arc::new(Hub::default()),
                limiter,
                ip_limiter,
                trusted_proxies,
                max_file_bytes: DEFAULT_MAX_FILE_BYTES,
                quota: None,
            }),
            fanout: None,
        }
    }

    /// Also offers every delivered frame to the other instances through `fanout`.
    pub fn with_fanout(mut self, fanout: Arc<dyn Fanout>) -> Self {
        self.fanout = Some(fanout);
        self
    }

    /// Pushes a frame another instance published to this instance's sockets of the
    /// conversation; returns how many it reached.
    pub fn push_local(&self, conversation_key: &str, frame: &str) -> usize {
        self.shared.hub.push(conversation_key, &Arc::from(frame))
    }

    /// Accepts visitors' files up to `max_bytes` (the gateway's `files.max_bytes`).
    pub fn with_max_file_bytes(mut self, max_bytes: u64) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.max_file_bytes = max_bytes;
        }
        self
    }

    /// Counts visitors' uploads against `quota` (kept where every instance sees the same
    /// counts) and refuses those over it.
    pub fn with_upload_quota(mut self, quota: Arc<dyn UploadQuota>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.quota = Some(quota);
        }
        self
    }

    /// Where frames other instances publish are pushed to this instance's sockets.
    pub(crate) fn local_sockets(&self) -> Arc<Hub> {
        self.shared.hub.clone()
    }

    /// How many widget sockets are open right now.
    pub fn live_sockets(&self) -> usize {
        self.shared.hub.live_sockets()
    }
}

#[async_trait]
impl Connector for WebchatConnector {
    fn channel(&self) -> ChannelKind {
        crate::CHANNEL
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // The widget is served by the gateway, so `/files/...` links open as they are.
            opens_relative_links: true,
            // The widget shows files itself: images inline, others as links.
            files: true,
        }
    }

    fn routes(&self, gateway: Arc<dyn Gateway>) -> Option<axum::Router> {
        if !self.shared.config.enabled {
            return None;
        }
        Some(crate::http::router(Arc::clone(&self.shared), gateway))
    }

    /// Visitors arrive over the gateway's HTTP server, so all this task does is housekeeping.
    async fn run(&self, _gateway: Arc<dyn Gateway>) -> Result<(), ConnectorError> {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        loop {
            tick.tick().await;
            self.shared.limiter.prune(Instant::now());
            self.shared.ip_limiter.prune(Instant::now());
        }
    }

    async fn send(&self, outbound: &Outbound) -> Result<DeliveryReceipt, ConnectorError> {
        let frame: Arc<str> = Arc::from(ServerFrame::from_outbound(outbound, now_ms()).to_json());
        let sockets = self.shared.hub.push(&outbound.conversation_key, &frame);
        if let Some(fanout) = &self.fanout {
            // A retry after a failed publish pushes locally again; the widget drops a message
            // id it already shows.
            fanout
                .publish(&outbound.conversation_key, &frame)
                .await
                .map_err(|detail| ConnectorError::Transient {
                    connector: "webchat",
                    detail: format!("cannot reach the other gateway instances: {detail}"),
                })?;
        }
        tracing::debug!(
            conversation = %outbound.conversation_id,
            message = %outbound.id,
            sockets,
            "webchat message pushed"
        );
        Ok(DeliveryReceipt {
            platform_message_id: Some(outbound.id.clone()),
            ..DeliveryReceipt::default()
        })
    }

    async fn stop(&self) {
        self.shared.hub.restart_all();
    }

    async fn health(&self) -> Health {
        Health::Up
    }

    /// The widget shows the conversation as the gateway's store holds it, which the erasure
    /// empties: nothing of ours is left for the chat to show.
    async fn forget_sent(
        &self,
        _conversation_key: &str,
        sent: &[switchboard_api::SentMessage],
    ) -> Result<switchboard_api::ForgottenSent, ConnectorError> {
        Ok(switchboard_api::ForgottenSent {
            deleted: sent.len() as u64,
            ..Default::default()
        })
    }
}

impl Shared {
    /// Checks a visitor's claims against the configured secret and policy.
    pub(crate) fn resolve(&self, claims: Claims<'_>) -> Result<Visitor, Refusal> {
        let keys = SigningKeys {
            site: self.secret.as_deref(),
            demo: self.demo_secret.as_ref().map(|key| &key[..]),
        };
        identity::resolve_visitor(
            claims,
            keys,
            self.config.require_verified_identity,
            now_ms() / 1000,
        )
        .map_err(|error| match error {
            IdentityError::BadSession => Refusal::new(ErrorCode::Invalid, error.to_string()),
            IdentityError::Unauthorized(_) | IdentityError::Claims(_) => {
                Refusal::new(ErrorCode::Unauthorized, error.to_string())
            }
        })
    }

    /// The demo page's signing key, when the demo is on.
    pub(crate) fn demo_secret(&self) -> Option<&[u8]> {
        self.demo_secret.as_ref().map(|key| &key[..])
    }

    /// The key a request is rate limited under; `None` when the server did not record peer
    /// addresses (then `X-Forwarded-For` is not believed either).
    pub(crate) fn client_key(
        &self,
        peer: Option<std::net::SocketAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Option<ClientKey> {
        let peer = peer?.ip();
        let address = client_ip::client_address(peer, headers, &self.trusted_proxies);
        Some(ClientKey::of(address))
    }

    /// Counts a new chat (a socket) against its client's address.
    pub(crate) fn admit_client(&self, client: Option<&ClientKey>) -> Result<(), Refusal> {
        let Some(client) = client else {
            return Ok(());
        };
        self.ip_limiter
            .take(client.as_str(), Instant::now())
            .map_err(|wait| {
                tracing::info!(%client, "webchat client address rate limited");
                Refusal::rate_limited(
                    "too many chats from your network; please wait a moment",
                    wait,
                )
            })
    }

    /// Gives back a client's token for a message that did not count.
    fn refund(&self, visitor: &Visitor, client: Option<&ClientKey>) {
        self.limiter.refund(&visitor.conversation_key);
        if let Some(client) = client {
            self.ip_limiter.refund(client.as_str());
        }
    }

    /// Limits announced to the widget.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_message_bytes: self.config.max_message_bytes,
            max_file_bytes: self.max_file_bytes,
        }
    }

    /// Runs one customer message through the rules and into the gateway.
    ///
    /// Order matters: cheap checks first, the rate limits (the client's address, then the
    /// visitor) before storage, nothing stored unless every rule passed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn submit(
        &self,
        gateway: &dyn Gateway,
        client: Option<&ClientKey>,
        visitor: &Visitor,
        context: &VisitorContext,
        client_id: &str,
        kind: InboundKind,
        text: &str,
    ) -> Result<Accepted, Refusal> {
        convert::check_client_id(client_id)?;
        let text = match kind {
            InboundKind::Text => convert::check_text(text, self.config.max_message_bytes)?,
            InboundKind::HumanRequest => convert::HUMAN_REQUEST_TEXT,
        };
        let now = Instant::now();
        if let Some(client) = client {
            if let Err(wait) = self.ip_limiter.take(client.as_str(), now) {
                tracing::info!(%client, "webchat client address rate limited");
                return Err(Refusal::rate_limited(
                    "too many messages from your network; please wait a moment",
                    wait,
                ));
            }
        }
        if let Err(wait) = self.limiter.take(&visitor.conversation_key, now) {
            if let Some(client) = client {
                // The visitor's own limit refused it: the address did not send anything more.
                self.ip_limiter.refund(client.as_str());
            }
            return Err(Refusal::rate_limited(
                "too many messages; please wait a moment",
                wait,
            ));
        }
        let inbound = convert::to_inbound(visitor, context, client_id, kind, text);
        let accepted = gateway.accept(inbound).await.map_err(|error| match error {
            IngestError::Unavailable(detail) => {
                // The widget resends it later; an outage must not use up the visitor's quota.
                self.refund(visitor, client);
                tracing::warn!(%detail, "webchat message not stored: storage unavailable");
                Refusal::new(
                    ErrorCode::Unavailable,
                    "we could not save your message; it will be retried",
                )
            }
            IngestError::Rejected(reason) => Refusal::new(ErrorCode::Invalid, reason),
        })?;
        if !accepted.is_new {
            // A resend after a lost ack is the same message, not another one.
            self.refund(visitor, client);
        }
        if accepted.is_new {
            // Other open tabs of the same visitor show the message too; the sender dedupes by id.
            let echo = convert::customer_echo(&accepted.message_id, client_id, text, now_ms());
            self.hub
                .push(&visitor.conversation_key, &Arc::from(echo.to_json()));
        }
        Ok(accepted)
    }
}

impl Shared {
    /// Runs one uploaded file (a message of its own) through the rate limits and into the
    /// gateway; the size was checked by the upload route.
    pub(crate) async fn submit_file(
        &self,
        gateway: &dyn Gateway,
        client: Option<&ClientKey>,
        visitor: &Visitor,
        context: &VisitorContext,
        client_id: &str,
        file: Attachment,
    ) -> Result<Accepted, Refusal> {
        convert::check_client_id(client_id)?;
        let now = Instant::now();
        if let Some(client) = client {
            if let Err(wait) = self.ip_limiter.take(client.as_str(), now) {
                return Err(Refusal::rate_limited(
                    "too many messages from your network; please wait a moment",
                    wait,
                ));
            }
        }
        if let Err(wait) = self.limiter.take(&visitor.conversation_key, now) {
            if let Some(client) = client {
                self.ip_limiter.refund(client.as_str());
            }
            return Err(Refusal::rate_limited(
                "too many messages; please wait a moment",
                wait,
            ));
        }
        let reservation = match &self.quota {
            Some(quota) => {
                let reserved = quota
                    .reserve(
                        &visitor.conversation_key,
                        client.map(ClientKey::as_str),
                        file.size,
                    )
                    .await;
                match reserved {
                    Ok(reservation) => Some(reservation),
                    Err(refused) => {
                        self.refund(visitor, client);
                        tracing::info!(%refused, conversation = %visitor.conversation_key, "webchat upload refused by quota");
                        return Err(crate::quota::refusal_for(&refused, &file.name));
                    }
                }
            }
            None => None,
        };
        let mut inbound = convert::to_inbound(visitor, context, client_id, InboundKind::Text, "");
        inbound.files = vec![file];
        let result = gateway.accept(inbound).await;
        // Counted only when stored: a failed upload or a resend of a stored one gives it back.
        let counted = matches!(&result, Ok(accepted) if accepted.is_new);
        if let (Some(quota), Some(reservation)) = (&self.quota, reservation) {
            if !counted {
                quota.release(reservation).await;
            }
        }
        let accepted = result.map_err(|error| {
            self.refund(visitor, client);
            match error {
                IngestError::Unavailable(detail) => {
                    tracing::warn!(%detail, "webchat file not stored: storage unavailable");
                    Refusal::new(
                        ErrorCode::Unavailable,
                        "we could not save your file; please try again",
                    )
                }
                IngestError::Rejected(reason) => Refusal::new(ErrorCode::Invalid, reason),
            }
        })?;
        if !accepted.is_new {
            self.refund(visitor, client);
        }
        Ok(accepted)
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
