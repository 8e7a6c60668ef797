//! Everything Redis holds about one conversation, read out whole ([`ConversationDump`]: what
//! `contact export` prints and the archive keeps) and removed whole (`contact forget`, and the
//! archive once a dump is safely written).
//!
//! The conversation's own keys, its index entries and its escalation log entries share the
//! partition's hash tag, so they go in one script (`lua/purge.lua`). The keys that stand alone
//! (contact and alias links, the desk thread's index, the upload quota counter) each live in
//! their own slot on a cluster, so they are removed one command each, never one multi-key
//! command across slots.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use base64::Engine;
use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use switchboard_api::FileRef;

use super::{keys, Store, StoreError, Work};
use crate::model::field;

static PURGE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/purge.lua")));

/// Stream entries read per XRANGE page.
const PAGE: usize = 1_000;

/// One stream entry as stored: its id and fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpEntry {
    /// The stream id (its milliseconds are when it was written).
    pub id: String,
    /// The fields, as stored.
    pub fields: BTreeMap<String, String>,
}

/// A stored file with its bytes, base64 in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpFile {
    /// The file id (what transcript entries refer to).
    pub id: String,
    /// The file name.
    pub name: String,
    /// The MIME type.
    pub content_type: String,
    /// The bytes, standard base64.
    pub data_base64: String,
}

/// Everything Redis holds about one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationDump {
    /// The conversation id.
    pub id: String,
    /// The record's fields (status, contact, context, last decision, CSAT, timestamps, ...).
    pub record: BTreeMap<String, String>,
    /// The transcript, oldest first.
    pub transcript: Vec<DumpEntry>,
    /// Its escalation log entries (each with the triage decision that escalated).
    pub escalations: Vec<DumpEntry>,
    /// Delivery receipts: transcript id -> the platform's message id.
    pub deliveries: BTreeMap<String, String>,
    /// Channel message ids already stored -> transcript ids.
    pub seen: BTreeMap<String, String>,
    /// Files still stored (expired ones are gone already), with their bytes.
    pub files: Vec<DumpFile>,
    /// Other channels' conversation keys linked into it (`channel:key`).
    pub links: Vec<String>,
    /// Its case log entries (opened, reopened, closed), kept with it in the archive because
    /// the partition's case log is trimmed once they are archived; the report reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub case_events: Vec<DumpEntry>,
}

