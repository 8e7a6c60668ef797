//! Reads the report's figures out of Redis.
//!
//! Conversation hashes are found with SCAN (it may repeat keys, so ids are deduplicated) and
//! read in pipelined batches; a transcript is read only when its conversation was active in
//! the window. Stream ids carry Redis's clock, hash timestamps the gateway's: both are
//! milliseconds since the epoch, and the window is applied to each as it is.

use std::collections::{HashMap, HashSet};

use redis::aio::ConnectionLike;
use redis::streams::{StreamId, StreamRangeReply};
use serde_json::Value;

use super::cluster::{cluster_questions, EscalatedQuestion, DEFAULT_THRESHOLD};
use super::{Report, ReportError, Window};
use crate::store::keys;

/// Keys per SCAN step and per pipelined batch.
const BATCH: usize = 500;
/// Escalation log entries per XRANGE page.
const PAGE: usize = 1_000;
/// Transcript entries read per conversation; longer transcripts are cut (and counted).
const MAX_TRANSCRIPT: usize = 10_000;

/// Escalations that asked for a person rather than asked a question: their text ("Talk to a
/// human", "real person please") says nothing about what the knowledge base lacks.
const NOT_A_QUESTION: &[&str] = &["human_requested"];

/// Computes every figure for `window`.
pub async fn collect<C>(conn: &mut C, window: Window) -> Result<Report, ReportError>
where
    C: ConnectionLike + Send,
{
    let mut report = Report {
        window: Some(window),
        ..Report::default()
    };
    let (escalated_ids, questions) = read_escalations(conn, window, &mut report).await?;
    scan_conversations(conn, window, &escalated_ids, &mut report).await?;
    report.knowledge_gaps = cluster_questions(&questions, DEFAULT_THRESHOLD);
    read_kb_candidates(conn, window, &mut report).await?;
    Ok(report)
}

/// The escalation log in the window: counts by reason, the conversations, the questions.
async fn read_escalations<C>(
    conn: &mut C,
    window: Window,
    report: &mut Report,
) -> Result<(HashSet<String>, Vec<EscalatedQuestion>), ReportError>
where
    C: ConnectionLike + Send,
{
    let mut conversations = HashSet::new();
    let mut questions = Vec::new();
    let mut start = window.since_ms.to_string();
    // An end id without a sequence number includes every entry of that millisecond.
    let end = window.until_ms.saturating_sub(1).to_string();
    loop {
        let page: StreamRangeReply = redis::cmd("XRANGE")
            .arg(keys::ESCALATIONS)
            .arg(&start)
            .arg(&end)
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        for entry in &page.ids {
            let parsed = entry
                .get::<String>("e")
                .and_then(|json| serde_json::from_str::<Value>(&json).ok())
                .filter(Value::is_object);
            let Some(log) = parsed else {
                report.skip("escalation log entries");
                continue;
            };
            let text = |field: &str| log.get(field).and_then(Value::as_str).unwrap_or("");
            let reason = match text("reason") {
                "" => "unknown".to_owned(),
                reason => reason.to_owned(),
            };
            *report.escalations.entry(reason.clone()).or_default() += 1;
            if !text("conversation_id").is_empty() {
                conversations.insert(text("conversation_id").to_owned());
            }
            if !NOT_A_QUESTION.contains(&reason.as_str()) && !text("question").trim().is_empty() {
                questions.push(EscalatedQuestion {
                    text: text("question").to_owned(),
                    reason,
                });
            }
        }
        match page.ids.last() {
            Some(last) if page.ids.len() == PAGE => start = format!("({}", last.id),
            _ => break,
        }
    }
    Ok((conversations, questions))
}

/// A conversation record's fields the report reads.
struct Record {
    id: String,
    channel: String,
    created_ms: u64,
    updated_ms: u64,
    fields: HashMap<String, String>,
}

impl Record {
    fn parse(id: &str, raw: HashMap<String, Vec<u8>>) -> Option<Record> {
        let fields: HashMap<String, String> = raw
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let channel = fields.get("channel").filter(|c| !c.is_empty())?.clone();
        let created_ms = fields.get("created_ms")?.parse().ok()?;
        let updated_ms = ms(&fields, "updated_ms").unwrap_or(created_ms);
        Some(Record {
            id: id.to_owned(),
            channel,
            created_ms,
            updated_ms,
            fields,
        })
    }

    fn ms(&self, field: &str) -> Option<u64> {
        ms(&self.fields, field)
    }
}

fn ms(fields: &HashMap<String, String>, field: &str) -> Option<u64> {
    fields
        .get(field)
        .and_then(|value| value.trim().parse().ok())
}

