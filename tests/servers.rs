//! Private Redis servers for tests and benchmarks: one redis-server on a unix socket in its
//! own directory, or a 3-master Redis Cluster on loopback ports; never the machine's shared
//! port 6379. A server that cannot start fails the caller with the reason and the fix.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "switchboard-test-{}-{label}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private redis-server listening only on a unix socket.
pub struct RedisServer {
    child: Option<Child>,
    pub dir: TempDir,
    pub socket: PathBuf,
    /// AOF with an fsync per write: a kill loses nothing that was acknowledged.
    durable: bool,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// A server whose data survives [`RedisServer::kill`] and [`RedisServer::restart`].
    pub fn start_durable() -> RedisServer {
        RedisServer::start_with(true)
    }

    fn start_with(durable: bool) -> RedisServer {
        let dir = TempDir::new("redis");
        let socket = dir.0.join("redis.sock");
        let mut server = RedisServer {
            child: None,
            dir,
            socket,
            durable,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let persistence: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&self.socket)
            .args(["--unixsocketperm", "700", "--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(&self.dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start redis-server ({error}); install it with `apt-get install redis-server` \
                     (.ci/run does this)"
                )
            });
        self.child = Some(child);
        wait_for(&self.socket, Duration::from_secs(10));
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// Stops the server abruptly, as an outage would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Starts it again on the same socket (with the data only when durable).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A synchronous client for assertions on what is stored.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection())
            .expect("connect to test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for(socket: &Path, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "redis-server did not open {} within {limit:?}",
        socket.display()
    );
}

/// How many masters a test cluster has: the fewest `redis-cli --cluster create` accepts.
const CLUSTER_MASTERS: usize = 3;

/// How long the nodes may take to agree on the slot map after `redis-cli --cluster create`.
const CLUSTER_FORM_LIMIT: Duration = Duration::from_secs(20);

/// A private 3-master Redis Cluster on loopback TCP ports.
///
/// Cluster nodes must reach each other by host and port (the slot map hands out TCP
/// addresses), so unlike [`RedisServer`] this cannot live on unix sockets. Ports are
/// picked in 20000..30000 so that every bus port (port + 10000) is below the kernel's
/// ephemeral range and never collides with another node's client port.
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
}