impl ConversationDump {
    /// When it last changed, ms: the latest of its record's timestamps and transcript.
    pub fn last_activity_ms(&self) -> u64 {
        let stamp = |name: &str| {
            self.record
                .get(name)
                .and_then(|text| text.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let last_entry = (self.transcript.last())
            .and_then(|entry| entry.id.split('-').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        [
            stamp(field::CREATED_MS),
            stamp(field::UPDATED_MS),
            stamp(field::RESOLVED_MS),
            last_entry,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// The record's `created_ms` (with the id, what tells two lives of one id apart).
    pub fn created_ms(&self) -> u64 {
        (self.record.get(field::CREATED_MS))
            .and_then(|text| text.parse().ok())
            .unwrap_or(0)
    }
}

/// What [`Store::purge_conversation`] removed, in counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    /// Conversation records.
    pub conversations: u64,
    /// Transcript entries.
    pub transcript_entries: u64,
    /// Escalation log entries.
    pub escalation_log_entries: u64,
    /// Files.
    pub files: u64,
    /// Keys of any kind (the conversation's own and the links to it).
    pub keys: u64,
    /// Queued or dead-lettered deliveries and work items that named it.
    pub work_items: u64,
}

impl Purged {
    /// Adds another's counts.
    pub fn add(&mut self, other: Purged) {
        self.conversations += other.conversations;
        self.transcript_entries += other.transcript_entries;
        self.escalation_log_entries += other.escalation_log_entries;
        self.files += other.files;
        self.keys += other.keys;
        self.work_items += other.work_items;
    }
}

fn fields_of(entry: &redis::streams::StreamId) -> BTreeMap<String, String> {
    (entry.map.iter())
        .filter_map(|(name, value)| {
            redis::from_redis_value_ref::<String>(value)
                .ok()
                .map(|text| (name.clone(), text))
        })
        .collect()
}

impl Store {
    /// Every entry of a stream, oldest first, page by page.
    pub async fn stream_entries(&self, stream: &str) -> Result<Vec<DumpEntry>, StoreError> {
        let entries = self.stream_range(stream, "-", "+").await?;
        Ok((entries.iter())
            .map(|entry| DumpEntry {
                id: entry.id.clone(),
                fields: fields_of(entry),
            })
            .collect())
    }

    /// A stream's entries from `from` to `to` (XRANGE ids, both included), oldest first, read
    /// page by page.
    pub async fn stream_range(
        &self,
        stream: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<redis::streams::StreamId>, StoreError> {
        let mut entries = Vec::new();
        let mut start = from.to_owned();
        loop {
            let (key, from, to) = (stream.to_owned(), start.clone(), to.to_owned());
            let page: StreamRangeReply = self
                .run(|mut conn| async move {
                    redis::cmd("XRANGE")
                        .arg(key)
                        .arg(from)
                        .arg(to)
                        .arg("COUNT")
                        .arg(PAGE)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            let full = page.ids.len() == PAGE;
            if let Some(last) = page.ids.last() {
                start = format!("({}", last.id);
            }
            entries.extend(page.ids);
            if !full {
                return Ok(entries);
            }
        }
    }

    /// The partition's escalation log, by conversation id.
    pub async fn escalations_by_conversation(
        &self,
        partition: usize,
    ) -> Result<BTreeMap<String, Vec<DumpEntry>>, StoreError> {
        let mut by_conversation: BTreeMap<String, Vec<DumpEntry>> = BTreeMap::new();
        for entry in self.stream_entries(&keys::escalations(partition)).await? {
            let conversation = (entry.fields.get("e"))
                .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
                .and_then(|log| Some(log.get("conversation_id")?.as_str()?.to_owned()));
            if let Some(conversation) = conversation {
                by_conversation.entry(conversation).or_default().push(entry);
            }
        }
        Ok(by_conversation)
    }

    /// Conversation ids of a partition's index created before `before_ms`, oldest first.
    pub async fn indexed_conversations(
        &self,
        partition: usize,
        before_ms: u64,
    ) -> Result<Vec<String>, StoreError> {
        let index = keys::conversation_index(partition);
        self.run(|mut conn| async move {
            conn.zrangebyscore(index, "-inf", format!("({before_ms}"))
                .await
        })
        .await
    }

    /// One page of a partition's index: up to `count` conversation ids created before
    /// `before_ms`, oldest first, from `offset` on (readers of every conversation page so a
    /// large partition is never one reply).
    pub async fn indexed_page(
        &self,
        partition: usize,
        before_ms: u64,
        offset: usize,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        let index = keys::conversation_index(partition);
        self.run(|mut conn| async move {
            conn.zrangebyscore_limit(
                index,
                "-inf",
                format!("({before_ms}"),
                offset as isize,
                count as isize,
            )
            .await
        })
        .await
    }

    /// A conversation record's fields as stored (empty when there is none).
    pub async fn conversation_fields(
        &self,
        id: &str,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let key = keys::conversation(id);
        self.run(|mut conn| async move { conn.hgetall(key).await })
            .await
    }

    /// Everything stored about conversation `id`, or `None` when it has no record.
    /// `escalations` are its escalation log entries (see [`Store::escalations_by_conversation`]).
    pub async fn dump_conversation(
        &self,
        id: &str,
        escalations: Vec<DumpEntry>,
    ) -> Result<Option<ConversationDump>, StoreError> {
        let (record_key, seen_key, deliveries_key, links_key) = (
            keys::conversation(id),
            keys::seen(id),
            keys::deliveries(id),
            keys::links(id),
        );
        #[allow(clippy::type_complexity)]
        let (record, seen, deliveries, links): (
            BTreeMap<String, String>,
            BTreeMap<String, String>,
            BTreeMap<String, String>,
            Vec<String>,
        ) = self
            .run(|mut conn| async move {
                redis::pipe()
                    .hgetall(record_key)
                    .hgetall(seen_key)
                    .hgetall(deliveries_key)
                    .smembers(links_key)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        if record.is_empty() {
            return Ok(None);
        }
        let transcript = self.stream_entries(&keys::messages(id)).await?;
        let mut files = Vec::new();
        for file_id in file_ids(&transcript) {
            if let Some(stored) = self.file(id, &file_id).await? {
                files.push(DumpFile {
                    id: file_id,
                    name: stored.name,
                    content_type: stored.content_type,
                    data_base64: base64::engine::general_purpose::STANDARD.encode(&stored.bytes),
                });
            }
        }
        let mut links = links;
        links.sort();
        Ok(Some(ConversationDump {
            id: id.to_owned(),
            record,
            transcript,
            escalations,
            deliveries,
            seen,
            files,
            links,
            case_events: Vec::new(),
        }))
    }

    /// Removes what `dump` read from Redis. With `only_if_unchanged`, nothing is removed if
    /// the conversation changed since it was dumped (a customer wrote again) and `None` is
    /// returned; the archive uses that so a new message is never lost.
    pub async fn purge_conversation(
        &self,
        dump: &ConversationDump,
        only_if_unchanged: bool,
    ) -> Result<Option<Purged>, StoreError> {
        let id = dump.id.as_str();
        let partition = keys::partition(id);
        let mut invocation = PURGE.prepare_invoke();
        invocation
            .key(keys::conversation(id))
            .key(keys::conversation_index(partition))
            .key(keys::desk_watch(partition))
            .key(keys::escalations(partition))
            .key(keys::messages(id))
            .key(keys::seen(id))
            .key(keys::deliveries(id))
            .key(keys::links(id));
        for file in file_ids(&dump.transcript) {
            invocation.key(keys::file(id, &file));
        }
        for target in crate::registry::delivery_targets() {
            invocation
                .key(keys::delivery_line(id, target))
                .key(keys::delivery_hold(id, target));
        }
        let last_entry = dump.transcript.last().map_or("", |entry| entry.id.as_str());
        invocation
            .arg(if only_if_unchanged { "1" } else { "" })
            .arg(
                dump.record
                    .get(field::UPDATED_MS)
                    .map_or("", String::as_str),
            )
            .arg(last_entry)
            .arg(id)
            .arg(dump.escalations.len());
        for entry in &dump.escalations {
            invocation.arg(&entry.id);
        }
        let removed: i64 = self
            .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        if removed < 0 {
            return Ok(None);
        }
        let mut purged = Purged {
            conversations: 1,
            transcript_entries: dump.transcript.len() as u64,
            escalation_log_entries: dump.escalations.len() as u64,
            files: dump.files.len() as u64,
            keys: removed as u64,
            work_items: 0,
        };
        purged.keys += self.unlink(dump).await?;
        self.drop_case_deadline(id).await?;
        Ok(Some(purged))
    }

    /// Removes the keys outside the conversation's slot that lead to it: its desk thread's
    /// indexes, the contact and alias links, the web chat upload counter. One key per command.
    async fn unlink(&self, dump: &ConversationDump) -> Result<u64, StoreError> {
        // Links that may lead elsewhere by now (a new conversation owns them) are checked;
        // the upload counter of a channel key is this customer's alone.
        let mut links = Vec::new();
        let mut owned = Vec::new();
        for thread in crate::model::every_desk_thread(&dump.record) {
            links.push(keys::desk_thread(&thread.channel, &thread.ts));
        }
        let mut channel_keys: Vec<String> = dump.links.clone();
        if let (Some(channel), Some(key)) =
            (dump.record.get(field::CHANNEL), dump.record.get(field::KEY))
        {
            channel_keys.push(format!("{channel}:{key}"));
        }
        for channel_key in &channel_keys {
            if let Some((channel, key)) = channel_key.split_once(':') {
                links.push(keys::alias(channel, key));
                owned.push(keys::upload_quota_conversation(key));
            }
        }
        if let Some(email) = contact_email(dump) {
            links.push(keys::contact(&email));
        }
        let mut removed = 0;
        for key in links {
            let id = dump.id.clone();
            removed += self
                .run(|mut conn| async move {
                    let target: Option<String> = conn.get(&key).await?;
                    match target {
                        Some(target) if target == id => conn.del::<_, u64>(&key).await,
                        _ => Ok(0),
                    }
                })
                .await?;
        }
        for key in owned {
            removed += self
                .run(|mut conn| async move { conn.del::<_, u64>(key).await })
                .await?;
        }
        Ok(removed)
    }

    /// Takes out of the partition's work streams (inbound, outbox, dead letters, parked
    /// retries, waiting sets) every item that names conversation `id`: queued replies to a
    /// forgotten customer hold their words and address. Returns how many were removed.
    pub async fn purge_work_of(&self, id: &str) -> Result<u64, StoreError> {
        let partition = keys::partition(id);
        let mut removed = 0;
        for (stream, group) in [
            (Work::Inbound.stream(partition), Some(Work::Inbound.group())),
            (Work::Outbox.stream(partition), Some(Work::Outbox.group())),
            (keys::outbox_dead(partition), None),
        ] {
            let doomed: Vec<String> = (self.stream_entries(&stream).await?.into_iter())
                .filter(|entry| entry.fields.values().any(|value| value.contains(id)))
                .map(|entry| entry.id)
                .collect();
            for chunk in doomed.chunks(500) {
                let (stream, chunk) = (stream.clone(), chunk.to_vec());
                removed += self
                    .run(|mut conn| async move {
                        let mut pipe = redis::pipe();
                        pipe.atomic();
                        if let Some(group) = group {
                            pipe.xack(&stream, group, &chunk).ignore();
                        }
                        pipe.xdel(&stream, &chunk);
                        let (deleted,): (u64,) = pipe.query_async(&mut conn).await?;
                        Ok(deleted)
                    })
                    .await?;
            }
        }
        let delayed = keys::outbox_delayed(partition);
        let parked: Vec<String> = {
            let delayed = delayed.clone();
            self.run(|mut conn| async move { conn.zrange(delayed, 0, -1).await })
                .await?
        };
        let mut origins = Vec::new();
        for member in parked.into_iter().filter(|member| member.contains(id)) {
            if let Some(origin) = serde_json::from_str::<serde_json::Value>(&member)
                .ok()
                .and_then(|parked| Some(parked.get("origin")?.as_str()?.to_owned()))
            {
                origins.push(origin);
            }
            let delayed = delayed.clone();
            removed += self
                .run(|mut conn| async move { conn.zrem::<_, _, u64>(delayed, member).await })
                .await?;
        }
        for target in crate::registry::delivery_targets() {
            let line = keys::delivery_line(id, target);
            let mut held: Vec<String> = self
                .run(|mut conn| async move { conn.zrange(line, 0, -1).await })
                .await?;
            held.extend(origins.iter().cloned());
            if held.is_empty() {
                continue;
            }
            let waiting = keys::outbox_waiting(partition, target);
            self.run(|mut conn| async move { conn.zrem::<_, _, u64>(waiting, held).await })
                .await?;
        }
        Ok(removed)
    }
}

/// The file ids transcript entries refer to, each once.
fn file_ids(transcript: &[DumpEntry]) -> Vec<String> {
    let mut ids: Vec<String> = (transcript.iter())
        .filter_map(|entry| entry.fields.get("files"))
        .filter_map(|json| serde_json::from_str::<Vec<FileRef>>(json).ok())
        .flatten()
        .map(|file| file.id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The address the conversation's contact link is kept under, if it has one.
fn contact_email(dump: &ConversationDump) -> Option<String> {
    let contact: switchboard_api::Identity =
        serde_json::from_str(dump.record.get(field::CONTACT)?).ok()?;
    let address = contact.email.unwrap_or(contact.id);
    let address = address.trim().to_lowercase();
    address.contains('@').then_some(address)
}
