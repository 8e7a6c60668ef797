//! The Redis key schema, in one place.
//!
//! A conversation's keys share the hash tag `{c:<id>}` so Redis Cluster keeps them in one
//! slot and one script can touch them all. Work streams are global.

/// Customer messages waiting for triage or the desk (consumer group [`PIPELINE_GROUP`]).
pub const INBOUND: &str = "sb:inbound";
/// The consumer group that works the inbound stream.
pub const PIPELINE_GROUP: &str = "pipeline";
/// Replies waiting for delivery (consumer group [`OUTBOX_GROUP`]).
pub const OUTBOX: &str = "sb:outbox";
/// The consumer group that delivers the outbox.
pub const OUTBOX_GROUP: &str = "senders";
/// Failed deliveries parked until their retry time (score = due ms).
pub const OUTBOX_DELAYED: &str = "sb:outbox:delayed";
/// Deliveries that can never succeed, kept for an operator.
pub const OUTBOX_DEAD: &str = "sb:outbox:dead";
/// Every escalation, in order: the desk's queue and the audit log.
pub const ESCALATIONS: &str = "sb:escalations";

/// The conversation's record (a hash).
pub fn conversation(id: &str) -> String {
    format!("sb:{{c:{id}}}")
}

/// The conversation's transcript (a stream).
pub fn messages(id: &str) -> String {
    format!("sb:{{c:{id}}}:m")
}

/// Channel message ids already stored, mapped to their transcript ids (a hash).
pub fn seen(id: &str) -> String {
    format!("sb:{{c:{id}}}:seen")
}

/// Transcript id -> platform message id of delivered replies (a hash).
pub fn deliveries(id: &str) -> String {
    format!("sb:{{c:{id}}}:d")
}

/// A stored file of the conversation: a hash of `name`, `type` and `data` (the bytes),
/// expiring after `files.retention_days`.
pub fn file(id: &str, file_id: &str) -> String {
    format!("sb:{{c:{id}}}:f:{file_id}")
}

/// The key download links are signed with when `files.link_secret_env` is not set (a string,
/// created once and shared by every instance).
pub const FILE_LINK_SECRET: &str = "sb:files:link_secret";

/// Until when deliveries to a target of the conversation (a channel, or `desk`) wait behind
/// an earlier one parked for retry (a string of epoch ms, expiring).
pub fn delivery_hold(id: &str, target: &str) -> String {
    format!("sb:{{c:{id}}}:hold:{target}")
}

/// Desk thread (channel, ts) -> conversation id (a string).
pub fn desk_thread(channel: &str, ts: &str) -> String {
    format!("sb:desk:thread:{channel}:{ts}")
}

/// Knowledge-base candidates learned from agents' answers (a hash of json).
pub const KB_CANDIDATES: &str = "sb:kb:candidates";
/// Bumped on every approval; instances reload their answerer when it changes.
pub const KB_VERSION: &str = "sb:kb:version";

/// A linked contact (by email address) -> their conversation id (a string).
pub fn contact(email: &str) -> String {
    format!("sb:contact:email:{email}")
}

/// A channel conversation key linked into another channel's conversation (a string).
pub fn alias(channel: &str, conversation_key: &str) -> String {
    format!("sb:alias:{channel}:{conversation_key}")
}
