//! The learning loop: human resolutions become knowledge-base entries.
//!
//! When an agent resolves a conversation, the customer's question and the agent's answer are
//! kept as a candidate (`sb:kb:candidates`). An agent (`!kb approve` in the Slack thread) or an
//! admin (`switchboard kb approve`) approves, edits or rejects it. Approval appends the entry to
//! `learned.md` in the knowledge folder and bumps `sb:kb:version`; every gateway instance
//! watches that version and reloads its answerer, so the next customer asking the same thing
//! gets the AI's answer with no restart. A status change is one script, so concurrent approvals
//! of one candidate write it once; a failed write puts the candidate back with the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::model::now_ms;
use crate::store::{keys, Store, StoreError, TranscriptEntry};
use crate::triage::Triage;

/// The file approved entries are appended to, inside the knowledge folder.
pub const LEARNED_FILE: &str = "learned.md";

/// A question and answer waiting for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Stable id (`kb-…`).
    pub id: String,
    /// Where it was learned.
    pub conversation_id: String,
    /// The customer's question, in their words.
    pub question: String,
    /// The agent's answer.
    pub answer: String,
    /// Who answered.
    pub agent: String,
    /// `pending`, `approving`, `approved` or `rejected`.
    pub status: String,
    /// When it was proposed.
    pub created_ms: u64,
    /// When it was approved or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_ms: Option<u64>,
    /// Why the last approval failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a review action failed.
