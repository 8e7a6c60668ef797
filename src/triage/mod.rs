//! AI triage: decides whether the AI answers a customer message or a person should.
//!
//! [`Triage::decide`] runs the policies in a fixed order, the first decisive one wins:
//! VIP bypass, always-human categories, an explicit request for a person, frustration
//! (negative sentiment, a repeated question, a bot loop), and finally the answerer's
//! confidence against the threshold. The answerer is the embedded knowledge-base retriever
//! ([`retriever`]); it only ever returns text written in the knowledge base, so nothing a
//! customer types can make it promise a refund or change a policy.
//!
//! Every decision comes with a [`DecisionRecord`]: all scores, the category and an
//! explanation, stored on the conversation for the agent and for later evaluation.

mod answerer;
mod briefing;
mod calibrate;
mod classifier;
mod config;
pub mod eval;
mod knowledge;
mod llm;
mod policy;
mod retriever;
mod sentiment;
mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use switchboard_api::{ChannelKind, InboundKind};

pub use calibrate::fit_clinc150;
pub use config::{Problem, TriageConfig};
pub use eval::{eval_clinc150, EvalOptions, EvalReport, SweepRow};
pub use knowledge::{merge_learned, parse_file as parse_knowledge_file, Entry};
pub use llm::LlmConfig;
pub use sentiment::compound as sentiment_compound;
pub use text::{matches_pattern as text_matches_pattern, words as text_words};
// The decision is stored on the conversation, so it belongs to the model; re-exported here
// where triage produces it.
use crate::model::{BriefingDraft, EscalationReason, Role};
pub use crate::model::{Decision, DecisionRecord};

pub use answerer::Answerer;
use answerer::KnowledgeBaseAnswerer;
pub use briefing::BRIEFING_INSTRUCTIONS;
use llm::LlmAnswerer;
pub use llm::Verdict;
use retriever::Index;

/// Only this many characters of a message are analysed: enough for any real question, and
/// it bounds the work a pasted log file or an attack can cause.
const MAX_ANALYSED_CHARS: usize = 8_000;

/// One earlier message of the conversation, for repetition and bot-loop checks.
#[derive(Debug, Clone)]
pub struct TranscriptLine {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub text: String,
}

/// Everything triage may look at for one customer message.
#[derive(Debug, Clone)]
pub struct TriageInput<'a> {
    /// The customer's new message.
    pub text: &'a str,
    /// Text or a "Talk to a human" button press.
    pub kind: InboundKind,
    /// The customer's channel.
    pub channel: ChannelKind,
    /// The customer's tier, if known.
    pub tier: Option<&'a str>,
    /// The customer's email address, if known (tier by domain).
    pub email: Option<&'a str>,
    /// Earlier messages of the conversation, oldest first, not including this one.
    pub history: &'a [TranscriptLine],
}

/// Errors loading triage (knowledge base files, LLM settings).
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    /// A knowledge-base file could not be read or parsed.
    #[error("{path}: {detail}")]
    Knowledge {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// `[triage.llm]` cannot be used (e.g. its API key variable is not set).
    #[error("llm: {0}")]
    Llm(String),
    /// An option of `switchboard eval` is out of range.
    #[error("{option} {detail}")]
    EvalOption {
        /// The command-line option.
        option: &'static str,
        /// What is wrong and what is expected.
        detail: String,
    },
}

/// A lock whose holder panicked still guards a whole value: entries are swapped, never edited.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The entries an index is built from.
struct KnowledgeSources {
    /// The knowledge folder's entries as last read without error.
    base: Vec<Entry>,
    /// Entries learned from agents' answers, shared by every instance through Redis.
    learned: Vec<Entry>,
}

/// The triage stage: policies plus an answerer.
pub struct Triage {
    config: TriageConfig,
    knowledge_dir: PathBuf,
    /// What the index is built from; held through a rebuild, so two reloads racing cannot
    /// leave the older one's index in place.
    sources: Mutex<KnowledgeSources>,
    /// Swapped whole on reload, so a decision in flight keeps the index it started with.
    index: RwLock<Arc<Index>>,
    /// The knowledge base's own answerer, or the OpenAI-compatible one when `[triage.llm]` is set.
    answerer: Box<dyn Answerer>,
    /// The model that writes escalations' briefings, when `[triage.llm]` is set.
    briefing_model: Option<LlmAnswerer>,
}

