//! Approved knowledge-base entries, kept in Redis so every instance answers from the same ones.
//!
//! An approval stores one [`LearnedEntry`] in the `sb:kb:learned` hash (see
//! [`keys::KB_LEARNED`]), bumps `sb:kb:version` and announces it on `sb:kb:changed`; every
//! instance then reads the hash whole and merges it after its knowledge folder. Nothing is
//! written to an instance's disk, so a recreated container or a new replica answers from the
//! same knowledge base as the others.
//!
//! An entry becomes answerable the way a knowledge file does: it is rendered as a section of
//! knowledge markdown ([`LearnedEntry::render`]) and parsed by the knowledge loader. The
//! export (`switchboard kb export`) is the same rendering, so what an exported file loads as
//! is, by construction, what the instances answer from.

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::Candidate;
use crate::store::{keys, Store, StoreError};
use crate::triage::{parse_knowledge_file, Entry};

/// The file stem learned entries load under (their default category is `learned`).
pub const LEARNED_STEM: &str = "learned";

/// Starts an exported file: learned entries are in the `learned` category unless they say
/// otherwise.
const HEADER: &str = "+++\ncategory = \"learned\"\n+++\n\n# Entries approved from agents' answers (switchboard kb export). Loaded like any other\n# knowledge file; an entry with the same id in Redis is then answered from this file.\n";

/// One approved question and answer, as stored in Redis (json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedEntry {
    /// The entry id cited in `sources` (`learned-…` for approved candidates).
    pub id: String,
    /// The customer's question.
    pub question: String,
    /// Other ways customers ask it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phrasings: Vec<String>,
    /// The answer sent to customers.
    pub answer: String,
    /// A category other than `learned`, when set (imported entries keep theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The candidate it was approved from, if any (`kb-…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// Who answered the customer, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// When it was approved or imported (epoch ms).
    pub approved_ms: u64,
}

impl LearnedEntry {
    /// The entry an approved candidate becomes.
    pub fn from_candidate(candidate: &Candidate, approved_ms: u64) -> LearnedEntry {
        LearnedEntry {
            id: format!("learned-{}", candidate.id.trim_start_matches("kb-")),
            question: candidate.question.clone(),
            phrasings: Vec::new(),
            answer: candidate.answer.clone(),
            category: None,
            candidate: Some(candidate.id.clone()),
            agent: Some(candidate.agent.clone()),
            approved_ms,
        }
    }

    /// An entry read from a knowledge file (`switchboard kb import`).
    pub fn from_entry(entry: &Entry, approved_ms: u64) -> LearnedEntry {
        LearnedEntry {
            id: entry.id.clone(),
            question: entry.question.clone(),
            phrasings: entry.phrasings.clone(),
            answer: entry.answer.clone(),
            category: entry.category.clone().filter(|c| c != LEARNED_STEM),
            candidate: None,
            agent: None,
            approved_ms,
        }
    }

    /// The entry as one `## question` section of knowledge markdown. Whatever the text, the
    /// section stays one entry: `#` leaves the question, an answer line that would start a
    /// new entry is indented, an unclosed code fence is closed (markdown ends it there
    /// anyway), and a first answer line the loader would take for metadata (`Id: 42 …`) has
    /// its colon escaped.
    pub fn render(&self) -> String {
        let question = single_line(&self.question.replace('#', ""), 200);
        let mut text = format!("\n## {question}\nId: {}\n", single_line(&self.id, 200));
        if let Some(category) = self.category.as_deref().filter(|c| !c.trim().is_empty()) {
            text.push_str(&format!("Category: {}\n", single_line(category, 100)));
        }
        let phrasings: Vec<String> = self
            .phrasings
            .iter()
            .map(|phrasing| single_line(phrasing, 200))
            .filter(|phrasing| !phrasing.is_empty())
            .collect();
        if !phrasings.is_empty() {
            text.push_str("Also:\n");
            for phrasing in phrasings {
                text.push_str(&format!("- {phrasing}\n"));
            }
        }
        text.push('\n');
        text.push_str(&answer_body(&self.answer));
        text.push('\n');
        text
    }

    /// The knowledge-base entry the loader reads from [`render`](Self::render); an error
    /// says why it cannot be answered from (e.g. an empty answer).
    pub fn to_entry(&self) -> Result<Entry, String> {
        let text = format!("{HEADER}{}", self.render());
        let mut entries = parse_knowledge_file(LEARNED_STEM, &text)?;
        match (entries.pop(), entries.is_empty()) {
            (Some(entry), true) => Ok(entry),
            _ => Err(format!("entry {} does not read back as one entry", self.id)),
        }
    }
}

/// `text` on one line, whitespace collapsed, at most `max` characters.
fn single_line(text: &str, max: usize) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect()
}

/// The answer's lines, escaped so that the loader reads them back as this entry's answer.
fn answer_body(answer: &str) -> String {
    let mut lines = Vec::new();
    let mut in_fence = false;
    for line in answer.trim().lines() {
        // The loader toggles on the same condition, and only starts entries outside fences.
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if lines.is_empty() && looks_like_metadata(line) {
            lines.push(line.replacen(':', "\\:", 1));
        } else if !in_fence && line.starts_with("## ") {
            lines.push(format!(" {line}"));
        } else {
            lines.push(line.to_owned());
        }
    }
    if in_fence {
        lines.push("```".to_owned());
    }
    lines.join("\n")
}

