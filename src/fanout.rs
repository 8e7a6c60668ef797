//! Live-socket frames across gateway instances (the web chat's), over Redis pub/sub.
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
use switchboard_api::{Backoff, Broadcast, BroadcastHub, BroadcastReceiver};
use tracing::{warn, Instrument};

use crate::store::Store;

/// The pub/sub channel a channel's frames travel on (`sb:webchat:frames` for the web chat).
pub fn frames_topic(channel: &str) -> String {
    format!("sb:{channel}:frames")
}

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

/// Publishes this instance's frames of one channel for the others.
pub struct RedisFanout {
    store: Store,
    origin: String,
    topic: String,
}

impl RedisFanout {
    /// Publishes as instance `origin` on `topic`.
    pub fn new(store: Store, origin: String, topic: String) -> RedisFanout {
        RedisFanout {
            store,
            origin,
            topic,
        }
    }
}

#[async_trait]
impl Broadcast for RedisFanout {
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
                    .arg(&self.topic)
                    .arg(message)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
}

/// The gateway's [`BroadcastHub`] over Redis: each channel that joins gets a topic, and a
/// relay task (started by [`RedisBroadcastHub::relays`]) pushes the other instances' frames
/// to its receiver.
pub struct RedisBroadcastHub {
    store: Store,
    origin: String,
    joined: std::sync::Mutex<Vec<(String, Arc<dyn BroadcastReceiver>)>>,
}

impl RedisBroadcastHub {
    /// Fan-out for instance `origin`.
    pub fn new(store: Store, origin: String) -> RedisBroadcastHub {
        RedisBroadcastHub {
            store,
            origin,
            joined: std::sync::Mutex::default(),
        }
    }

    /// One relay per channel that joined, to run for the life of the process.
    pub fn relays(&self) -> Vec<impl std::future::Future<Output = ()> + Send + 'static> {
        let joined = self
            .joined
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        joined
            .iter()
            .map(|(channel, receiver)| {
                relay_frames(
                    self.store.clone(),
                    self.origin.clone(),
                    frames_topic(channel),
                    receiver.clone(),
                )
                .instrument(tracing::info_span!("fanout", channel = %channel))
            })
            .collect()
    }
}

impl BroadcastHub for RedisBroadcastHub {
    fn join(&self, channel: &str, receiver: Arc<dyn BroadcastReceiver>) -> Arc<dyn Broadcast> {
        self.joined
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((channel.to_owned(), receiver));
        Arc::new(RedisFanout::new(
            self.store.clone(),
            self.origin.clone(),
            frames_topic(channel),
        ))
    }
}

/// Pushes the other instances' frames on `topic` to `receiver` (this instance's sockets), for
/// the life of the process; resubscribes after Redis comes back.
pub async fn relay_frames(
    store: Store,
    origin: String,
    topic: String,
    receiver: Arc<dyn BroadcastReceiver>,
) {
    let mut backoff =
        Backoff::new(Duration::from_millis(100), Duration::from_secs(2)).with_jitter(0.5);
    loop {
        match store.subscribe(&topic).await {
            Ok(pubsub) => {
                backoff.reset();
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let payload: Vec<u8> = message.get_payload_bytes().to_vec();
                    match serde_json::from_slice::<Published>(&payload) {
                        Ok(published) if published.origin != origin => {
                            receiver.receive(&published.key, &published.frame);
                        }
                        Ok(_) => {}
                        Err(error) => {
                            warn!(%error, "unreadable frame on pub/sub; dropped")
                        }
                    }
                }
                warn!(%topic, "pub/sub connection closed; resubscribing");
            }
            Err(error) => {
                let pause = backoff.next_delay();
                warn!(%error, %topic, retry_in = ?pause, "pub/sub unavailable");
                tokio::time::sleep(pause).await;
            }
        }
    }
}
