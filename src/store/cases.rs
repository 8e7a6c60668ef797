//! Case closing and the case log (see `crate::cases` for the rules).

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{keys, DumpEntry, Store, StoreError};

static CLOSE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/case_close.lua")));
static ADVANCE_CURSOR: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/case_cursor.lua")));
static HAND_OVER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/case_handover.lua")));

/// Cases of one partition due their first close check, as [`Store::cases_opened_by`] reads
/// them from the case log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OpenedCases {
    /// The conversations whose case opened or reopened, oldest first (one may repeat).
    pub conversations: Vec<String>,
    /// When each of them opened (or reopened), ms.
    pub opened_ms: Vec<u64>,
    /// The last log entry read, for [`Store::case_log_checked`] once they are checked.
    pub read_to: Option<String>,
}

/// One event of a partition's case log, as `ingest.lua` and `case_close.lua` write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedCase {
    /// `opened`, `reopened` or `closed`.
    pub event: String,
    /// `<conversation id>:<number>`.
    pub case_id: String,
    /// The conversation.
    pub conversation_id: String,
    /// The channel the customer wrote on (for `opened`: this message's).
    pub channel: String,
    /// For `opened`: the channel of the customer's previous message, if any.
    pub previous_channel: Option<String>,
    /// When it happened, ms.
    pub at_ms: u64,
    /// For `closed`: `resolved`, `confirmed`, `ai_idle` or `idle`.
    pub how: Option<String>,
    /// For `closed`: whether a person was involved.
    pub human: bool,
    /// For `closed`: when the case opened, ms.
    pub opened_ms: Option<u64>,
    /// For `closed`: reopens.
    pub reopens: u64,
    /// For `closed`: escalations.
    pub escalations: u64,
    /// For `closed`: the first reply to the customer, ms.
    pub first_response_ms: Option<u64>,
    /// For `closed`: the first agent reply, ms.
    pub first_human_ms: Option<u64>,
    /// The case opened within the repeat window of the previous one's close.
    pub repeat: bool,
}

impl ClosedCase {
    /// Reads one logged event from its stream id and fields; `None` when it is not one.
    pub fn from_entry(id: &str, fields: &HashMap<String, String>) -> Option<ClosedCase> {
        let text = |name: &str| fields.get(name).filter(|value| !value.is_empty()).cloned();
        let ms = |name: &str| text(name).and_then(|value| value.trim().parse().ok());
        let flag = |name: &str| fields.get(name).map(String::as_str) == Some("1");
        let case_id = text("case")?;
        let (conversation_id, _) = case_id.rsplit_once(':')?;
        Some(ClosedCase {
            event: text("ev")?,
            conversation_id: conversation_id.to_owned(),
            case_id: case_id.clone(),
            channel: text("ch").unwrap_or_default(),
            previous_channel: text("prev"),
            at_ms: super::stream_id_ms(id)?,
            how: text("how"),
            human: flag("human"),
            opened_ms: ms("opened"),
            reopens: ms("reopens").unwrap_or(0),
            escalations: ms("esc").unwrap_or(0),
            first_response_ms: ms("first"),
            first_human_ms: ms("human_at"),
            repeat: flag("rep"),
        })
    }
}

impl Store {
    /// Closes the conversation's open case as `how` (`resolved`, `confirmed`), or, with
    /// `None`, as whichever idle close is due at `now_ms` by the record. Returns the logged
    /// event when this call closed it (a case is closed once however many try).
    pub async fn close_case(
        &self,
        conversation_id: &str,
        how: Option<&str>,
        now_ms: u64,
    ) -> Result<Option<ClosedCase>, StoreError> {
        let partition = keys::partition(conversation_id);
        let mut invocation = CLOSE.prepare_invoke();
        invocation
            .key(keys::conversation(conversation_id))
            .key(keys::case_deadlines(partition))
            .key(keys::case_log(partition))
            .key(keys::desk_watch(partition))
            .key(keys::messages(conversation_id))
            .arg(how.unwrap_or(""))
            .arg(now_ms)
            .arg(conversation_id)
            .arg(self.case_rules.ai_idle_close_ms)
            .arg(self.case_rules.idle_close_ms);
        let mut conn = self.conn.clone();
        let reply: Vec<String> = self
            .bounded(Duration::ZERO, invocation.invoke_async(&mut conn))
            .await?;
        let [closed, id, fields @ ..] = reply.as_slice() else {
            return Ok(None);
        };
        if closed != "1" {
            return Ok(None);
        }
        let fields: HashMap<String, String> = fields
            .chunks(2)
            .filter_map(|pair| match pair {
                [name, value] => Some((name.clone(), value.clone())),
                _ => None,
            })
            .collect();
        Ok(ClosedCase::from_entry(id, &fields))
    }

