//! Reads the report's figures out of Redis.
//!
//! Conversations are found in each partition's index (by creation time, so those created
//! after the window are never read) and read in pipelined batches; a transcript is read only
//! when its conversation was active in the window. Every read goes through the store, so the
//! report runs on a single Redis and on a cluster alike. Stream ids carry Redis's clock, hash timestamps the gateway's: both are
//! milliseconds since the epoch, and the window is applied to each as it is.

use std::collections::{HashMap, HashSet};

use redis::streams::{StreamId, StreamRangeReply};
use serde_json::Value;

use super::cluster::{cluster_questions, EscalatedQuestion, DEFAULT_THRESHOLD};
use super::{Report, ReportError, Window};
use crate::archive::Archive;
use crate::model::{field, EscalationReason, Role, Status};
use crate::store::{keys, ConversationDump, Store};

/// Conversations per index page and per pipelined batch.
const BATCH: usize = 500;
/// Transcript entries read per conversation; longer transcripts are cut (and counted).
const MAX_TRANSCRIPT: usize = 10_000;

/// Escalations that asked for a person rather than asked a question: their text ("Talk to a
/// human", "real person please") says nothing about what the knowledge base lacks.
const NOT_A_QUESTION: &[EscalationReason] = &[EscalationReason::HumanRequested];

/// Computes every figure for `window` from Redis alone.
pub async fn collect(store: &Store, window: Window) -> Result<Report, ReportError> {
    collect_with_archive(store, None, window).await
}

/// Computes every figure for `window`, from Redis and, when the window reaches back to what
/// was archived, from the archive too. A conversation is counted once: an archived state of
/// one still in Redis (a run that died before removing it) is skipped.
pub async fn collect_with_archive(
    store: &Store,
    archive: Option<&Archive>,
    window: Window,
) -> Result<Report, ReportError> {
    let mut report = Report {
        window: Some(window),
        ..Report::default()
    };
    let archived = match archive {
        Some(archive) => archived_for(archive, window).await?,
        None => Vec::new(),
    };
    let (escalated_ids, mut questions) = read_escalations(store, window, &mut report).await?;
    let mut in_redis = HashSet::new();
    for partition in keys::partitions() {
        read_partition(
            store,
            partition,
            window,
            &escalated_ids,
            &mut in_redis,
            &mut report,
        )
        .await?;
    }
    let archived: Vec<&ConversationDump> = (archived.iter())
        .filter(|dump| !in_redis.contains(&(dump.id.clone(), dump.created_ms())))
        .collect();
    for dump in &archived {
        count_archived(dump, window, &mut questions, &mut report);
    }
    questions.sort_by_key(|(order, _)| *order);
    let questions: Vec<EscalatedQuestion> = questions.into_iter().map(|(_, q)| q).collect();
    report.knowledge_gaps = cluster_questions(&questions, DEFAULT_THRESHOLD);
    read_kb_candidates(store, window, &mut report).await?;
    let archived_case_events = (archived.iter())
        .flat_map(|dump| dump.case_events.iter())
        .filter(|entry| window.contains(stream_ms(&entry.id)))
        .map(|entry| (entry.id.clone(), entry.fields.clone().into_iter().collect()))
        .collect();
    super::cases::read_cases(store, window, archived_case_events, &mut report).await?;
    Ok(report)
}

/// The archived conversations that may count in `window`: none when every archive run
/// happened before the window (what a run moves out was quiet for the retention already).
/// Reads the archive whole: it is for the occasional report over an old window.
async fn archived_for(
    archive: &Archive,
    window: Window,
) -> Result<Vec<ConversationDump>, ReportError> {
    let status = archive.status().await?;
    if status
        .newest_ms
        .is_none_or(|newest| newest < window.since_ms)
    {
        return Ok(Vec::new());
    }
    Ok((archive.read_all().await?.into_iter())
        .map(|line| line.conversation)
        .filter(|dump| dump.created_ms() < window.until_ms)
        .collect())
}

