//! One connection type for a single Redis and for a Redis Cluster, so the store's code is the
//! same on both. Which one a URL points at is asked of the server at connect time: an
//! operator moving to a cluster changes nothing in the config.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::StoreError;

/// A connection to one Redis (reconnecting) or to a cluster (routing each command to the
/// node that owns its slot, following MOVED and reconnecting). Cheap to clone; clones share
/// the underlying connections.
#[derive(Clone)]
pub enum RedisConnection {
    /// A single server.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// True on a cluster, where one command or pipeline may only touch one slot.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConnection::Cluster(_))
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_command(cmd),
            RedisConnection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(conn) => conn.get_db(),
            RedisConnection::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Connects to `url`, and through it to the whole cluster when the server is a cluster node.
pub(super) async fn connect(
    client: &redis::Client,
    url: &str,
    response_timeout: Duration,
) -> Result<RedisConnection, StoreError> {
    let mut single = manager(client, response_timeout).await?;
    if !cluster_enabled(&mut single, response_timeout).await? {
        return Ok(RedisConnection::Single(single));
    }
    let cluster = ClusterClient::builder(vec![url])
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(response_timeout)
        .retries(2)
        .build()?;
    match tokio::time::timeout(CONNECT_LIMIT, cluster.get_async_connection()).await {
        Ok(conn) => Ok(RedisConnection::Cluster(conn?)),
        Err(_) => Err(StoreError::Timeout(CONNECT_LIMIT)),
    }
}

/// A second connection like `conn`, for a worker whose blocking reads must not stall others.
/// A cluster is never read with blocking commands (see `streams`), so it shares its own.
pub(super) async fn dedicated(
    conn: &RedisConnection,
    client: &redis::Client,
    response_timeout: Duration,
) -> Result<RedisConnection, StoreError> {
    match conn {
        RedisConnection::Single(_) => Ok(RedisConnection::Single(
            manager(client, response_timeout).await?,
        )),
        RedisConnection::Cluster(_) => Ok(conn.clone()),
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_LIMIT: Duration = Duration::from_secs(5);

async fn cluster_enabled(
    conn: &mut ConnectionManager,
    limit: Duration,
) -> Result<bool, StoreError> {
    let mut info = redis::cmd("INFO");
    info.arg("cluster");
    match tokio::time::timeout(limit, info.query_async::<String>(conn)).await {
        Ok(Ok(info)) => Ok(info.contains("cluster_enabled:1")),
        // A server that refuses INFO (a restricted ACL user, a managed service) is taken as a
        // single server; one that cannot be reached is an error.
        Ok(Err(error)) if !error.is_io_error() && !error.is_connection_dropped() => Ok(false),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => Err(StoreError::Timeout(limit)),
    }
}

async fn manager(
    client: &redis::Client,
    response_timeout: Duration,
) -> Result<ConnectionManager, StoreError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    let connect = client.get_connection_manager_with_config(config);
    match tokio::time::timeout(CONNECT_LIMIT, connect).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Timeout(CONNECT_LIMIT)),
    }
}
