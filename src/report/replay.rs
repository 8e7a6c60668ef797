//! `switchboard replay`: what a candidate triage config would have decided about the stored
//! customer messages of a window, against what was decided at the time.
//!
//! Strictly read-only: it reads conversation hashes, transcripts, the escalation log and the
//! learned knowledge-base entries, and writes nothing (proven by a test comparing a full key
//! dump before and after).
//!
//! Nothing stores a decision per message, so the recorded one is read back from what it
//! caused: an AI reply after the message is an answer; the escalation log entry whose
//! question is the message's text (followed by the escalation notice) is an escalation with
//! its reason. Messages no triage ran on (relayed to an agent, satisfaction ratings) are
//! counted as not triaged and not replayed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::collect::escalation_log;
use super::{ratio, ReportError, Window};
use crate::config::Config;
use crate::model::{Conversation, Decision, Role};

use crate::pipeline::{history_of, triage_input};
use crate::store::{keys, Store, TranscriptEntry};
use crate::triage::Triage;

/// Earlier entries triage saw with a message (the pipeline reads the last 20, this one included).
const HISTORY: usize = 19;
/// Transcript entries read per conversation.
const MAX_TRANSCRIPT: usize = 10_000;
/// Conversation ids per index page.
const PAGE: usize = 500;
/// Examples kept per kind of change in the text output.
const EXAMPLES: usize = 5;
/// Changes per kind that keep the lines leading up to them, for the HTML page's examples.
pub const EXAMPLES_WITH_CONTEXT: usize = 20;
/// Lines kept before a changed message, and characters of each.
const CONTEXT_LINES: usize = 4;
const CONTEXT_CHARS: usize = 300;
/// Conversations read from Redis at once (their transcripts are independent).
const READ_AHEAD: usize = 32;

/// A decision reduced to what replay compares: answer, or escalate with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Outcome {
    /// The AI answers.
    Answer,
    /// A person answers, for this reason (its snake_case name).
    Escalate {
        /// `low_confidence`, `always_human_category`, ...
        reason: String,
    },
}

impl Outcome {
    fn of(decision: &Decision) -> Outcome {
        match decision {
            Decision::Answer { .. } => Outcome::Answer,
            Decision::Escalate { reason, .. } => Outcome::Escalate {
                reason: reason.as_str().to_owned(),
            },
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answer => f.write_str("answer"),
            Outcome::Escalate { reason } => write!(f, "escalate ({reason})"),
        }
    }
}

/// How a decision changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Answered then, would escalate now.
    AnswerToEscalate,
    /// Escalated then, would answer now.
    EscalateToAnswer,
    /// Escalated then and now, for another reason.
    ReasonChanged,
}

impl ChangeKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [ChangeKind; 3] = [
        ChangeKind::AnswerToEscalate,
        ChangeKind::EscalateToAnswer,
        ChangeKind::ReasonChanged,
    ];

    /// The snake_case name used in json.
    pub fn key(self) -> &'static str {
        match self {
            ChangeKind::AnswerToEscalate => "answer_to_escalate",
            ChangeKind::EscalateToAnswer => "escalate_to_answer",
            ChangeKind::ReasonChanged => "reason_changed",
        }
    }

    fn between(recorded: &Outcome, replayed: &Outcome) -> Option<ChangeKind> {
        match (recorded, replayed) {
            (Outcome::Answer, Outcome::Escalate { .. }) => Some(ChangeKind::AnswerToEscalate),
            (Outcome::Escalate { .. }, Outcome::Answer) => Some(ChangeKind::EscalateToAnswer),
            (Outcome::Escalate { reason: a }, Outcome::Escalate { reason: b }) if a != b => {
                Some(ChangeKind::ReasonChanged)
            }
            _ => None,
        }
    }

    /// In words, for people.
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::AnswerToEscalate => "answer -> escalate",
            ChangeKind::EscalateToAnswer => "escalate -> answer",
            ChangeKind::ReasonChanged => "reason changed",
        }
    }
}

