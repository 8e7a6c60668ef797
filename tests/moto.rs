//! A private moto server (an S3-compatible service from PyPI, `tests/s3/requirements.txt`) on
//! a free loopback port, for the archive's S3 store. A server that cannot start fails the test
//! with the reason and the install line; nothing is skipped.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard::archive::{RetentionConfig, S3Store};

use crate::harness::{http, TempDir};
use crate::mailservers::{free_port, stop};

const INSTALL: &str =
    "install it with `python3 -m pip install -r tests/s3/requirements.txt` (.ci/run does this)";
static NEXT_BUCKET: AtomicUsize = AtomicUsize::new(0);

/// Environment variables the test configs name for the credentials (moto takes any).
pub const KEY_ENV: &str = "SB_TEST_S3_KEY_ID";
pub const SECRET_ENV: &str = "SB_TEST_S3_SECRET";
pub const KEY_ID: &str = "AKIASBTEST00000001";
pub const SECRET: &str = "sb-test-secret-not-for-logs-0001";

pub struct MotoServer {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl MotoServer {
    pub fn start() -> MotoServer {
        std::env::set_var(KEY_ENV, KEY_ID);
        std::env::set_var(SECRET_ENV, SECRET);
        let dir = TempDir::new("moto");
        let port = free_port();
        let log = dir.0.join("moto.log");
        let output = std::fs::File::create(&log).expect("create the moto log");
        // The module rather than the `moto_server` script: it runs with the python3 that pip
        // installed it for, whatever the PATH's script shims say.
        let mut child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log handle"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run python3 ({error}) for moto; {INSTALL}"));
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = || std::fs::read_to_string(&log).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "moto did not start ({status}); {INSTALL}. Its output:\n{}",
                    log()
                );
            }
            if start.elapsed() > Duration::from_secs(30) {
                stop(&mut child);
                panic!(
                    "moto did not listen on 127.0.0.1:{port} within 30s; its output:\n{}",
                    log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        MotoServer {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A new empty bucket, its name unique in this test run.
    pub async fn bucket(&self) -> String {
        let name = format!(
            "sb-test-{}-{}",
            std::process::id(),
            NEXT_BUCKET.fetch_add(1, Ordering::SeqCst)
        );
        let (status, body) = http(self.addr(), "PUT", &format!("/{name}"), None).await;
        assert_eq!(status, 200, "create bucket {name}: {body}");
        name
    }

    /// The `[retention.s3]` section for `bucket` on this server.
    pub fn section(&self, bucket: &str, prefix: &str) -> String {
        section(&self.endpoint(), bucket, prefix)
    }

    /// A store on `bucket`, built from its config section as the commands build it.
    pub fn store(&self, bucket: &str, prefix: &str) -> S3Store {
        store_of(&self.section(bucket, prefix))
    }
}

/// A `[retention.s3]` section for `bucket` at `endpoint`, with the test credentials.
pub fn section(endpoint: &str, bucket: &str, prefix: &str) -> String {
    format!(
        "[retention.s3]\nbucket = \"{bucket}\"\nprefix = \"{prefix}\"\nregion = \"us-east-1\"\n\
         endpoint = \"{endpoint}\"\npath_style = true\n\
         access_key_id_env = \"{KEY_ENV}\"\nsecret_access_key_env = \"{SECRET_ENV}\"\n"
    )
}

/// The store a `[retention.s3]` section describes, its secrets read and checked as at start.
pub fn store_of(section: &str) -> S3Store {
    std::env::set_var(KEY_ENV, KEY_ID);
    std::env::set_var(SECRET_ENV, SECRET);
    let mut retention: RetentionConfig = toml::from_str::<toml::Table>(section)
        .ok()
        .and_then(|table| table.get("retention").cloned())
        .and_then(|section| section.try_into().ok())
        .expect("the test section parses");
    let mut problems = Vec::new();
    retention.resolve_secrets(&mut problems);
    retention.validate(&mut problems);
    assert_eq!(problems, Vec::<(String, String)>::new());
    S3Store::new(retention.s3.as_ref().unwrap()).expect("an S3 store")
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