impl Triage {
    /// Loads the knowledge base and builds the answerer; no network work.
    pub fn from_config(config: &TriageConfig, base_dir: &Path) -> Result<Triage, TriageError> {
        let knowledge_dir = base_dir.join(&config.knowledge_dir);
        let base = knowledge::load_dir(&knowledge_dir)?;
        let index = Index::build(base.clone());
        let briefing_model = match &config.llm {
            Some(llm) => Some(LlmAnswerer::new(llm).map_err(TriageError::Llm)?),
            None => None,
        };
        let answerer: Box<dyn Answerer> = match &briefing_model {
            Some(model) => Box::new(model.clone()),
            None => Box::new(KnowledgeBaseAnswerer),
        };
        Ok(Triage {
            config: config.clone(),
            knowledge_dir,
            sources: Mutex::new(KnowledgeSources {
                base,
                learned: Vec::new(),
            }),
            index: RwLock::new(Arc::new(index)),
            answerer,
            briefing_model,
        })
    }

    /// Re-reads the knowledge folder and swaps the index in (with the learned entries merged
    /// in); returns the number of entries. On error the old index stays in place.
    pub fn reload_knowledge(&self) -> Result<usize, TriageError> {
        let base = knowledge::load_dir(&self.knowledge_dir)?;
        let mut sources = lock(&self.sources);
        sources.base = base;
        Ok(self.swap_index(&sources))
    }

    /// Replaces the learned entries (the folder is not re-read) and swaps the index in;
    /// returns the number of entries answered from.
    pub fn set_learned(&self, learned: Vec<Entry>) -> usize {
        let mut sources = lock(&self.sources);
        sources.learned = learned;
        self.swap_index(&sources)
    }

    fn swap_index(&self, sources: &KnowledgeSources) -> usize {
        let index = Index::build(merge_learned(sources.base.clone(), sources.learned.clone()));
        let count = index.entries().len();
        // A poisoned lock only means another reload panicked mid-swap; the Arc inside is whole.
        let mut slot = self.index.write().unwrap_or_else(|e| e.into_inner());
        *slot = Arc::new(index);
        count
    }

    /// The knowledge-base entries currently answered from.
    pub fn entries(&self) -> Vec<Entry> {
        self.current_index().entries().to_vec()
    }

    fn current_index(&self) -> Arc<Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The decision for the first message of a case that is a repeat contact, when
    /// `escalate_repeat_contact` is on: a person picks it up, with the best answer as the
    /// suggestion. `None` when the setting is off.
    pub fn repeat_contact(&self, input: &TriageInput<'_>) -> Option<DecisionRecord> {
        let why = policy::repeat_contact(&self.config)?;
        let (mut record, _) = self.decide_now(input);
        let suggested_reply = match &record.decision {
            Decision::Answer { text, .. } => Some(text.clone()),
            Decision::Escalate {
                suggested_reply, ..
            } => suggested_reply.clone(),
        };
        record.decision = Decision::Escalate {
            reason: EscalationReason::RepeatContact,
            suggested_reply,
        };
        record.explanation = why;
        Some(record)
    }

    /// Decides one message: the policies, then the answerer (the LLM when configured).
    pub async fn decide(&self, input: &TriageInput<'_>) -> DecisionRecord {
        let (record, answerer_stage) = self.decide_now(input);
        match answerer_stage {
            Some((index, ranked)) => {
                let text = truncate_chars(input.text, MAX_ANALYSED_CHARS);
                let threshold = self.config.threshold_for(input.channel);
                self.ask_answerer(record, text, &index, &ranked, threshold)
                    .await
            }
            None => record,
        }
    }

