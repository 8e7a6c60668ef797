//! `[connectors.slack]` builds the Slack customer-channel connector (a separate app from the desk): the core's registry names this type.

use std::sync::Arc;

use switchboard_api::{BuildContext, ConfigProblems, Connector, ConnectorConfig, ConnectorError};

use crate::{SlackCustomerConfig, SlackCustomerConnector};

impl ConnectorConfig for SlackCustomerConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self, key: &str, problems: &mut ConfigProblems) {
        SlackCustomerConfig::validate(self, key, problems)
    }

    fn resolve_secrets(&mut self, key: &str, problems: &mut ConfigProblems) {
        SlackCustomerConfig::resolve_secrets(self, key, problems)
    }

    fn build(self: Box<Self>, cx: &BuildContext) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(
            SlackCustomerConnector::new(*self)?.with_max_file_bytes(cx.max_file_bytes),
        ))
    }
}
