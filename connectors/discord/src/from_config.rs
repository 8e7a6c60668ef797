//! `[connectors.discord]` builds the Discord bot connector: the core's registry names this type.

use std::sync::Arc;

use switchboard_api::{BuildContext, ConfigProblems, Connector, ConnectorConfig, ConnectorError};

use crate::{DiscordConfig, DiscordConnector};

impl ConnectorConfig for DiscordConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self, key: &str, problems: &mut ConfigProblems) {
        DiscordConfig::validate(self, key, problems)
    }

    fn resolve_secrets(&mut self, key: &str, problems: &mut ConfigProblems) {
        DiscordConfig::resolve_secrets(self, key, problems)
    }

    fn build(self: Box<Self>, cx: &BuildContext) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(
            DiscordConnector::new(*self).with_max_file_bytes(cx.max_file_bytes),
        ))
    }
}
