//! State a connector or desk shares between gateway instances (sessions, queues), kept by the
//! core in Redis; in one process, in memory. Keys are the caller's own: the core puts them
//! under a prefix of its choosing, so they never meet the core's keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// Why shared state could not be read or written (Redis unreachable, full).
pub type SharedStateError = String;

/// Small keyed state every instance sees: values with a lifetime, counters for throttling,
/// scored sets for queues and append-only lists for logs. One key per call, so it works on a
/// Redis Cluster.
#[async_trait]
pub trait SharedState: Send + Sync {
    /// The value at `key`, if set and not expired.
    async fn get(&self, key: &str) -> Result<Option<String>, SharedStateError>;
    /// Sets `key`, expiring after `ttl` when given.
    async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<(), SharedStateError>;
    /// Removes `key`, whatever it holds (a value, a scored set, a list); returns whether a
    /// value was there (a one-time token is taken once).
    async fn take(&self, key: &str) -> Result<bool, SharedStateError>;
    /// Adds one to the counter at `key`, which starts its `window` when created; returns the
    /// new count.
    async fn count(&self, key: &str, window: Duration) -> Result<u64, SharedStateError>;
    /// Adds or re-scores `member` in the scored set at `key`.
    async fn set_add(&self, key: &str, member: &str, score: f64) -> Result<(), SharedStateError>;
    /// Removes `member` from the scored set at `key`.
    async fn set_remove(&self, key: &str, member: &str) -> Result<(), SharedStateError>;
    /// Up to `limit` members of the scored set at `key`, lowest score first, with their scores.
    async fn set_members(
        &self,
        key: &str,
        limit: usize,
    ) -> Result<Vec<(String, f64)>, SharedStateError>;
    /// Appends `value` to the list at `key`.
    async fn append(&self, key: &str, value: &str) -> Result<(), SharedStateError>;
    /// The last `limit` entries of the list at `key`, oldest first.
    async fn tail(&self, key: &str, limit: usize) -> Result<Vec<String>, SharedStateError>;
}

/// [`SharedState`] for one instance in this process (unit tests, single-instance contexts).
#[derive(Debug, Default)]
pub struct MemoryState {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    values: HashMap<String, (String, Option<Instant>)>,
    sets: HashMap<String, BTreeMap<String, f64>>,
    lists: HashMap<String, Vec<String>>,
}

impl MemoryInner {
    fn live(&mut self, key: &str) -> Option<&mut (String, Option<Instant>)> {
        let expired = self
            .values
            .get(key)
            .is_some_and(|(_, until)| until.is_some_and(|until| until <= Instant::now()));
        if expired {
            self.values.remove(key);
        }
        self.values.get_mut(key)
    }
}

impl MemoryState {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // A panic while holding the lock leaves plain data behind, still consistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SharedState for MemoryState {
    async fn get(&self, key: &str) -> Result<Option<String>, SharedStateError> {
        Ok(self.lock().live(key).map(|(value, _)| value.clone()))
    }

    async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<(), SharedStateError> {
        let until = ttl.map(|ttl| Instant::now() + ttl);
        self.lock()
            .values
            .insert(key.to_owned(), (value.to_owned(), until));
        Ok(())
    }

    async fn take(&self, key: &str) -> Result<bool, SharedStateError> {
        let mut inner = self.lock();
        let present = inner.live(key).is_some();
        inner.values.remove(key);
        // As Redis's DEL: a list or set under the key goes too.
        inner.lists.remove(key);
        inner.sets.remove(key);
        Ok(present)
    }

    async fn count(&self, key: &str, window: Duration) -> Result<u64, SharedStateError> {
        let mut inner = self.lock();
        let next = match inner.live(key) {
            Some((value, _)) => {
                let next = value.parse::<u64>().unwrap_or(0) + 1;
                *value = next.to_string();
                next
            }
            None => {
                let until = Some(Instant::now() + window);
                inner.values.insert(key.to_owned(), ("1".into(), until));
                1
            }
        };
        Ok(next)
    }

    async fn set_add(&self, key: &str, member: &str, score: f64) -> Result<(), SharedStateError> {
        let mut inner = self.lock();
        let set = inner.sets.entry(key.to_owned()).or_default();
        set.insert(member.to_owned(), score);
        Ok(())
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<(), SharedStateError> {
        if let Some(set) = self.lock().sets.get_mut(key) {
            set.remove(member);
        }
        Ok(())
    }

    async fn set_members(
        &self,
        key: &str,
        limit: usize,
    ) -> Result<Vec<(String, f64)>, SharedStateError> {
        let inner = self.lock();
        let mut members: Vec<(String, f64)> = inner
            .sets
            .get(key)
            .map(|set| set.iter().map(|(m, s)| (m.clone(), *s)).collect())
            .unwrap_or_default();
        members.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        members.truncate(limit);
        Ok(members)
    }

    async fn append(&self, key: &str, value: &str) -> Result<(), SharedStateError> {
        let mut inner = self.lock();
        inner
            .lists
            .entry(key.to_owned())
            .or_default()
            .push(value.to_owned());
        Ok(())
    }

    async fn tail(&self, key: &str, limit: usize) -> Result<Vec<String>, SharedStateError> {
        let inner = self.lock();
        let list = inner.lists.get(key).map(Vec::as_slice).unwrap_or_default();
        Ok(list[list.len().saturating_sub(limit)..].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_state_expires_counts_and_orders() {
        let state = MemoryState::default();
        state
            .set("a", "1", Some(Duration::from_millis(0)))
            .await
            .unwrap();
        assert_eq!(state.get("a").await.unwrap(), None);
        assert_eq!(state.count("n", Duration::from_secs(60)).await.unwrap(), 1);
        assert_eq!(state.count("n", Duration::from_secs(60)).await.unwrap(), 2);
        state.set_add("q", "late", 2.0).await.unwrap();
        state.set_add("q", "early", 1.0).await.unwrap();
        let members = state.set_members("q", 10).await.unwrap();
        assert_eq!(members[0].0, "early");
        state.set("t", "x", None).await.unwrap();
        assert!(state.take("t").await.unwrap());
        assert!(!state.take("t").await.unwrap());
        for n in 0..5 {
            state.append("l", &n.to_string()).await.unwrap();
        }
        assert_eq!(state.tail("l", 2).await.unwrap(), ["3", "4"]);
    }
}
