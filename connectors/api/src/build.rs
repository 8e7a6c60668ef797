//! Building a connector from its config section, as Vector builds a source from its config.
//!
//! Each channel's config type implements [`ConnectorConfig`] in the channel's own crate; the
//! core parses `[connectors.<name>]` into it (one line in the core's registry), validates it,
//! resolves its secrets and, when it is enabled, builds the connector with a [`BuildContext`]
//! holding what the gateway shares with every connector. Building opens no connection, so
//! `check-config` can build nothing and still report every problem.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Connector, ConnectorError, Desk, MemoryLease, MemoryState, PollLease, SharedState, UploadQuota,
};

/// Problems found in a config, each with its dotted key path (`connectors.email.imap.host`).
pub type ConfigProblems = Vec<(String, String)>;

/// One channel's `[connectors.<name>]` section, parsed.
pub trait ConnectorConfig: Send + Sync + fmt::Debug {
    /// Whether the gateway runs this channel (`enabled = true`); disabled sections are still
    /// parsed and checked as far as their own `validate` chooses.
    fn enabled(&self) -> bool;

    /// Checks the settings offline, reporting every problem under `key` (`connectors.<name>`).
    fn validate(&self, key: &str, problems: &mut ConfigProblems);

    /// Reads the secrets the section names (`*_env`) from the environment.
    fn resolve_secrets(&mut self, key: &str, problems: &mut ConfigProblems);

    /// Builds the connector; opens no connection (network work starts in `run`).
    fn build(self: Box<Self>, cx: &BuildContext) -> Result<Arc<dyn Connector>, ConnectorError>;

    /// What `switchboard run` prints after the listening address, e.g. where a demo page is.
    fn startup_note(&self) -> Option<&'static str> {
        None
    }
}

/// The agent desk's `[desk.<name>]` section, parsed; the desk's crate implements it as a
/// channel's crate implements [`ConnectorConfig`].
pub trait DeskConfig: Send + Sync + fmt::Debug {
    /// Whether the gateway runs this desk (`enabled = true`).
    fn enabled(&self) -> bool;

    /// Checks the settings offline, reporting every problem under `key` (`desk.<name>`).
    fn validate(&self, key: &str, problems: &mut ConfigProblems);

    /// Reads the secrets the section names (`*_env`) from the environment.
    fn resolve_secrets(&mut self, key: &str, problems: &mut ConfigProblems);

    /// Where new threads go unless a routing rule says otherwise; named at `<key>.channel`.
    fn default_channel(&self) -> &str;

    /// Builds the desk; opens no connection (network work starts in `run`).
    fn build(self: Box<Self>, cx: &BuildContext) -> Result<Arc<dyn Desk>, ConnectorError>;

    /// Whether the desk can run beside one that opens its own threads, showing that desk's
    /// threads ([`Desk::follow_thread`]); a desk whose platform picks thread ids cannot.
    fn follows(&self) -> bool {
        false
    }
}

/// Hands polling connectors their lease (see [`PollLease`]); the core keeps every lease it
/// made, to give them up at shutdown.
pub trait LeaseSource: Send + Sync {
    /// A new lease handle in this instance's name.
    fn lease(&self) -> Arc<dyn PollLease>;
}

impl LeaseSource for MemoryLease {
    fn lease(&self) -> Arc<dyn PollLease> {
        Arc::new(self.clone())
    }
}

/// Offers a connector's frames to the live sockets other gateway instances hold.
///
/// Behind a load balancer a customer's socket is open on one instance while any instance may
/// deliver the reply; without this the customer would see it only after reconnecting.
#[async_trait]
pub trait Broadcast: Send + Sync {
    /// Offers `frame` to the other instances' sockets of `conversation_key`; an error means
    /// they may not have it (the delivery is retried).
    async fn publish(&self, conversation_key: &str, frame: &str) -> Result<(), String>;
}

/// Takes the frames other instances published, to push them to this instance's sockets.
pub trait BroadcastReceiver: Send + Sync {
    /// A frame for the sockets of `conversation_key` arrived from another instance.
    fn receive(&self, conversation_key: &str, frame: &str);
}

/// The gateway's fan-out between instances, per channel.
pub trait BroadcastHub: Send + Sync {
    /// Joins `channel`'s fan-out: frames other instances publish reach `receiver`; the handle
    /// returned publishes this instance's frames.
    fn join(&self, channel: &str, receiver: Arc<dyn BroadcastReceiver>) -> Arc<dyn Broadcast>;
}

/// A [`BroadcastHub`] for a single instance: there is no one else to tell.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleInstance;

#[async_trait]
impl Broadcast for SingleInstance {
    async fn publish(&self, _conversation_key: &str, _frame: &str) -> Result<(), String> {
        Ok(())
    }
}

impl BroadcastHub for SingleInstance {
    fn join(&self, _channel: &str, _receiver: Arc<dyn BroadcastReceiver>) -> Arc<dyn Broadcast> {
        Arc::new(SingleInstance)
    }
}

/// What the gateway shares with every connector it builds.
#[derive(Clone)]
pub struct BuildContext {
    /// This gateway instance's name (its consumer name in Redis).
    pub instance: String,
    /// Largest file accepted from a customer or an agent (`files.max_bytes`).
    pub max_file_bytes: u64,
    /// The gateway's byte quotas on anonymous uploads, when it counts them.
    pub upload_quota: Option<Arc<dyn UploadQuota>>,
    /// Leases for platforms only one instance may poll.
    pub leases: Arc<dyn LeaseSource>,
    /// Fan-out of frames to live sockets on other instances.
    pub broadcast: Arc<dyn BroadcastHub>,
    /// State every instance sees (a desk's sessions and queue), under keys of the caller's.
    pub shared: Arc<dyn SharedState>,
}

impl BuildContext {
    /// A context for one instance in this process: in-memory leases, no fan-out, no quotas.
    pub fn single_instance(instance: impl Into<String>, max_file_bytes: u64) -> BuildContext {
        BuildContext {
            instance: instance.into(),
            max_file_bytes,
            upload_quota: None,
            leases: Arc::new(MemoryLease::default()),
            broadcast: Arc::new(SingleInstance),
            shared: Arc::new(MemoryState::default()),
        }
    }
}

impl fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildContext")
            .field("instance", &self.instance)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("upload_quota", &self.upload_quota.is_some())
            .finish_non_exhaustive()
    }
}
