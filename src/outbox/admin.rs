//! What an admin does with the outbox (`switchboard outbox ...`): see what waits per target
//! and what was given up on, put dead letters back into the outbox, or drop them.
//!
//! Works on a single Redis and on a cluster alike: every read and write is per partition.
//! A dead letter is named `<partition>/<stream id>` (stream ids are only unique within one
//! partition's dead-letter stream); a bare stream id is accepted when only one partition has it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::model::{now_ms, Delivery, DeskAction};
use crate::store::{keys, DeadEntry, Store, StoreError};

use super::{humane_duration, Parked};

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The id is not one `switchboard outbox dead` lists.
    #[error("`{0}` is not a dead letter id: use one listed by `switchboard outbox dead`, like 3/1718000000000-0")]
    BadId(String),
    /// No such dead letter.
    #[error("no dead letter {0} (already replayed or dropped? `switchboard outbox dead` lists what is left)")]
    NotFound(String),
    /// A bare stream id found in several partitions.
    #[error("`{id}` names dead letters in several partitions; say which: {}", candidates.join(", "))]
    Ambiguous {
        /// The id given.
        id: String,
        /// The full ids it could mean.
        candidates: Vec<String>,
    },
}

/// A dead letter's full name: its partition and its id in that partition's stream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeadId {
    /// The partition.
    pub partition: usize,
    /// The stream id (`1718000000000-0`).
    pub entry_id: String,
}

impl fmt::Display for DeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.partition, self.entry_id)
    }
}

fn is_stream_id(text: &str) -> bool {
    let mut parts = text.split('-');
    let number = |part: Option<&str>| {
        part.is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    };
    number(parts.next()) && number(parts.next()) && parts.next().is_none()
}

/// One target's line of `switchboard outbox status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetStatus {
    /// The channel name, or `desk`.
    pub target: String,
    /// Deliveries held back by failures (parked for a retry, or waiting behind one).
    pub waiting: usize,
    /// How long the oldest of them has waited since it was queued.
    pub oldest_waiting: Option<Duration>,
    /// The most attempts any waiting delivery has had.
    pub most_attempts: u32,
    /// The longest any waiting delivery has been failing (since its first failed attempt).
    pub longest_failing: Option<Duration>,
    /// Deliveries given up on (dead letters).
    pub dead: usize,
}

/// What `switchboard outbox status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Targets with something waiting or dead, by name.
    pub targets: Vec<TargetStatus>,
    /// Entries in the outbox streams not yet delivered (new, or being sent right now).
    pub in_streams: usize,
}

impl OutboxStatus {
    /// The line of `target`, if it has anything waiting or dead.
    pub fn target(&self, target: &str) -> Option<&TargetStatus> {
        self.targets.iter().find(|status| status.target == target)
    }
}

impl fmt::Display for OutboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let age = |duration: Option<Duration>| duration.map_or("-".to_owned(), humane_duration);
        writeln!(
            f,
            "{:<10} {:>8} {:>15} {:>13} {:>15} {:>6}",
            "target", "waiting", "oldest waiting", "most attempts", "failing since", "dead"
        )?;
        for line in &self.targets {
            writeln!(
                f,
                "{:<10} {:>8} {:>15} {:>13} {:>15} {:>6}",
                line.target,
                line.waiting,
                age(line.oldest_waiting),
                line.most_attempts,
                age(line.longest_failing),
                line.dead
            )?;
        }
        if self.targets.is_empty() {
            writeln!(f, "(nothing waits and nothing was given up on)")?;
        }
        write!(
            f,
            "{} more in the outbox streams, new or being sent",
            self.in_streams
        )
    }
}

/// A dead letter as `switchboard outbox dead` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterView {
    /// Its name, for `replay` and `drop`.
    pub id: DeadId,
    /// The channel name, `desk`, or `unknown` (a payload that does not parse).
    pub target: String,
    /// The conversation it belongs to (empty when the payload does not say).
    pub conversation_id: String,
    /// What it would deliver, in a few words.
    pub what: String,
    /// Why it was given up on.
    pub reason: String,
    /// Attempts made, when recorded.
    pub attempts: Option<u32>,
    /// How long ago it was given up on.
    pub dead_for: Duration,
}

