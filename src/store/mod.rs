//! The Redis store: conversations, transcripts, work streams and the outbox.
//!
//! Every write that must not be half-done is one Lua script, so a crash or a lost
//! connection leaves either the old state or the new one. Keys of one conversation share
//! their partition's hash tag with the partition's work streams (see [`keys`]), so the same
//! code runs on a single Redis and on a Redis Cluster ([`RedisConnection`]).

mod connection;
mod dead_letters;
mod files;
pub mod keys;
mod streams;

pub use connection::RedisConnection;
pub use dead_letters::{stream_id_ms, DeadEntry, DeadLetter, WaitingCount};
pub use streams::{
    Delivered, DeliveryLine, DeliveryTarget, HeldBack, Parking, Receipt, Work, WorkCounts,
};

pub use files::{NewFile, RedisMemory, StoredFile, UploadCount, UploadLimits, UploadOver};

use std::collections::HashMap;
use std::time::Duration;

use redis::streams::{StreamId, StreamRangeReply};
use redis::{AsyncCommands, Script};
use switchboard_api::{Author, ChannelKind, ConversationView, FileRef, Inbound, StoredMessage};

use crate::model::{conversation_id, now_ms, Conversation, Role, Status};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis refused or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Stored data did not have the expected shape.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// The outcome of storing one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// The transcript entry id.
    pub message_id: String,
    /// False when the channel message id had been stored before.
    pub is_new: bool,
    /// The conversation's status after ingest.
    pub status: Status,
    /// True when this message started the conversation.
    pub created: bool,
}

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

/// A decision to write in one step (see `lua/commit.lua`).
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// The conversation.
    pub conversation_id: String,
    /// Hash fields to set (status, last decision, timestamps).
    pub fields: Vec<(String, String)>,
    /// A transcript entry to append, optionally queued for the customer.
    pub reply: Option<ReplyToQueue>,
    /// A delivery for the agent desk (outbox payload json).
    pub desk_payload: Option<String>,
    /// The work item to ack: (group, entry id on the inbound stream).
    pub ack: Option<(String, String)>,
    /// A json record for the escalation log stream.
    pub escalation_log: Option<String>,
    /// An id (platform event or message id) that makes a replay of this commit a no-op.
    pub dedupe: Option<String>,
}

/// A transcript entry, optionally queued for delivery to the customer.
#[derive(Debug, Clone, Default)]
pub struct ReplyToQueue {
    /// Who writes it (`ai`, `agent`, `system` or `note`).
    pub role: Role,
    /// The agent's name, or empty.
    pub author: String,
    /// The text.
    pub text: String,
    /// A qualifier (`edit` for an agent's correction), or empty.
    pub kind: String,
    /// The customer `Delivery` as json, or empty when the entry is not for the customer.
    pub payload: String,
    /// The entry's file refs as json, or empty; their bytes must be stored before the commit.
    pub files: String,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// False when the dedupe id had been committed before (nothing was written).
    pub applied: bool,
    /// The appended transcript entry's id, if any.
    pub entry_id: Option<String>,
}

/// A work item read from a stream with a consumer group.
#[derive(Debug, Clone)]
pub struct WorkItem {
    /// The stream entry id (what to ack).
    pub entry_id: String,
    /// The entry's fields.
    pub fields: HashMap<String, String>,
    /// The partition whose stream it was read from (where it is acked).
    pub partition: usize,
}

impl WorkItem {
    fn from_stream(entry: StreamId, partition: usize) -> WorkItem {
        let fields = entry
            .map
            .iter()
            .filter_map(|(key, value)| {
                redis::from_redis_value_ref::<String>(value)
                    .ok()
                    .map(|text| (key.clone(), text))
            })
            .collect();
        WorkItem {
            entry_id: entry.id,
            fields,
            partition,
        }
    }
}

struct Scripts {
    ingest: Script,
    commit: Script,
    retry: Script,
    promote: Script,
    replay: Script,
    trim: Script,
}

/// Handle to the Redis store; cheap to clone, every clone shares one connection.
#[derive(Clone)]
pub struct Store {
    client: redis::Client,
    conn: RedisConnection,
    command_timeout: Duration,
    scripts: std::sync::Arc<Scripts>,
    round_trips: std::sync::Arc<std::sync::atomic::AtomicU64>,
    new_work: std::sync::Arc<streams::NewWork>,
}

