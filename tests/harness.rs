//! Test harness: gateways, configs and waiting, on the private servers of [`crate::servers`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchboard::app::RunningGateway;
use switchboard::config::Config;

pub use crate::servers::{RedisCluster, RedisServer, TempDir};

/// The repository's `config/` directory.
pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// A config for a gateway on a free port talking to `redis`, with extra TOML appended.
pub fn test_config(redis: &impl RedisUrl, extra: &str) -> Config {
    init_logging();
    let text = format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[redis]
url = "{}"
command_timeout_ms = 500
[outbox]
claim_idle_ms = 1000
initial_backoff_ms = 50
max_backoff_ms = 400
[triage]
knowledge_dir = "knowledge"
{extra}
"#,
        redis.url()
    );
    Config::parse(&text, config_dir())
        .unwrap_or_else(|problems| panic!("test config: {problems:?}"))
}

/// Sends the gateway's logs to the test's captured output (shown when a test fails).
pub fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,switchboard=debug".into()),
            )
            .with_test_writer()
            .try_init();
    });
}

/// Starts a whole gateway in this process.
pub async fn start_gateway(config: Config) -> RunningGateway {
    init_logging();
    switchboard::app::start(config)
        .await
        .unwrap_or_else(|error| panic!("gateway did not start: {error}"))
}

/// Polls `check` every 20 ms until it returns `Some` or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the body.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let json = [("content-type".to_owned(), "application/json".to_owned())];
    http_with_headers(addr, method, path, &json, body).await
}

/// Like [`http`], with the given headers.
pub async fn http_with_headers(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to gateway");
    let body = body.unwrap_or("");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// What a gateway's config needs of a test Redis.
pub trait RedisUrl {
    fn url(&self) -> String;
}

impl RedisUrl for RedisServer {
    fn url(&self) -> String {
        RedisServer::url(self)
    }
}

impl RedisUrl for TestRedis {
    fn url(&self) -> String {
        TestRedis::url(self)
    }
}

/// A test Redis of either kind, so that one test body proves the store on a single server
/// and on a cluster (see `on_single_and_cluster!`).
pub enum TestRedis {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl TestRedis {
    pub fn url(&self) -> String {
        match self {
            TestRedis::Single(server) => server.url(),
            TestRedis::Cluster(cluster) => cluster.url(),
        }
    }

    /// A synchronous connection for assertions: on a cluster it follows each key's slot.
    pub fn client(&self) -> TestConnection {
        match self {
            TestRedis::Single(server) => TestConnection::Single(server.client()),
            TestRedis::Cluster(cluster) => TestConnection::Cluster(Box::new(
                redis::cluster::ClusterClient::new(cluster.urls())
                    .and_then(|client| client.get_connection())
                    .expect("connect to the test cluster"),
            )),
        }
    }
}

/// A synchronous connection to a [`TestRedis`] (every `redis::Commands` works on it).
pub enum TestConnection {
    Single(redis::Connection),
    // Boxed: a cluster connection is several times the size of a single one.
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl redis::ConnectionLike for TestConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        match self {
            TestConnection::Single(conn) => conn.req_packed_command(cmd),
            TestConnection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        match self {
            TestConnection::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            TestConnection::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    // The cluster routes by the command's key, which the packed bytes no longer show.
    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            TestConnection::Single(conn) => conn.req_command(cmd),
            TestConnection::Cluster(conn) => conn.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            TestConnection::Single(conn) => conn.get_db(),
            TestConnection::Cluster(conn) => conn.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            TestConnection::Single(conn) => conn.supports_pipelining(),
            TestConnection::Cluster(conn) => conn.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            TestConnection::Single(conn) => conn.check_connection(),
            TestConnection::Cluster(conn) => conn.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            TestConnection::Single(conn) => conn.is_open(),
            TestConnection::Cluster(conn) => conn.is_open(),
        }
    }
}

/// Runs each named `async fn(TestRedis)` twice: `<name>::single` on a private redis-server,
/// `<name>::cluster` on a private 3-master Redis Cluster.
macro_rules! on_single_and_cluster {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn single() {
                    let redis = crate::harness::TestRedis::Single(crate::harness::RedisServer::start());
                    super::$test(redis).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn cluster() {
                    let redis = crate::harness::TestRedis::Cluster(crate::harness::RedisCluster::start());
                    super::$test(redis).await;
                }
            }
        )+
    };
}
pub(crate) use on_single_and_cluster;
