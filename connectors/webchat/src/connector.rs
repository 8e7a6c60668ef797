//! The web chat [`Connector`]: shared state, message intake and delivery to live sockets.
//!
//! Web chat has no platform to poll: visitors reach us over the gateway's own HTTP server
//! (see `http.rs` and `socket.rs`), and delivery is a push to whatever sockets are open.
//! A message with no open socket is still delivered: it is in the stored transcript, and
//! the widget fetches it when it reconnects.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use switchboard_api::{
    Accepted, Capabilities, ChannelKind, Connector, ConnectorError, DeliveryReceipt, Gateway,
    Health, InboundKind, IngestError, Outbound,
};

use crate::config::WebchatConfig;
use crate::convert::{self, ErrorCode, Limits, Refusal, ServerFrame, VisitorContext};
use crate::hub::Hub;
use crate::identity::{self, Claims, IdentityError, Visitor};
use crate::ratelimit::RateLimiter;

/// How often idle rate-limit buckets are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The web chat channel: the widget, its endpoints, and delivery to open chats.
pub struct WebchatConnector {
    shared: Arc<Shared>,
}

/// State the HTTP handlers, the sockets and `send` share.
pub(crate) struct Shared {
    pub(crate) config: WebchatConfig,
    secret: Option<Vec<u8>>,
    pub(crate) hub: Arc<Hub>,
    limiter: RateLimiter,
}

impl WebchatConnector {
    /// Builds the connector from its config; opens nothing.
    pub fn new(config: WebchatConfig) -> Self {
        let secret = config.secret_bytes();
        let limiter = RateLimiter::new(config.rate_limit_per_minute);
        WebchatConnector {
            shared: Arc::new(Shared {
                config,
                secret,
                hub: Arc::new(Hub::default()),
                limiter,
            }),
        }
    }

    /// How many widget sockets are open right now.
    pub fn live_sockets(&self) -> usize {
        self.shared.hub.live_sockets()
    }
}

#[async_trait]
impl Connector for WebchatConnector {
    fn channel(&self) -> ChannelKind {
        ChannelKind::Webchat
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            buttons: true,
            threads: false,
            edits: false,
            files: false,
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
        }
    }

    async fn send(&self, outbound: &Outbound) -> Result<DeliveryReceipt, ConnectorError> {
        let frame: Arc<str> = Arc::from(ServerFrame::from_outbound(outbound, now_ms()).to_json());
        let sockets = self.shared.hub.push(&outbound.conversation_key, &frame);
        tracing::debug!(
            conversation = %outbound.conversation_id,
            message = %outbound.id,
            sockets,
            "webchat message pushed"
        );
        Ok(DeliveryReceipt {
            platform_message_id: Some(outbound.id.clone()),
        })
    }

    async fn health(&self) -> Health {
        Health::Up
    }
}

impl Shared {
    /// Checks a visitor's claims against the configured secret and policy.
    pub(crate) fn resolve(&self, claims: Claims<'_>) -> Result<Visitor, Refusal> {
        identity::resolve_visitor(
            claims,
            self.secret.as_deref(),
            self.config.require_verified_identity,
        )
        .map_err(|error| match error {
            IdentityError::BadSession => Refusal::new(ErrorCode::Invalid, error.to_string()),
            IdentityError::Unauthorized(_) => {
                Refusal::new(ErrorCode::Unauthorized, error.to_string())
            }
        })
    }

    /// Limits announced to the widget.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_message_bytes: self.config.max_message_bytes,
        }
    }

    /// Runs one customer message through the rules and into the gateway.
    ///
    /// Order matters: cheap checks first, the rate limit before storage, nothing stored
    /// unless every rule passed.
    pub(crate) async fn submit(
        &self,
        gateway: &dyn Gateway,
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
        if !self
            .limiter
            .allow(&visitor.conversation_key, Instant::now())
        {
            return Err(Refusal::new(
                ErrorCode::RateLimited,
                "too many messages; please wait a moment",
            ));
        }
        let inbound = convert::to_inbound(visitor, context, client_id, kind, text);
        let accepted = gateway.accept(inbound).await.map_err(|error| match error {
            IngestError::Unavailable(detail) => {
                // The widget resends it later; an outage must not use up the visitor's quota.
                self.limiter.refund(&visitor.conversation_key);
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
            self.limiter.refund(&visitor.conversation_key);
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

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