impl Store {
    /// Connects and checks Redis answers; fails fast with a clear error when it does not.
    /// When `url` is a node of a Redis Cluster, the store works on the whole cluster.
    pub async fn connect(url: &str, command_timeout: Duration) -> Result<Store, StoreError> {
        let client = redis::Client::open(url)?;
        let conn = connection::connect(&client, url, command_timeout).await?;
        let store = Store {
            client,
            conn,
            command_timeout,
            scripts: std::sync::Arc::new(Scripts {
                ingest: Script::new(include_str!("lua/ingest.lua")),
                commit: Script::new(include_str!("lua/commit.lua")),
                retry: Script::new(include_str!("lua/retry.lua")),
                promote: Script::new(include_str!("lua/promote.lua")),
                replay: Script::new(include_str!("lua/replay.lua")),
                trim: Script::new(include_str!("lua/trim.lua")),
            }),
            round_trips: Default::default(),
            new_work: Default::default(),
        };
        store.ping().await?;
        Ok(store)
    }

    /// A store on its own connection, for workers whose blocking reads must not stall others.
    pub async fn dedicated(&self, block: Duration) -> Result<Store, StoreError> {
        let conn =
            connection::dedicated(&self.conn, &self.client, self.command_timeout + block).await?;
        Ok(Store {
            conn,
            ..self.clone()
        })
    }

    /// Round trips to Redis made so far by this store and every store derived from it (a
    /// pipeline or a script call counts once): the figure the benchmark reports per message.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long one command may take.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// True when the store runs on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    /// Runs commands for several items in as few round trips as the server allows: one
    /// pipeline on a single Redis; on a cluster, where a pipeline may only touch one slot,
    /// one per partition, side by side. `partitions[i]` is item `i`'s partition; `add` puts
    /// item `i`'s commands into a pipeline and returns how many replies they give (ignored
    /// commands give none). Returns each item's replies, in item order. `script` is loaded
    /// first when given (a no-op when cached; it saves a NOSCRIPT round trip after Redis
    /// restarted with an empty cache).
    pub async fn pipelined_by_partition(
        &self,
        partitions: &[usize],
        script: Option<&Script>,
        atomic: bool,
        add: impl Fn(&mut redis::Pipeline, usize) -> usize,
    ) -> Result<Vec<Vec<redis::Value>>, StoreError> {
        let groups: Vec<Vec<usize>> = if self.conn.is_cluster() {
            let mut by_partition: std::collections::BTreeMap<usize, Vec<usize>> =
                Default::default();
            for (item, partition) in partitions.iter().enumerate() {
                by_partition.entry(*partition).or_default().push(item);
            }
            by_partition.into_values().collect()
        } else {
            vec![(0..partitions.len()).collect()]
        };
        let runs = groups
            .into_iter()
            .filter(|items| !items.is_empty())
            .map(|items| {
                let mut pipe = redis::pipe();
                if atomic {
                    pipe.atomic();
                }
                if let Some(script) = script {
                    pipe.load_script(script).ignore();
                }
                let counts: Vec<usize> = items.iter().map(|item| add(&mut pipe, *item)).collect();
                let mut conn = self.conn.clone();
                async move {
                    let total: usize = counts.iter().sum();
                    let replies: Vec<redis::Value> = if total == 0 {
                        pipe.query_async::<()>(&mut conn).await?;
                        Vec::new()
                    } else {
                        pipe.query_async(&mut conn).await?
                    };
                    Ok::<_, redis::RedisError>((items, counts, replies))
                }
            });
        let results = self
            .bounded(Duration::ZERO, futures_util::future::try_join_all(runs))
            .await?;
        let mut by_item: Vec<Vec<redis::Value>> = vec![Vec::new(); partitions.len()];
        for (items, counts, replies) in results {
            if replies.len() != counts.iter().sum::<usize>() {
                return Err(StoreError::Corrupt("short pipeline reply".into()));
            }
            let mut replies = replies.into_iter();
            for (item, count) in items.into_iter().zip(counts) {
                by_item[item] = replies.by_ref().take(count).collect();
            }
        }
        Ok(by_item)
    }

    async fn bounded<T>(
        &self,
        extra: Duration,
        work: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let limit = self.command_timeout + extra;
        self.round_trips
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match tokio::time::timeout(limit, work).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }

