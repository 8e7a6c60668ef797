//! One customer's data, wherever it is held: `switchboard contact export` gathers it (Redis,
//! the archive, files) as JSON, `contact forget` erases it everywhere and records an audit
//! entry (see [`forget`]).
//!
//! A customer is named by an email address (every conversation linked to it or whose contact
//! carries it, on any channel), a channel's conversation key (`telegram:12345`,
//! `webchat:s:<session>`), or a conversation id.

mod forget;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use switchboard_api::{ChannelKind, Identity};

pub use forget::{audit_log, forget, AuditEntry, Forgotten};

use crate::archive::{Archive, ArchiveError, ArchivedConversation};
use crate::model::{field, now_ms};
use crate::store::{keys, ConversationDump, Store, StoreError};

/// Conversations whose contact records are read per round trip when searching by email.
const BATCH: usize = 500;

/// Whom an export or erasure is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An email address, lowercased.
    Email(String),
    /// A channel's conversation key.
    ChannelKey {
        /// The channel.
        channel: ChannelKind,
        /// Its conversation key.
        key: String,
    },
    /// A conversation id.
    Conversation(String),
}

impl Subject {
    /// Reads `email`, `channel:key` or a conversation id.
    pub fn parse(text: &str) -> Result<Subject, String> {
        let text = text.trim();
        if let Some((channel, key)) = text.split_once(':') {
            let known = crate::registry::find(channel).and_then(|_| ChannelKind::parse(channel));
            if let Some(channel) = known {
                if !key.is_empty() {
                    return Ok(Subject::ChannelKey {
                        channel,
                        key: key.to_owned(),
                    });
                }
            }
        }
        if text.contains('@') && !text.contains(char::is_whitespace) {
            return Ok(Subject::Email(text.to_lowercase()));
        }
        if text.len() == 20 && text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Ok(Subject::Conversation(text.to_lowercase()));
        }
        Err(format!(
            "`{text}` is not an email address, a `channel:conversation key` (channels: {}) \
             or a conversation id (20 hex digits)",
            crate::registry::channel_names().join(", ")
        ))
    }

    /// True when a conversation's contact is this subject (an email subject matches the
    /// contact's address or id, or an email channel's key).
    fn matches_record(&self, record: &BTreeMap<String, String>) -> bool {
        let Subject::Email(email) = self else {
            return false;
        };
        let contact: Identity = (record.get(field::CONTACT))
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        let same = |text: &str| text.trim().eq_ignore_ascii_case(email);
        contact.email.as_deref().is_some_and(same)
            || same(&contact.id)
            || record.get(field::KEY).is_some_and(|key| same(key))
    }
}

/// Everything held about one customer.
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    /// Whom it is about, as asked.
    pub subject: String,
    /// When it was taken, ms since the epoch.
    pub exported_ms: u64,
    /// Their conversations in Redis: record, transcript, escalation log with decisions,
    /// CSAT (in the record), delivery receipts, files with their bytes.
    pub conversations: Vec<ConversationDump>,
    /// Their archived conversations, same shape, with when each was archived.
    pub archived: Vec<ArchivedConversation>,
    /// Knowledge-base candidates learned from their conversations.
    pub knowledge_candidates: Vec<serde_json::Value>,
}

/// The ids of the subject's conversations in Redis.
pub async fn conversation_ids(
    store: &Store,
    subject: &Subject,
) -> Result<BTreeSet<String>, StoreError> {
    let mut ids = BTreeSet::new();
    match subject {
        Subject::Conversation(id) => {
            ids.insert(id.clone());
        }
        Subject::ChannelKey { channel, key } => {
            ids.insert(store.resolve_conversation(*channel, key).await?);
        }
        Subject::Email(email) => {
            let contact = keys::contact(email);
            let linked: Option<String> = store
                .run(|mut conn| async move {
                    redis::cmd("GET").arg(contact).query_async(&mut conn).await
                })
                .await?;
            ids.extend(linked);
            // Conversations of channels that do not vouch for the address are not linked
            // to it, but their contact may still carry it: look at every record's contact.
            for partition in keys::partitions() {
                let all = store.indexed_conversations(partition, u64::MAX).await?;
                for chunk in all.chunks(BATCH) {
                    let partitions = vec![partition; chunk.len()];
                    let replies = store
                        .pipelined_by_partition(&partitions, None, false, |pipe, item| {
                            pipe.cmd("HMGET")
                                .arg(keys::conversation(&chunk[item]))
                                .arg(field::CONTACT)
                                .arg(field::KEY);
                            1
                        })
                        .await?;
                    for (id, reply) in chunk.iter().zip(replies) {
                        let Some(reply) = reply.into_iter().next() else {
                            continue;
                        };
                        let (contact, key): (Option<String>, Option<String>) =
                            redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
                        let record: BTreeMap<String, String> = [
                            contact.map(|json| (field::CONTACT.to_owned(), json)),
                            key.map(|key| (field::KEY.to_owned(), key)),
                        ]
                        .into_iter()
                        .flatten()
                        .collect();
                        if subject.matches_record(&record) {
                            ids.insert(id.clone());
                        }
                    }
                }
            }
        }
    }
    Ok(ids)
}

