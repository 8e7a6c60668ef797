//! [`ApiConnector`]: the `Connector` implementation. The route takes integrations' messages
//! in; `send` posts each reply to the webhook of the integration its conversation came from.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_api::{
    Capabilities, ChannelKind, Connector, ConnectorError, DeliveryReceipt, Gateway, Health,
    Outbound,
};

use crate::config::ApiChannelConfig;
use crate::inbound::{self, split_conversation_key};
use crate::signature::unix_now;
use crate::webhook::{WebhookClient, WebhookEvent, CONNECTOR};
use crate::CHANNEL;

/// The API/webhook channel.
pub struct ApiConnector {
    shared: Arc<Shared>,
}

/// What the route and `send` share.
pub(crate) struct Shared {
    pub(crate) config: ApiChannelConfig,
    client: WebhookClient,
}

impl ApiConnector {
    /// Builds the connector from a validated config whose secrets are resolved; connects to
    /// nothing.
    pub fn new(config: ApiChannelConfig) -> Result<ApiConnector, ConnectorError> {
        if let Some(unresolved) = config
            .integrations
            .iter()
            .find(|integration| integration.secret.is_none())
        {
            return Err(ConnectorError::Auth {
                connector: CONNECTOR,
                detail: format!(
                    "integration {:?} has no secret (is {} set?)",
                    unresolved.name, unresolved.secret_env
                ),
            });
        }
        Ok(ApiConnector {
            shared: Arc::new(Shared {
                config,
                client: WebhookClient::new()?,
            }),
        })
    }
}

#[async_trait]
impl Connector for ApiConnector {
    fn channel(&self) -> ChannelKind {
        CHANNEL
    }

    fn capabilities(&self) -> Capabilities {
        // Files reach the webhook as signed links in the text, which the gateway appends.
        Capabilities::default()
    }

    fn routes(&self, gateway: Arc<dyn Gateway>) -> Option<axum::Router> {
        Some(inbound::router(Arc::clone(&self.shared), gateway))
    }

    async fn run(&self, _gateway: Arc<dyn Gateway>) -> Result<(), ConnectorError> {
        // Messages arrive on the route and replies leave in `send`: there is no platform
        // connection to hold, and an end here would read as a failure to the supervisor.
        std::future::pending().await
    }

    async fn send(&self, outbound: &Outbound) -> Result<DeliveryReceipt, ConnectorError> {
        let permanent = |detail: String| ConnectorError::Permanent {
            connector: CONNECTOR,
            detail,
        };
        let (name, conversation_id) = split_conversation_key(&outbound.conversation_key)
            .ok_or_else(|| {
                permanent(format!(
                    "conversation key {:?} names no integration",
                    outbound.conversation_key
                ))
            })?;
        let integration = self.shared.config.integration(name).ok_or_else(|| {
            permanent(format!(
                "integration {name:?} is no longer configured (replay the dead letter once it is)"
            ))
        })?;
        let secret = integration
            .secret
            .as_ref()
            .ok_or_else(|| permanent(format!("integration {name:?} has no secret")))?;
        let event = WebhookEvent::from_outbound(outbound, name, conversation_id);
        self.shared
            .client
            .deliver(&integration.webhook_url, secret, &event, unix_now())
            .await
    }

    async fn health(&self) -> Health {
        // No connection to lose; a webhook that keeps failing shows under `outbox` in /readyz.
        Health::Up
    }
}

#[cfg(test)]
#[path = "connector_tests.rs"]
mod tests;