    /// On an escalation with `[triage.llm]` set, has the model write the briefing's summary
    /// and suggested reply from `transcript` (oldest first, ending with the message just
    /// decided) and the entries retrieved for the customer's last message. The record keeps
    /// the draft, or why the heuristic summary stands; the model's reply replaces the
    /// suggestion only when it passed every check.
    pub async fn write_briefing(&self, transcript: &[TranscriptLine], record: &mut DecisionRecord) {
        let Some(model) = &self.briefing_model else {
            return;
        };
        let Decision::Escalate {
            reason,
            suggested_reply,
        } = &mut record.decision
        else {
            return;
        };
        let index = self.current_index();
        let asked = transcript
            .iter()
            .rev()
            .find(|line| line.role == Role::Customer && !line.text.trim().is_empty());
        let entries: Vec<&Entry> = match asked {
            Some(line) => index
                .retrieve(truncate_chars(&line.text, MAX_ANALYSED_CHARS))
                .ranked
                .iter()
                .filter_map(|&i| index.entries().get(i))
                .take(model.context_entries())
                .collect(),
            None => Vec::new(),
        };
        let started = std::time::Instant::now();
        let written = briefing::write(model, transcript, reason.in_words(), &entries).await;
        record.scores.insert(
            "briefing_ms".into(),
            started.elapsed().as_secs_f32() * 1000.0,
        );
        record.briefing = Some(match written {
            Ok(written) => {
                if written.suggested_reply.is_some() {
                    *suggested_reply = written.suggested_reply;
                }
                BriefingDraft {
                    summary: Some(written.summary),
                    citations: written.citations,
                    source: "written by the model".into(),
                }
            }
            Err(why) => {
                // A parse error may quote the model's reply at length.
                let why: String = why.chars().take(200).collect();
                BriefingDraft {
                    summary: None,
                    citations: Vec::new(),
                    source: format!("heuristic ({why})"),
                }
            }
        });
    }

    /// Asks the answerer, grounded on the best retrieved entries, and applies the threshold
    /// and the always-human categories to its verdict. The best entry's answer stays the
    /// agent's suggested reply when the answerer escalates without one.
    async fn ask_answerer(
        &self,
        mut record: DecisionRecord,
        text: &str,
        index: &Index,
        ranked: &[usize],
        threshold: f32,
    ) -> DecisionRecord {
        let entries: Vec<&Entry> = ranked
            .iter()
            .filter_map(|&i| index.entries().get(i))
            .take(self.answerer.context_entries())
            .collect();
        let sources: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let kb_suggestion = entries.first().map(|e| e.answer.clone());
        let started = std::time::Instant::now();
        let verdict = self
            .answerer
            .answer(text, &entries, record.confidence)
            .await;
        let elapsed = started.elapsed().as_secs_f32() * 1000.0;
        record.scores.insert("answerer_ms".into(), elapsed);
        record
            .scores
            .insert("retriever_confidence".into(), record.confidence);
        let escalate = |record: &mut DecisionRecord, reason, why: String, reply| {
            record.decision = Decision::Escalate {
                reason,
                suggested_reply: reply,
            };
            record.explanation = why;
        };
        match verdict {
            Verdict::Answer {
                text: answer,
                confidence,
                category,
            } => {
                record.confidence = confidence;
                record.scores.insert("confidence".into(), confidence);
                record.category = category.or(record.category.take());
                let human_category = record
                    .category
                    .clone()
                    .filter(|c| self.config.always_human_categories.contains_key(c));
                if let Some(category) = human_category {
                    let why = format!("model's category `{category}` always goes to a person");
                    escalate(
                        &mut record,
                        EscalationReason::AlwaysHumanCategory,
                        why,
                        Some(answer),
                    );
                } else if confidence >= threshold {
                    record.explanation = format!(
                        "answered by {} from {} (confidence {confidence:.2} >= {threshold:.2})",
                        self.answerer.name(),
                        sources.join(", ")
                    );
                    record.decision = Decision::Answer {
                        text: answer,
                        sources,
                    };
                } else {
                    let why = format!("model confidence {confidence:.2} < {threshold:.2}");
                    escalate(
                        &mut record,
                        EscalationReason::LowConfidence,
                        why,
                        Some(answer),
                    );
                }
            }
            Verdict::Escalate {
                why,
                confidence,
                suggested_reply,
                category,
            } => {
                record.confidence = confidence;
                record.scores.insert("confidence".into(), confidence);
                record.category = category.or(record.category.take());
                let reply = suggested_reply.or(kb_suggestion);
                escalate(&mut record, EscalationReason::LowConfidence, why, reply);
            }
        }
        record
    }