impl DeadLetterView {
    fn of(entry: &DeadEntry, now: u64) -> DeadLetterView {
        let delivery: Option<Delivery> = serde_json::from_str(&entry.payload).ok();
        let (target, conversation_id, what) = match &delivery {
            Some(Delivery::Customer(outbound)) => (
                outbound.channel.as_str().to_owned(),
                outbound.conversation_id.clone(),
                format!("reply \"{}\"", preview(&outbound.text)),
            ),
            Some(Delivery::Desk(post)) => (
                "desk".to_owned(),
                post.conversation_id.clone(),
                match &post.action {
                    DeskAction::OpenThread => "briefing (opens the thread)".to_owned(),
                    DeskAction::RefreshBriefing => "briefing update".to_owned(),
                    DeskAction::Mirror { author, text, .. } => {
                        format!("{author}'s message \"{}\"", preview(text))
                    }
                    DeskAction::Notice { text } => format!("notice \"{}\"", preview(text)),
                    DeskAction::Notify { notice } => format!("notice {}", notice_kind(notice)),
                },
            ),
            None => (
                "unknown".to_owned(),
                String::new(),
                "a payload that does not parse".to_owned(),
            ),
        };
        DeadLetterView {
            id: DeadId {
                partition: entry.partition,
                entry_id: entry.entry_id.clone(),
            },
            target: entry.target.clone().unwrap_or(target),
            conversation_id,
            what,
            reason: entry.reason.clone(),
            attempts: entry.attempts,
            dead_for: Duration::from_millis(now.saturating_sub(entry.dead_ms())),
        }
    }
}

impl fmt::Display for DeadLetterView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attempts = match self.attempts {
            Some(attempts) => format!(" after {attempts} attempt(s)"),
            None => String::new(),
        };
        writeln!(
            f,
            "{}  {}  conversation {}  given up {} ago{attempts}",
            self.id,
            self.target,
            self.conversation_id,
            humane_duration(self.dead_for)
        )?;
        writeln!(f, "  what:   {}", self.what)?;
        write!(f, "  reason: {}", self.reason)
    }
}

/// The first line of a text, cut to a length that fits a terminal line.
/// The notice's stable name (`knowledge_approved`), as its stored form tags it.
fn notice_kind(notice: &switchboard_api::DeskNotice) -> String {
    serde_json::to_value(notice)
        .ok()
        .and_then(|value| Some(value.get("notice")?.as_str()?.to_owned()))
        .unwrap_or_default()
}

fn preview(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut cut: String = line.chars().take(60).collect();
    if cut.len() < line.len() || text.lines().nth(1).is_some() {
        cut.push('…');
    }
    cut
}

/// The outbox as an admin sees it, on the gateway's Redis.
pub struct OutboxAdmin {
    store: Store,
}

impl OutboxAdmin {
    /// Works on `store` (any connection to the gateway's Redis).
    pub fn new(store: Store) -> OutboxAdmin {
        OutboxAdmin { store }
    }

