//! Assembles a running gateway from a [`Config`]: store, triage, connectors, workers, HTTP.
//!
//! Used by `switchboard run` and by the integration tests, so tests run the real thing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use switchboard_api::{
    Backoff, BuildContext, ChannelKind, Connector, ConnectorError, Desk, DeskSink, Gateway,
};

use crate::fanout::RedisBroadcastHub;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Instrument};

use crate::config::{Config, DeskRoute};
use crate::desk::beside::DesksBeside;
use crate::desk::inbox::DeskInbox;
use crate::desk::reminders::{DeskReminders, ReminderPolicy};
use crate::desk::DeskCourier;
use crate::files::Files;
use crate::learning::KnowledgeLoop;
use crate::lease::RedisLeases;
use crate::lifecycle::{supervise, ConnectorStatuses, GatewayTasks, RestartBackoff};
use crate::metrics::Metrics;
use crate::outbox::OutboxWorker;
use crate::pipeline::{Intake, TriageWorker};
use crate::server::{DeskChannelChecks, HealthState};
use crate::store::{keys, Store, StoreError};
use crate::triage::{Triage, TriageError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Redis did not answer.
    #[error("cannot reach Redis at {url}: {source}")]
    Redis {
        /// The URL, with any password removed.
        url: String,
        /// What failed.
        source: StoreError,
    },
    /// The knowledge base or triage settings are broken.
    #[error("triage: {0}")]
    Triage(#[from] TriageError),
    /// The agent desk could not be built from its config.
    #[error("{0}")]
    Desk(ConnectorError),
    /// A connector could not be built from its config.
    #[error("{0}")]
    Connector(ConnectorError),
    /// The archive `[retention]` names could not be set up.
    #[error("{0}")]
    Archive(String),
    /// The HTTP listener could not bind.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The configured address.
        address: String,
        /// What failed.
        source: std::io::Error,
    },
}

/// A gateway running in this process; dropping it stops every task.
pub struct RunningGateway {
    /// Where the public HTTP listener is bound.
    pub local_addr: SocketAddr,
    /// Where the admin listener (`/readyz`, `/metrics`) is bound.
    pub admin_addr: SocketAddr,
    /// The store, for inspection.
    pub store: Store,
    /// The triage stage (shared with the workers).
    pub triage: Arc<Triage>,
    /// This instance's metrics.
    pub metrics: Arc<Metrics>,
    /// The learning loop (knowledge-base candidates).
    pub learning: Arc<KnowledgeLoop>,
    tasks: GatewayTasks,
}

impl RunningGateway {
    /// Runs until SIGTERM or SIGINT (or a task that should not end ends), then shuts down
    /// gracefully (see [`crate::lifecycle`]).
    pub async fn wait(mut self) {
        self.tasks.until_stop_requested().await;
        self.shutdown().await;
    }

    /// Drains and stops this gateway as SIGTERM would.
    pub async fn shutdown(self) {
        self.tasks.shut_down().await;
    }
}

/// Removes the password from a Redis URL before it is shown anywhere.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

fn instance_name(config: &Config) -> String {
    config.gateway.instance_id.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "gateway".into());
        format!(
            "{host}-{}-{:04x}",
            std::process::id(),
            rand::random::<u16>()
        )
    })
}

