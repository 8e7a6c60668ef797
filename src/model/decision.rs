//! What triage decided about a customer message, and the evidence behind it.
//!
//! Stored as json in the conversation's `last_decision` field, read by the desk (briefing,
//! routing) and by evaluation, so it is part of the model rather than of triage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::EscalationReason;

/// What triage decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// The AI answers.
    Answer {
        /// The answer to send; empty in a conversation's stored `last_decision`, whose
        /// transcript holds it.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        text: String,
        /// Knowledge-base entries cited.
        sources: Vec<String>,
    },
    /// A person should answer.
    Escalate {
        /// Why; stored by its snake_case name (`vip_tier`, `low_confidence`, ...).
        reason: EscalationReason,
        /// A reply an agent may send or adapt.
        suggested_reply: Option<String>,
    },
}

/// A decision with the evidence behind it, stored on the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The decision.
    pub decision: Decision,
    /// The answerer's confidence in its best answer, 0..1.
    pub confidence: f32,
    /// The detected category, if any.
    pub category: Option<String>,
    /// Every score the policies computed (sentiment, similarity, ...).
    pub scores: BTreeMap<String, f32>,
    /// Human-readable explanation ("asked for a person: 'real person'").
    pub explanation: String,
    /// The support case it was made in (`<conversation id>:<number>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    /// What the model wrote for the agents' briefing, on an escalation with `[triage.llm]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub briefing: Option<BriefingDraft>,
}

/// The model's part of an escalation's briefing, or why the heuristic's is used instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BriefingDraft {
    /// The model's two-line summary; `None` when the heuristic summary is used.
    pub summary: Option<String>,
    /// Knowledge-base entries the model cited (only ever ones it was given).
    #[serde(default)]
    pub citations: Vec<switchboard_api::Citation>,
    /// For the agents: "written by the model", or "heuristic (model timed out after 4000 ms)".
    pub source: String,
}