    /// What waits per target, since when, and what was given up on.
    pub async fn status(&self) -> Result<OutboxStatus, AdminError> {
        let now = now_ms();
        let partitions = keys::ALL_PARTITIONS;
        let mut by_target: BTreeMap<String, TargetStatus> = BTreeMap::new();
        fn line<'a>(
            by_target: &'a mut BTreeMap<String, TargetStatus>,
            target: &str,
        ) -> &'a mut TargetStatus {
            by_target
                .entry(target.to_owned())
                .or_insert_with(|| TargetStatus {
                    target: target.to_owned(),
                    ..Default::default()
                })
        }
        for waiting in self
            .store
            .waiting_counts(&partitions, &crate::registry::delivery_targets())
            .await?
        {
            let (Some(queued), true) = (waiting.oldest_queued_ms, waiting.count > 0) else {
                continue;
            };
            let status = line(&mut by_target, waiting.target);
            status.waiting += waiting.count;
            let age = Duration::from_millis(now.saturating_sub(queued));
            status.oldest_waiting = status.oldest_waiting.max(Some(age));
        }
        for (_, member) in self.store.parked_members(&partitions).await? {
            let Ok(parked) = serde_json::from_str::<Parked>(&member) else {
                continue;
            };
            let Ok(delivery) = serde_json::from_str::<Delivery>(&parked.p) else {
                continue;
            };
            let target = match &delivery {
                Delivery::Customer(outbound) => outbound.channel.as_str(),
                Delivery::Desk(_) => "desk",
            };
            let status = line(&mut by_target, target);
            status.most_attempts = status.most_attempts.max(parked.attempt);
            let failing = parked
                .first_failure
                .and_then(|ms| ms.parse::<u64>().ok())
                .map(|since| Duration::from_millis(now.saturating_sub(since)));
            status.longest_failing = status.longest_failing.max(failing);
        }
        for entry in self.store.dead_entries(&partitions).await? {
            let view = DeadLetterView::of(&entry, now);
            line(&mut by_target, &view.target).dead += 1;
        }
        let in_streams = self.store.work_counts().await?.outbox;
        Ok(OutboxStatus {
            targets: by_target.into_values().collect(),
            in_streams,
        })
    }

    /// Every dead letter, oldest first.
    pub async fn dead(&self) -> Result<Vec<DeadLetterView>, AdminError> {
        let now = now_ms();
        let mut views: Vec<DeadLetterView> = self
            .store
            .dead_entries(&keys::ALL_PARTITIONS)
            .await?
            .iter()
            .map(|entry| DeadLetterView::of(entry, now))
            .collect();
        views.sort_by(|a, b| b.dead_for.cmp(&a.dead_for).then(a.id.cmp(&b.id)));
        Ok(views)
    }

    /// Finds the dead letter `id` names (`3/1718000000000-0`, or a bare stream id that only
    /// one partition has).
    pub async fn resolve(&self, id: &str) -> Result<DeadId, AdminError> {
        let bad = || AdminError::BadId(id.to_owned());
        let id = id.trim();
        if let Some((partition, entry_id)) = id.split_once('/') {
            let partition: usize = partition.parse().map_err(|_| bad())?;
            if partition >= keys::PARTITIONS || !is_stream_id(entry_id) {
                return Err(bad());
            }
            return Ok(DeadId {
                partition,
                entry_id: entry_id.to_owned(),
            });
        }
        if !is_stream_id(id) {
            return Err(bad());
        }
        let mut found: Vec<DeadId> = self
            .store
            .dead_entries(&keys::ALL_PARTITIONS)
            .await?
            .into_iter()
            .filter(|entry| entry.entry_id == id)
            .map(|entry| DeadId {
                partition: entry.partition,
                entry_id: entry.entry_id,
            })
            .collect();
        match found.len() {
            0 => Err(AdminError::NotFound(id.to_owned())),
            1 => Ok(found.remove(0)),
            _ => Err(AdminError::Ambiguous {
                id: id.to_owned(),
                candidates: found.iter().map(DeadId::to_string).collect(),
            }),
        }
    }

    /// Puts one dead letter back into the outbox, once: it leaves the dead letters in the
    /// same step. The sender checks its delivery receipt first, so a reply that reached the
    /// customer after all is not sent again.
    pub async fn replay(&self, id: &DeadId) -> Result<(), AdminError> {
        match self.store.replay_dead(id.partition, &id.entry_id).await? {
            Some(_) => Ok(()),
            None => Err(AdminError::NotFound(id.to_string())),
        }
    }

    /// Puts every dead letter back into the outbox; returns those replayed (a dead letter
    /// another admin replays or drops meanwhile is skipped, not doubled).
    pub async fn replay_all(&self) -> Result<Vec<DeadId>, AdminError> {
        let mut replayed = Vec::new();
        for entry in self.store.dead_entries(&keys::ALL_PARTITIONS).await? {
            if self
                .store
                .replay_dead(entry.partition, &entry.entry_id)
                .await?
                .is_some()
            {
                replayed.push(DeadId {
                    partition: entry.partition,
                    entry_id: entry.entry_id,
                });
            }
        }
        Ok(replayed)
    }

    /// Deletes one dead letter for good.
    pub async fn drop(&self, id: &DeadId) -> Result<(), AdminError> {
        if self.store.drop_dead(id.partition, &id.entry_id).await? {
            Ok(())
        } else {
            Err(AdminError::NotFound(id.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_told_from_other_text() {
        assert!(is_stream_id("1718000000000-0"));
        assert!(is_stream_id("1-12"));
        for bad in [
            "",
            "-",
            "1718000000000",
            "1718-0-1",
            "abc-0",
            "1718000000000-",
            " 1-0",
        ] {
            assert!(!is_stream_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn previews_keep_the_first_line_and_mark_a_cut() {
        assert_eq!(preview("Short"), "Short");
        assert_eq!(preview("Line one\nline two"), "Line one…");
        assert_eq!(preview(&"é".repeat(70)), format!("{}…", "é".repeat(60)));
    }
}