/// Connects to Redis and sets up the consumer groups, trying again for up to
/// `redis.startup_wait_ms`: a Redis starting beside the gateway (compose, a reboot) refuses
/// connections, then answers LOADING while it reads its append-only file, and neither is a
/// reason to exit. Each failed attempt is logged; the last error is returned.
async fn connect_when_redis_is_ready(
    redis: &crate::config::RedisConfig,
) -> Result<Store, StoreError> {
    let url = redis.url.as_str();
    let command_timeout = Duration::from_millis(redis.command_timeout_ms);
    let give_up_at = std::time::Instant::now() + Duration::from_millis(redis.startup_wait_ms);
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    let mut pause = backoff.next_delay();
    let mut attempt = 1u32;
    loop {
        let connected = async {
            let store = Store::connect(url, command_timeout).await?;
            store.ensure_groups().await?;
            Ok::<Store, StoreError>(store)
        }
        .await;
        match connected {
            Ok(store) => return Ok(store),
            Err(error) if std::time::Instant::now() + pause < give_up_at => {
                warn!(%error, attempt, retry_in = ?pause, url = %redact_url(url), "Redis is not ready yet; waiting for it");
                tokio::time::sleep(pause).await;
                pause = backoff.next_delay();
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The agent desk to mirror escalations into, and its default channel.
pub struct DeskSetup {
    /// The desk (built from its `[desk.<name>]` section, or a test double).
    pub desk: Arc<dyn Desk>,
    /// Where new threads go unless a routing rule says otherwise.
    pub default_channel: String,
}

/// Checks at start that the desk can post in its default channel and every routed one, so a
/// routing rule naming a channel the app is not in is reported before an escalation needs it.
async fn check_desk_channels(
    desk: Arc<dyn Desk>,
    default_channel: String,
    routes: Vec<DeskRoute>,
    results: DeskChannelChecks,
) {
    let checks =
        crate::desk::channels::check_channels(desk.as_ref(), "desk", &default_channel, &routes)
            .await;
    for check in checks {
        let channel = check.channel;
        let status = match check.problem {
            None => "ok".to_owned(),
            Some(error) if check.is_default => {
                error!(%channel, %error, "the desk's default channel cannot take escalations");
                format!("error: {error}")
            }
            Some(error) => {
                warn!(%channel, %error, "a routed desk channel cannot take escalations; they fall back to the default channel");
                format!("falls back to {default_channel}: {error}")
            }
        };
        if let Ok(mut results) = results.lock() {
            results.insert(channel, status);
        }
    }
    // Every gateway task runs for the life of the process; `wait` treats an end as a failure.
    std::future::pending::<()>().await
}

/// Connects, builds everything and starts serving; returns once the listener is bound.
pub async fn start(config: Config) -> Result<RunningGateway, StartError> {
    start_with_desk(config, None).await
}

/// Like [`start`], with the agent desk given (a test double) rather than built from config.
pub async fn start_with_desk(
    mut config: Config,
    desk: Option<DeskSetup>,
) -> Result<RunningGateway, StartError> {
    let redis_error = |source| StartError::Redis {
        url: redact_url(&config.redis.url),
        source,
    };
    let store = connect_when_redis_is_ready(&config.redis)
        .await
        .map_err(redis_error)?
        .with_case_rules(config.case_rules());
    for (stream, entries) in store.unpartitioned_work().await.map_err(redis_error)? {
        warn!(
            stream,
            entries,
            "this Redis holds work in the key layout of a build before partitions; this build does \
             not read it (drain it with the earlier build, or delete the old keys)"
        );
    }
    let triage = Arc::new(Triage::from_config(&config.triage, &config.base_dir)?);
    let files = Arc::new(
        Files::new(store.clone(), &config.files)
            .await
            .map_err(redis_error)?,
    );

    let consumer = instance_name(&config);
    let leases = Arc::new(RedisLeases::new(store.clone(), consumer.clone()));
    let broadcast = Arc::new(RedisBroadcastHub::new(store.clone(), consumer.clone()));
    let build_context = BuildContext {
        instance: consumer.clone(),
        max_file_bytes: config.files.max_bytes,
        upload_quota: Some(files.clone()),
        leases: leases.clone(),
        broadcast: broadcast.clone(),
        shared: Arc::new(crate::shared::RedisShared::new(store.clone())),
    };
    let connectors: Vec<Arc<dyn Connector>> = std::mem::take(&mut config.connectors)
        .build(&build_context)
        .map_err(StartError::Connector)?;
    let mut desks_beside = false;
    let desk = match (desk, config.desk.take_enabled()) {
        (Some(given), _) => Some(given),
        (None, Some(section)) => {
            let default_channel = section.config.default_channel().to_owned();
            let lead = section
                .config
                .build(&build_context)
                .map_err(StartError::Desk)?;
            let followers = (config.desk.take_followers().into_iter())
                .map(|section| section.config.build(&build_context))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StartError::Desk)?;
            desks_beside = !followers.is_empty();
            let desk: Arc<dyn Desk> = if desks_beside {
                Arc::new(DesksBeside::new(lead, followers))
            } else {
                lead
            };
            Some(DeskSetup {
                desk,
                default_channel,
            })
        }
        (None, None) => None,
    };
    // Taken before `made()`, so a shutting-down instance gives this lease up with the others.
    let archive_lease = (config.retention.run_every())
        .map(|_| switchboard_api::LeaseSource::lease(leases.as_ref()));
    let leases = leases.made();
    let fanout_relays = broadcast.relays();
    let by_channel: HashMap<ChannelKind, Arc<dyn Connector>> = connectors
        .iter()
        .map(|connector| (connector.channel(), connector.clone()))
        .collect();

    let metrics = Arc::new(Metrics::default());
    let gateway: Arc<dyn Gateway> = Arc::new(
        Intake::new(store.clone(), config.gateway.max_message_bytes)
            .with_metrics(metrics.clone())
            .with_files(files.clone()),
    );
    if config.files.public_base_url.is_none() {
        let outside: Vec<&str> = (connectors.iter())
            .filter(|connector| !connector.capabilities().opens_relative_links)
            .map(|connector| connector.channel().as_str())
            .collect();
        if !outside.is_empty() {
            warn!(
                channels = %outside.join(", "),
                "files.public_base_url is not set: file links sent on these channels are relative paths their customers cannot open"
            );
        }
    }
    let desk_channels = DeskChannelChecks::default();
    let connector_statuses = ConnectorStatuses::default();
    let draining = Arc::new(AtomicBool::new(false));
    let mut router = crate::server::public_router(gateway.clone(), &connectors);
    let admin_router = crate::server::admin_router(
        HealthState {
            store: store.clone(),
            connectors: connectors.clone(),
            connector_statuses: connector_statuses.clone(),
            draining: draining.clone(),
            desk: desk.as_ref().map(|setup| setup.desk.clone()),
            metrics: metrics.clone(),
            desk_channels: desk_channels.clone(),
        },
        config.gateway.admin_token.clone(),
    );
    if desk.is_none() {
        error!(
            "no agent desk is enabled: escalated customers reach no one. They are told no person \
             can join and the AI keeps answering; enable a desk ([desk.<name>]) to staff escalations"
        );
    }
    let learning = Arc::new(KnowledgeLoop::new(store.clone(), Some(triage.clone())));
    // Learned entries live in Redis, shared by every instance; the watcher retries a failure.
    if let Err(error) = learning.reload().await {
        warn!(%error, "cannot read the learned knowledge-base entries yet; answering from the knowledge folder until they load");
    }
    let desk_sink: Arc<dyn DeskSink> = Arc::new({
        let inbox = DeskInbox::new(store.clone(), metrics.clone())
            .with_learning(learning.clone())
            .with_files(files.clone());
        if desks_beside {
            inbox.with_briefing_refresh_on_reply()
        } else {
            inbox
        }
    });
    router = router.merge(files.clone().router());
    if let Some(routes) = desk
        .as_ref()
        .and_then(|setup| setup.desk.routes(desk_sink.clone()))
    {
        router = router.merge(routes);
    }
    let listener = tokio::net::TcpListener::bind(&config.gateway.listen)
        .await
        .map_err(|source| StartError::Listen {
            address: config.gateway.listen.clone(),
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
        address: config.gateway.listen.clone(),
        source,
    })?;
    let admin_listener = tokio::net::TcpListener::bind(&config.gateway.admin_listen)
        .await
        .map_err(|source| StartError::Listen {
            address: config.gateway.admin_listen.clone(),
            source,
        })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| StartError::Listen {
            address: config.gateway.admin_listen.clone(),
            source,
        })?;
    if !admin_addr.ip().is_loopback() && config.gateway.admin_token.is_none() {
        warn!(%admin_addr, "the admin listener is reachable from the network without a token; set gateway.admin_token_env unless only your monitoring network can reach it");
    }

    let claim_idle = Duration::from_millis(config.outbox.claim_idle_ms);
    let block = Duration::from_secs(1);
    let worker_count = config.gateway.workers;
    // Each worker blocks on its own connections, so one's wait never stalls another.
    let mut worker_stores = Vec::with_capacity(worker_count);
    for _ in 0..worker_count {
        worker_stores.push((
            store.dedicated(block).await.map_err(redis_error)?,
            store.dedicated(block).await.map_err(redis_error)?,
        ));
    }

    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut workers = JoinSet::new();
    for relay in fanout_relays {
        tasks.spawn(relay);
    }
    let stop_accepting = shutdown.clone().cancelled_owned();
    tasks.spawn(async move {
        // Peer addresses feed the web chat's per-IP rate limit.
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        // Chat frames are small writes: without NODELAY, Nagle's algorithm meets the client's
        // delayed ACK and holds replies for ~40 ms (measured over the wire: p50 47 ms -> 2 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
            }
        });
        let serving = axum::serve(listener, service).with_graceful_shutdown(stop_accepting);
        if let Err(error) = serving.await {
            error!(%error, "http listener stopped");
        }
        // Open sockets are still being closed; the task must not read as a failure.
        std::future::pending::<()>().await
    });
    tasks.spawn(async move {
        if let Err(error) = axum::serve(admin_listener, admin_router).await {
            error!(%error, "admin listener stopped");
        }
    });
    let courier = desk.as_ref().map(|setup| {
        Arc::new(
            DeskCourier::new(
                store.clone(),
                setup.desk.clone(),
                setup.default_channel.clone(),
            )
            .with_routes(config.desk.routes.clone())
            .with_files(files.clone()),
        )
    });
    for (index, (triage_store, outbox_store)) in worker_stores.into_iter().enumerate() {
        // The first keeps the instance's own name, so a one-worker instance reads as before.
        let worker_name = match index {
            0 => consumer.clone(),
            _ => format!("{consumer}-{index}"),
        };
        let partitions = keys::partitions_of_worker(index, worker_count);
        let mut triage_worker = TriageWorker::new(
            triage_store,
            triage.clone(),
            worker_name.clone(),
            claim_idle,
        )
        .with_metrics(metrics.clone())
        .with_partitions(partitions.clone());
        let mut outbox_worker = OutboxWorker::new(
            outbox_store,
            by_channel.clone(),
            config.outbox.clone(),
            worker_name,
        )
        .with_metrics(metrics.clone())
        .with_files(files.clone())
        .with_partitions(partitions);
        if let Some(courier) = &courier {
            triage_worker = triage_worker.with_desk();
            outbox_worker = outbox_worker.with_desk(courier.clone());
        } else if let Some(notice) = &config.desk.unstaffed_notice {
            triage_worker = triage_worker.with_unstaffed_notice(notice.clone());
        }
        workers.spawn(
            triage_worker
                .run(shutdown.clone())
                .instrument(tracing::info_span!("triage", worker = index)),
        );
        workers.spawn(
            outbox_worker
                .run(shutdown.clone())
                .instrument(tracing::info_span!("outbox", worker = index)),
        );
    }
    if let Some(setup) = desk {
        let policy = ReminderPolicy::new(&config.desk.reminders, &config.desk.routes);
        tasks.spawn(
            DeskReminders::new(store.clone(), metrics.clone(), policy)
                .run()
                .instrument(tracing::info_span!("desk_reminders")),
        );
        tasks.spawn(
            check_desk_channels(
                setup.desk.clone(),
                setup.default_channel.clone(),
                config.desk.routes.clone(),
                desk_channels.clone(),
            )
            .instrument(tracing::info_span!("desk")),
        );
        let desk = setup.desk;
        tasks.spawn(
            async move {
                if let Err(error) = desk.run(desk_sink).await {
                    error!(%error, "agent desk stopped; customer channels keep running");
                }
                std::future::pending::<()>().await
            }
            .instrument(tracing::info_span!("desk")),
        );
    }
    tasks.spawn(
        crate::cases::CaseSweeper::new(store.clone(), metrics.clone())
            .run()
            .instrument(tracing::info_span!("cases")),
    );
    if let (Some(every), Some(lease), Some(archive)) = (
        config.retention.run_every(),
        archive_lease,
        crate::admin::archive_of(&config).map_err(StartError::Archive)?,
    ) {
        let scheduled = crate::archive::ScheduledArchive::new(
            archive,
            store.clone(),
            lease,
            metrics.clone(),
            every,
            config.retention.archive_after_ms(),
        );
        tasks.spawn(scheduled.run().instrument(tracing::info_span!("archive")));
    }
    tasks.spawn(
        learning
            .clone()
            .watch_version(Duration::from_secs(2))
            .instrument(tracing::info_span!("learning")),
    );
    let mut connector_runs = JoinSet::new();
    for connector in &connectors {
        let span = tracing::info_span!("connector", channel = %connector.channel());
        connector_runs.spawn(
            supervise(
                connector.clone(),
                gateway.clone(),
                connector_statuses.clone(),
                RestartBackoff::default(),
            )
            .instrument(span),
        );
    }
    let tasks = GatewayTasks {
        shutdown,
        draining,
        grace: Duration::from_millis(config.gateway.shutdown_grace_ms),
        workers,
        connector_runs,
        connectors,
        leases,
        background: tasks,
    };
    info!(%local_addr, %admin_addr, instance = %consumer, "switchboard is running");
    Ok(RunningGateway {
        local_addr,
        admin_addr,
        store,
        triage,
        metrics,
        learning,
        tasks,
    })
}