    /// Checks Redis answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(
            Duration::ZERO,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map(|_| ())
    }

    /// Stores one inbound message: dedupe, find-or-create, append, enqueue for triage.
    ///
    /// A customer whose identity carries a linkable email address (see [`linkable_email`]) has
    /// one conversation whatever the channel: the first channel's conversation is recorded for
    /// the address, and later channels are aliased into it (one extra round trip for them).
    pub async fn ingest(&self, inbound: &Inbound) -> Result<Ingested, StoreError> {
        self.ingest_with_files(inbound, &[], Duration::ZERO).await
    }

    /// [`Store::ingest`] with files: their bytes are stored (expiring after `retention`) under
    /// the conversation first, then the message records their refs. File ids derive from the
    /// channel message id, so a platform's retry rewrites the same keys instead of adding any.
    pub async fn ingest_with_files(
        &self,
        inbound: &Inbound,
        files: &[NewFile],
        retention: Duration,
    ) -> Result<Ingested, StoreError> {
        let own_id = conversation_id(inbound.channel, &inbound.conversation_key);
        let id = match linkable_email(inbound) {
            Some(email) => self.link_contact(&email, inbound, &own_id).await?,
            None => own_id,
        };
        let contact = serde_json::to_string(&inbound.author)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let context = if inbound.context == Default::default() {
            String::new()
        } else {
            serde_json::to_string(&inbound.context)
                .map_err(|error| StoreError::Corrupt(error.to_string()))?
        };
        let file_refs = if files.is_empty() {
            String::new()
        } else {
            self.put_files(&id, files, retention).await?;
            let refs: Vec<&FileRef> = files.iter().map(|file| &file.file).collect();
            serde_json::to_string(&refs).map_err(|error| StoreError::Corrupt(error.to_string()))?
        };
        let mut conn = self.conn.clone();
        let partition = keys::partition(&id);
        let mut invocation = self.scripts.ingest.prepare_invoke();
        invocation
            .key(keys::conversation(&id))
            .key(keys::messages(&id))
            .key(keys::seen(&id))
            .key(keys::inbound(partition))
            .key(keys::conversation_index(partition))
            .arg(&inbound.message_id)
            .arg(inbound.channel.as_str())
            .arg(&inbound.conversation_key)
            .arg(&id)
            .arg(now_ms())
            .arg(inbound.kind.as_str())
            .arg(&inbound.text)
            .arg(contact)
            .arg(context)
            .arg(file_refs);
        let (is_new, message_id, status, created): (i64, String, String, i64) = self
            .bounded(Duration::ZERO, invocation.invoke_async(&mut conn))
            .await?;
        if is_new == 1 {
            self.new_work.arrived(Work::Inbound);
        }
        Ok(Ingested {
            conversation_id: id,
            message_id,
            is_new: is_new == 1,
            status: Status::parse(&status),
            created: created == 1,
        })
    }

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

    /// Finds (or records) the conversation of a linked contact; aliases this channel key to it.
    async fn link_contact(
        &self,
        email: &str,
        inbound: &Inbound,
        own_id: &str,
    ) -> Result<String, StoreError> {
        let mut conn = self.conn.clone();
        let existing: Option<String> = self
            .bounded(
                Duration::ZERO,
                redis::cmd("SET")
                    .arg(keys::contact(email))
                    .arg(own_id)
                    .arg("NX")
                    .arg("GET")
                    .query_async(&mut conn),
            )
            .await?;
        match existing {
            Some(linked) if linked != own_id => {
                let alias = keys::alias(inbound.channel.as_str(), &inbound.conversation_key);
                self.bounded(Duration::ZERO, conn.set::<_, _, ()>(alias, &linked))
                    .await?;
                Ok(linked)
            }
            _ => Ok(own_id.to_owned()),
        }
    }

    /// The conversation id a channel key maps to, following a contact link if there is one.
    pub async fn resolve_conversation(
        &self,
        channel: ChannelKind,
        conversation_key: &str,
    ) -> Result<String, StoreError> {
        let mut conn = self.conn.clone();
        let alias: Option<String> = self
            .bounded(
                Duration::ZERO,
                conn.get(keys::alias(channel.as_str(), conversation_key)),
            )
            .await?;
        Ok(alias.unwrap_or_else(|| conversation_id(channel, conversation_key)))
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

    /// Writes a decision in one step.
    pub async fn commit(&self, commit: &Commit) -> Result<Committed, StoreError> {
        let mut conn = self.conn.clone();
        let (applied, entry_id): (i64, String) = self
            .bounded(
                Duration::ZERO,
                self.commit_invocation(commit).invoke_async(&mut conn),
            )
            .await?;
        self.new_work.arrived(Work::Outbox);
        Ok(Committed {
            applied: applied == 1,
            entry_id: (!entry_id.is_empty()).then_some(entry_id),
        })
    }

    /// Writes several commits, and acks work items that need no commit, in one round trip.
    /// Each commit stays atomic on its own; a connection lost midway leaves the rest of the
    /// work items pending, to be redone, exactly as if they had been committed one by one.
    pub async fn commit_batch(
        &self,
        commits: &[Commit],
        acks: &[(Work, &WorkItem)],
    ) -> Result<Vec<Committed>, StoreError> {
        if commits.is_empty() && acks.is_empty() {
            return Ok(Vec::new());
        }
        let partitions: Vec<usize> = commits
            .iter()
            .map(|commit| keys::partition(&commit.conversation_id))
            .chain(acks.iter().map(|(_, item)| item.partition))
            .collect();
        let replies = self
            .pipelined_by_partition(
                &partitions,
                Some(&self.scripts.commit),
                false,
                |pipe, item| match commits.get(item) {
                    Some(commit) => {
                        pipe.invoke_script(&self.commit_invocation(commit));
                        1
                    }
                    None => {
                        let (work, item) = acks[item - commits.len()];
                        let stream = work.stream(item.partition);
                        pipe.xack(&stream, work.group(), &[&item.entry_id]).ignore();
                        0
                    }
                },
            )
            .await?;
        if !commits.is_empty() {
            self.new_work.arrived(Work::Outbox);
        }
        replies
            .into_iter()
            .take(commits.len())
            .map(|replies| {
                let reply = replies
                    .into_iter()
                    .next()
                    .ok_or_else(|| StoreError::Corrupt("short pipeline reply".into()))?;
                let (applied, entry_id): (i64, String) =
                    redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
                Ok(Committed {
                    applied: applied == 1,
                    entry_id: (!entry_id.is_empty()).then_some(entry_id),
                })
            })
            .collect()
    }

    fn commit_invocation<'a>(&'a self, commit: &Commit) -> redis::ScriptInvocation<'a> {
        let id = &commit.conversation_id;
        let (group, entry) = commit.ack.clone().unwrap_or_default();
        let empty = ReplyToQueue::default();
        let reply = commit.reply.as_ref().unwrap_or(&empty);
        let partition = keys::partition(id);
        let mut invocation = self.scripts.commit.prepare_invoke();
        invocation
            .key(keys::conversation(id))
            .key(keys::messages(id))
            .key(keys::outbox(partition))
            .key(keys::inbound(partition))
            .key(keys::escalations(partition))
            .key(keys::seen(id))
            .arg(group)
            .arg(entry)
            .arg(reply.role.as_str())
            .arg(&reply.author)
            .arg(&reply.text)
            .arg(&reply.payload)
            .arg(commit.escalation_log.as_deref().unwrap_or(""))
            .arg(commit.desk_payload.as_deref().unwrap_or(""))
            .arg(commit.dedupe.as_deref().unwrap_or(""))
            .arg(&reply.kind)
            .arg(commit.fields.len());
        for (field, value) in &commit.fields {
            invocation.arg(field).arg(value);
        }
        invocation.arg(&reply.files);
        invocation
    }

    /// Links a conversation to its desk thread, both ways, so either is found after a restart.
    pub async fn link_thread(
        &self,
        conversation_id: &str,
        thread: &switchboard_api::ThreadRef,
    ) -> Result<(), StoreError> {
        // Two slots on a cluster, so two commands; sent together, they share a round trip on
        // a single Redis.
        let mut conn = self.conn.clone();
        let mut other = self.conn.clone();
        let fields = [("desk_channel", &thread.channel), ("desk_ts", &thread.ts)];
        let record =
            conn.hset_multiple::<_, _, _, ()>(keys::conversation(conversation_id), &fields);
        let index = other.set::<_, _, ()>(
            keys::desk_thread(&thread.channel, &thread.ts),
            conversation_id,
        );
        self.bounded(Duration::ZERO, async {
            futures_util::future::try_join(record, index)
                .await
                .map(|_| ())
        })
        .await
    }

    /// The conversation a desk thread belongs to.
    pub async fn conversation_for_thread(
        &self,
        thread: &switchboard_api::ThreadRef,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(
            Duration::ZERO,
            conn.get(keys::desk_thread(&thread.channel, &thread.ts)),
        )
        .await
    }

    /// The transcript entry a dedupe id was committed as, if it was.
    pub async fn seen_entry(
        &self,
        conversation_id: &str,
        dedupe: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(
            Duration::ZERO,
            conn.hget(keys::seen(conversation_id), dedupe),
        )
        .await
    }

    /// A pub/sub connection of its own subscribed to `channel` (a subscribed connection can do
    /// nothing else).
    pub async fn subscribe(&self, channel: &str) -> Result<redis::aio::PubSub, StoreError> {
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok(pubsub)
        };
        self.bounded(Duration::ZERO, connect).await
    }

    /// Runs one bounded command on the shared connection (for modules with their own keys).
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, StoreError>
    where
        F: FnOnce(RedisConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.bounded(Duration::ZERO, command(self.conn.clone()))
            .await
    }
}

