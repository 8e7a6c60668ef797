//! Web chat frames across gateway instances, over Redis pub/sub.
//!
//! The instance that delivers a reply pushes it to its own sockets and publishes it; every
//! other instance pushes it to the sockets it holds for that visitor. Pub/sub keeps nothing:
//! an instance that misses a frame (reconnecting to Redis) leaves the visitor to fetch it
//! from the transcript when the widget reconnects, as after any network blip.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use switchboard_webchat::{Fanout, WebchatConnector};
use tracing::warn;

use crate::store::Store;

/// The pub/sub channel web chat frames travel on.
pub const WEBCHAT_FRAMES: &str = "sb:webchat:frames";

// Cow: a frame is JSON inside JSON, so reading it back unescapes into a new string.
#[derive(Serialize, Deserialize)]
struct Published<'a> {
    /// The publishing instance, which already pushed the frame to its own sockets.
    #[serde(borrow)]
    origin: Cow<'a, str>,
    /// The visitor's conversation key.
    #[serde(borrow)]
    key: Cow<'a, str>,
    /// The frame as the widget receives it.
    #[serde(borrow)]
    frame: Cow<'a, str>,
}

/// Publishes this instance's web chat frames for the others.
pub struct RedisFanout {
    store: Store,
    origin: String,
}

impl RedisFanout {
    /// Publishes as instance `origin`.
    pub fn new(store: Store, origin: String) -> RedisFanout {
        RedisFanout { store, origin }
    }
}

#[async_trait]
impl Fanout for RedisFanout {
    async fn publish(&self, conversation_key: &str, frame: &str) -> Result<(), String> {
        let message = serde_json::to_string(&Published {
            origin: Cow::Borrowed(&self.origin),
            key: Cow::Borrowed(conversation_key),
            frame: Cow::Borrowed(frame),
        })
        .map_err(|error| error.to_string())?;
        self.store
            .run(|mut conn| async move {
                redis::cmd("PUBLISH")
                    .arg(WEBCHAT_FRAMES)
                    .arg(message)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
}

/// Pushes the other instances' frames to this instance's sockets, for the life of the process;
/// resubscribes after Redis comes back.
pub async fn relay_frames(store: Store, origin: String, webchat: Arc<WebchatConnector>) {
    let mut pause = Duration::from_millis(100);
    loop {
        match store.subscribe(WEBCHAT_FRAMES).await {
            Ok(pubsub) => {
                pause = Duration::from_millis(100);
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let payload: Vec<u8> = message.get_payload_bytes().to_vec();
                    match serde_json::from_slice::<Published>(&payload) {
                        Ok(published) if published.origin != origin => {
                            webchat.push_local(&published.key, &published.frame);
                        }
                        Ok(_) => {}
                        Err(error) => {
                            warn!(%error, "unreadable web chat frame on pub/sub; dropped")
                        }
                    }
                }
                warn!("web chat pub/sub connection closed; resubscribing");
            }
            Err(error) => {
                warn!(%error, retry_in = ?pause, "web chat pub/sub unavailable");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}