    /// The cases of `partition` opened or reopened by `until_ms` and not yet checked, from the
    /// case log after the sweeper's cursor: up to `limit` log entries.
    ///
    /// The log already holds every opening in order, so a case's first close check needs no
    /// deadline of its own: a sorted-set entry only goes in for a case found not due yet.
    pub async fn cases_opened_by(
        &self,
        partition: usize,
        until_ms: u64,
        limit: usize,
    ) -> Result<OpenedCases, StoreError> {
        let mut conn = self.conn.clone();
        let cursor: Option<String> = self
            .bounded(
                Duration::ZERO,
                redis::cmd("GET")
                    .arg(keys::case_log_cursor(partition))
                    .query_async(&mut conn),
            )
            .await?;
        let start = cursor.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let entries: redis::streams::StreamRangeReply = self
            .bounded(
                Duration::ZERO,
                redis::cmd("XRANGE")
                    .arg(keys::case_log(partition))
                    .arg(start)
                    .arg(until_ms)
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(&mut conn),
            )
            .await?;
        let read_to = entries.ids.last().map(|entry| entry.id.clone());
        let (conversations, opened_ms) = (entries.ids.iter())
            .filter(|entry| {
                matches!(
                    entry.get::<String>("ev").as_deref(),
                    Some("opened" | "reopened")
                )
            })
            .filter_map(|entry| {
                let case: String = entry.get("case")?;
                let conversation = case.rsplit_once(':')?.0.to_owned();
                Some((conversation, super::stream_id_ms(&entry.id)?))
            })
            .unzip();
        Ok(OpenedCases {
            conversations,
            opened_ms,
            read_to,
        })
    }

    /// Records that the cases of `partition` up to log entry `read_to` had their first check.
    pub async fn case_log_checked(
        &self,
        partition: usize,
        read_to: &str,
    ) -> Result<(), StoreError> {
        let mut invocation = ADVANCE_CURSOR.prepare_invoke();
        invocation
            .key(keys::case_log_cursor(partition))
            .arg(read_to);
        let mut conn = self.conn.clone();
        self.bounded(Duration::ZERO, invocation.invoke_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    /// Up to `limit` conversations of `partition` whose case may be due to close by `due_ms`.
    pub async fn cases_due(
        &self,
        partition: usize,
        due_ms: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.due_in(keys::case_deadlines(partition), due_ms, limit)
            .await
    }
}

impl Store {
    /// Takes a conversation off its partition's case deadlines: it left Redis (archived or
    /// forgotten), so there is no case left to close.
    pub async fn drop_case_deadline(&self, conversation_id: &str) -> Result<(), StoreError> {
        let zset = keys::case_deadlines(keys::partition(conversation_id));
        let member = keys::conversation(conversation_id);
        self.run(|mut conn| async move {
            redis::cmd("ZREM")
                .arg(zset)
                .arg(member)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Removes a forgotten customer's events from their partition's case log (they name the
    /// conversation and its channels); returns how many. Reads the whole log: an erasure is
    /// rare, and the log holds no index by conversation.
    pub async fn forget_case_log(&self, conversation_id: &str) -> Result<u64, StoreError> {
        let log = keys::case_log(keys::partition(conversation_id));
        let prefix = format!("{conversation_id}:");
        let doomed: Vec<String> = (self.stream_entries(&log).await?.into_iter())
            .filter(|entry| {
                entry
                    .fields
                    .get("case")
                    .is_some_and(|case| case.starts_with(&prefix))
            })
            .map(|entry| entry.id)
            .collect();
        let mut removed = 0;
        for chunk in doomed.chunks(1_000) {
            let (stream, chunk) = (log.clone(), chunk.to_vec());
            removed += self
                .run(|mut conn| async move {
                    redis::cmd("XDEL")
                        .arg(stream)
                        .arg(&chunk)
                        .query_async::<u64>(&mut conn)
                        .await
                })
                .await?;
        }
        Ok(removed)
    }

    /// The partition's case log, by conversation id (what the archive keeps with each).
    pub async fn case_log_by_conversation(
        &self,
        partition: usize,
    ) -> Result<BTreeMap<String, Vec<DumpEntry>>, StoreError> {
        let mut by_conversation: BTreeMap<String, Vec<DumpEntry>> = BTreeMap::new();
        for entry in self.stream_entries(&keys::case_log(partition)).await? {
            let conversation = (entry.fields.get("case"))
                .and_then(|case| Some(case.rsplit_once(':')?.0.to_owned()));
            if let Some(conversation) = conversation {
                by_conversation.entry(conversation).or_default().push(entry);
            }
        }
        Ok(by_conversation)
    }

    /// Drops the partition's case log entries older than `min_ms`; returns how many.
    ///
    /// Cases opened in the part dropped that no sweeper has read yet would lose their first
    /// close check, which comes from the log: those still open are put in the case deadlines
    /// for it first (at when it was due, or earlier if they wait there already).
    pub async fn trim_case_log(&self, partition: usize, min_ms: u64) -> Result<u64, StoreError> {
        let first_check_ms = self.case_rules.first_close_check_ms();
        let deadlines = keys::case_deadlines(partition);
        loop {
            let opened = (self.cases_opened_by(partition, min_ms.saturating_sub(1), 1_000)).await?;
            let Some(read_to) = &opened.read_to else {
                break;
            };
            if !opened.conversations.is_empty() {
                let mut invocation = HAND_OVER.prepare_invoke();
                invocation.key(&deadlines);
                for (id, opened_ms) in opened.conversations.iter().zip(&opened.opened_ms) {
                    invocation
                        .key(keys::conversation(id))
                        .arg(opened_ms + first_check_ms);
                }
                let mut conn = self.conn.clone();
                self.bounded(Duration::ZERO, invocation.invoke_async::<u64>(&mut conn))
                    .await?;
            }
            self.case_log_checked(partition, read_to).await?;
        }
        let log = keys::case_log(partition);
        self.run(|mut conn| async move {
            redis::cmd("XTRIM")
                .arg(log)
                .arg("MINID")
                .arg(min_ms)
                .query_async::<u64>(&mut conn)
                .await
        })
        .await
    }
}
