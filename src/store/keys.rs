//! The Redis key schema, in one place.
//!
//! Every key that a script touches together shares one hash tag, so Redis Cluster keeps them in
//! one slot and each script stays atomic. Conversations are spread over [`PARTITIONS`] fixed
//! partitions (by their id); a partition's tag covers its conversations' keys *and* its own
//! work streams (`inbound`, `outbox`, parked retries, dead letters, the escalation log), so
//! ingest, commit, retry and promote each touch one slot. Keys that stand alone (desk
//! threads, contacts, the knowledge base, leases) have no tag.
//!
//! The partition count is part of the schema: changing it would move every conversation.

/// How many partitions conversations and work streams are spread over. Sixteen lets a
/// cluster spread the load over up to sixteen masters, and keeps a single-node read of every
/// work stream one command.
pub const PARTITIONS: usize = 16;

/// Each partition's hash tag, chosen so partition `k` hashes into slots `k × 1024 ..
/// (k + 1) × 1024`: a cluster whose masters own equal slot ranges (what `redis-cli --cluster
/// create` makes) gets an equal share of partitions. Tested in `tests::tags_spread_evenly`.
const TAGS: [&str; PARTITIONS] = [
    "p0-0", "p1-3", "p2-11", "p3-12", "p4-41", "p5-42", "p6-61", "p7-62", "p8-11", "p9-12", "pa-0",
    "pb-10", "pc-63", "pd-40", "pe-21", "pf-1",
];

/// The partition a conversation lives in. Conversation ids are hex digests, so the first digit
/// spreads them evenly; any other id still maps somewhere stable.
pub fn partition(conversation_id: &str) -> usize {
    let first = conversation_id.bytes().next().unwrap_or(b'0');
    match (first as char).to_digit(16) {
        Some(digit) => digit as usize,
        None => {
            conversation_id
                .bytes()
                .fold(0usize, |sum, byte| sum.wrapping_add(byte as usize))
                % PARTITIONS
        }
    }
}

/// Every partition, for readers of all work streams.
pub fn partitions() -> std::ops::Range<usize> {
    0..PARTITIONS
}

/// Every partition, as a slice for the store's readers.
pub const ALL_PARTITIONS: [usize; PARTITIONS] = {
    let mut all = [0; PARTITIONS];
    let mut partition = 0;
    while partition < PARTITIONS {
        all[partition] = partition;
        partition += 1;
    }
    all
};

/// The partitions worker `index` of `count` works in an instance: each partition has one
/// worker per instance, so a conversation's messages are decided one after another there.
pub fn partitions_of_worker(index: usize, count: usize) -> Vec<usize> {
    partitions()
        .filter(|partition| partition % count.max(1) == index)
        .collect()
}

fn tag(partition: usize) -> &'static str {
    TAGS[partition % PARTITIONS]
}

