//! A running gateway's tasks and their one way out: a connector supervisor, and the shutdown
//! path (SIGTERM or SIGINT) that drains instead of aborting.
//!
//! Shutdown, the way mini-redis hands one signal to every task: readiness turns 503 first (a
//! load balancer stops sending), the public listener stops accepting, connectors stop taking
//! inbound work and let go of what another instance can take at once (web chat sockets are
//! told to reconnect elsewhere, polling leases are released), and the workers finish the round
//! in hand within `gateway.shutdown_grace_ms`. Whatever is still unfinished stays pending in
//! its stream, and another instance takes it over after `outbox.claim_idle_ms`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_api::{Backoff, Connector, ConnectorError, Gateway, Health};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::lease::RedisPollLease;

/// What the supervisor knows of each connector, by channel name, for `/readyz`: absent while
/// it runs, a reason while it waits to restart or after it was stopped for good.
pub type ConnectorStatuses = Arc<Mutex<BTreeMap<String, Health>>>;

/// How long the supervisor waits before starting a failed connector again.
#[derive(Debug, Clone, Copy)]
pub struct RestartBackoff {
    /// The first wait; it doubles with each failure in a row.
    pub first: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// A run that lasted this long was healthy: the next failure starts afresh.
    pub healthy_run: Duration,
}

impl Default for RestartBackoff {
    fn default() -> Self {
        RestartBackoff {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            healthy_run: Duration::from_secs(60),
        }
    }
}

/// Runs `connector`, starting it again with backoff when it fails with a retryable error (or
/// its platform connection just ended), and stopping it for good on refused credentials or a
/// permanent error; both are logged and shown in `/readyz`. The other connectors keep running.
pub async fn supervise(
    connector: Arc<dyn Connector>,
    gateway: Arc<dyn Gateway>,
    statuses: ConnectorStatuses,
    policy: RestartBackoff,
) {
    let channel = connector.channel().as_str().to_owned();
    let set_status = |status: Option<Health>| {
        let mut statuses = statuses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match status {
            Some(health) => statuses.insert(channel.clone(), health),
            None => statuses.remove(&channel),
        };
    };
    let mut backoff = Backoff::new(policy.first, policy.cap);
    loop {
        let started = Instant::now();
        let result = connector.run(gateway.clone()).await;
        if started.elapsed() >= policy.healthy_run {
            backoff.reset();
        }
        let why = match result {
            Ok(()) => "its platform connection ended".to_owned(),
            Err(error @ (ConnectorError::Auth { .. } | ConnectorError::Permanent { .. })) => {
                error!(%error, "connector stopped for good; the others keep running");
                set_status(Some(Health::Down(format!("stopped: {error}"))));
                return;
            }
            Err(error) => error.to_string(),
        };
        let pause = backoff.next_delay();
        warn!(reason = %why, restart_in = ?pause, "connector failed; restarting it");
        set_status(Some(Health::Down(format!(
            "restarting in {pause:?} after: {why}"
        ))));
        tokio::time::sleep(pause).await;
        set_status(None);
    }
}

/// Every task of a running gateway, grouped by how shutdown treats it.
pub(crate) struct GatewayTasks {
    /// Cancelled once: the public listener and the workers watch it.
    pub(crate) shutdown: CancellationToken,
    /// Set first, so `/readyz` answers 503 while the rest drains.
    pub(crate) draining: Arc<AtomicBool>,
    /// How long the workers may take to finish the work in hand.
    pub(crate) grace: Duration,
    /// Triage and delivery workers: given the grace period.
    pub(crate) workers: JoinSet<()>,
    /// Connector runs (supervised): stopped first.
    pub(crate) connector_runs: JoinSet<()>,
    /// The connectors, told to let go once their runs are stopped.
    pub(crate) connectors: Vec<Arc<dyn Connector>>,
    /// Polling leases to give up, so another instance takes over at once.
    pub(crate) leases: Vec<Arc<RedisPollLease>>,
    /// Everything else (listeners, the desk, relays, watchers): ended last.
    pub(crate) background: JoinSet<()>,
}

impl GatewayTasks {
    /// Returns when SIGTERM or SIGINT arrives, or when a task ends (none should).
    pub(crate) async fn until_stop_requested(&mut self) {
        tokio::select! {
            _ = self.background.join_next() => error!("a gateway task ended unexpectedly; shutting down"),
            _ = self.workers.join_next() => error!("a worker ended unexpectedly; shutting down"),
            signal = stop_signal() => info!(signal, "shutting down"),
        }
    }

    /// Drains and stops everything (see the module doc); returns when done.
    pub(crate) async fn shut_down(mut self) {
        let started = Instant::now();
        self.draining.store(true, Ordering::SeqCst);
        self.shutdown.cancel();
        self.connector_runs.abort_all();
        while self.connector_runs.join_next().await.is_some() {}
        for connector in &self.connectors {
            connector.stop().await;
        }
        for lease in &self.leases {
            lease.release_all().await;
        }
        let drained = tokio::time::timeout(self.grace, async {
            while self.workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(grace = ?self.grace, "work still in hand after the grace period; another instance takes it over");
            self.workers.abort_all();
        }
        self.background.abort_all();
        info!(took = ?started.elapsed(), "shut down");
    }
}

/// Waits for SIGTERM (`docker stop`, Kubernetes, systemd) or SIGINT (ctrl-c).
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM; only ctrl-c stops the gateway gracefully");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_api::{ChannelKind, MemoryGateway, RecordingConnector};

    const POLLER: ChannelKind = ChannelKind::new("poller");

    fn fast() -> RestartBackoff {
        RestartBackoff {
            first: Duration::from_millis(5),
            cap: Duration::from_millis(20),
            healthy_run: Duration::from_secs(60),
        }
    }

    async fn status_of(statuses: &ConnectorStatuses) -> Option<Health> {
        statuses.lock().unwrap().get("poller").cloned()
    }

    #[tokio::test]
    async fn a_connector_failing_with_retryable_errors_is_started_again() {
        let transient = || ConnectorError::Transient {
            connector: "poller",
            detail: "502 from the platform".into(),
        };
        let connector = Arc::new(RecordingConnector::new(POLLER).with_run_failures(vec![
            transient(),
            transient(),
            transient(),
        ]));
        let statuses = ConnectorStatuses::default();
        let task = tokio::spawn(supervise(
            connector.clone(),
            Arc::new(MemoryGateway::default()),
            statuses.clone(),
            fast(),
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        while connector.runs() < 4 {
            assert!(Instant::now() < deadline, "not restarted");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // The fourth run goes on: healthy again, nothing reported.
        assert_eq!(status_of(&statuses).await, None);
        assert!(!task.is_finished());
        task.abort();
    }

    #[tokio::test]
    async fn a_connector_whose_credentials_are_refused_is_stopped_and_reported() {
        let connector = Arc::new(RecordingConnector::new(POLLER).with_run_failures(vec![
            ConnectorError::Auth {
                connector: "poller",
                detail: "bot token rejected by getMe (401)".into(),
            },
        ]));
        let statuses = ConnectorStatuses::default();
        tokio::time::timeout(
            Duration::from_secs(5),
            supervise(
                connector.clone(),
                Arc::new(MemoryGateway::default()),
                statuses.clone(),
                fast(),
            ),
        )
        .await
        .expect("the supervisor gives up at once");
        assert_eq!(connector.runs(), 1, "never restarted");
        match status_of(&statuses).await {
            Some(Health::Down(reason)) => {
                assert!(
                    reason.starts_with("stopped: ") && reason.contains("401"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
