//! Who wrote a transcript entry.

use std::fmt;

use tracing::warn;

/// Who wrote a transcript entry; stored by name in the entry's `role` field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// The customer, on their channel.
    Customer,
    /// The AI's answer.
    Ai,
    /// A person on the desk, relayed to the customer.
    Agent,
    /// The gateway's own notice to the customer (escalation, resolution, thanks).
    System,
    /// An agent's internal note: never leaves the desk.
    Note,
    /// A stored name this version does not know; shown to nobody.
    Other(String),
}

impl Role {
    /// Every role this version writes.
    pub const KNOWN: [Role; 5] = [
        Role::Customer,
        Role::Ai,
        Role::Agent,
        Role::System,
        Role::Note,
    ];

    /// The name stored in the transcript.
    pub fn as_str(&self) -> &str {
        match self {
            Role::Customer => "customer",
            Role::Ai => "ai",
            Role::Agent => "agent",
            Role::System => "system",
            Role::Note => "note",
            Role::Other(name) => name,
        }
    }

    /// Parses a stored name; an unknown one is kept as [`Role::Other`], with a warning.
    pub fn parse(name: &str) -> Role {
        Role::KNOWN
            .into_iter()
            .find(|role| role.as_str() == name)
            .unwrap_or_else(|| {
                warn!(
                    role = name,
                    "unknown stored transcript role; entry shown to nobody"
                );
                Role::Other(name.to_owned())
            })
    }

    /// True for what the customer sees as an answer (AI, agent or gateway), not notes.
    pub fn answers_customer(&self) -> bool {
        matches!(self, Role::Ai | Role::Agent | Role::System)
    }
}

/// The gateway's own words: what an entry is when nothing more specific is said.
impl Default for Role {
    fn default() -> Self {
        Role::System
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn stored_roles_round_trip_and_unknown_ones_are_kept() {
        for role in Role::KNOWN {
            assert_eq!(Role::parse(role.as_str()), role);
        }
        assert_eq!(Role::parse("bot_v2"), Role::Other("bot_v2".into()));
        assert!(!Role::parse("bot_v2").answers_customer());
    }
}