/// Whether an archived conversation belongs to the subject (by id, or by its contact).
fn archived_match(subject: &Subject, ids: &BTreeSet<String>, dump: &ConversationDump) -> bool {
    if ids.contains(&dump.id) || subject.matches_record(&dump.record) {
        return true;
    }
    match subject {
        Subject::ChannelKey { channel, key } => {
            let own = format!("{channel}:{key}");
            dump.links.contains(&own)
                || (dump.record.get(field::CHANNEL).map(String::as_str) == Some(channel.as_str())
                    && dump.record.get(field::KEY) == Some(key))
        }
        _ => false,
    }
}

/// The subject's conversations read out of Redis, each with its escalation log entries.
async fn dumps(store: &Store, ids: &BTreeSet<String>) -> Result<Vec<ConversationDump>, StoreError> {
    let mut by_partition: BTreeMap<usize, Vec<&String>> = BTreeMap::new();
    for id in ids {
        by_partition
            .entry(keys::partition(id))
            .or_default()
            .push(id);
    }
    let mut dumps = Vec::new();
    for (partition, ids) in by_partition {
        let mut log = store.escalations_by_conversation(partition).await?;
        for id in ids {
            let entries = log.remove(id.as_str()).unwrap_or_default();
            dumps.extend(store.dump_conversation(id, entries).await?);
        }
    }
    Ok(dumps)
}

/// Knowledge-base candidates learned from conversations `ids`: (field, json).
async fn knowledge_candidates(
    store: &Store,
    ids: &BTreeSet<String>,
) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
    let all: BTreeMap<String, String> = store
        .run(|mut conn| async move {
            redis::cmd("HGETALL")
                .arg(keys::KB_CANDIDATES)
                .query_async(&mut conn)
                .await
        })
        .await?;
    Ok(all
        .into_iter()
        .filter_map(|(name, json)| {
            let candidate: serde_json::Value = serde_json::from_str(&json).ok()?;
            let from = candidate.get("conversation_id")?.as_str()?;
            ids.contains(from).then_some((name, candidate))
        })
        .collect())
}

/// Gathers everything held about `subject`: Redis, and the archive when there is one.
pub async fn export(
    store: &Store,
    archive: Option<&Archive>,
    subject_text: &str,
) -> Result<Export, ContactError> {
    let subject = Subject::parse(subject_text).map_err(ContactError::Subject)?;
    let ids = conversation_ids(store, &subject).await?;
    let conversations = dumps(store, &ids).await?;
    let archived = match archive {
        Some(archive) => (archive.read_all().await?.into_iter())
            .filter(|line| archived_match(&subject, &ids, &line.conversation))
            .collect(),
        None => Vec::new(),
    };
    let mut all_ids = ids.clone();
    all_ids.extend(
        archived
            .iter()
            .map(|line: &ArchivedConversation| line.conversation.id.clone()),
    );
    let knowledge_candidates = (knowledge_candidates(store, &all_ids).await?.into_iter())
        .map(|(_, candidate)| candidate)
        .collect();
    Ok(Export {
        subject: subject_text.trim().to_owned(),
        exported_ms: now_ms(),
        conversations,
        archived,
        knowledge_candidates,
    })
}

/// Why an export or erasure failed.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    /// The subject could not be read.
    #[error("{0}")]
    Subject(String),
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The desk could not erase its posts; nothing in Redis was removed for that conversation.
    #[error("desk: {0}")]
    Desk(switchboard_api::ConnectorError),
    /// A channel could not delete the gateway's messages; nothing in Redis was removed.
    #[error("channel: {0}")]
    Channel(switchboard_api::ConnectorError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_told_apart() {
        assert_eq!(
            Subject::parse(" Dana@Example.org ").unwrap(),
            Subject::Email("dana@example.org".into())
        );
        assert_eq!(
            Subject::parse("webchat:u:dana@example.org").unwrap(),
            Subject::ChannelKey {
                channel: switchboard_webchat::CHANNEL,
                key: "u:dana@example.org".into()
            }
        );
        assert_eq!(
            Subject::parse("A3F09C1E22B7D4E5F601").unwrap(),
            Subject::Conversation("a3f09c1e22b7d4e5f601".into())
        );
        assert!(Subject::parse("dana").is_err());
        assert!(Subject::parse("nochannel:123").is_err());
    }
}
