//! `[connectors.webchat]` builds the web chat connector: the core's registry names this type.

use std::sync::Arc;

use switchboard_api::{
    BroadcastReceiver, BuildContext, ConfigProblems, Connector, ConnectorConfig, ConnectorError,
};

use crate::hub::Hub;
use crate::{WebchatConfig, WebchatConnector};

/// Frames other instances publish go to the sockets this instance holds.
struct LocalSockets(Arc<Hub>);

impl BroadcastReceiver for LocalSockets {
    fn receive(&self, conversation_key: &str, frame: &str) {
        self.0.push(conversation_key, &Arc::from(frame));
    }
}

impl ConnectorConfig for WebchatConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self, key: &str, problems: &mut ConfigProblems) {
        WebchatConfig::validate(self, key, problems)
    }

    fn resolve_secrets(&mut self, key: &str, problems: &mut ConfigProblems) {
        WebchatConfig::resolve_secrets(self, key, problems)
    }

    fn build(self: Box<Self>, cx: &BuildContext) -> Result<Arc<dyn Connector>, ConnectorError> {
        let mut webchat = WebchatConnector::new(*self).with_max_file_bytes(cx.max_file_bytes);
        if let Some(quota) = &cx.upload_quota {
            webchat = webchat.with_upload_quota(quota.clone());
        }
        let fanout = cx
            .broadcast
            .join("webchat", Arc::new(LocalSockets(webchat.local_sockets())));
        Ok(Arc::new(webchat.with_fanout(fanout)))
    }

    fn startup_note(&self) -> Option<&'static str> {
        (self.enabled && self.demo).then_some("demo page at /")
    }
}