/// Customer messages of the partition waiting for triage or the desk (consumer group
/// [`PIPELINE_GROUP`]).
pub fn inbound(partition: usize) -> String {
    format!("sb:{{{}}}:inbound", tag(partition))
}
/// The consumer group that works the inbound streams.
pub const PIPELINE_GROUP: &str = "pipeline";
/// Replies of the partition waiting for delivery (consumer group [`OUTBOX_GROUP`]).
pub fn outbox(partition: usize) -> String {
    format!("sb:{{{}}}:outbox", tag(partition))
}
/// The consumer group that delivers the outboxes.
pub const OUTBOX_GROUP: &str = "senders";
/// Failed deliveries parked until their retry time (score = due ms).
pub fn outbox_delayed(partition: usize) -> String {
    format!("sb:{{{}}}:outbox:delayed", tag(partition))
}
/// Deliveries that can never succeed, kept for an operator.
pub fn outbox_dead(partition: usize) -> String {
    format!("sb:{{{}}}:outbox:dead", tag(partition))
}
/// Deliveries to `target` held back by failures (parked for a retry, or waiting behind one),
/// from then until delivered or given up: a sorted set of each entry's first outbox id, scored
/// by when it was queued. What the oldest-waiting gauge and `switchboard outbox status` read
/// without going through the parked payloads.
pub fn outbox_waiting(partition: usize, target: &str) -> String {
    format!("sb:{{{}}}:outbox:waiting:{target}", tag(partition))
}
/// Conversations of the partition someone waits on a person for (member: the conversation's
/// hash key, score: when to look at it next, ms): what desk reminders read.
pub fn desk_watch(partition: usize) -> String {
    format!("sb:{{{}}}:desk_watch", tag(partition))
}
/// Open cases of the partition by when to look at closing them (member: the conversation's
/// hash key, score: ms): what the case sweeper (`crate::cases`) reads.
pub fn case_deadlines(partition: usize) -> String {
    format!("sb:{{{}}}:case_close", tag(partition))
}
/// The partition's case events (opened, reopened, closed; json), in order: what the per-case
/// figures of the report read.
pub fn case_log(partition: usize) -> String {
    format!("sb:{{{}}}:cases", tag(partition))
}
/// How far the case sweeper has read the partition's case log (a stream id): cases opened or
/// reopened after it are still due their first close check.
pub fn case_log_cursor(partition: usize) -> String {
    format!("sb:{{{}}}:cases_checked", tag(partition))
}
/// The partition's escalations, in order: the audit log the report reads.
pub fn escalations(partition: usize) -> String {
    format!("sb:{{{}}}:escalations", tag(partition))
}
/// The partition's conversation ids by creation time (a sorted set): how the report finds
/// conversations without SCAN, which a cluster would need per node.
pub fn conversation_index(partition: usize) -> String {
    format!("sb:{{{}}}:conversations", tag(partition))
}

fn conversation_prefix(id: &str) -> String {
    format!("sb:{{{}}}:c:{id}", tag(partition(id)))
}

/// The conversation id of a conversation hash key (what the desk watch list holds).
pub fn conversation_id_of(key: &str) -> Option<String> {
    let id = key.split_once("}:c:")?.1;
    (key == conversation(id)).then(|| id.to_owned())
}

/// The conversation's record (a hash).
pub fn conversation(id: &str) -> String {
    conversation_prefix(id)
}

/// The conversation's transcript (a stream).
pub fn messages(id: &str) -> String {
    format!("{}:m", conversation_prefix(id))
}

/// Channel message ids already stored, mapped to their transcript ids (a hash).
pub fn seen(id: &str) -> String {
    format!("{}:seen", conversation_prefix(id))
}

/// Transcript id -> platform message id of delivered replies (a hash).
pub fn deliveries(id: &str) -> String {
    format!("{}:d", conversation_prefix(id))
}

/// The other channels' conversation keys linked into the conversation (a set of
/// `channel:key`), so erasing or archiving it finds their alias links without a SCAN.
pub fn links(id: &str) -> String {
    format!("{}:links", conversation_prefix(id))
}

/// The erasure audit log (a stream: who forgot how much of a customer, when; never what).
pub const ERASURE_AUDIT: &str = "sb:audit:erasure";

/// A stored file of the conversation: a hash of `name`, `type` and `data` (the bytes),
/// expiring after `files.retention_days`.
pub fn file(id: &str, file_id: &str) -> String {
    format!("{}:f:{file_id}", conversation_prefix(id))
}

/// The key download links are signed with when `files.link_secret_env` is not set (a string,
/// created once and shared by every instance).
pub const FILE_LINK_SECRET: &str = "sb:files:link_secret";

/// The hash tag of the web chat upload quotas: every counter in one slot, so one script
/// checks and counts all of an upload's limits atomically, on a cluster too. They are a few
/// small integers, touched only by uploads.
const UPLOAD_QUOTA_TAG: &str = "uq";

/// Bytes of files a web chat conversation holds (an integer, expiring with its newest file).
pub fn upload_quota_conversation(conversation_key: &str) -> String {
    format!("sb:{{{UPLOAD_QUOTA_TAG}}}:conv:{conversation_key}")
}

/// Bytes of files a client address sent on a UTC day (an integer, expiring after two days).
pub fn upload_quota_address(day: u64, client: &str) -> String {
    format!("sb:{{{UPLOAD_QUOTA_TAG}}}:addr:{day}:{client}")
}