/// An archived conversation's figures: the same as [`read_batch`] and [`read_escalations`]
/// count for one in Redis, from its archived record, transcript and escalation log entries.
fn count_archived(
    dump: &ConversationDump,
    window: Window,
    questions: &mut Vec<((u64, u64), EscalatedQuestion)>,
    report: &mut Report,
) {
    let mut escalated_in_window = false;
    for entry in &dump.escalations {
        if !window.contains(stream_ms(&entry.id)) {
            continue;
        }
        escalated_in_window = true;
        let order = stream_id_order(&entry.id);
        count_escalation(
            entry.fields.get("e").map(String::as_str),
            order,
            questions,
            report,
        );
    }
    let fields = dump.record.clone().into_iter().collect();
    let Some(record) = Record::parse_fields(&dump.id, fields) else {
        report.skip("conversation records");
        return;
    };
    let escalated_ids = if escalated_in_window {
        HashSet::from([dump.id.clone()])
    } else {
        HashSet::new()
    };
    count_record(&record, window, &escalated_ids, report);
    let entries = dump.transcript.iter().map(|entry| {
        let role = entry.fields.get("role").map_or("", String::as_str);
        (entry.id.as_str(), Role::parse(role))
    });
    count_transcript(&record, entries, window, report);
}

/// Every partition's escalation log entries in the window, oldest first.
pub(super) async fn escalation_log(
    store: &Store,
    window: Window,
) -> Result<Vec<StreamId>, ReportError> {
    partition_log(store, window, keys::escalations).await
}

/// Every partition's entries of the per-partition stream `log_of` names, in the window,
/// oldest first.
pub(super) async fn partition_log(
    store: &Store,
    window: Window,
    log_of: fn(usize) -> String,
) -> Result<Vec<StreamId>, ReportError> {
    let mut entries = Vec::new();
    // An end id without a sequence number includes every entry of that millisecond.
    let end = window.until_ms.saturating_sub(1).to_string();
    let start = window.since_ms.to_string();
    for partition in keys::partitions() {
        entries.extend(store.stream_range(&log_of(partition), &start, &end).await?);
    }
    entries.sort_by_key(|entry| stream_id_order(&entry.id));
    Ok(entries)
}

fn stream_id_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// The escalation log in the window: counts by reason, the conversations, the questions
/// (with their stream order, so archived ones sort in among them).
#[allow(clippy::type_complexity)]
async fn read_escalations(
    store: &Store,
    window: Window,
    report: &mut Report,
) -> Result<(HashSet<String>, Vec<((u64, u64), EscalatedQuestion)>), ReportError> {
    let mut conversations = HashSet::new();
    let mut questions = Vec::new();
    for entry in escalation_log(store, window).await? {
        let json = entry.get::<String>("e");
        let order = stream_id_order(&entry.id);
        if let Some(id) = count_escalation(json.as_deref(), order, &mut questions, report) {
            conversations.insert(id);
        }
    }
    Ok((conversations, questions))
}

/// Counts one escalation log entry; returns the conversation it names.
fn count_escalation(
    json: Option<&str>,
    order: (u64, u64),
    questions: &mut Vec<((u64, u64), EscalatedQuestion)>,
    report: &mut Report,
) -> Option<String> {
    let parsed = json
        .and_then(|json| serde_json::from_str::<Value>(json).ok())
        .filter(Value::is_object);
    let Some(log) = parsed else {
        report.skip("escalation log entries");
        return None;
    };
    let text = |field: &str| log.get(field).and_then(Value::as_str).unwrap_or("");
    let reason = match text("reason") {
        "" => "unknown".to_owned(),
        reason => reason.to_owned(),
    };
    *report.escalations.entry(reason.clone()).or_default() += 1;
    let asked_for_a_person =
        EscalationReason::known(&reason).is_some_and(|reason| NOT_A_QUESTION.contains(&reason));
    if !asked_for_a_person && !text("question").trim().is_empty() {
        questions.push((
            order,
            EscalatedQuestion {
                text: text("question").to_owned(),
                reason,
            },
        ));
    }
    Some(text("conversation_id").to_owned()).filter(|id| !id.is_empty())
}

/// A conversation record's fields the report reads, parsed once.
///
/// Not [`crate::model::Conversation`]: the report counts records of channels this gateway no
/// longer runs, and needs none of the contact or decision data.
struct Record {
    id: String,
    channel: String,
    status: Status,
    created_ms: u64,
    updated_ms: u64,
    escalated_ms: Option<u64>,
    first_human_reply_ms: Option<u64>,
    resolved_ms: Option<u64>,
    /// The stored rating as written (validated when counted, so bad ones are reported).
    csat: Option<String>,
    csat_ms: Option<u64>,
}