/// One customer message whose decision would change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// What kind of change.
    pub kind: ChangeKind,
    /// The conversation.
    pub conversation_id: String,
    /// Its channel.
    pub channel: String,
    /// The message's transcript entry id.
    pub message_id: String,
    /// The customer's text.
    pub text: String,
    /// Decided at the time.
    pub recorded: Outcome,
    /// The candidate config's decision.
    pub replayed: Outcome,
    /// The candidate's explanation.
    pub explanation: String,
    /// The candidate's category, if any.
    pub category: Option<String>,
    /// The conversation on the web desk, when it has a thread there and the gateway's public
    /// URL is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The lines before the message (oldest first), for the first
    /// [`EXAMPLES_WITH_CONTEXT`] changes of each kind.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<ContextLine>,
}

/// One line of a conversation, shown with an example.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextLine {
    /// `customer`, `ai`, `agent`, `system`.
    pub role: String,
    /// The text, shortened.
    pub text: String,
}

/// Everything replay found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Replay {
    /// Window start (epoch ms).
    pub since_ms: u64,
    /// Window end, exclusive.
    pub until_ms: u64,
    /// Customer messages replayed (triaged at the time).
    pub replayed: u64,
    /// Customer messages in the window no triage ran on (relayed to an agent, ratings).
    pub not_triaged: u64,
    /// Answers at the time / with the candidate.
    pub recorded_answers: u64,
    /// Answers with the candidate.
    pub replayed_answers: u64,
    /// Every change, in transcript order.
    pub changes: Vec<Change>,
    /// Changes of each kind (in [`ChangeKind::ALL`] order) given their context so far.
    #[serde(skip)]
    with_context: [usize; 3],
}

