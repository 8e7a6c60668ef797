//! The live sockets of each conversation, so `send` can push a message to every open tab.
//!
//! Each socket gets a small bounded queue. A socket too slow to drain it is dropped from
//! the hub rather than blocking the outbox: its task sees the queue close, closes the
//! socket, and the widget reconnects and catches up from history with `after`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};

/// Frames queued per socket before it counts as stuck.
const QUEUE_PER_SOCKET: usize = 64;

/// Serialized frames waiting for one socket.
pub type FrameReceiver = mpsc::Receiver<Arc<str>>;

type Senders = HashMap<String, Vec<(u64, mpsc::Sender<Arc<str>>)>>;

/// Conversation key -> the queues of its live sockets.
pub struct Hub {
    sockets: Mutex<Senders>,
    next_id: AtomicU64,
    /// Set once when the gateway shuts down: every socket tells its widget to reconnect.
    restarting: watch::Sender<bool>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            sockets: Mutex::default(),
            next_id: AtomicU64::new(0),
            restarting: watch::channel(false).0,
        }
    }
}

/// One socket's place in the hub; leaving the scope removes it.
pub struct Subscription {
    hub: Arc<Hub>,
    key: String,
    id: u64,
    /// Frames pushed to this socket.
    pub frames: FrameReceiver,
}

impl Hub {
    /// Registers a socket for `key`.
    pub fn subscribe(self: &Arc<Self>, key: &str) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, frames) = mpsc::channel(QUEUE_PER_SOCKET);
        self.lock()
            .entry(key.to_owned())
            .or_default()
            .push((id, sender));
        Subscription {
            hub: Arc::clone(self),
            key: key.to_owned(),
            id,
            frames,
        }
    }

    /// Queues `frame` for every live socket of `key`; returns how many got it.
    pub fn push(&self, key: &str, frame: &Arc<str>) -> usize {
        let mut sockets = self.lock();
        let Some(senders) = sockets.get_mut(key) else {
            return 0;
        };
        // A full or closed queue means the socket is stuck or gone: drop it (see module doc).
        senders.retain(|(_, sender)| sender.try_send(Arc::clone(frame)).is_ok());
        let delivered = senders.len();
        if senders.is_empty() {
            sockets.remove(key);
        }
        delivered
    }

    /// Asks every socket, open now or opened later, to send its widget to another instance.
    pub fn restart_all(&self) {
        self.restarting.send_replace(true);
    }

    /// Becomes `true` when the sockets should go (see [`Hub::restart_all`]).
    pub fn restarting(&self) -> watch::Receiver<bool> {
        self.restarting.subscribe()
    }

    /// How many sockets are open, for logs and tests.
    pub fn live_sockets(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn unsubscribe(&self, key: &str, id: u64) {
        let mut sockets = self.lock();
        if let Some(senders) = sockets.get_mut(key) {
            senders.retain(|(other, _)| *other != id);
            if senders.is_empty() {
                sockets.remove(key);
            }
        }
    }

    // A panic while holding the lock leaves the map consistent (every edit is one call), so
    // a poisoned lock is safe to keep using.
    fn lock(&self) -> MutexGuard<'_, Senders> {
        self.sockets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.key, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn push_reaches_every_socket_of_the_key_only() {
        let hub = Arc::new(Hub::default());
        let mut a1 = hub.subscribe("s:a");
        let mut a2 = hub.subscribe("s:a");
        let mut b = hub.subscribe("s:b");
        let frame: Arc<str> = Arc::from("hello");
        assert_eq!(hub.push("s:a", &frame), 2);
        assert_eq!(&*a1.frames.recv().await.unwrap(), "hello");
        assert_eq!(&*a2.frames.recv().await.unwrap(), "hello");
        assert!(b.frames.try_recv().is_err());
        drop(a1);
        assert_eq!(hub.push("s:a", &frame), 1);
        drop(a2);
        drop(b);
        assert_eq!(hub.live_sockets(), 0);
        assert_eq!(hub.push("s:a", &frame), 0);
    }

    #[tokio::test]
    async fn a_stuck_socket_is_dropped() {
        let hub = Arc::new(Hub::default());
        let mut stuck = hub.subscribe("s:a");
        let frame: Arc<str> = Arc::from("x");
        for _ in 0..QUEUE_PER_SOCKET {
            assert_eq!(hub.push("s:a", &frame), 1);
        }
        assert_eq!(hub.push("s:a", &frame), 0);
        // The queue drains what it had, then reports closed so the socket task ends.
        for _ in 0..QUEUE_PER_SOCKET {
            assert!(stuck.frames.recv().await.is_some());
        }
        assert!(stuck.frames.recv().await.is_none());
    }
}