#[derive(Debug, thiserror::Error)]
pub enum LearningError {
    /// No candidate with that id.
    #[error("no knowledge-base candidate {0}")]
    NotFound(String),
    /// Someone else decided it first.
    #[error("candidate {id} is already {status}")]
    AlreadyDecided {
        /// The candidate.
        id: String,
        /// Its status now.
        status: String,
    },
    /// The knowledge file could not be written; the candidate stays pending.
    #[error("cannot write {path}: {reason}; the candidate is kept for another try")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Builds a candidate from a resolved conversation: what the customer asked, what the agent said.
pub fn candidate_from(
    conversation_id: &str,
    transcript: &[TranscriptEntry],
    dedupe: &str,
) -> Option<Candidate> {
    let first_agent = transcript.iter().position(|entry| entry.role == "agent")?;
    let is_question = |entry: &&TranscriptEntry| {
        entry.role == "customer"
            && entry.kind.as_deref() != Some("human_request")
            && !entry.text.trim().is_empty()
    };
    // The question is what the customer wrote before a person first answered, minus pleas for
    // a person: the last AI answer they were unhappy with is context, not the question.
    let asked: Vec<&TranscriptEntry> = transcript[..first_agent]
        .iter()
        .filter(is_question)
        .filter(|entry| !looks_like_a_plea(&entry.text))
        .collect();
    let question = asked
        .first()?
        .text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let answers: Vec<&TranscriptEntry> = transcript
        .iter()
        .filter(|entry| entry.role == "agent" && entry.kind.as_deref() != Some("edit"))
        .collect();
    let answer = answers
        .iter()
        .map(|entry| entry.text.trim())
        .collect::<Vec<_>>()
        .join("\n\n");
    let agent = answers
        .first()?
        .author
        .clone()
        .unwrap_or_else(|| "agent".into());
    let digest = Sha256::digest(format!("{conversation_id}\0{dedupe}").as_bytes());
    Some(Candidate {
        id: format!("kb-{}", hex::encode(&digest[..5])),
        conversation_id: conversation_id.to_owned(),
        question,
        answer,
        agent,
        status: "pending".into(),
        created_ms: now_ms(),
        decided_ms: None,
        error: None,
    })
}

fn looks_like_a_plea(text: &str) -> bool {
    let lower = text.to_lowercase();
    [
        "human",
        "real person",
        "an agent",
        "a person",
        "someone",
        "talk to",
    ]
    .iter()
    .any(|phrase| lower.contains(phrase))
        && lower.split_whitespace().count() <= 14
}

/// The review side of the loop, shared by the desk, the CLI and the version watcher.
pub struct KnowledgeLoop {
    store: Store,
    knowledge_dir: PathBuf,
    triage: Option<Arc<Triage>>,
    decide: Script,
    write_lock: tokio::sync::Mutex<()>,
}

impl KnowledgeLoop {
    /// A loop writing into `knowledge_dir`, reloading `triage` (when this process answers).
    pub fn new(store: Store, knowledge_dir: PathBuf, triage: Option<Arc<Triage>>) -> Self {
        KnowledgeLoop {
            store,
            knowledge_dir,
            triage,
            decide: Script::new(include_str!("store/lua/decide_candidate.lua")),
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Keeps a candidate for review; proposing the same id again changes nothing.
    pub async fn propose(&self, candidate: &Candidate) -> Result<bool, StoreError> {
        let json = serde_json::to_string(candidate)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        self.store
            .run(|mut conn| async move {
                redis::cmd("HSETNX")
                    .arg(keys::KB_CANDIDATES)
                    .arg(&candidate.id)
                    .arg(json)
                    .query_async::<bool>(&mut conn)
                    .await
            })
            .await
    }

    /// Every candidate, oldest first.
    pub async fn candidates(&self) -> Result<Vec<Candidate>, StoreError> {
        let all: Vec<String> = self
            .store
            .run(|mut conn| async move {
                redis::cmd("HVALS")
                    .arg(keys::KB_CANDIDATES)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let mut parsed: Vec<Candidate> = all
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        parsed.sort_by_key(|candidate| candidate.created_ms);
        Ok(parsed)
    }

    /// The newest pending candidate learned from a conversation.
    pub async fn pending_for(
        &self,
        conversation_id: &str,
    ) -> Result<Option<Candidate>, StoreError> {
        Ok(self
            .candidates()
            .await?
            .into_iter()
            .rev()
            .find(|c| c.conversation_id == conversation_id && c.status == "pending"))
    }

    async fn transition(
        &self,
        id: &str,
        from: &str,
        to: &str,
        error: &str,
    ) -> Result<Candidate, LearningError> {
        let mut invocation = self.decide.prepare_invoke();
        invocation
            .key(keys::KB_CANDIDATES)
            .arg(id)
            .arg(from)
            .arg(to)
            .arg(now_ms())
            .arg(error);
        let (outcome, json): (String, String) = self
            .store
            .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        let candidate: Option<Candidate> = serde_json::from_str(&json).ok();
        match (outcome.as_str(), candidate) {
            ("ok", Some(candidate)) => Ok(candidate),
            ("conflict", Some(candidate)) => Err(LearningError::AlreadyDecided {
                id: id.to_owned(),
                status: candidate.status,
            }),
            _ => Err(LearningError::NotFound(id.to_owned())),
        }
    }

    /// Approves a candidate (optionally with an edited answer): writes it to the knowledge base
    /// and reloads the answerer. On a failed write the candidate goes back to `pending`.
    pub async fn approve(
        &self,
        id: &str,
        edited_answer: Option<&str>,
    ) -> Result<Candidate, LearningError> {
        let mut candidate = self.transition(id, "pending", "approving", "").await?;
        if let Some(answer) = edited_answer.filter(|answer| !answer.trim().is_empty()) {
            candidate.answer = answer.trim().to_owned();
        }
        let written = {
            let _one_writer = self.write_lock.lock().await;
            append_entry(&self.knowledge_dir, &candidate)
        };
        if let Err(error) = written {
            let reason = error.to_string();
            self.transition(id, "approving", "pending", &reason).await?;
            return Err(LearningError::Write {
                path: self.knowledge_dir.join(LEARNED_FILE).display().to_string(),
                reason,
            });
        }
        let approved = self.transition(id, "approving", "approved", "").await?;
        self.store
            .run(|mut conn| async move {
                redis::cmd("INCR")
                    .arg(keys::KB_VERSION)
                    .query_async::<u64>(&mut conn)
                    .await
            })
            .await?;
        self.reload();
        info!(candidate = %id, "knowledge-base candidate approved");
        Ok(Candidate {
            answer: candidate.answer,
            ..approved
        })
    }

    /// Rejects a pending candidate.
    pub async fn reject(&self, id: &str) -> Result<Candidate, LearningError> {
        self.transition(id, "pending", "rejected", "").await
    }

    fn reload(&self) {
        if let Some(triage) = &self.triage {
            match triage.reload_knowledge() {
                Ok(entries) => info!(entries, "knowledge base reloaded"),
                Err(error) => {
                    warn!(%error, "knowledge base reload failed; still answering from the previous one")
                }
            }
        }
    }

    /// Reloads the answerer whenever another instance (or the CLI) approved an entry.
    pub async fn watch_version(self: Arc<Self>, every: Duration) {
        let mut seen: Option<u64> = None;
        loop {
            let version: Result<Option<u64>, StoreError> = self
                .store
                .run(|mut conn| async move {
                    redis::cmd("GET")
                        .arg(keys::KB_VERSION)
                        .query_async(&mut conn)
                        .await
                })
                .await;
            if let Ok(version) = version {
                let version = version.unwrap_or(0);
                if seen.is_some_and(|before| before != version) {
                    self.reload();
                }
                seen = Some(version);
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// Appends one entry to `learned.md`, writing a new file and renaming it over the old one so a
/// failure never leaves a half-written knowledge base.
fn append_entry(dir: &Path, candidate: &Candidate) -> std::io::Result<()> {
    let path = dir.join(LEARNED_FILE);
    let mut text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            "+++\ncategory = \"learned\"\n+++\n\n# Entries approved from agents' answers (switchboard kb).\n".into()
        }
        Err(error) => return Err(error),
    };
    let question: String = candidate
        .question
        .replace('#', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    // An answer line starting with `## ` would start a new entry; indent it.
    let answer = candidate
        .answer
        .lines()
        .map(|line| {
            if line.starts_with("##") {
                format!(" {line}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    text.push_str(&format!(
        "\n## {question}\nId: learned-{}\n\n{answer}\n",
        candidate.id.trim_start_matches("kb-")
    ));
    let staging = dir.join(format!(".{LEARNED_FILE}.{}.tmp", std::process::id()));
    std::fs::write(&staging, text)?;
    std::fs::rename(&staging, &path).inspect_err(|_| {
        let _ = std::fs::remove_file(&staging);
    })
}
