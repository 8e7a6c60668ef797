//! Delivered outbox entries, recorded the moment a platform accepts a message: the receipt
//! and the ack in one atomic write.
//!
//! Most platforms take no idempotency key, so the receipt is what stops a reclaimed outbox
//! entry from being sent twice after its sender died before the ack. It must therefore be
//! durable right after the send; writing the ack with it saves the batch a round trip of its
//! own. Sends that finish together (the outbox delivers many conversations side by side)
//! share one round trip: whoever finds the writer free writes everything queued so far.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use switchboard_api::Backoff;
use tokio::sync::oneshot;
use tracing::warn;

use crate::store::{Delivered, Store};

/// Writes delivered entries, coalescing those that arrive together.
pub struct ReceiptWriter {
    store: Store,
    queued: Mutex<Vec<(Delivered, oneshot::Sender<()>)>>,
    writing: tokio::sync::Mutex<()>,
}

impl ReceiptWriter {
    /// Deliveries recorded through `store`.
    pub fn new(store: Store) -> ReceiptWriter {
        ReceiptWriter {
            store,
            queued: Mutex::new(Vec::new()),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns once the delivery is recorded. Retries until Redis takes it: the platform
    /// already shows the message, and giving up (a Redis outage) would send it again on
    /// reclaim.
    pub async fn record(&self, delivered: Delivered) {
        let (written, wait) = oneshot::channel();
        self.lock_queue().push((delivered, written));
        {
            let _writer = self.writing.lock().await;
            let batch = std::mem::take(&mut *self.lock_queue());
            if !batch.is_empty() {
                self.write(batch).await;
            }
        }
        // Written by this call or by an earlier writer that took it from the queue.
        let _ = wait.await;
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<(Delivered, oneshot::Sender<()>)>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn write(&self, batch: Vec<(Delivered, oneshot::Sender<()>)>) {
        let (delivered, written): (Vec<Delivered>, Vec<oneshot::Sender<()>>) =
            batch.into_iter().unzip();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        while let Err(error) = self.store.complete_deliveries(&delivered).await {
            warn!(%error, deliveries = delivered.len(), "deliveries not recorded; retrying");
            tokio::time::sleep(backoff.next_delay()).await;
        }
        for done in written {
            let _ = done.send(());
        }
    }
}
