//! Answerers: what turns a question and the retrieved knowledge-base entries into a verdict.
//!
//! The policies run first and the retriever always runs (it grounds every answerer and gives
//! agents a suggested reply); the answerer only decides what to say. The embedded default
//! answers with the best entry at the retriever's calibrated confidence; the OpenAI-compatible
//! client ([`super::llm::LlmAnswerer`]) asks a model grounded on the top entries.

use async_trait::async_trait;

use super::knowledge::Entry;
use super::llm::Verdict;

/// Decides what to answer, grounded on retrieved entries.
#[async_trait]
pub trait Answerer: Send + Sync {
    /// Who answered, for the decision's explanation ("the knowledge base", "the model").
    fn name(&self) -> &'static str;

    /// How many retrieved entries (best first) it wants as grounding.
    fn context_entries(&self) -> usize;

    /// The verdict for `question`; never fails: trouble becomes an escalation.
    async fn answer(
        &self,
        question: &str,
        entries: &[&Entry],
        retriever_confidence: f32,
    ) -> Verdict;
}

/// The embedded default: the best entry's answer, at the retriever's confidence.
pub struct KnowledgeBaseAnswerer;

#[async_trait]
impl Answerer for KnowledgeBaseAnswerer {
    fn name(&self) -> &'static str {
        "the knowledge base"
    }

    fn context_entries(&self) -> usize {
        1
    }

    async fn answer(
        &self,
        _question: &str,
        entries: &[&Entry],
        retriever_confidence: f32,
    ) -> Verdict {
        match entries.first() {
            Some(entry) => Verdict::Answer {
                text: entry.answer.clone(),
                confidence: retriever_confidence,
                category: entry.category.clone(),
            },
            None => Verdict::Escalate {
                why: "no knowledge-base entry matches".into(),
                confidence: 0.0,
                suggested_reply: None,
                category: None,
            },
        }
    }
}
