//! The running gateway archives by itself (`retention.run_every_minutes`), one instance at a
//! time.
//!
//! The instance holding the `archive` lease runs every period and keeps the lease across
//! periods, so the role stays put; should it die, the lease expires and another instance
//! takes over. The lease is renewed while a run works: a run whose lease is lost (the
//! instance stalled past its TTL, another took over) is dropped where it stands, which the
//! archive is built to survive like a crash (the next run finishes it), so two instances
//! never work on the archive at once. A failing run (the archive unreachable) removes from
//! Redis only what it had committed to the archive before; it is logged, counted, and the next
//! period tries again.

use std::sync::Arc;
use std::time::Duration;

use switchboard_api::PollLease;
use tracing::{error, info, warn};

use super::Archive;
use crate::metrics::Metrics;
use crate::model::now_ms;
use crate::store::Store;

/// The lease's name in Redis.
const LEASE: &str = "archive";
/// The shortest lease: a short period (compressed time in tests) must not let a busy
/// instance lose it between two renewals.
const MIN_LEASE: Duration = Duration::from_secs(5);

/// Archives what is due every period, while this instance holds the archive lease.
pub struct ScheduledArchive {
    archive: Archive,
    store: Store,
    lease: Arc<dyn PollLease>,
    metrics: Arc<Metrics>,
    every: Duration,
    after_ms: u64,
}

impl ScheduledArchive {
    /// Runs `archive` every `every` for conversations resolved `after_ms` ago.
    pub fn new(
        archive: Archive,
        store: Store,
        lease: Arc<dyn PollLease>,
        metrics: Arc<Metrics>,
        every: Duration,
        after_ms: u64,
    ) -> ScheduledArchive {
        ScheduledArchive {
            archive,
            store,
            lease,
            metrics,
            every,
            after_ms,
        }
    }

    /// Two periods: the holder renews it at every period, and a dead holder's role passes on
    /// within two.
    fn lease_ttl(&self) -> Duration {
        (self.every * 2).max(MIN_LEASE)
    }

    /// Runs for as long as the gateway does.
    pub async fn run(self) {
        loop {
            if self.lease.acquire(LEASE, self.lease_ttl()).await {
                self.run_once().await;
            }
            tokio::time::sleep(self.every).await;
        }
    }

    /// One run, kept under the lease; returns whether it completed.
    pub async fn run_once(&self) -> bool {
        let ttl = self.lease_ttl();
        let keep_lease = async {
            loop {
                tokio::time::sleep(ttl / 3).await;
                if !self.lease.renew(LEASE, ttl).await {
                    return;
                }
            }
        };
        let outcome = tokio::select! {
            result = self.archive.run_after_ms(&self.store, now_ms(), self.after_ms) => result,
            () = keep_lease => {
                warn!("archive lease lost during a run; the run is stopped, the next one \
                       finishes it");
                return false;
            }
        };
        match outcome {
            Ok(report) => {
                self.metrics
                    .archive_runs
                    .get_or_create(&Metrics::label("outcome", "ok"))
                    .inc();
                self.metrics
                    .archived_conversations
                    .inc_by(report.archived + report.finished_from_earlier_run);
                info!(
                    archived = report.archived,
                    finished_from_earlier_run = report.finished_from_earlier_run,
                    changed_meanwhile = report.changed_meanwhile,
                    segments = report.segments,
                    uncommitted_segments_removed = report.uncommitted_segments_removed,
                    case_events_trimmed = report.case_events_trimmed,
                    "archive run"
                );
                true
            }
            Err(failure) => {
                self.metrics
                    .archive_runs
                    .get_or_create(&Metrics::label("outcome", "failed"))
                    .inc();
                error!(
                    error = %failure,
                    retry_in = ?self.every,
                    "archive run failed; what it had not committed to the archive stays in \
                     Redis, the next period tries again"
                );
                false
            }
        }
    }
}
