//! Keeps an instance's answerer in step with the shared learned entries.
//!
//! Three ways a change reaches an instance, from fastest to surest: the `sb:kb:changed`
//! announcement (pub/sub, at once, but lost while the subscription is down), the version
//! counter polled every `every`, and a full comparison of the entries every
//! [`FULL_CHECK_EVERY`] polls, which also catches a change whose version bump was lost.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tracing::{debug, warn};

use super::{learned, KnowledgeLoop};
use crate::store::keys;

/// Every this many polls the entries are compared whole, version or not.
const FULL_CHECK_EVERY: u32 = 30;

type Announcements = Pin<Box<dyn Stream<Item = redis::Msg> + Send>>;

impl KnowledgeLoop {
    /// Loads the learned entries, then reloads the answerer whenever another instance (or
    /// the CLI) changes them, for the life of the process.
    pub async fn watch_version(self: Arc<Self>, every: Duration) {
        let mut announcements: Option<Announcements> = None;
        let mut polls: u32 = 0;
        loop {
            let outdated = match self.loaded_version().await {
                None => true,
                Some(loaded) => match learned::version(&self.store).await {
                    Ok(version) => version != loaded || polls.is_multiple_of(FULL_CHECK_EVERY),
                    Err(error) => {
                        debug!(%error, "cannot read the knowledge-base version");
                        false
                    }
                },
            };
            if outdated {
                if let Err(error) = self.reload().await {
                    warn!(%error, "cannot read the learned entries; still answering from the previous ones");
                }
            }
            polls = polls.wrapping_add(1);
            if announcements.is_none() {
                announcements = match self.store.subscribe(keys::KB_CHANGED).await {
                    Ok(pubsub) => Some(Box::pin(pubsub.into_on_message())),
                    Err(error) => {
                        debug!(%error, "knowledge-base announcements unavailable; polling");
                        None
                    }
                };
            }
            let closed = match announcements.as_mut() {
                Some(stream) => tokio::select! {
                    message = stream.next() => message.is_none(),
                    _ = tokio::time::sleep(every) => false,
                },
                None => {
                    tokio::time::sleep(every).await;
                    false
                }
            };
            if closed {
                debug!("knowledge-base announcements closed; resubscribing");
                announcements = None;
                // A subscription that closes as soon as it opens must not spin the loop.
                tokio::time::sleep(every).await;
            }
        }
    }
}
