//! `switchboard contact forget`: erases one customer everywhere, and the audit log of it.
//!
//! Order matters for a re-run after a failure: the desk's posts in every thread the
//! conversation ever had go first, then the gateway's messages in the customer's own chats
//! (the conversation record and its delivery receipts, which name them, are still there if a
//! platform fails), then Redis, then the archive; each step finds nothing left to do on a
//! second pass. The audit entry records who, when, and counts of what was removed, never the
//! subject or any content.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard_api::{Connector, Desk, ForgottenPosts, ForgottenSent, SentMessage};

use super::{archived_match, conversation_ids, dumps, knowledge_candidates, ContactError, Subject};
use crate::archive::Archive;
use crate::model::{every_desk_thread, field, now_ms};
use crate::store::{
    keys, stream_id_ms, ConversationDump, Purged, Store, StoreError, StoredReceipt,
};

/// What an erasure removed, in counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forgotten {
    /// Removed from Redis.
    pub redis: Purged,
    /// Archived conversations removed from the archive.
    pub archived_conversations: u64,
    /// Knowledge-base candidates learned from their conversations, removed.
    pub knowledge_candidates: u64,
    /// The desk's own posts, deleted or redacted.
    pub desk: ForgottenPosts,
    /// Desk threads that could not be erased because no desk is configured here.
    pub desk_threads_not_reached: u64,
    /// The gateway's own messages in the customer's chats (Slack, Discord, Telegram, ...):
    /// deleted, left by a platform that refused (Telegram after 48 hours), or not erasable
    /// (an email once sent).
    #[serde(default)]
    pub channel_messages: ForgottenSent,
    /// Messages on channels not enabled in this config, so not reached.
    #[serde(default)]
    pub channel_messages_not_reached: u64,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The stream id.
    pub id: String,
    /// Who ran it.
    pub by: String,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// The request's reference, as given (`--ticket`), if any.
    pub ticket: Option<String>,
    /// What was removed.
    pub removed: Forgotten,
}

fn add_posts(total: &mut ForgottenPosts, more: ForgottenPosts) {
    total.deleted += more.deleted;
    total.redacted += more.redacted;
    total.files_deleted += more.files_deleted;
    total.left_by_people += more.left_by_people;
}

async fn forget_threads(
    desk: Option<&dyn Desk>,
    dumps: &[ConversationDump],
    forgotten: &mut Forgotten,
) -> Result<(), ContactError> {
    for thread in dumps
        .iter()
        .flat_map(|dump| every_desk_thread(&dump.record))
    {
        match desk {
            Some(desk) => add_posts(
                &mut forgotten.desk,
                desk.forget_thread(&thread)
                    .await
                    .map_err(ContactError::Desk)?,
            ),
            None => forgotten.desk_threads_not_reached += 1,
        }
    }
    Ok(())
}

/// The conversation's key on `channel`: the record's when the customer wrote there last,
/// else the linked one.
fn key_on<'a>(dump: &'a ConversationDump, channel: &str) -> Option<&'a str> {
    if dump.record.get(field::CHANNEL).map(String::as_str) == Some(channel) {
        return dump.record.get(field::KEY).map(String::as_str);
    }
    (dump.links.iter()).find_map(|link| link.strip_prefix(channel)?.strip_prefix(':'))
}

/// The messages the receipts of `dump` name, by the channel and chat they went to. Receipts
/// written before they named their channel went where the customer wrote last.
fn sent_by_chat(dump: &ConversationDump) -> BTreeMap<(String, Option<String>), Vec<SentMessage>> {
    let mut by_chat: BTreeMap<(String, Option<String>), Vec<SentMessage>> = BTreeMap::new();
    for (transcript_id, value) in &dump.deliveries {
        let receipt = StoredReceipt::parse(value);
        let Some(channel) =
            (receipt.channel.clone()).or_else(|| dump.record.get(field::CHANNEL).cloned())
        else {
            continue;
        };
        let key = key_on(dump, &channel).map(str::to_owned);
        let sent_ms = stream_id_ms(transcript_id).unwrap_or(0);
        by_chat
            .entry((channel, key))
            .or_default()
            .extend(receipt.ids().map(|id| SentMessage {
                platform_message_id: id.clone(),
                sent_ms,
            }));
    }
    by_chat
}

async fn forget_sent(
    channels: &[Arc<dyn Connector>],
    dumps: &[ConversationDump],
    forgotten: &mut Forgotten,
) -> Result<(), ContactError> {
    for dump in dumps {
        for ((channel, key), sent) in sent_by_chat(dump) {
            let connector = channels
                .iter()
                .find(|connector| connector.channel().as_str() == channel);
            let (Some(connector), Some(key)) = (connector, key) else {
                forgotten.channel_messages_not_reached += sent.len() as u64;
                continue;
            };
            let done = (connector.forget_sent(&key, &sent).await).map_err(ContactError::Channel)?;
            forgotten.channel_messages.add(done);
        }
    }
    Ok(())
}

