//! Live updates to open desk pages: each change is pushed to this instance's sockets and
//! published through the gateway's broadcast to the other instances' sockets.

use std::sync::Arc;

use serde_json::json;
use switchboard_api::{Broadcast, BroadcastHub, BroadcastReceiver};
use tokio::sync::broadcast;

/// The broadcast channel the desk's frames travel on between instances.
const TOPIC: &str = "webdesk";
/// The one key every frame is published under: every open desk page hears every change
/// (and shows only its agent's queues).
const EVERYONE: &str = "desk";

/// A change to a thread, as open pages receive it.
pub struct Live {
    local: broadcast::Sender<String>,
    remote: Arc<dyn Broadcast>,
}

struct FromOtherInstances(broadcast::Sender<String>);

impl BroadcastReceiver for FromOtherInstances {
    fn receive(&self, _key: &str, frame: &str) {
        // No page open on this instance: nobody to tell.
        let _ = self.0.send(frame.to_owned());
    }
}

impl Live {
    /// Joins the gateway's broadcast.
    pub fn join(hub: &dyn BroadcastHub) -> Live {
        let (local, _) = broadcast::channel(256);
        let remote = hub.join(TOPIC, Arc::new(FromOtherInstances(local.clone())));
        Live { local, remote }
    }

    /// Tells every open page, here and on the other instances, that a thread changed.
    pub async fn announce(&self, channel: &str, thread: &str) {
        let frame = json!({"type": "changed", "channel": channel, "thread": thread}).to_string();
        let _ = self.local.send(frame.clone());
        if let Err(error) = self.remote.publish(EVERYONE, &frame).await {
            // Pages elsewhere catch up on their next refresh or reconnect.
            tracing::warn!(%error, "web desk: could not tell the other instances of a change");
        }
    }

    /// Frames for one open page.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.local.subscribe()
    }
}
