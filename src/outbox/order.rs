//! Deliveries to one target of a conversation (its customer's channel, or its desk thread)
//! arrive in the order they were queued, however long a platform is down.
//!
//! A delivery that fails, and every later one to the same target, joins the conversation's
//! line for that target (see `keys::delivery_line`), named by its first outbox id: ids of one
//! partition's stream grow with time, so they give the order. Only the front of the line is
//! tried; the others wait, parked until the front is due again. Waiting on the line rather than
//! on times alone keeps the order when retries and the entries behind them come back from the
//! delayed set in the same moment, which a long outage makes certain to happen.

use crate::store::DeliveryLine;

/// How soon an entry behind a front that is being sent right now (not parked) looks again:
/// as often as parked retries are put back.
const RECHECK_MS: u64 = 200;

/// A stream id as a pair that orders like the ids (`1718000000000-12` → (1718000000000, 12)).
fn stream_order(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Whether an entry may be tried now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// It is at the front of its line, or there is no line: try it.
    Go,
    /// Something queued before it waits: park it until then (epoch ms).
    WaitUntil(u64),
}

/// One target's line as a batch sees it: read at the start, kept up to date through the batch.
#[derive(Debug, Clone, Default)]
pub(super) struct Line {
    /// The entries in line, by their first outbox ids, oldest first.
    waiting: Vec<(u64, u64)>,
    /// When the front is tried again, if it failed recently.
    front_due_ms: Option<u64>,
    /// Set when an entry of this batch failed: everything after it waits until then.
    failed_until_ms: Option<u64>,
}

impl Line {
    /// The line as read from Redis.
    pub fn from_store(line: DeliveryLine) -> Line {
        let mut waiting: Vec<(u64, u64)> = line
            .origins
            .iter()
            .filter_map(|id| stream_order(id))
            .collect();
        waiting.sort_unstable();
        Line {
            waiting,
            front_due_ms: line.front_due_ms,
            failed_until_ms: None,
        }
    }

    /// Whether the entry first queued as `origin` may be tried at `now_ms`.
    pub fn turn(&self, origin: &str, now_ms: u64) -> Turn {
        if let Some(until) = self.failed_until_ms {
            // Strictly after the entry it waits for.
            return Turn::WaitUntil(until + 1);
        }
        match (self.waiting.first(), stream_order(origin)) {
            (Some(front), Some(own)) if *front < own => {
                let front_due = self.front_due_ms.map_or(0, |due| due + 1);
                Turn::WaitUntil(front_due.max(now_ms + RECHECK_MS))
            }
            _ => Turn::Go,
        }
    }

    /// The entry first queued as `origin` left the line (delivered or given up on).
    pub fn left(&mut self, origin: &str) {
        if let Some(own) = stream_order(origin) {
            self.waiting.retain(|waiting| *waiting != own);
        }
    }

    /// The entry just tried failed and is due again at `due_ms`.
    pub fn failed(&mut self, due_ms: u64) {
        self.failed_until_ms = Some(due_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(origins: &[&str], front_due_ms: Option<u64>) -> Line {
        Line::from_store(DeliveryLine {
            origins: origins.iter().map(|id| id.to_string()).collect(),
            front_due_ms,
        })
    }

    #[test]
    fn only_the_oldest_entry_in_line_is_tried() {
        // Read back in any order; ids compare as numbers, not text.
        let line = line(&["1000-10", "1000-9", "999-0"], Some(5_000));
        assert_eq!(line.turn("999-0", 4_000), Turn::Go);
        assert_eq!(line.turn("1000-9", 4_000), Turn::WaitUntil(5_001));
        // A new entry waits too; so does one whose front is being sent now (not parked).
        assert_eq!(line.turn("2000-0", 4_000), Turn::WaitUntil(5_001));
        assert_eq!(
            line.turn("2000-0", 9_000),
            Turn::WaitUntil(9_000 + RECHECK_MS)
        );
        // One older than the whole line (left behind when an earlier line expired) goes.
        assert_eq!(line.turn("500-0", 4_000), Turn::Go);
    }

    #[test]
    fn the_next_in_line_goes_once_the_front_left_and_waits_once_it_failed() {
        let mut line = line(&["1-0", "2-0", "3-0"], None);
        line.left("1-0");
        assert_eq!(line.turn("2-0", 10), Turn::Go);
        line.failed(700);
        assert_eq!(line.turn("3-0", 10), Turn::WaitUntil(701));
        assert_eq!(Line::default().turn("4-0", 10), Turn::Go, "no line");
    }
}
