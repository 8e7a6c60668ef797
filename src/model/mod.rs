//! The conversation model the core works on: the conversation record, its statuses and
//! escalation reasons, transcript roles, triage decisions and what the outbox delivers.
//!
//! Everything here is plain data with its stored form; the store parses records into it at
//! its edge, and the pipeline, desk, outbox and file service share it without depending on
//! each other.

mod case;
mod conversation;
mod decision;
mod delivery;
mod role;
mod status;

pub use case::{case_field, case_id, every_desk_thread, CaseState};
pub use conversation::{field, Conversation};
pub use decision::{BriefingDraft, Decision, DecisionRecord};
pub use delivery::{Delivery, DeskAction, DeskPost};
pub use role::Role;
pub use status::{EscalationReason, Status};

use sha2::{Digest, Sha256};
use switchboard_api::ChannelKind;

/// The conversation id for a channel's conversation key.
///
/// Derived rather than allocated so that ingest needs no lookup key outside the
/// conversation's own hash slot: one script, one round trip, Redis Cluster ready.
pub fn conversation_id(channel: ChannelKind, conversation_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(channel.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(conversation_key.as_bytes());
    let digest = hasher.finalize();
    hex::encode(&digest[..10])
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
