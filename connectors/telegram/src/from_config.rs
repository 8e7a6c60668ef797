//! `[connectors.telegram]` builds the Telegram bot connector: the core's registry names this type.

use std::sync::Arc;

use switchboard_api::{BuildContext, ConfigProblems, Connector, ConnectorConfig, ConnectorError};

use crate::{TelegramConfig, TelegramConnector};

impl ConnectorConfig for TelegramConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self, key: &str, problems: &mut ConfigProblems) {
        TelegramConfig::validate(self, key, problems)
    }

    fn resolve_secrets(&mut self, key: &str, problems: &mut ConfigProblems) {
        TelegramConfig::resolve_secrets(self, key, problems)
    }

    fn build(self: Box<Self>, cx: &BuildContext) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(
            TelegramConnector::new(*self)?
                .with_lease(cx.leases.lease())
                .with_max_file_bytes(cx.max_file_bytes),
        ))
    }
}
