//! The Redis store: conversations, transcripts, work streams and the outbox.
//!
//! Every write that must not be half-done is one Lua script, so a crash or a lost
//! connection leaves either the old state or the new one. Keys of one conversation share
//! their partition's hash tag with the partition's work streams (see [`keys`]), so the same
//! code runs on a single Redis and on a Redis Cluster ([`RedisConnection`]).

mod audit;
mod cases;
mod connection;
mod dead_letters;
mod erase;
mod files;
mod ingest;
pub mod keys;
mod streams;
mod transcript;
mod watch;

pub use audit::RevealLook;
pub use connection::RedisConnection;
pub use dead_letters::{stream_id_ms, DeadEntry, DeadLetter, WaitingCount};
pub use erase::{ConversationDump, DumpEntry, DumpFile, Purged};
pub use streams::{
    Delivered, DeliveryLine, DeliveryTarget, HeldBack, Parking, Receipt, StoredReceipt, Work,
    WorkCounts,
};

pub use cases::{ClosedCase, OpenedCases};
pub use files::{NewFile, RedisMemory, StoredFile, UploadCount, UploadLimits, UploadOver};
pub use ingest::{linkable_email, CaseEvent, Ingested};
pub use transcript::TranscriptEntry;

use std::collections::HashMap;
use std::time::Duration;

use redis::streams::StreamId;
use redis::{AsyncCommands, Script};

use crate::model::Role;

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
    /// Puts the conversation on the desk's watch list from this time, ms (someone is now
    /// waiting on a person: see `desk::reminders`); an earlier entry stays.
    pub watch_from_ms: Option<u64>,
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
    /// The case the entry belongs to, when the committer read it with the conversation; 0
    /// leaves the script to read it from the record (a read less on the triage path).
    pub case: u64,
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
    case_rules: std::sync::Arc<crate::config::CaseRules>,
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
            case_rules: Default::default(),
        };
        store.ping().await?;
        Ok(store)
    }

    /// Applies `rules` to cases (the defaults otherwise); stores derived from this one share them.
    pub fn with_case_rules(mut self, rules: crate::config::CaseRules) -> Store {
        self.case_rules = std::sync::Arc::new(rules);
        self
    }

    /// The case rules this store applies.
    pub fn case_rules(&self) -> &crate::config::CaseRules {
        &self.case_rules
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
            .key(keys::desk_watch(partition))
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
        invocation.arg(
            commit
                .watch_from_ms
                .map(|ms| ms.to_string())
                .unwrap_or_default(),
        );
        invocation.arg(match reply.case {
            0 => String::new(),
            case => case.to_string(),
        });
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
