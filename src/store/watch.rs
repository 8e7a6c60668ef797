//! The desk watch list: conversations someone waits on a person for, looked at when a wait
//! may have grown long enough for a reminder (`desk::reminders`).

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{keys, Store, StoreError};

static SETTLE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/watch_settle.lua")));

impl Store {
    /// Up to `limit` watched conversations of `partition` due by `due_ms`, earliest first.
    pub async fn watched_due(
        &self,
        partition: usize,
        due_ms: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.due_in(keys::desk_watch(partition), due_ms, limit)
            .await
    }

    /// Up to `limit` conversations of the deadline set `key` (scored by when they are due) due
    /// by `due_ms`, earliest first.
    pub(super) async fn due_in(
        &self,
        key: String,
        due_ms: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = self
            .bounded(
                Duration::ZERO,
                redis::cmd("ZRANGE")
                    .arg(key)
                    .arg("-inf")
                    .arg(due_ms)
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut conn),
            )
            .await?;
        Ok(members
            .iter()
            .filter_map(|member| keys::conversation_id_of(member))
            .collect())
    }

    /// Looks at the conversation again at `at_ms` (it still waits, or may again).
    pub async fn watch_later(&self, conversation_id: &str, at_ms: u64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let partition = keys::partition(conversation_id);
        let _: i64 = self
            .bounded(
                Duration::ZERO,
                redis::cmd("ZADD")
                    .arg(keys::desk_watch(partition))
                    .arg("XX")
                    .arg(at_ms)
                    .arg(keys::conversation(conversation_id))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(())
    }

    /// Drops the conversation from the watch list unless it waits on a person again.
    pub async fn settle_watch(&self, conversation_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let partition = keys::partition(conversation_id);
        let mut invocation = SETTLE.prepare_invoke();
        invocation
            .key(keys::conversation(conversation_id))
            .key(keys::desk_watch(partition));
        let removed: i64 = self
            .bounded(Duration::ZERO, invocation.invoke_async(&mut conn))
            .await?;
        Ok(removed == 1)
    }
}
