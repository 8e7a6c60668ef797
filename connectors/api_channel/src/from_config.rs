//! `[connectors.api]` builds the API channel's connector: the core's registry names this type.

use std::sync::Arc;

use switchboard_api::{BuildContext, ConfigProblems, Connector, ConnectorConfig, ConnectorError};

use crate::{ApiChannelConfig, ApiConnector};

impl ConnectorConfig for ApiChannelConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self, key: &str, problems: &mut ConfigProblems) {
        ApiChannelConfig::validate(self, key, problems)
    }

    fn resolve_secrets(&mut self, key: &str, problems: &mut ConfigProblems) {
        ApiChannelConfig::resolve_secrets(self, key, problems)
    }

    fn build(self: Box<Self>, _cx: &BuildContext) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(ApiConnector::new(*self)?))
    }
}