/// The id in a conversation hash key `sb:{c:<id>}`; `None` for every other key.
fn conversation_id_of(key: &str) -> Option<&str> {
    let id = key.strip_prefix("sb:{c:")?.strip_suffix('}')?;
    (!id.is_empty() && !id.contains(['{', '}'])).then_some(id)
}

async fn scan_conversations<C>(
    conn: &mut C,
    window: Window,
    escalated_ids: &HashSet<String>,
    report: &mut Report,
) -> Result<(), ReportError>
where
    C: ConnectionLike + Send,
{
    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("sb:{c:*}")
            .arg("COUNT")
            .arg(BATCH)
            .arg("TYPE")
            .arg("hash")
            .query_async(conn)
            .await?;
        let ids: Vec<String> = found
            .iter()
            .filter_map(|key| conversation_id_of(key))
            .filter(|id| seen.insert((*id).to_owned()))
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            read_batch(conn, window, &ids, escalated_ids, report).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

async fn read_batch<C>(
    conn: &mut C,
    window: Window,
    ids: &[String],
    escalated_ids: &HashSet<String>,
    report: &mut Report,
) -> Result<(), ReportError>
where
    C: ConnectionLike + Send,
{
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.hgetall(keys::conversation(id));
    }
    let hashes: Vec<HashMap<String, Vec<u8>>> = pipe.query_async(conn).await?;
    let mut active = Vec::new();
    for (id, raw) in ids.iter().zip(hashes) {
        if raw.is_empty() {
            continue; // deleted between SCAN and HGETALL
        }
        let Some(record) = Record::parse(id, raw) else {
            report.skip("conversation records");
            continue;
        };
        count_record(&record, window, escalated_ids, report);
        if record.created_ms < window.until_ms && record.updated_ms >= window.since_ms {
            active.push(record);
        }
    }
    if active.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for record in &active {
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
    }
    let transcripts: Vec<StreamRangeReply> = pipe.query_async(conn).await?;
    for (record, transcript) in active.iter().zip(transcripts) {
        if transcript.ids.len() == MAX_TRANSCRIPT {
            report.skip("transcripts cut at 10000 entries");
        }
        count_transcript(record, &transcript.ids, window, report);
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
        let escalated_by_then = record
            .ms("escalated_ms")
            .is_some_and(|at| at < window.until_ms);
        if escalated_by_then || escalated_ids.contains(&record.id) {
            report.escalated_conversations += 1;
        }
    }
    if let Some(escalated) = record.ms("escalated_ms").filter(|&at| window.contains(at)) {
        match record.ms("first_human_reply_ms") {
            Some(replied) if replied >= escalated => report.time_to_human.push(replied - escalated),
            // An earlier handling's reply, before this (re-)escalation: no sample either way.
            Some(_) => {}
            None if record.fields.get("status").map(String::as_str) == Some("escalated") => {
                report.awaiting_human += 1
            }
            None => {}
        }
    }
    if record
        .ms("resolved_ms")
        .is_some_and(|at| window.contains(at))
    {
        report.resolutions += 1;
    }
    if let Some(rating) = record.fields.get("csat") {
        let at = record.ms("csat_ms").unwrap_or(record.updated_ms);
        match rating.trim().parse::<usize>() {
            Ok(score @ 1..=5) if window.contains(at) => report.csat.counts[score - 1] += 1,
            Ok(1..=5) => {}
            _ => report.skip("csat ratings"),
        }
    }
}

/// Messages by role in the window, and the time to first response.
fn count_transcript(record: &Record, entries: &[StreamId], window: Window, report: &mut Report) {
    let mut first_customer_ms = None;
    let mut first_response_seen = false;
    for entry in entries {
        let at = stream_ms(&entry.id);
        let role: String = entry.get("role").unwrap_or_default();
        if window.contains(at) {
            match role.as_str() {
                "customer" => {
                    *report
                        .customer_messages
                        .entry(record.channel.clone())
                        .or_default() += 1
                }
                "ai" => *report.ai_answers.entry(record.channel.clone()).or_default() += 1,
                "agent" => report.agent_replies += 1,
                _ => {}
            }
        }
        if !window.contains(record.created_ms) || first_response_seen {
            continue;
        }
        match (role.as_str(), first_customer_ms) {
            ("customer", None) => first_customer_ms = Some(at),
            // Internal notes never reach the customer, so they are not a response.
            ("ai" | "agent" | "system", Some(asked)) => {
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

async fn read_kb_candidates<C>(
    conn: &mut C,
    window: Window,
    report: &mut Report,
) -> Result<(), ReportError>
where
    C: ConnectionLike + Send,
{
    let raw: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(keys::KB_CANDIDATES)
        .query_async(conn)
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
