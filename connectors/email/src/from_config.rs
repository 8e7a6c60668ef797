//! `[connectors.email]` builds the email connector (IMAP in, SMTP out): the core's registry names this type.

use std::sync::Arc;

use switchboard_api::{BuildContext, ConfigProblems, Connector, ConnectorConfig, ConnectorError};

use crate::{EmailConfig, EmailConnector};

impl ConnectorConfig for EmailConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self, key: &str, problems: &mut ConfigProblems) {
        EmailConfig::validate(self, key, problems)
    }

    fn resolve_secrets(&mut self, key: &str, problems: &mut ConfigProblems) {
        EmailConfig::resolve_secrets(self, key, problems)
    }

    fn build(self: Box<Self>, cx: &BuildContext) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(
            EmailConnector::new(*self)
                .with_lease(cx.leases.lease())
                .with_max_file_bytes(cx.max_file_bytes),
        ))
    }
}