/// Erases everything held about `subject_text`: the desk's posts in their threads, the
/// gateway's messages in their chats on `channels` (the enabled connectors), their
/// conversations and everything that points at them in Redis, their archived conversations,
/// and the knowledge-base candidates learned from them; then records the audit entry.
pub async fn forget(
    store: &Store,
    archive: Option<&Archive>,
    desk: Option<&dyn Desk>,
    channels: &[Arc<dyn Connector>],
    subject_text: &str,
    by: &str,
    ticket: Option<&str>,
) -> Result<Forgotten, ContactError> {
    let subject = Subject::parse(subject_text).map_err(ContactError::Subject)?;
    let ids = conversation_ids(store, &subject).await?;
    let dumps = dumps(store, &ids).await?;
    let archived: Vec<ConversationDump> = match archive {
        Some(archive) => (archive.read_all().await?.into_iter())
            .map(|line| line.conversation)
            .filter(|dump| archived_match(&subject, &ids, dump))
            .collect(),
        None => Vec::new(),
    };
    let mut forgotten = Forgotten::default();
    // The desk first, archived conversations' threads too: should it fail, everything that
    // names the threads is still there for the next attempt.
    forget_threads(desk, &dumps, &mut forgotten).await?;
    forget_threads(desk, &archived, &mut forgotten).await?;
    forget_sent(channels, &dumps, &mut forgotten).await?;
    forget_sent(channels, &archived, &mut forgotten).await?;
    let mut all_ids: BTreeSet<String> = ids.clone();
    all_ids.extend(archived.iter().map(|dump| dump.id.clone()));
    for dump in &dumps {
        forgotten.redis.work_items += store.purge_work_of(&dump.id).await?;
        if let Some(purged) = store.purge_conversation(dump, false).await? {
            forgotten.redis.add(purged);
        }
    }
    // The case log names the conversation; an archived one's events are still in Redis too.
    for id in &all_ids {
        store.forget_case_log(id).await?;
    }
    if let Subject::Email(email) = &subject {
        let contact = keys::contact(email);
        forgotten.redis.keys += store
            .run(|mut conn| async move {
                redis::cmd("DEL")
                    .arg(contact)
                    .query_async::<u64>(&mut conn)
                    .await
            })
            .await?;
    }
    if let Some(archive) = archive {
        let removed = archive
            .forget(|dump| archived_match(&subject, &ids, dump))
            .await?;
        forgotten.archived_conversations = removed.len() as u64;
    }
    for (name, _) in knowledge_candidates(store, &all_ids).await? {
        forgotten.knowledge_candidates += store
            .run(|mut conn| async move {
                redis::cmd("HDEL")
                    .arg(keys::KB_CANDIDATES)
                    .arg(name)
                    .query_async::<u64>(&mut conn)
                    .await
            })
            .await?;
    }
    record_audit(store, by, ticket, &forgotten).await?;
    Ok(forgotten)
}

async fn record_audit(
    store: &Store,
    by: &str,
    ticket: Option<&str>,
    forgotten: &Forgotten,
) -> Result<(), StoreError> {
    let removed = serde_json::to_string(forgotten).unwrap_or_default();
    let fields = [
        ("by", by.to_owned()),
        ("at_ms", now_ms().to_string()),
        ("ticket", ticket.unwrap_or("").to_owned()),
        ("removed", removed),
    ];
    store
        .run(|mut conn| async move {
            redis::AsyncCommands::xadd::<_, _, _, _, String>(
                &mut conn,
                keys::ERASURE_AUDIT,
                "*",
                &fields,
            )
            .await
        })
        .await
        .map(|_| ())
}

/// The erasure audit log, oldest first.
pub async fn audit_log(store: &Store) -> Result<Vec<AuditEntry>, StoreError> {
    let entries = store.stream_entries(keys::ERASURE_AUDIT).await?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let field = |name: &str| entry.fields.get(name).cloned().unwrap_or_default();
            let fields: &BTreeMap<String, String> = &entry.fields;
            AuditEntry {
                id: entry.id.clone(),
                by: field("by"),
                at_ms: field("at_ms").parse().unwrap_or(0),
                ticket: fields
                    .get("ticket")
                    .filter(|ticket| !ticket.is_empty())
                    .cloned(),
                removed: serde_json::from_str(&field("removed")).unwrap_or_default(),
            }
        })
        .collect())
}
