//! How each delivery target (a customer channel, or the desk) is faring, as this instance's
//! outbox workers see it: for `/readyz` (a target failing for longer than
//! `outbox.unhealthy_after_ms`) and for the gauges on `/metrics`.
//!
//! A target is failing from its first failed attempt until an attempt to it gets through, or
//! until nothing waits for it any more (its last waiting delivery was given up on). The age of
//! the oldest waiting delivery comes from Redis (the waiting sets every instance shares), read
//! by each worker for its partitions now and then.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::store::WaitingCount;

use super::humane_duration;

/// What is known of one target.
#[derive(Debug, Default)]
struct TargetState {
    /// When its deliveries started failing with none getting through since (epoch ms).
    failing_since_ms: Option<u64>,
    /// The last failed attempt (epoch ms) and what the platform said.
    last_failure: Option<(u64, String)>,
    /// When the oldest delivery waiting for it was queued, per partition (epoch ms).
    oldest_queued_by_partition: BTreeMap<usize, u64>,
}

/// A target that has been failing for longer than `outbox.unhealthy_after_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingTarget {
    /// The channel name, or `desk`.
    pub target: &'static str,
    /// How long no delivery to it has got through.
    pub failing_for: Duration,
    /// What the platform said last.
    pub last_error: String,
}

/// The targets' state, shared by an instance's outbox workers and its HTTP listener.
#[derive(Debug)]
pub struct DeliveryHealth {
    unhealthy_after_ms: AtomicU64,
    targets: Mutex<BTreeMap<&'static str, TargetState>>,
}

impl Default for DeliveryHealth {
    fn default() -> Self {
        DeliveryHealth {
            unhealthy_after_ms: AtomicU64::new(
                crate::config::OutboxConfig::default().unhealthy_after_ms,
            ),
            targets: Mutex::default(),
        }
    }
}

