//! Composes the briefing an agent reads when a conversation escalates.
//!
//! Platform-neutral: the desk connector renders it (Block Kit for Slack).

use switchboard_api::{Briefing, BriefingLine};

use crate::model::{Conversation, Decision, EscalationReason, Role};
use crate::store::TranscriptEntry;

/// The transcript kind of an agent reply that is the AI's suggestion, approved as it was.
pub const AI_DRAFT: &str = "ai_draft";
/// The transcript kind of an agent reply that is the AI's suggestion, edited by the agent.
pub const AI_DRAFT_EDITED: &str = "ai_draft_edited";

/// The reply the AI suggests to the agent: its escalation's suggestion. After an answer there
/// is none: the customer has that answer already (records stored before answers were kept
/// out of `last_decision` still offer it).
pub fn suggested_reply(conversation: &Conversation) -> Option<String> {
    conversation
        .last_decision
        .as_ref()
        .and_then(|record| match &record.decision {
            Decision::Escalate {
                suggested_reply, ..
            } => suggested_reply.clone(),
            Decision::Answer { text, .. } => Some(text.clone()).filter(|text| !text.is_empty()),
        })
}

/// An escalation reason in words, for agents; `escalated` when none is recorded.
pub fn reason_in_words(reason: Option<&EscalationReason>) -> &'static str {
    reason.map_or("escalated", EscalationReason::in_words)
}

/// Builds the briefing from the conversation record and its transcript (oldest first).
pub fn compose(conversation: &Conversation, transcript: &[TranscriptEntry]) -> Briefing {
    let decision = conversation.last_decision.as_ref();
    let reason = conversation
        .escalation_reason
        .clone()
        .unwrap_or(EscalationReason::HumanRequested);
    let suggested_reply = suggested_reply(conversation);
    let customer_name = conversation.customer_name();
    let lines: Vec<BriefingLine> = transcript
        .iter()
        .filter(|entry| entry.role != Role::Note)
        .map(|entry| BriefingLine {
            role: entry.role.as_str().to_owned(),
            author: match entry.role {
                Role::Customer => customer_name.clone(),
                Role::Ai => "AI".into(),
                Role::Agent => {
                    let name = entry.author.clone().unwrap_or_else(|| "Agent".into());
                    match entry.kind.as_deref() {
                        Some(AI_DRAFT) => format!("{name} (approved the AI's draft)"),
                        Some(AI_DRAFT_EDITED) => format!("{name} (edited the AI's draft)"),
                        _ => name,
                    }
                }
                _ => "Switchboard".into(),
            },
            text: entry.text.clone(),
            at_ms: entry.at_ms(),
            files: entry.files.clone(),
        })
        .collect();
    // Vouched-for name, email and tier have their own fields; the customer's own word is
    // listed with the rest, marked, so an agent does not take it as a fact.
    let context = &conversation.context;
    let mut attributes: Vec<(String, String)> = context
        .attributes
        .iter()
        .filter_map(|(key, value)| {
            if context.unverified.contains(key) {
                Some((format!("{key} (unverified)"), value.clone()))
            } else if matches!(key.as_str(), "name" | "email" | "tier") {
                None
            } else {
                Some((key.clone(), value.clone()))
            }
        })
        .collect();
    attributes.sort();
    let detail = decision
        .map(|record| record.explanation.clone())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| reason.in_words().to_owned());
    // The model's draft was written when the conversation escalated; a refreshed briefing
    // (claimed, resolved) shows the same words rather than asking the model again.
    let draft = decision.and_then(|record| record.briefing.as_ref());
    let summary = draft
        .and_then(|draft| draft.summary.clone())
        .unwrap_or_else(|| summarize(&lines, &reason));
    Briefing {
        conversation_id: conversation.id.clone(),
        summary,
        summary_source: draft.map(|draft| draft.source.clone()),
        citations: draft
            .map(|draft| draft.citations.clone())
            .unwrap_or_default(),
        customer_name,
        customer_id: conversation.contact.id.clone(),
        verified: conversation.contact.verified,
        email: conversation.contact.email.clone(),
        channel: conversation.channel,
        tier: conversation.context.tier.clone(),
        page_url: conversation.context.page_url.clone(),
        page_title: conversation.context.page_title.clone(),
        attributes,
        reason_detail: detail,
        reason: reason.as_str().to_owned(),
        confidence: decision.map(|record| record.confidence).unwrap_or(0.0),
        transcript: lines,
        suggested_reply,
        claimed_by: conversation.claimed_by.clone(),
        status: conversation.status.as_str().to_owned(),
        previous_case: conversation
            .case
            .previous_thread
            .clone()
            .filter(|_| conversation.case.number > 1)
            .map(|thread| switchboard_api::PreviousCase {
                case_id: crate::model::case_id(&conversation.id, conversation.case.number - 1),
                thread,
            }),
    }
}

/// Two lines: what the customer wants now, and how the conversation went.
fn summarize(lines: &[BriefingLine], reason: &EscalationReason) -> String {
    let is = |line: &BriefingLine, role: Role| line.role == role.as_str();
    let customer: Vec<&BriefingLine> = lines.iter().filter(|l| is(l, Role::Customer)).collect();
    let asked = customer
        .iter()
        .rev()
        .find(|line| !line.text.trim().is_empty())
        .map(|line| shorten(&line.text, 160))
        .unwrap_or_else(|| "(asked for a person without a message)".into());
    let ai_answers = lines.iter().filter(|l| is(l, Role::Ai)).count();
    let span_minutes = match (lines.first(), lines.last()) {
        (Some(first), Some(last)) => last.at_ms.saturating_sub(first.at_ms) / 60_000,
        _ => 0,
    };
    format!(
        "Wants: {asked}\n{} customer message(s) over {span_minutes} min, {ai_answers} AI answer(s); {}.",
        customer.len(),
        reason.in_words()
    )
}

/// Cuts `text` to at most `limit` characters on a char boundary, marking the cut.
pub fn shorten(text: &str, limit: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= limit {
        return flat;
    }
    let cut: String = flat.chars().take(limit.saturating_sub(1)).collect();
    format!("{cut}…")
}