impl Record {
    fn parse(id: &str, raw: HashMap<String, Vec<u8>>) -> Option<Record> {
        let fields: HashMap<String, String> = raw
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        Record::parse_fields(id, fields)
    }

    fn parse_fields(id: &str, fields: HashMap<String, String>) -> Option<Record> {
        let channel = fields
            .get(field::CHANNEL)
            .filter(|c| !c.is_empty())?
            .clone();
        let created_ms = fields.get(field::CREATED_MS)?.parse().ok()?;
        let updated_ms = ms(&fields, field::UPDATED_MS).unwrap_or(created_ms);
        Some(Record {
            id: id.to_owned(),
            channel,
            status: fields
                .get(field::STATUS)
                .map_or(Status::Bot, |name| Status::parse(name)),
            created_ms,
            updated_ms,
            escalated_ms: ms(&fields, field::ESCALATED_MS),
            first_human_reply_ms: ms(&fields, field::FIRST_HUMAN_REPLY_MS),
            resolved_ms: ms(&fields, field::RESOLVED_MS),
            csat: fields.get("csat").cloned(),
            csat_ms: ms(&fields, "csat_ms"),
        })
    }
}

fn ms(fields: &HashMap<String, String>, field: &str) -> Option<u64> {
    fields
        .get(field)
        .and_then(|value| value.trim().parse().ok())
}

/// The partition's conversations created before the window's end, read page by page.
async fn read_partition(
    store: &Store,
    partition: usize,
    window: Window,
    escalated_ids: &HashSet<String>,
    in_redis: &mut HashSet<(String, u64)>,
    report: &mut Report,
) -> Result<(), ReportError> {
    let mut offset = 0;
    loop {
        let ids = store
            .indexed_page(partition, window.until_ms, offset, BATCH)
            .await?;
        if !ids.is_empty() {
            read_batch(store, window, &ids, escalated_ids, in_redis, report).await?;
        }
        if ids.len() < BATCH {
            return Ok(());
        }
        offset += BATCH;
    }
}

async fn read_batch(
    store: &Store,
    window: Window,
    ids: &[String],
    escalated_ids: &HashSet<String>,
    in_redis: &mut HashSet<(String, u64)>,
    report: &mut Report,
) -> Result<(), ReportError> {
    let partitions: Vec<usize> = ids.iter().map(|id| keys::partition(id)).collect();
    let hashes = store
        .pipelined_by_partition(&partitions, None, false, |pipe, item| {
            pipe.hgetall(keys::conversation(&ids[item]));
            1
        })
        .await?;
    let mut active = Vec::new();
    for (id, raw) in ids.iter().zip(hashes) {
        let raw: HashMap<String, Vec<u8>> = match raw.into_iter().next() {
            Some(value) => redis::from_redis_value(value).map_err(redis::RedisError::from)?,
            None => HashMap::new(),
        };
        if raw.is_empty() {
            continue; // expired or deleted since it was indexed
        }
        let Some(record) = Record::parse(id, raw) else {
            report.skip("conversation records");
            continue;
        };
        in_redis.insert((record.id.clone(), record.created_ms));
        count_record(&record, window, escalated_ids, report);
        if record.created_ms < window.until_ms && record.updated_ms >= window.since_ms {
            active.push(record);
        }
    }
    if active.is_empty() {
        return Ok(());
    }
    let partitions: Vec<usize> = active
        .iter()
        .map(|record| keys::partition(&record.id))
        .collect();
    let transcripts = store
        .pipelined_by_partition(&partitions, None, false, |pipe, item| {
            let record = &active[item];
            // A conversation started in the window is read from its first message, for the
            // time to first response; an older one only from the window's start.
            let start = if window.contains(record.created_ms) {
                "-".to_owned()
            } else {
                window.since_ms.to_string()
            };
            pipe.cmd("XRANGE")
                .arg(keys::messages(&record.id))
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(MAX_TRANSCRIPT);
            1
        })
        .await?;
    for (record, transcript) in active.iter().zip(transcripts) {
        let transcript: StreamRangeReply = match transcript.into_iter().next() {
            Some(value) => redis::from_redis_value(value).map_err(redis::RedisError::from)?,
            None => StreamRangeReply::default(),
        };
        if transcript.ids.len() == MAX_TRANSCRIPT {
            report.skip("transcripts cut at 10000 entries");
        }
        let entries = transcript.ids.iter().map(|entry| {
            let role = entry
                .get::<String>("role")
                .map_or(Role::Other(String::new()), |name| Role::parse(&name));
            (entry.id.as_str(), role)
        });
        count_transcript(record, entries, window, report);
    }
    Ok(())
}