fn looks_like_metadata(line: &str) -> bool {
    let line = line.trim();
    line.starts_with("Id:") || line.starts_with("Category:") || line == "Also:"
}

/// The entries answerable from `records`, and a problem for each one that is not.
pub fn to_entries(records: &[LearnedEntry]) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::with_capacity(records.len());
    let mut problems = Vec::new();
    for record in records {
        match record.to_entry() {
            Ok(entry) => entries.push(entry),
            Err(problem) => problems.push(format!("learned entry {}: {problem}", record.id)),
        }
    }
    (entries, problems)
}

/// `records` as a knowledge markdown file (what `switchboard kb export` writes), and a problem
/// for each record left out because it cannot be answered from.
pub fn export_markdown(records: &[LearnedEntry]) -> (String, Vec<String>) {
    let mut text = HEADER.to_owned();
    let mut problems = Vec::new();
    for record in records {
        match record.to_entry() {
            Ok(_) => text.push_str(&record.render()),
            Err(problem) => problems.push(format!("learned entry {}: {problem}", record.id)),
        }
    }
    (text, problems)
}

/// Every learned entry, oldest first; an unreadable record is left out with a warning.
pub async fn all(store: &Store) -> Result<Vec<LearnedEntry>, StoreError> {
    let values: Vec<String> = store
        .run(|mut conn| async move {
            redis::cmd("HVALS")
                .arg(keys::KB_LEARNED)
                .query_async(&mut conn)
                .await
        })
        .await?;
    let mut records: Vec<LearnedEntry> = values
        .iter()
        .filter_map(|json| {
            serde_json::from_str(json)
                .inspect_err(|error| warn!(%error, "unreadable learned entry in Redis; skipped"))
                .ok()
        })
        .collect();
    records.sort_by(|a, b| (a.approved_ms, &a.id).cmp(&(b.approved_ms, &b.id)));
    Ok(records)
}

/// Stores `record`; `replace` false keeps an entry already stored under its id. True when
/// written.
pub async fn save(store: &Store, record: &LearnedEntry, replace: bool) -> Result<bool, StoreError> {
    let json =
        serde_json::to_string(record).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    store
        .run(|mut conn| async move {
            redis::cmd(if replace { "HSET" } else { "HSETNX" })
                .arg(keys::KB_LEARNED)
                .arg(&record.id)
                .arg(json)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(|written| replace || written == 1)
}

/// Removes the entry with `id`; true when there was one.
pub async fn remove(store: &Store, id: &str) -> Result<bool, StoreError> {
    store
        .run(|mut conn| async move {
            redis::cmd("HDEL")
                .arg(keys::KB_LEARNED)
                .arg(id)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(|removed| removed == 1)
}

/// The version of the learned entries (0 before the first change).
pub async fn version(store: &Store) -> Result<u64, StoreError> {
    let version: Option<u64> = store
        .run(|mut conn| async move {
            redis::cmd("GET")
                .arg(keys::KB_VERSION)
                .query_async(&mut conn)
                .await
        })
        .await?;
    Ok(version.unwrap_or(0))
}

/// Bumps the version and tells every instance listening, so they reload now.
pub async fn announce(store: &Store) -> Result<u64, StoreError> {
    let version: u64 = store
        .run(|mut conn| async move {
            redis::cmd("INCR")
                .arg(keys::KB_VERSION)
                .query_async(&mut conn)
                .await
        })
        .await?;
    store
        .run(|mut conn| async move {
            redis::cmd("PUBLISH")
                .arg(keys::KB_CHANGED)
                .arg(version)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(question: &str, answer: &str) -> LearnedEntry {
        LearnedEntry {
            id: "learned-0a1b2c3d4e".into(),
            question: question.into(),
            phrasings: Vec::new(),
            answer: answer.into(),
            category: None,
            candidate: Some("kb-0a1b2c3d4e".into()),
            agent: Some("Priya".into()),
            approved_ms: 1,
        }
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let entry = record(
            "Do you offer student discounts?",
            "Yes: **50%** off.\n\nApply.",
        )
        .to_entry()
        .expect("answerable");
        assert_eq!(entry.id, "learned-0a1b2c3d4e");
        assert_eq!(entry.question, "Do you offer student discounts?");
        assert_eq!(entry.answer, "Yes: **50%** off.\n\nApply.");
        assert_eq!(entry.category.as_deref(), Some("learned"));
    }

    #[test]
    fn answer_text_cannot_start_another_entry_or_set_metadata() {
        let answer = "Id: 42 is your order number.\n## Not a question\n```\n## in code\n";
        let records = [record("# Where is my order?", answer)];
        let (text, problems) = export_markdown(&records);
        assert!(problems.is_empty(), "{problems:?}");
        let entries = parse_knowledge_file("learned", &text).expect("parses");
        assert_eq!(entries.len(), 1, "{text}");
        assert_eq!(entries[0].id, "learned-0a1b2c3d4e");
        assert_eq!(entries[0].question, "Where is my order?");
        assert!(entries[0].answer.contains("42 is your order number."));
        assert!(entries[0].answer.contains("## in code"));
        assert!(entries[0].answer.ends_with("```"), "fence closed");
    }

    #[test]
    fn an_entry_without_an_answer_is_not_answerable() {
        let (entries, problems) = to_entries(&[record("Anyone there?", "  \n")]);
        assert!(entries.is_empty());
        assert!(problems[0].contains("no answer"), "{problems:?}");
    }
}