impl Replay {
    /// How many changes of `kind`.
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.kind == kind).count()
    }

    /// Change counts by kind and a key (`reason`, `channel`, `category`).
    fn counts_by(&self, key: impl Fn(&Change) -> String) -> BTreeMap<(ChangeKind, String), u64> {
        let mut counts = BTreeMap::new();
        for change in &self.changes {
            *counts.entry((change.kind, key(change))).or_default() += 1;
        }
        counts
    }

    /// Change counts of `kind` by reason, channel and category (the values that are set).
    pub fn breakdown(&self, kind: ChangeKind) -> Vec<(&'static str, Vec<(String, u64)>)> {
        let keys: [(&'static str, ChangeKey); 3] = [
            ("reason", &reason_key),
            ("channel", &|c: &Change| c.channel.clone()),
            ("category", &|c: &Change| {
                c.category.clone().unwrap_or_default()
            }),
        ];
        keys.into_iter()
            .map(|(label, key)| {
                let counts = self
                    .counts_by(key)
                    .into_iter()
                    .filter(|((k, value), _)| *k == kind && !value.is_empty())
                    .map(|((_, value), n)| (value, n))
                    .collect();
                (label, counts)
            })
            .collect()
    }

    /// Adds one conversation's replay; changes past the first [`EXAMPLES_WITH_CONTEXT`] of
    /// their kind drop their context.
    fn absorb(&mut self, part: Replay) {
        self.replayed += part.replayed;
        self.not_triaged += part.not_triaged;
        self.recorded_answers += part.recorded_answers;
        self.replayed_answers += part.replayed_answers;
        for mut change in part.changes {
            let slot = ChangeKind::ALL
                .iter()
                .position(|k| *k == change.kind)
                .unwrap_or(0);
            if self.with_context[slot] < EXAMPLES_WITH_CONTEXT {
                self.with_context[slot] += 1;
            } else {
                change.context = Vec::new();
            }
            self.changes.push(change);
        }
    }

    /// Writes the self-contained HTML page (`--html`).
    pub fn write_html(&self, path: &std::path::Path) -> Result<(), ReportError> {
        std::fs::write(path, super::replay_html::render(self)).map_err(|source| {
            ReportError::Write {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// The json document `--json` prints: the replay plus the counts.
    pub fn to_json(&self) -> Value {
        let mut json = serde_json::to_value(self).unwrap_or(Value::Null);
        json["summary"] = serde_json::json!({
            "answer_to_escalate": self.count(ChangeKind::AnswerToEscalate),
            "escalate_to_answer": self.count(ChangeKind::EscalateToAnswer),
            "reason_changed": self.count(ChangeKind::ReasonChanged),
            "recorded_ai_answer_rate": ratio(self.recorded_answers, self.replayed),
            "replayed_ai_answer_rate": ratio(self.replayed_answers, self.replayed),
        });
        for kind in ChangeKind::ALL {
            let counts: serde_json::Map<String, Value> = self
                .breakdown(kind)
                .into_iter()
                .map(|(label, counts)| {
                    let by: serde_json::Map<String, Value> = counts
                        .into_iter()
                        .map(|(v, n)| (v, Value::from(n)))
                        .collect();
                    (label.to_owned(), Value::Object(by))
                })
                .collect();
            json["summary"]["by"][kind.key()] = Value::Object(counts);
        }
        json
    }
}

/// What a change is counted by.
type ChangeKey<'a> = &'a dyn Fn(&Change) -> String;

fn reason_key(change: &Change) -> String {
    match (&change.recorded, &change.replayed) {
        (_, Outcome::Escalate { reason }) => reason.clone(),
        (Outcome::Escalate { reason }, Outcome::Answer) => reason.clone(),
        _ => String::new(),
    }
}

impl fmt::Display for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Replay of {} customer messages", self.replayed)?;
        writeln!(
            f,
            "  ({} not triaged at the time: relayed to an agent or ratings)",
            self.not_triaged
        )?;
        writeln!(
            f,
            "AI answers: {} ({:.1}%) recorded, {} ({:.1}%) with the candidate",
            self.recorded_answers,
            100.0 * ratio(self.recorded_answers, self.replayed),
            self.replayed_answers,
            100.0 * ratio(self.replayed_answers, self.replayed),
        )?;
        for kind in ChangeKind::ALL {
            writeln!(f, "\n{}: {}", kind.label(), self.count(kind))?;
            for (label, counts) in self.breakdown(kind) {
                for (value, n) in counts {
                    writeln!(f, "  {label} {value}: {n}")?;
                }
            }
            for change in self
                .changes
                .iter()
                .filter(|c| c.kind == kind)
                .take(EXAMPLES)
            {
                writeln!(
                    f,
                    "  e.g. conversation {} message {}: \"{}\"\n       was {}, would be {}: {}",
                    change.conversation_id,
                    change.message_id,
                    change.text,
                    change.recorded,
                    change.replayed,
                    change.explanation
                )?;
            }
        }
        Ok(())
    }
}

/// An escalation the log recorded: the question that caused it and the reason.
struct LoggedEscalation {
    question: String,
    reason: String,
}

/// What the CLI runs: reads the window from the Redis of `config` and replays it through
/// the triage of `candidate` (the candidate's Redis is not used).
pub async fn run_replay(
    config: &Config,
    candidate: &Config,
    window: Window,
) -> Result<Replay, ReportError> {
    let response =
        Duration::from_millis(config.redis.command_timeout_ms).max(Duration::from_secs(10));
    let store = Store::connect(&config.redis.url, response).await?;
    let triage = Triage::from_config(&candidate.triage, &candidate.base_dir)
        .map_err(|error| ReportError::Window(format!("candidate triage: {error}")))?;
    replay(
        &store,
        Arc::new(triage),
        window,
        web_desk_url(config).as_deref(),
    )
    .await
}

/// The web desk's page, when the live gateway runs it and knows its public URL: examples
/// link to their conversation's thread there.
pub fn web_desk_url(config: &Config) -> Option<String> {
    let desk = config.desk.enabled()?;
    let base = config.files.public_base_url.as_deref()?;
    (desk.name == switchboard_webdesk::DESK).then(|| format!("{}/desk", base.trim_end_matches('/')))
}

/// Replays every customer message of `window` through `triage`; `web_desk` is the web
/// desk's page, for links to the conversations that have a thread there.
pub async fn replay(
    store: &Store,
    triage: Arc<Triage>,
    window: Window,
    web_desk: Option<&str>,
) -> Result<Replay, ReportError> {
    // The running gateways answer from the folder plus the entries learned from agents.
    let (learned, _) =
        crate::learning::learned::to_entries(&crate::learning::learned::all(store).await?);
    triage.set_learned(learned);
    // An escalation is logged just after its message, so the log is read past the window.
    let log_window = Window::new(window.since_ms, u64::MAX - 1)?;
    let mut escalations: HashMap<String, VecDeque<LoggedEscalation>> = HashMap::new();
    for entry in escalation_log(store, log_window).await? {
        let Some(log) = entry
            .get::<String>("e")
            .and_then(|json| serde_json::from_str::<Value>(&json).ok())
        else {
            continue;
        };
        let text = |field: &str| {
            log.get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        escalations
            .entry(text("conversation_id"))
            .or_default()
            .push_back(LoggedEscalation {
                question: text("question"),
                reason: text("reason"),
            });
    }
    let mut result = Replay {
        since_ms: window.since_ms,
        until_ms: window.until_ms,
        ..Replay::default()
    };
    for partition in keys::partitions() {
        let mut offset = 0;
        loop {
            let ids = store
                .indexed_page(partition, window.until_ms, offset, PAGE)
                .await?;
            // Conversations are read and replayed side by side (on every core: the embedded
            // answerer is CPU work; with a model, its calls overlap), and merged in index
            // order so the output does not depend on timing.
            let mut parts = futures_util::stream::iter(ids.iter())
                .map(|id| {
                    let logged = escalations.remove(id).unwrap_or_default();
                    let (store, triage, id) = (store.clone(), triage.clone(), id.clone());
                    let web_desk = web_desk.map(str::to_owned);
                    tokio::spawn(async move {
                        let Some(conversation) = store.conversation(&id).await? else {
                            return Ok::<_, crate::store::StoreError>(None);
                        };
                        let transcript = store.transcript_after(&id, None, MAX_TRANSCRIPT).await?;
                        let link = web_desk.and_then(|desk| {
                            let thread = conversation.desk_thread.as_ref()?;
                            Some(format!("{desk}#thread={}", url_component(&thread.ts)))
                        });
                        let mut part = Replay::default();
                        replay_conversation(
                            &triage,
                            &conversation,
                            &transcript,
                            logged,
                            window,
                            link,
                            &mut part,
                        )
                        .await;
                        Ok(Some(part))
                    })
                })
                .buffered(READ_AHEAD);
            while let Some(part) = parts.next().await {
                let part =
                    part.unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()));
                if let Some(part) = part? {
                    result.absorb(part);
                }
            }
            if ids.len() < PAGE {
                break;
            }
            offset += PAGE;
        }
    }
    Ok(result)
}

/// `text` percent-encoded for a URL fragment (thread ids are tokens; this is a safeguard).
fn url_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The recorded outcome of each customer entry (by index) triage ran on.
fn recorded_outcomes(
    transcript: &[TranscriptEntry],
    mut logged: VecDeque<LoggedEscalation>,
) -> HashMap<usize, Outcome> {
    let mut outcomes = HashMap::new();
    let mut pending: VecDeque<usize> = VecDeque::new();
    for (at, entry) in transcript.iter().enumerate() {
        match entry.role {
            Role::Customer => pending.push_back(at),
            Role::Ai => {
                if let Some(asked) = pending.pop_front() {
                    outcomes.insert(asked, Outcome::Answer);
                }
            }
            // An escalation notice: the next logged escalation names the question it answered.
            Role::System => {
                let place = logged.front().and_then(|next| {
                    pending
                        .iter()
                        .position(|&i| transcript[i].text == next.question)
                });
                let Some(place) = place else {
                    // Any other reply to a waiting message (the thanks for a rating) means
                    // triage did not run on it.
                    pending.pop_front();
                    continue;
                };
                let asked = pending[place];
                // Earlier pending messages got no triage (a rating, or a message pushed out).
                pending.drain(..=place);
                let reason = logged.pop_front().map(|e| e.reason).unwrap_or_default();
                outcomes.insert(asked, Outcome::Escalate { reason });
            }
            // Messages waiting when an agent replies were the agent's, not triage's.
            Role::Agent => pending.clear(),
            _ => {}
        }
    }
    outcomes
}

async fn replay_conversation(
    triage: &Triage,
    conversation: &Conversation,
    transcript: &[TranscriptEntry],
    logged: VecDeque<LoggedEscalation>,
    window: Window,
    link: Option<String>,
    result: &mut Replay,
) {
    let recorded = recorded_outcomes(transcript, logged);
    for (at, entry) in transcript.iter().enumerate() {
        if entry.role != Role::Customer || !window.contains(entry.at_ms()) {
            continue;
        }
        let Some(recorded) = recorded.get(&at) else {
            result.not_triaged += 1;
            continue;
        };
        let history = history_of(&transcript[at.saturating_sub(HISTORY)..at]);
        let file_only = crate::files::placeholder(&entry.text, &entry.files);
        let input = triage_input(conversation, entry, &history, file_only.as_deref());
        let record = triage.decide(&input).await;
        let replayed = Outcome::of(&record.decision);
        result.replayed += 1;
        result.recorded_answers += u64::from(*recorded == Outcome::Answer);
        result.replayed_answers += u64::from(replayed == Outcome::Answer);
        if let Some(kind) = ChangeKind::between(recorded, &replayed) {
            // Kept only for the first changes of each kind when the parts are merged.
            let context = if result.count(kind) < EXAMPLES_WITH_CONTEXT {
                transcript[at.saturating_sub(CONTEXT_LINES)..at]
                    .iter()
                    .filter(|earlier| earlier.role != Role::Note)
                    .map(|earlier| ContextLine {
                        role: earlier.role.as_str().to_owned(),
                        text: earlier.text.chars().take(CONTEXT_CHARS).collect(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            result.changes.push(Change {
                kind,
                conversation_id: conversation.id.clone(),
                channel: conversation.channel.as_str().to_owned(),
                message_id: entry.id.clone(),
                text: entry.text.clone(),
                recorded: recorded.clone(),
                replayed,
                explanation: record.explanation,
                category: record.category,
                link: link.clone(),
                context,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, role: Role, text: &str) -> TranscriptEntry {
        TranscriptEntry {
            id: format!("{id}-0"),
            role,
            author: None,
            kind: None,
            text: text.into(),
            channel_message_id: None,
            files: Vec::new(),
        }
    }

    #[test]
    fn recorded_decisions_are_read_back_from_replies_and_the_escalation_log() {
        let transcript = [
            entry(1, Role::Customer, "reset password?"),
            entry(2, Role::Ai, "Here is how."),
            entry(3, Role::Customer, "I dispute this charge"),
            entry(4, Role::System, "A person will answer."),
            entry(5, Role::Customer, "still there?"),
            entry(6, Role::Agent, "Hi, Sam here."),
            entry(7, Role::System, "Resolved. Rate us 1-5"),
            entry(8, Role::Customer, "5"),
            entry(9, Role::System, "Thank you for your feedback!"),
            entry(10, Role::Customer, "how do I export?"),
            entry(11, Role::Ai, "Use the export page."),
        ];
        let logged = VecDeque::from([LoggedEscalation {
            question: "I dispute this charge".into(),
            reason: "always_human_category".into(),
        }]);
        let outcomes = recorded_outcomes(&transcript, logged);
        assert_eq!(outcomes.get(&0), Some(&Outcome::Answer));
        assert_eq!(
            outcomes.get(&2),
            Some(&Outcome::Escalate {
                reason: "always_human_category".into()
            })
        );
        // Relayed to the agent, and a rating: no triage ran on them.
        assert_eq!(outcomes.get(&4), None);
        assert_eq!(outcomes.get(&7), None);
        assert_eq!(outcomes.get(&9), Some(&Outcome::Answer));
        assert_eq!(outcomes.len(), 3);
    }
}