struct ClusterNode {
    port: u16,
    child: Child,
    // Fields drop after `Drop::drop` has killed the child, so the directory is never
    // removed under a running server.
    dir: TempDir,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        // Built up node by node so that a panic half-way still kills what was started.
        let mut cluster = RedisCluster { nodes: Vec::new() };
        while cluster.nodes.len() < CLUSTER_MASTERS {
            let taken: Vec<u16> = cluster.nodes.iter().map(|node| node.port).collect();
            cluster.nodes.push(ClusterNode::spawn(&taken));
        }
        let create_output = cluster.create();
        cluster.wait_until_formed(&create_output);
        cluster
    }

    /// A seed node; a cluster client discovers the others from it.
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(ClusterNode::url).collect()
    }

    /// Runs `redis-cli --cluster create` and returns what it printed.
    fn create(&self) -> String {
        let log_path = self.nodes[0].dir.0.join("cluster-create.log");
        let log = std::fs::File::create(&log_path).expect("create redis-cli log");
        let addresses: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let mut child = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone redis-cli log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start redis-cli ({error}); it comes with redis-server: install it with \
                     `apt-get install redis-server` (.ci/run does this)"
                )
            });
        // redis-cli waits for the nodes to join; if they never do it must not hang the run.
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for redis-cli") {
                break Some(status);
            }
            if start.elapsed() > CLUSTER_FORM_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        match status {
            Some(status) if status.success() => output,
            Some(status) => panic!(
                "`redis-cli --cluster create {}` failed ({status}); output:\n{output}",
                addresses.join(" ")
            ),
            None => panic!(
                "`redis-cli --cluster create {}` did not finish within {CLUSTER_FORM_LIMIT:?}; \
                 output:\n{output}",
                addresses.join(" ")
            ),
        }
    }

    /// Waits until every node, not just the seed, sees a healthy cluster with all slots:
    /// gossip reaches the nodes at different times, and a test talking to a lagging node
    /// would get CLUSTERDOWN.
    fn wait_until_formed(&self, create_output: &str) {
        let start = Instant::now();
        let mut last: Vec<String> = Vec::new();
        while start.elapsed() < CLUSTER_FORM_LIMIT {
            last = self.nodes.iter().map(ClusterNode::cluster_info).collect();
            let formed = last.iter().all(|info| {
                let field = |name: &str| {
                    info.lines()
                        .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
                        .map(str::to_owned)
                };
                field("cluster_state").as_deref() == Some("ok")
                    && field("cluster_slots_assigned").as_deref() == Some("16384")
                    && field("cluster_known_nodes") == Some(CLUSTER_MASTERS.to_string())
            });
            if formed {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let report: Vec<String> = self
            .nodes
            .iter()
            .zip(&last)
            .map(|(node, info)| format!("--- 127.0.0.1:{} CLUSTER INFO:\n{info}", node.port))
            .collect();
        panic!(
            "redis cluster did not reach cluster_state:ok with 16384 slots on every node within \
             {CLUSTER_FORM_LIMIT:?}\n{}\n--- redis-cli --cluster create output:\n{create_output}",
            report.join("\n")
        );
    }
}

impl ClusterNode {
    /// Starts one cluster-enabled redis-server on a free port pair. Checking a port and
    /// the server binding it are not atomic, so a port taken in between (another test's
    /// cluster, say) is retried on a fresh port rather than failing the test.
    fn spawn(taken: &[u16]) -> ClusterNode {
        const ATTEMPTS: usize = 5;
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            let port = free_cluster_port(taken);
            let dir = TempDir::new("redis-cluster");
            let log_path = dir.0.join("redis.log");
            let log = std::fs::File::create(&log_path).expect("create redis-server log");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--cluster-node-timeout", "2000"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir.0)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone redis-server log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|error| {
                    panic!(
                        "cannot start redis-server ({error}); install it with \
                         `apt-get install redis-server` (.ci/run does this)"
                    )
                });
            let mut node = ClusterNode { port, child, dir };
            if node.wait_ready(Duration::from_secs(10)) {
                return node;
            }
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            failures.push(format!("--- port {port}:\n{log}"));
            // Dropping `node` kills the server and removes its directory before the retry.
        }
        panic!(
            "cluster redis-server did not start in {ATTEMPTS} attempts (is redis-server \
             installed and new enough? `apt-get install redis-server`, .ci/run does this); \
             logs:\n{}",
            failures.join("\n")
        );
    }

    /// True once this node's own process answers on its port; false if it exited (port
    /// taken) or stayed silent.
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            // PING alone could be answered by some other server that won the port race.
            let pid = format!("process_id:{}", self.child.id());
            let answered = self.connection().ok().and_then(|mut connection| {
                redis::cmd("INFO")
                    .arg("server")
                    .query::<String>(&mut connection)
                    .ok()
            });
            if let Some(info) = answered {
                return info.lines().any(|line| line.trim() == pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let connection = redis::Client::open(self.url())?
            .get_connection_with_timeout(Duration::from_millis(500))?;
        // A stuck node must surface as a harness timeout, not hang the test forever.
        connection.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(connection)
    }

    /// `CLUSTER INFO`, or the error as text so a timeout report shows why a node was unhealthy.
    fn cluster_info(&self) -> String {
        self.connection()
            .and_then(|mut connection| redis::cmd("CLUSTER").arg("INFO").query(&mut connection))
            .unwrap_or_else(|error| format!("(error: {error})"))
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port in 20000..30000 that is free on 127.0.0.1 along with its bus port (+10000).
fn free_cluster_port(taken: &[u16]) -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    for _ in 0..1000 {
        // Each RandomState is freshly keyed, so this is a cheap random number without a
        // dependency; random rather than sequential so parallel tests rarely pick alike.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = 20000 + (random % 10000) as u16;
        if !taken.contains(&port) && free(port) && free(port + 10000) {
            return port;
        }
    }
    panic!("no free port pair (P, P+10000) with P in 20000..30000 on 127.0.0.1");
}