/// The email address that links a customer across channels, if their identity has one.
///
/// The rule: an address links channels when the channel vouches for it. An email's sender is
/// its address; a Slack account's profile email is verified by the workspace; a web chat
/// site's signed `email` claim is the site's word (the connector sets a web chat author's email
/// only from signed claims); any other channel links only a verified identity whose id *is*
/// the address. An unverified claim (a widget attribute) never joins someone else's
/// conversation.
pub fn linkable_email(inbound: &Inbound) -> Option<String> {
    let identity = &inbound.author;
    let address = if inbound.channel == ChannelKind::Email {
        identity.email.as_deref().or(Some(identity.id.as_str()))?
    } else if identity.verified && identity.id.contains('@') {
        identity.id.as_str()
    } else if identity.verified
        && matches!(inbound.channel, ChannelKind::Slack | ChannelKind::Webchat)
    {
        // Slack's users.info email is the workspace's verified account address.
        identity.email.as_deref()?
    } else {
        return None;
    };
    let address = address.trim().to_lowercase();
    (address.contains('@') && !address.contains(char::is_whitespace)).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::linkable_email;
    use switchboard_api::{ChannelKind, Identity, Inbound, InboundKind};

    fn inbound(channel: ChannelKind, id: &str, email: Option<&str>, verified: bool) -> Inbound {
        Inbound {
            channel,
            conversation_key: "k".into(),
            message_id: "m".into(),
            kind: InboundKind::Text,
            author: Identity {
                id: id.into(),
                display_name: None,
                email: email.map(Into::into),
                verified,
            },
            text: "hi".into(),
            context: Default::default(),
            files: Vec::new(),
        }
    }

    #[test]
    fn only_addresses_a_channel_vouches_for_link_contacts() {
        let mail = inbound(
            ChannelKind::Email,
            "Alice@Example.org",
            Some("Alice@Example.org"),
            false,
        );
        assert_eq!(linkable_email(&mail).as_deref(), Some("alice@example.org"));
        let signed = inbound(ChannelKind::Webchat, "alice@example.org", None, true);
        assert_eq!(
            linkable_email(&signed).as_deref(),
            Some("alice@example.org")
        );
        let claimed = inbound(
            ChannelKind::Webchat,
            "visitor-1",
            Some("alice@example.org"),
            false,
        );
        assert_eq!(
            linkable_email(&claimed),
            None,
            "a widget attribute is only a claim"
        );
        // The web chat connector sets a verified user's email only from the site's signed claims.
        let signed_claim = inbound(ChannelKind::Webchat, "42", Some("alice@example.org"), true);
        assert_eq!(
            linkable_email(&signed_claim).as_deref(),
            Some("alice@example.org")
        );
        let signed_id_only = inbound(ChannelKind::Webchat, "42", None, true);
        assert_eq!(linkable_email(&signed_id_only), None);
        let telegram = inbound(ChannelKind::Telegram, "12345", None, true);
        assert_eq!(linkable_email(&telegram), None);
    }
}
