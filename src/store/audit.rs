//! The reveal audit log: every time an agent was shown what a desk's redaction hid, who,
//! when and which messages, never the text (the text is what the log protects).

use std::time::Duration;

use redis::streams::StreamRangeReply;

use super::{keys, Store, StoreError};

/// Entries kept: about the last year of a busy desk; older ones are trimmed by Redis.
const KEPT: usize = 100_000;

/// One look at redacted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealLook {
    /// When, in ms since the epoch.
    pub at_ms: u64,
    /// The agent's id on the desk.
    pub agent_id: String,
    /// The agent's name.
    pub agent_name: String,
    /// The conversation.
    pub conversation_id: String,
    /// The transcript entries shown.
    pub message_ids: Vec<String>,
}

impl Store {
    /// Appends a look to the audit log; the desk shows nothing unless this succeeded.
    pub async fn log_reveal(&self, look: &RevealLook) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(
            Duration::ZERO,
            redis::cmd("XADD")
                .arg(keys::REVEAL_AUDIT)
                .arg("MAXLEN")
                .arg("~")
                .arg(KEPT)
                .arg("*")
                .arg("at_ms")
                .arg(look.at_ms)
                .arg("agent_id")
                .arg(&look.agent_id)
                .arg("agent_name")
                .arg(&look.agent_name)
                .arg("conversation")
                .arg(&look.conversation_id)
                .arg("messages")
                .arg(look.message_ids.join(","))
                .query_async::<String>(&mut conn),
        )
        .await
        .map(|_| ())
    }

    /// The latest `count` looks, newest first.
    pub async fn reveal_log(&self, count: usize) -> Result<Vec<RevealLook>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = self
            .bounded(
                Duration::ZERO,
                redis::cmd("XREVRANGE")
                    .arg(keys::REVEAL_AUDIT)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut conn),
            )
            .await?;
        Ok(reply
            .ids
            .iter()
            .map(|entry| {
                let field = |name: &str| -> String { entry.get(name).unwrap_or_default() };
                RevealLook {
                    at_ms: entry.get("at_ms").unwrap_or_default(),
                    agent_id: field("agent_id"),
                    agent_name: field("agent_name"),
                    conversation_id: field("conversation"),
                    message_ids: field("messages")
                        .split(',')
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned)
                        .collect(),
                }
            })
            .collect())
    }
}