/// Figures from the conversation's own fields.
fn count_record(
    record: &Record,
    window: Window,
    escalated_ids: &HashSet<String>,
    report: &mut Report,
) {
    if window.contains(record.created_ms) {
        *report
            .conversations
            .entry(record.channel.clone())
            .or_default() += 1;
        let escalated_by_then = record.escalated_ms.is_some_and(|at| at < window.until_ms);
        if escalated_by_then || escalated_ids.contains(&record.id) {
            report.escalated_conversations += 1;
        }
    }
    if let Some(escalated) = record.escalated_ms.filter(|&at| window.contains(at)) {
        match record.first_human_reply_ms {
            Some(replied) if replied >= escalated => report.time_to_human.push(replied - escalated),
            // An earlier handling's reply, before this (re-)escalation: no sample either way.
            Some(_) => {}
            None if record.status == Status::Escalated => report.awaiting_human += 1,
            None => {}
        }
    }
    if record.resolved_ms.is_some_and(|at| window.contains(at)) {
        report.resolutions += 1;
    }
    if let Some(rating) = &record.csat {
        let at = record.csat_ms.unwrap_or(record.updated_ms);
        match rating.trim().parse::<usize>() {
            Ok(score @ 1..=5) if window.contains(at) => report.csat.counts[score - 1] += 1,
            Ok(1..=5) => {}
            _ => report.skip("csat ratings"),
        }
    }
}

/// Messages by role in the window, and the time to first response.
fn count_transcript<'a>(
    record: &Record,
    entries: impl IntoIterator<Item = (&'a str, Role)>,
    window: Window,
    report: &mut Report,
) {
    let mut first_customer_ms = None;
    let mut first_response_seen = false;
    for (id, role) in entries {
        let at = stream_ms(id);
        if window.contains(at) {
            match role {
                Role::Customer => {
                    *report
                        .customer_messages
                        .entry(record.channel.clone())
                        .or_default() += 1
                }
                Role::Ai => *report.ai_answers.entry(record.channel.clone()).or_default() += 1,
                Role::Agent => report.agent_replies += 1,
                _ => {}
            }
        }
        if !window.contains(record.created_ms) || first_response_seen {
            continue;
        }
        match (&role, first_customer_ms) {
            (Role::Customer, None) => first_customer_ms = Some(at),
            // Internal notes never reach the customer, so they are not a response.
            (role, Some(asked)) if role.answers_customer() => {
                report.first_response.push(at.saturating_sub(asked));
                first_response_seen = true;
            }
            _ => {}
        }
    }
}

/// Milliseconds of a stream id `<ms>-<seq>`.
fn stream_ms(id: &str) -> u64 {
    id.split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0)
}

async fn read_kb_candidates(
    store: &Store,
    window: Window,
    report: &mut Report,
) -> Result<(), ReportError> {
    let raw: HashMap<String, Vec<u8>> = store
        .run(|mut conn| async move {
            redis::cmd("HGETALL")
                .arg(keys::KB_CANDIDATES)
                .query_async(&mut conn)
                .await
        })
        .await?;
    for value in raw.values() {
        let Some(candidate) = serde_json::from_slice::<Value>(value)
            .ok()
            .filter(Value::is_object)
        else {
            report.skip("knowledge-base candidates");
            continue;
        };
        let at = |field: &str| candidate.get(field).and_then(json_ms);
        let in_window = |field: &str| at(field).is_some_and(|ms| window.contains(ms));
        let kb = &mut report.kb_candidates;
        if in_window("created_ms") {
            kb.proposed += 1;
        }
        match candidate.get("status").and_then(Value::as_str) {
            // `approving` is the moment between review and the knowledge-base write.
            Some("pending" | "approving") => kb.pending += 1,
            Some("approved") if in_window("decided_ms") => kb.approved += 1,
            Some("rejected") if in_window("decided_ms") => kb.rejected += 1,
            Some("approved" | "rejected") => {}
            _ => report.skip("knowledge-base candidates"),
        }
    }
    Ok(())
}

/// A timestamp written either as a json number or as a string of digits.
fn json_ms(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
}
