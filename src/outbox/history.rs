//! What an outbox entry carries from one attempt to the next: its attempts, when it first
//! failed (the give-up window counts from there), its first outbox id (its place in line and
//! when it was queued), and whether an admin replayed it.

use serde::{Deserialize, Serialize};

use crate::model::now_ms;
use crate::store::{stream_id_ms, DeadLetter, DeliveryTarget, HeldBack, WorkItem};

/// A parked delivery, as stored in the delayed set (`lua/promote.lua` puts its fields back
/// into the stream).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Parked {
    /// The transcript entry it delivers.
    pub id: String,
    /// The payload (a [`crate::model::Delivery`] as json).
    pub p: String,
    /// Attempts made so far.
    pub attempt: u32,
    /// When its first attempt failed (epoch ms, as text: Lua reads numbers as doubles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
    /// Its first outbox id (absent in members parked by builds before this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Put back by an admin from the dead letters: receipts are checked before sending.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// What an entry carries from its earlier attempts (promoted retries and replays carry it).
pub(super) struct History {
    /// Attempts made before this one.
    pub attempts: u32,
    /// When its first attempt failed (epoch ms).
    pub first_failure_ms: Option<u64>,
    /// Its first outbox id: its name in the target's waiting set and line, and when it was
    /// queued.
    pub origin: String,
    /// Whether it was held back before (then it is in its waiting set and line).
    pub held_back: bool,
    /// Put back from the dead letters by an admin.
    pub replayed: bool,
}

impl History {
    /// Read from the entry's fields.
    pub fn of(item: &WorkItem) -> History {
        let field = |name: &str| item.fields.get(name);
        History {
            attempts: field("attempt").and_then(|n| n.parse().ok()).unwrap_or(0),
            first_failure_ms: field("first_failure").and_then(|ms| ms.parse().ok()),
            origin: field("origin")
                .cloned()
                .unwrap_or_else(|| item.entry_id.clone()),
            held_back: field("origin").is_some(),
            replayed: field("replayed").is_some_and(|flag| flag == "1"),
        }
    }

    /// When it was first queued (epoch ms): the time part of its first outbox id.
    pub fn queued_ms(&self) -> u64 {
        stream_id_ms(&self.origin).unwrap_or_else(now_ms)
    }

    /// The delayed-set member that brings `item` back with `attempts` tries counted.
    pub fn parked_member(
        &self,
        item: &WorkItem,
        attempts: u32,
        first_failure_ms: Option<u64>,
    ) -> String {
        let field = |name: &str| item.fields.get(name).cloned().unwrap_or_default();
        serde_json::to_string(&Parked {
            id: field("id"),
            p: field("p"),
            attempt: attempts,
            first_failure: first_failure_ms.map(|ms| ms.to_string()),
            origin: Some(self.origin.clone()),
            replayed: self.replayed,
        })
        .unwrap_or_default()
    }

    /// What the dead-letter stream keeps when the entry is given up on.
    pub fn dead_letter(
        &self,
        reason: String,
        target: Option<&DeliveryTarget>,
        attempts: u32,
        first_failure_ms: Option<u64>,
    ) -> DeadLetter {
        DeadLetter {
            reason,
            target: target.map(|target| target.target),
            held_back: target.and_then(|target| self.held_back_as(target)),
            attempts,
            first_failure_ms,
            origin: self.origin.clone(),
            queued_ms: self.queued_ms(),
        }
    }

    /// What takes it out of its waiting set and line once it is delivered or given up on.
    pub fn held_back_as(&self, target: &DeliveryTarget) -> Option<HeldBack> {
        self.held_back.then(|| HeldBack {
            conversation_id: target.conversation_id.clone(),
            target: target.target,
            origin: self.origin.clone(),
        })
    }
}
