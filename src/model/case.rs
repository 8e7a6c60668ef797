//! A support case: one stretch of a conversation from the customer's first message to its
//! resolution (or to going quiet), kept in the conversation's own hash.
//!
//! The conversation stays one per customer; cases number its episodes (`case` = 1, 2, ...), so
//! a case id is `<conversation id>:<number>` and costs no key of its own. The fields are
//! written by `store/lua/ingest.lua` (open, reopen), by commits (who answered, escalations)
//! and by `store/lua/case_close.lua` (close); see `crate::cases`.

use std::collections::HashMap;

/// The names of the case fields in the conversation hash.
pub mod case_field {
    /// The current case's number (1, 2, ...).
    pub const NUMBER: &str = "case";
    /// When it opened, ms.
    pub const OPENED_MS: &str = "case_opened_ms";
    /// When it closed, ms; absent while open.
    pub const CLOSED_MS: &str = "case_closed_ms";
    /// How it closed: `resolved`, `confirmed`, `ai_idle` or `idle`.
    pub const CLOSED_AS: &str = "case_close";
    /// How often it was reopened.
    pub const REOPENS: &str = "case_reopens";
    /// `1` once a person was involved (a desk escalation, an agent reply).
    pub const HUMAN: &str = "case_human";
    /// Escalations in this case.
    pub const ESCALATIONS: &str = "case_escalations";
    /// The first reply to the customer in this case, ms.
    pub const FIRST_RESPONSE_MS: &str = "case_first_response_ms";
    /// The first agent reply in this case, ms.
    pub const FIRST_HUMAN_MS: &str = "case_first_human_ms";
    /// `1` when the case opened within the repeat window of the previous one's close.
    pub const REPEAT: &str = "case_repeat";
    /// The desk thread of the previous case (channel, ts), linked from the new one's briefing.
    pub const PREVIOUS_DESK_CHANNEL: &str = "prev_desk_channel";
    /// See [`PREVIOUS_DESK_CHANNEL`].
    pub const PREVIOUS_DESK_TS: &str = "prev_desk_ts";
    /// Every earlier case's desk thread, JSON `[[channel, ts], ...]` oldest first, so an
    /// erasure reaches them all (the briefing links only the previous one).
    pub const PAST_DESK_THREADS: &str = "past_desk_threads";
}

/// Every desk thread a conversation record names: its case's, the previous case's and every
/// earlier one's, each once.
pub fn every_desk_thread(
    record: &std::collections::BTreeMap<String, String>,
) -> Vec<switchboard_api::ThreadRef> {
    let pair = |channel: &str, ts: &str| {
        Some(switchboard_api::ThreadRef {
            channel: record.get(channel)?.clone(),
            ts: record.get(ts)?.clone(),
        })
    };
    let past: Vec<(String, String)> = (record.get(case_field::PAST_DESK_THREADS))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    let mut threads: Vec<switchboard_api::ThreadRef> = (past.into_iter())
        .map(|(channel, ts)| switchboard_api::ThreadRef { channel, ts })
        .collect();
    threads.extend(pair(
        case_field::PREVIOUS_DESK_CHANNEL,
        case_field::PREVIOUS_DESK_TS,
    ));
    threads.extend(pair(
        super::conversation::field::DESK_CHANNEL,
        super::conversation::field::DESK_TS,
    ));
    let mut seen = std::collections::BTreeSet::new();
    threads.retain(|thread| seen.insert((thread.channel.clone(), thread.ts.clone())));
    threads
}

/// The current case of a conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseState {
    /// Its number; 0 for a conversation stored before cases existed and not written to since.
    pub number: u64,
    /// When it opened.
    pub opened_ms: Option<u64>,
    /// When it closed, if it is closed.
    pub closed_ms: Option<u64>,
    /// Escalations so far.
    pub escalations: u64,
    /// True once a person was involved.
    pub human: bool,
    /// When the customer first got a reply in this case.
    pub first_response_ms: Option<u64>,
    /// When an agent first replied in this case.
    pub first_human_ms: Option<u64>,
    /// True when it is a repeat contact.
    pub repeat: bool,
    /// The previous case's desk thread, when it had one.
    pub previous_thread: Option<switchboard_api::ThreadRef>,
}

impl CaseState {
    /// Reads the case fields of a conversation hash.
    pub fn from_fields(fields: &HashMap<String, String>) -> CaseState {
        let ms = |name: &str| fields.get(name).and_then(|text| text.trim().parse().ok());
        let flag = |name: &str| fields.get(name).map(String::as_str) == Some("1");
        let previous_thread = match (
            fields.get(case_field::PREVIOUS_DESK_CHANNEL),
            fields.get(case_field::PREVIOUS_DESK_TS),
        ) {
            (Some(channel), Some(ts)) => Some(switchboard_api::ThreadRef {
                channel: channel.clone(),
                ts: ts.clone(),
            }),
            _ => None,
        };
        CaseState {
            number: ms(case_field::NUMBER).unwrap_or(0),
            // A conversation's first case opened with it, and stores no time of its own.
            opened_ms: ms(case_field::OPENED_MS).or_else(|| ms(super::field::CREATED_MS)),
            closed_ms: ms(case_field::CLOSED_MS),
            escalations: ms(case_field::ESCALATIONS).unwrap_or(0),
            human: flag(case_field::HUMAN),
            first_response_ms: ms(case_field::FIRST_RESPONSE_MS),
            first_human_ms: ms(case_field::FIRST_HUMAN_MS),
            repeat: flag(case_field::REPEAT),
            previous_thread,
        }
    }

    /// The case id within `conversation_id`, `None` before the first case opened.
    pub fn id(&self, conversation_id: &str) -> Option<String> {
        (self.number > 0).then(|| case_id(conversation_id, self.number))
    }
}

/// A case id: the conversation and the case's number in it.
pub fn case_id(conversation_id: &str, number: u64) -> String {
    format!("{conversation_id}:{number}")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn every_desk_thread_a_record_names_is_listed_once_oldest_first() {
        let record: BTreeMap<String, String> = [
            (
                case_field::PAST_DESK_THREADS,
                r#"[["C1","1.1"],["C1","2.2"]]"#,
            ),
            (case_field::PREVIOUS_DESK_CHANNEL, "C1"),
            (case_field::PREVIOUS_DESK_TS, "2.2"),
            ("desk_channel", "C2"),
            ("desk_ts", "3.3"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        let threads: Vec<(String, String)> = (every_desk_thread(&record).into_iter())
            .map(|thread| (thread.channel, thread.ts))
            .collect();
        let expected = [("C1", "1.1"), ("C1", "2.2"), ("C2", "3.3")]
            .map(|(channel, ts)| (channel.to_owned(), ts.to_owned()));
        assert_eq!(threads, expected);
        assert!(every_desk_thread(&BTreeMap::new()).is_empty());
    }
}
