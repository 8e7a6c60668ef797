//! Delivery receipts, written the moment a platform accepts a message.
//!
//! Most platforms take no idempotency key, so the receipt is what stops a reclaimed outbox
//! entry from being sent twice after its sender died before the ack. It must therefore be
//! durable right after the send, not with the batch's ack. Sends that finish together (the
//! outbox delivers many conversations side by side) share one round trip: whoever finds the
//! writer free writes every receipt queued so far.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::warn;

use crate::store::{keys, Store};

/// One receipt: conversation, transcript id, the platform's message id.
type Receipt = (String, String, String);

/// Writes receipts, coalescing those that arrive together.
pub struct ReceiptWriter {
    store: Store,
    queued: Mutex<Vec<(Receipt, oneshot::Sender<()>)>>,
    writing: tokio::sync::Mutex<()>,
}

impl ReceiptWriter {
    /// Receipts written through `store`.
    pub fn new(store: Store) -> ReceiptWriter {
        ReceiptWriter {
            store,
            queued: Mutex::new(Vec::new()),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns once the receipt is stored. Retries until Redis takes it: the platform already
    /// shows the message, and giving up (a Redis outage) would send it again on reclaim.
    pub async fn record(&self, conversation: &str, message: &str, platform: &str) {
        let (written, wait) = oneshot::channel();
        let receipt = (
            conversation.to_owned(),
            message.to_owned(),
            platform.to_owned(),
        );
        self.lock_queue().push((receipt, written));
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

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<(Receipt, oneshot::Sender<()>)>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn write(&self, batch: Vec<(Receipt, oneshot::Sender<()>)>) {
        let mut pause = Duration::from_millis(100);
        loop {
            let partitions: Vec<usize> = batch
                .iter()
                .map(|((conversation, _, _), _)| keys::partition(conversation))
                .collect();
            let stored = self
                .store
                .pipelined_by_partition(&partitions, None, false, |pipe, item| {
                    let ((conversation, message, platform), _) = &batch[item];
                    pipe.hset(keys::deliveries(conversation), message, platform)
                        .ignore();
                    0
                })
                .await;
            match stored {
                Ok(_) => break,
                Err(error) => {
                    warn!(%error, receipts = batch.len(), "delivery receipts not stored; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
        for (_, written) in batch {
            let _ = written.send(());
        }
    }
}
