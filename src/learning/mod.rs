//! The learning loop: human resolutions become knowledge-base entries.
//!
//! When an agent resolves a conversation, the customer's question and the agent's answer are
//! kept as a candidate (`sb:kb:candidates`). An agent (`!kb approve` in the Slack thread) or an
//! admin (`switchboard kb approve`) approves, edits or rejects it. Approval stores the entry in
//! Redis ([`learned`]), where every instance reads it: each one reloads its answerer when
//! the version changes, so the next customer asking the same thing gets the AI's answer from
//! any replica, with no restart, and a recreated container still has it. A status change is
//! one script, so concurrent approvals of one candidate write it once; a failed write puts the
//! candidate back with the reason.

pub mod learned;
mod watch;

use std::sync::Arc;

use redis::Script;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

pub use learned::LearnedEntry;

use crate::model::{now_ms, Role};
use crate::store::{keys, Store, StoreError, TranscriptEntry};
use crate::triage::{Entry, Triage};

/// The file older versions appended approved entries to, inside the knowledge folder. It is
/// still loaded like any knowledge file; `switchboard kb import` moves its entries to Redis.
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
    /// The approved entry could not be stored in Redis; the candidate stays pending.
    #[error("cannot store the approved entry in Redis ({key}): {reason}; the candidate is kept pending for another try", key = keys::KB_LEARNED)]
    Write {
        /// What Redis said.
        reason: String,
    },
    /// The candidate cannot be answered from as it is (e.g. its answer is empty); it stays
    /// pending.
    #[error("candidate {id} cannot become a knowledge-base entry: {problem}; approve it with an edited answer, or reject it")]
    Unusable {
        /// The candidate.
        id: String,
        /// What is wrong.
        problem: String,
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
    let first_agent = transcript
        .iter()
        .position(|entry| entry.role == Role::Agent)?;
    let is_question = |entry: &&TranscriptEntry| {
        entry.role == Role::Customer
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
        .filter(|entry| entry.role == Role::Agent && entry.kind.as_deref() != Some("edit"))
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
    triage: Option<Arc<Triage>>,
    decide: Script,
    /// The learned entries the answerer holds and the version read before them; `None` until
    /// the first load succeeds. Held through a reload, so reloads run one at a time.
    loaded: tokio::sync::Mutex<Option<Loaded>>,
}

struct Loaded {
    version: u64,
    records: Vec<LearnedEntry>,
}

impl KnowledgeLoop {
    /// A loop on `store`, reloading `triage`'s learned entries (when this process answers).
    pub fn new(store: Store, triage: Option<Arc<Triage>>) -> Self {
        KnowledgeLoop {
            store,
            triage,
            decide: Script::new(include_str!("../store/lua/decide_candidate.lua")),
            loaded: tokio::sync::Mutex::new(None),
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

    /// Approves a candidate (optionally with an edited answer): stores it in the shared
    /// knowledge base and tells every instance to reload. When it cannot be stored the
    /// candidate goes back to `pending` with the reason.
    pub async fn approve(
        &self,
        id: &str,
        edited_answer: Option<&str>,
    ) -> Result<Candidate, LearningError> {
        // Only one approval gets past this: the others see `approving` and stop.
        let mut candidate = self.transition(id, "pending", "approving", "").await?;
        if let Some(answer) = edited_answer.filter(|answer| !answer.trim().is_empty()) {
            candidate.answer = answer.trim().to_owned();
        }
        let record = LearnedEntry::from_candidate(&candidate, now_ms());
        if let Err(error) = self.store_learned(id, &record).await {
            self.transition(id, "approving", "pending", &error.to_string())
                .await?;
            return Err(error);
        }
        let approved = self.transition(id, "approving", "approved", "").await?;
        self.announce().await;
        info!(candidate = %id, entry = %record.id, "knowledge-base candidate approved");
        Ok(Candidate {
            answer: candidate.answer,
            ..approved
        })
    }

    async fn store_learned(&self, id: &str, record: &LearnedEntry) -> Result<(), LearningError> {
        record
            .to_entry()
            .map_err(|problem| LearningError::Unusable {
                id: id.to_owned(),
                problem,
            })?;
        learned::save(&self.store, record, true)
            .await
            .map(|_| ())
            .map_err(|error| LearningError::Write {
                reason: error.to_string(),
            })
    }

    /// Rejects a pending candidate.
    pub async fn reject(&self, id: &str) -> Result<Candidate, LearningError> {
        self.transition(id, "pending", "rejected", "").await
    }

    /// Every learned entry in the shared knowledge base, oldest first.
    pub async fn learned(&self) -> Result<Vec<LearnedEntry>, StoreError> {
        learned::all(&self.store).await
    }

    /// Adds knowledge-file entries to the shared knowledge base (moving an older version's
    /// `learned.md` there); an id already stored keeps its entry. Returns how many were added.
    pub async fn import(&self, entries: &[Entry]) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut added = 0;
        for entry in entries {
            if learned::save(&self.store, &LearnedEntry::from_entry(entry, now), false).await? {
                added += 1;
            }
        }
        if added > 0 {
            self.announce().await;
        }
        Ok(added)
    }

    /// Takes an entry out of the shared knowledge base; false when there was none with `id`.
    pub async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        let removed = learned::remove(&self.store, id).await?;
        if removed {
            self.announce().await;
        }
        Ok(removed)
    }

    /// Tells every instance the learned entries changed, and reloads this one's answerer. A
    /// lost announcement only delays the others until their next full check.
    async fn announce(&self) {
        if let Err(error) = learned::announce(&self.store).await {
            warn!(%error, "could not announce the knowledge-base change; other instances pick it up at their next full check");
        }
        if let Err(error) = self.reload().await {
            warn!(%error, "knowledge base reload failed; still answering from the previous one");
        }
    }

    /// Reads the learned entries from Redis and swaps them into the answerer when they
    /// changed; returns how many are loaded. Nothing to do in a process that does not answer.
    pub async fn reload(&self) -> Result<usize, StoreError> {
        let Some(triage) = &self.triage else {
            return Ok(0);
        };
        let mut loaded = self.loaded.lock().await;
        // The version first: a change landing between the two reads is loaded now and seen
        // again at the next check, never missed.
        let version = learned::version(&self.store).await?;
        let records = learned::all(&self.store).await?;
        let count = records.len();
        match loaded.as_mut() {
            Some(current) if current.records == records => current.version = version,
            _ => {
                let (entries, problems) = learned::to_entries(&records);
                for problem in problems {
                    warn!(%problem, "learned entry left out of the knowledge base");
                }
                let learned = entries.len();
                let total = triage.set_learned(entries);
                info!(learned, entries = total, version, "knowledge base reloaded");
                *loaded = Some(Loaded { version, records });
            }
        }
        Ok(count)
    }

    /// The version of the learned entries this instance answers from, if loaded.
    async fn loaded_version(&self) -> Option<u64> {
        self.loaded
            .lock()
            .await
            .as_ref()
            .map(|loaded| loaded.version)
    }
}
