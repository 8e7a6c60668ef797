//! Reading conversations and their transcripts back: records parsed at this edge into the
//! model's typed [`Conversation`], entries into [`TranscriptEntry`].

use std::collections::HashMap;
use std::time::Duration;

use redis::streams::{StreamId, StreamRangeReply};
use redis::AsyncCommands;
use switchboard_api::{Author, ChannelKind, ConversationView, FileRef, StoredMessage};

use super::{keys, Store, StoreError};
use crate::model::{Conversation, Role};

/// One transcript entry as the core reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptEntry {
    /// Stream id, ordered in time.
    pub id: String,
    /// Who wrote it.
    pub role: Role,
    /// The agent's name for `agent` entries.
    pub author: Option<String>,
    /// `text` or `human_request` for customer entries.
    pub kind: Option<String>,
    /// The text.
    pub text: String,
    /// The channel's message id, for customer entries.
    pub channel_message_id: Option<String>,
    /// Files sent with the message (references; the bytes are in the file store).
    pub files: Vec<FileRef>,
}

impl TranscriptEntry {
    fn from_stream(entry: &StreamId) -> TranscriptEntry {
        TranscriptEntry {
            id: entry.id.clone(),
            role: entry
                .get::<String>("role")
                .map_or(Role::Customer, |name| Role::parse(&name)),
            author: entry.get("author").filter(|name: &String| !name.is_empty()),
            kind: entry.get("kind"),
            text: entry.get("text").unwrap_or_default(),
            channel_message_id: entry.get("cmid"),
            files: entry
                .get::<String>("files")
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default(),
        }
    }

    /// Milliseconds since the epoch, from the stream id.
    pub fn at_ms(&self) -> u64 {
        self.id
            .split('-')
            .next()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0)
    }

    /// The entry as a customer-facing message; `None` for internal notes.
    pub fn to_customer_view(&self) -> Option<StoredMessage> {
        let author = match self.role {
            Role::Customer => Author::Customer,
            Role::Ai => Author::Ai,
            Role::Agent => Author::Agent {
                name: self.author.clone().unwrap_or_else(|| "Support".into()),
            },
            Role::System => Author::System,
            Role::Note | Role::Other(_) => return None,
        };
        Some(StoredMessage {
            id: self.id.clone(),
            author,
            text: self.text.clone(),
            at_ms: self.at_ms(),
            channel_message_id: self.channel_message_id.clone(),
            files: self.files.clone(),
        })
    }
}

impl Store {
    /// The conversation record, or `None` when it does not exist.
    pub async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = self
            .bounded(Duration::ZERO, conn.hgetall(keys::conversation(id)))
            .await?;
        Ok(Conversation::from_fields(id, fields))
    }

    /// The conversation and its latest `count` transcript entries (oldest first), in one round trip.
    pub async fn conversation_with_recent(
        &self,
        id: &str,
        count: usize,
    ) -> Result<Option<(Conversation, Vec<TranscriptEntry>)>, StoreError> {
        Ok(self
            .conversations_with_recent(&[id], count)
            .await?
            .pop()
            .flatten())
    }

    /// Several conversations with their last `count` entries each, in one round trip; the
    /// result follows the order of `ids`, `None` where a conversation does not exist.
    pub async fn conversations_with_recent(
        &self,
        ids: &[&str],
        count: usize,
    ) -> Result<Vec<Option<(Conversation, Vec<TranscriptEntry>)>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let partitions: Vec<usize> = ids.iter().map(|id| keys::partition(id)).collect();
        let replies = self
            .pipelined_by_partition(&partitions, None, false, |pipe, item| {
                let id = ids[item];
                pipe.hgetall(keys::conversation(id))
                    .cmd("XREVRANGE")
                    .arg(keys::messages(id))
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(count);
                2
            })
            .await?;
        let mut loaded = Vec::with_capacity(ids.len());
        for (id, replies) in ids.iter().zip(replies) {
            let mut replies = replies.into_iter();
            let (Some(fields), Some(recent)) = (replies.next(), replies.next()) else {
                return Err(StoreError::Corrupt("short pipeline reply".into()));
            };
            let fields: HashMap<String, String> =
                redis::from_redis_value(fields).map_err(redis::RedisError::from)?;
            let recent: StreamRangeReply =
                redis::from_redis_value(recent).map_err(redis::RedisError::from)?;
            loaded.push(Conversation::from_fields(id, fields).map(|conversation| {
                let mut entries: Vec<TranscriptEntry> = recent
                    .ids
                    .iter()
                    .map(TranscriptEntry::from_stream)
                    .collect();
                entries.reverse();
                (conversation, entries)
            }));
        }
        Ok(loaded)
    }

    /// Transcript entries after `after` (exclusive), oldest first.
    pub async fn transcript_after(
        &self,
        id: &str,
        after: Option<&str>,
        count: usize,
    ) -> Result<Vec<TranscriptEntry>, StoreError> {
        let start = match after {
            Some(cursor) => format!("({cursor}"),
            None => "-".into(),
        };
        let mut conn = self.conn.clone();
        let range: StreamRangeReply = self
            .bounded(
                Duration::ZERO,
                redis::cmd("XRANGE")
                    .arg(keys::messages(id))
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut conn),
            )
            .await?;
        Ok(range.ids.iter().map(TranscriptEntry::from_stream).collect())
    }

    /// One transcript entry by its id.
    pub async fn entry(
        &self,
        conversation_id: &str,
        entry_id: &str,
    ) -> Result<Option<TranscriptEntry>, StoreError> {
        let mut conn = self.conn.clone();
        let range: StreamRangeReply = self
            .bounded(
                Duration::ZERO,
                redis::cmd("XRANGE")
                    .arg(keys::messages(conversation_id))
                    .arg(entry_id)
                    .arg(entry_id)
                    .query_async(&mut conn),
            )
            .await?;
        Ok(range.ids.first().map(TranscriptEntry::from_stream))
    }

    /// The customer-visible view of a channel conversation; `None` when it does not exist yet.
    pub async fn customer_view(
        &self,
        channel: ChannelKind,
        conversation_key: &str,
        after: Option<&str>,
    ) -> Result<Option<ConversationView>, StoreError> {
        let id = self.resolve_conversation(channel, conversation_key).await?;
        let mut conn = self.conn.clone();
        let status: Option<String> = self
            .bounded(Duration::ZERO, conn.hget(keys::conversation(&id), "status"))
            .await?;
        let Some(status) = status else {
            return Ok(None);
        };
        let entries = self.transcript_after(&id, after, 500).await?;
        Ok(Some(ConversationView {
            conversation_id: id,
            status,
            messages: entries
                .iter()
                .filter_map(TranscriptEntry::to_customer_view)
                .collect(),
        }))
    }
}