impl DeliveryHealth {
    /// From `outbox.unhealthy_after_ms` (the workers pass on their config).
    pub fn set_unhealthy_after(&self, after: Duration) {
        self.unhealthy_after_ms
            .store(after.as_millis() as u64, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, TargetState>> {
        self.targets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A delivery to `target` got through: it is not failing.
    pub fn delivered(&self, target: &'static str) {
        if let Some(state) = self.lock().get_mut(target) {
            state.failing_since_ms = None;
        }
    }

    /// A retryable attempt to `target` failed at `now_ms` with `error`.
    pub fn failed(&self, target: &'static str, error: &str, now_ms: u64) {
        let mut targets = self.lock();
        let state = targets.entry(target).or_default();
        state.failing_since_ms.get_or_insert(now_ms);
        state.last_failure = Some((now_ms, error.to_owned()));
    }

    /// Takes in what waits in some partitions, read from Redis from `read_at_ms` on; returns
    /// every known target's oldest waiting delivery (when it was queued, epoch ms).
    pub fn waiting(
        &self,
        counts: &[WaitingCount],
        read_at_ms: u64,
    ) -> Vec<(&'static str, Option<u64>)> {
        let mut targets = self.lock();
        for count in counts {
            let state = targets.entry(count.target).or_default();
            match count.oldest_queued_ms {
                Some(queued) if count.count > 0 => {
                    state
                        .oldest_queued_by_partition
                        .insert(count.partition, queued);
                }
                _ => {
                    state.oldest_queued_by_partition.remove(&count.partition);
                }
            }
        }
        targets
            .iter_mut()
            .map(|(target, state)| {
                let oldest = state.oldest_queued_by_partition.values().min().copied();
                // Nothing waits any more (given up on, or delivered by another instance):
                // nothing is failing here. A failure newer than the read may have parked
                // something the read missed, so it keeps the state.
                let failed_after_read = state
                    .last_failure
                    .as_ref()
                    .is_some_and(|(at, _)| *at >= read_at_ms);
                if oldest.is_none() && !failed_after_read {
                    state.failing_since_ms = None;
                }
                (*target, oldest)
            })
            .collect()
    }

    /// How long each target has been failing (zero when it is not).
    pub fn failing_for(&self, now_ms: u64) -> Vec<(&'static str, Duration)> {
        self.lock()
            .iter()
            .map(|(target, state)| {
                let since = state.failing_since_ms.unwrap_or(now_ms);
                (*target, Duration::from_millis(now_ms.saturating_sub(since)))
            })
            .collect()
    }

    /// The targets failing for longer than `outbox.unhealthy_after_ms`.
    pub fn unhealthy(&self, now_ms: u64) -> Vec<FailingTarget> {
        let limit = self.unhealthy_after_ms.load(Ordering::Relaxed);
        self.lock()
            .iter()
            .filter_map(|(target, state)| {
                let since = state.failing_since_ms?;
                let failing_for = now_ms.saturating_sub(since);
                (failing_for > limit).then(|| FailingTarget {
                    target,
                    failing_for: Duration::from_millis(failing_for),
                    last_error: state
                        .last_failure
                        .as_ref()
                        .map(|(_, error)| error.clone())
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// For `/readyz`: each unhealthy target with how long and why, or `None` when there is none.
    pub fn readyz_report(&self, now_ms: u64) -> Option<serde_json::Value> {
        let failing = self.unhealthy(now_ms);
        if failing.is_empty() {
            return None;
        }
        let report: serde_json::Map<String, serde_json::Value> = failing
            .into_iter()
            .map(|failing| {
                let text = format!(
                    "down: no delivery got through for {}: {}",
                    humane_duration(failing.failing_for),
                    failing.last_error
                );
                (failing.target.to_owned(), text.into())
            })
            .collect();
        Some(report.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(partition: usize, oldest: Option<u64>) -> WaitingCount {
        WaitingCount {
            partition,
            target: "desk",
            count: usize::from(oldest.is_some()),
            oldest_queued_ms: oldest,
        }
    }

    #[test]
    fn a_target_is_unhealthy_after_failing_continuously_for_longer_than_the_limit() {
        let health = DeliveryHealth::default();
        health.set_unhealthy_after(Duration::from_secs(60));
        health.failed("desk", "desk: HTTP 503", 1_000);
        health.failed("desk", "desk: HTTP 503", 50_000);
        assert!(
            health.unhealthy(60_000).is_empty(),
            "59 s is not yet too long"
        );
        let failing = health.unhealthy(61_001);
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].failing_for, Duration::from_millis(60_001));
        assert_eq!(failing[0].last_error, "desk: HTTP 503");
        let report = health.readyz_report(61_001).unwrap().to_string();
        assert!(report.contains("desk") && report.contains("1m"), "{report}");

        health.delivered("desk");
        assert!(
            health.unhealthy(120_000).is_empty(),
            "one delivery got through"
        );
        assert!(health.readyz_report(120_000).is_none());
    }

    #[test]
    fn a_failing_target_with_nothing_left_waiting_is_not_failing() {
        let health = DeliveryHealth::default();
        health.set_unhealthy_after(Duration::from_secs(1));
        health.failed("desk", "down", 1_000);
        let oldest = health.waiting(&[waiting(3, Some(500)), waiting(4, None)], 2_000);
        assert_eq!(oldest, vec![("desk", Some(500))]);
        assert_eq!(health.unhealthy(5_000).len(), 1);
        // A read that began before the last failure does not clear it.
        health.failed("desk", "down", 6_000);
        health.waiting(&[waiting(3, None)], 5_500);
        assert_eq!(health.unhealthy(7_000).len(), 1);
        // Given up on: nothing waits, nothing fails.
        assert_eq!(
            health.waiting(&[waiting(3, None)], 7_000),
            vec![("desk", None)]
        );
        assert!(health.unhealthy(8_000).is_empty());
    }
}