    /// The synchronous core of [`Triage::decide`]: pure CPU work, no I/O. Besides the
    /// record it returns, when no policy decided, the index and ranked entries the
    /// answerer stage worked from (for the LLM).
    #[allow(clippy::type_complexity)]
    fn decide_now(
        &self,
        input: &TriageInput<'_>,
    ) -> (DecisionRecord, Option<(Arc<Index>, Vec<usize>)>) {
        let config = &self.config;
        let text = truncate_chars(input.text, MAX_ANALYSED_CHARS);
        let tokens = text::words(text);
        let index = self.current_index();
        let retrieval = index.retrieve(text);
        let best = retrieval.best.and_then(|i| index.entries().get(i));
        let threshold = config.threshold_for(input.channel);
        let sentiment = sentiment::compound(text);
        let repetition = policy::repetition(input.history, text);
        let rejected = policy::rejected_answers(config, input.history, text);
        let injection = policy::injection(&tokens);

        let mut scores = BTreeMap::new();
        scores.insert("confidence".to_string(), retrieval.confidence);
        scores.insert("threshold".to_string(), threshold);
        scores.insert("retrieval_self_ratio".to_string(), retrieval.self_ratio);
        scores.insert("retrieval_margin".to_string(), retrieval.margin);
        scores.insert("retrieval_vote".to_string(), retrieval.vote);
        scores.insert("retrieval_nn_agrees".to_string(), retrieval.nn_agrees);
        scores.insert("retrieval_known".to_string(), retrieval.known);
        scores.insert("sentiment".to_string(), sentiment);
        scores.insert("repetition".to_string(), repetition);
        scores.insert("rejected_answers".to_string(), rejected as f32);
        scores.insert(
            "injection".to_string(),
            if injection.is_some() { 1.0 } else { 0.0 },
        );

        let mut record = DecisionRecord {
            // A placeholder: a policy or the answerer stage always replaces it.
            decision: Decision::Escalate {
                reason: EscalationReason::LowConfidence,
                suggested_reply: None,
            },
            confidence: retrieval.confidence,
            category: best.and_then(|e| e.category.clone()),
            scores,
            explanation: String::new(),
            case_id: None,
            briefing: None,
        };
        // The best answer is offered to the agent on every escalation, never to the customer.
        let suggestion = best
            .filter(|_| injection.is_none())
            .map(|e| e.answer.clone());
        let escalate = |record: &mut DecisionRecord, reason, explanation: String| {
            record.decision = Decision::Escalate {
                reason,
                suggested_reply: suggestion.clone(),
            };
            record.explanation = explanation;
        };

        if let Some(why) = policy::vip(config, input.tier, input.email) {
            escalate(&mut record, EscalationReason::VipTier, why);
            return (record, None);
        }
        let entry_category = best
            .filter(|_| retrieval.confidence >= threshold)
            .and_then(|e| e.category.as_ref())
            .filter(|c| config.always_human_categories.contains_key(*c));
        if let Some((category, pattern)) = policy::category_from_text(config, &tokens) {
            let why =
                format!("category `{category}` always goes to a person (matched \"{pattern}\")");
            record.category = Some(category);
            escalate(&mut record, EscalationReason::AlwaysHumanCategory, why);
            return (record, None);
        }
        if let Some(category) = entry_category {
            let why = format!("best answer's category `{category}` always goes to a person");
            escalate(&mut record, EscalationReason::AlwaysHumanCategory, why);
            return (record, None);
        }
        if let Some(why) = policy::human_request(config, input.kind, &tokens) {
            escalate(&mut record, EscalationReason::HumanRequested, why);
            return (record, None);
        }
        if sentiment <= -config.negative_sentiment_threshold {
            let why = format!(
                "negative sentiment {sentiment:.2} at or below -{:.2}",
                config.negative_sentiment_threshold
            );
            escalate(&mut record, EscalationReason::NegativeSentiment, why);
            return (record, None);
        }
        if repetition >= config.repeated_question_similarity {
            let why = format!("repeats an earlier question (similarity {repetition:.2})");
            escalate(&mut record, EscalationReason::RepeatedQuestion, why);
            return (record, None);
        }
        if rejected >= config.bot_loop_rejections {
            let why = format!("customer rejected {rejected} AI answers");
            escalate(&mut record, EscalationReason::BotLoop, why);
            return (record, None);
        }
        if let Some(marker) = injection {
            let why = format!(
                "message gives the assistant instructions (\"{marker}\"); a person will answer"
            );
            record.confidence = 0.0;
            escalate(&mut record, EscalationReason::LowConfidence, why);
            return (record, None);
        }
        // No policy decided: the answerer does, grounded on the retrieval.
        let ranked = retrieval.ranked.clone();
        (record, Some((index, ranked)))
    }
}

/// The first `max` characters of `text`, cut on a character boundary.
fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}
