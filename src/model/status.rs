//! Where a conversation stands ([`Status`]) and why it was escalated ([`EscalationReason`]).
//!
//! Both are stored in Redis by name (`as_str`), the same names reports, logs, metrics labels
//! and `desk.routes[].reasons` use. A stored name this version does not know (written by a
//! newer version, or by hand) is read with a warning instead of failing the conversation.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tracing::warn;

/// Where a conversation stands; decides who answers the next customer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The AI answers.
    Bot,
    /// Waiting for a person; the AI stays silent.
    Escalated,
    /// A person is answering.
    Human,
    /// Done; a new message reopens it for the AI.
    Resolved,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 4] = [
        Status::Bot,
        Status::Escalated,
        Status::Human,
        Status::Resolved,
    ];

    /// The name stored in Redis.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Bot => "bot",
            Status::Escalated => "escalated",
            Status::Human => "human",
            Status::Resolved => "resolved",
        }
    }

    /// The status of a known name.
    pub fn known(name: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
    }

    /// Parses a stored name; an unknown name is read as `bot` (with a warning) so the
    /// customer is answered rather than left waiting for a person nobody was told about.
    pub fn parse(name: &str) -> Status {
        Status::known(name).unwrap_or_else(|| {
            warn!(
                status = name,
                "unknown stored conversation status; read as `bot`"
            );
            Status::Bot
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(Status::parse(&name))
    }
}

/// Why triage handed a conversation to a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EscalationReason {
    /// The customer's tier (or email domain) always goes to a person.
    VipTier,
    /// The topic's category always goes to a person.
    AlwaysHumanCategory,
    /// The customer asked for a person.
    HumanRequested,
    /// The customer sounds frustrated.
    NegativeSentiment,
    /// The customer repeated an earlier question.
    RepeatedQuestion,
    /// The customer kept rejecting the AI's answers.
    BotLoop,
    /// The AI was not confident enough to answer.
    LowConfidence,
    /// The customer came back soon after their previous case closed (`triage.escalate_repeat_contact`).
    RepeatContact,
    /// A stored name this version does not know, kept as it was so reports still count it.
    Other(String),
}

impl EscalationReason {
    /// Every reason triage gives (not [`EscalationReason::Other`]).
    pub const KNOWN: [EscalationReason; 8] = [
        EscalationReason::VipTier,
        EscalationReason::AlwaysHumanCategory,
        EscalationReason::HumanRequested,
        EscalationReason::NegativeSentiment,
        EscalationReason::RepeatedQuestion,
        EscalationReason::BotLoop,
        EscalationReason::LowConfidence,
        EscalationReason::RepeatContact,
    ];

    /// The stable snake_case name stored in Redis and used in config, logs and reports.
    pub fn as_str(&self) -> &str {
        match self {
            EscalationReason::VipTier => "vip_tier",
            EscalationReason::AlwaysHumanCategory => "always_human_category",
            EscalationReason::HumanRequested => "human_requested",
            EscalationReason::NegativeSentiment => "negative_sentiment",
            EscalationReason::RepeatedQuestion => "repeated_question",
            EscalationReason::BotLoop => "bot_loop",
            EscalationReason::LowConfidence => "low_confidence",
            EscalationReason::RepeatContact => "repeat_contact",
            EscalationReason::Other(name) => name,
        }
    }

    /// The reason of a known name (what config validation accepts).
    pub fn known(name: &str) -> Option<EscalationReason> {
        EscalationReason::KNOWN
            .into_iter()
            .find(|reason| reason.as_str() == name)
    }

    /// The known names, comma-separated, for error messages.
    pub fn known_names() -> String {
        EscalationReason::KNOWN
            .iter()
            .map(EscalationReason::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Parses a stored name; an unknown one is kept as [`EscalationReason::Other`], with a
    /// warning.
    pub fn parse(name: &str) -> EscalationReason {
        EscalationReason::known(name).unwrap_or_else(|| {
            warn!(
                reason = name,
                "unknown stored escalation reason; kept as it is"
            );
            EscalationReason::Other(name.to_owned())
        })
    }

    /// The reason in words, for agents.
    pub fn in_words(&self) -> &'static str {
        match self {
            EscalationReason::VipTier => "VIP customer: routed straight to a person",
            EscalationReason::AlwaysHumanCategory => "topic is always handled by a person",
            EscalationReason::HumanRequested => "the customer asked for a person",
            EscalationReason::NegativeSentiment => "the customer sounds frustrated",
            EscalationReason::RepeatedQuestion => "the customer repeated the question",
            EscalationReason::BotLoop => "the customer rejected the AI's answers",
            EscalationReason::LowConfidence => "the AI was not confident enough to answer",
            EscalationReason::RepeatContact => {
                "the customer came back soon after their previous case closed"
            }
            EscalationReason::Other(_) => "escalated",
        }
    }
}

impl fmt::Display for EscalationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EscalationReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EscalationReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(EscalationReason::parse(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip_and_unknown_ones_do_not_fail() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), status);
        }
        assert_eq!(Status::parse("snoozed"), Status::Bot);
        for reason in EscalationReason::KNOWN {
            assert_eq!(EscalationReason::parse(reason.as_str()), reason);
            let json = serde_json::to_string(&reason).expect("serializes");
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
        let future: EscalationReason =
            serde_json::from_str("\"legal_hold\"").expect("an unknown reason still parses");
        assert_eq!(future, EscalationReason::Other("legal_hold".into()));
        assert_eq!(future.as_str(), "legal_hold");
        assert_eq!(future.in_words(), "escalated");
        assert_eq!(EscalationReason::known("legal_hold"), None);
    }
}