/// Bytes of files every visitor sent in one bucket of days (an integer, expiring once the
/// bucket's files have).
pub fn upload_quota_total(bucket: u64) -> String {
    format!("sb:{{{UPLOAD_QUOTA_TAG}}}:total:{bucket}")
}

/// When the delivery at the front of a target's line (see [`delivery_line`]) is tried again
/// after its last failure (a string of epoch ms, expiring): those behind it are looked at
/// again then.
pub fn delivery_hold(id: &str, target: &str) -> String {
    format!("{}:hold:{target}", conversation_prefix(id))
}

/// The conversation's deliveries to a target (a channel, or `desk`) held back by failures, in
/// the order they were queued (a sorted set of their first outbox ids, expiring when its front
/// stops being retried): only the front is tried, so they arrive in order.
pub fn delivery_line(id: &str, target: &str) -> String {
    format!("{}:line:{target}", conversation_prefix(id))
}

/// Desk thread (channel, ts) -> conversation id (a string).
pub fn desk_thread(channel: &str, ts: &str) -> String {
    format!("sb:desk:thread:{channel}:{ts}")
}

/// Knowledge-base candidates learned from agents' answers (a hash of json).
pub const KB_CANDIDATES: &str = "sb:kb:candidates";
/// Approved knowledge-base entries, every instance's answerer merges them with its knowledge
/// folder (a hash: entry id -> json). One key, so a cluster keeps the whole learned knowledge
/// base on one node; it is read whole, on start and on every change.
pub const KB_LEARNED: &str = "sb:kb:learned";
/// Bumped on every change of [`KB_LEARNED`]; instances reload their answerer when it changes.
pub const KB_VERSION: &str = "sb:kb:version";
/// Pub/sub channel (not a key) announcing a new [`KB_VERSION`], so instances reload at once
/// rather than at their next poll of the version.
pub const KB_CHANGED: &str = "sb:kb:changed";

/// The reveal audit log (a stream): agents shown text a desk's redaction hid. One key with no
/// tag: looks are rare, and one stream keeps the log in time order for a reader.
pub const REVEAL_AUDIT: &str = "sb:audit:reveals";

/// A linked contact (by email address) -> their conversation id (a string).
pub fn contact(email: &str) -> String {
    format!("sb:contact:email:{email}")
}

/// A channel conversation key linked into another channel's conversation (a string).
pub fn alias(channel: &str, conversation_key: &str) -> String {
    format!("sb:alias:{channel}:{conversation_key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_spread_evenly() {
        use redis::cluster_routing::Slot;
        for (index, tag) in TAGS.iter().enumerate() {
            let range = (index * 1024) as u16..((index + 1) * 1024) as u16;
            assert!(
                range
                    .clone()
                    .any(|slot| Slot::new(slot) == Some(Slot::for_key(tag))),
                "tag {tag} of partition {index} does not hash into slots {range:?}"
            );
        }
    }

    #[test]
    fn upload_quota_counters_share_one_slot() {
        let slot = |key: &str| redis::cluster_routing::Slot::for_key(key);
        let home = slot(&upload_quota_total(0));
        for key in [
            upload_quota_conversation("s:visitor-session-000001"),
            upload_quota_address(20_000, "192.0.2.7"),
            upload_quota_total(19_999),
        ] {
            assert_eq!(slot(&key), home, "{key}");
        }
    }

    #[test]
    fn a_conversation_and_its_work_streams_share_one_slot() {
        let id = "a3f09c1e22b7d4e5f601";
        let slot = |key: &str| redis::cluster_routing::Slot::for_key(key);
        let home = partition(id);
        for key in [
            conversation(id),
            messages(id),
            seen(id),
            deliveries(id),
            links(id),
            file(id, "x"),
            delivery_hold(id, "desk"),
            delivery_line(id, "desk"),
            inbound(home),
            outbox(home),
            outbox_delayed(home),
            outbox_dead(home),
            outbox_waiting(home, "desk"),
            escalations(home),
            conversation_index(home),
            case_deadlines(home),
            case_log(home),
        ] {
            assert_eq!(slot(&key), slot(&conversation(id)), "{key}");
        }
        assert_eq!(partition("not-hex"), partition("not-hex"));
        assert!(partition("zzz") < PARTITIONS);
    }
}
