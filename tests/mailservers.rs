//! Real mail servers for the email tests: Dovecot (IMAP) and Postfix's `smtp-sink` (SMTP).
//!
//! Each runs on 127.0.0.1 with a free port and a throwaway config in its own temp dir, never
//! the machine's system config. A server that cannot start fails the test with the reason and
//! the install line; nothing is skipped silently.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::TempDir;

pub(crate) const INSTALL: &str =
    "install them with `apt-get install -y dovecot-imapd postfix` (.ci/run does this)";
static NEXT_MAIL: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free port")
}

/// The installed server binary `name`, or a panic that says how to install it.
pub(crate) fn find_binary(name: &str, install: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/lib/postfix/sbin",
        "/usr/libexec/postfix",
        "/usr/bin",
        "/usr/local/sbin",
    ] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} not found; {install}");
}

pub(crate) fn wait_for_port(port: u16, what: &str, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{what} did not listen on 127.0.0.1:{port} within 15s; its log:\n{log}");
}

pub(crate) fn is_root() -> bool {
    // SAFETY-free check: the id command is on every Debian system.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

pub(crate) fn id_of(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "`id {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Stops a server with SIGTERM (so Dovecot's master takes its children down), then waits.
pub(crate) fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// What a [`Dovecot`] serves besides plain IMAP.
#[derive(Default)]
pub struct DovecotSetup {
    /// Certificate and key: TLS required, IMAP with STARTTLS on `port`, IMAPS on `imaps_port`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// OAuth 2.0 (SASL XOAUTH2 and OAUTHBEARER) besides passwords: Dovecot's `oauth2` passdb
    /// asks this RFC 7662 introspection endpoint whether a token is active and whose it is.
    pub oauth2_introspection_url: Option<String>,
}

/// A private Dovecot with one passwd-file user and a maildir in its temp dir.
pub struct Dovecot {
    child: Option<Child>,
    pub dir: TempDir,
    /// IMAP (STARTTLS when `setup.tls` is given).
    pub port: u16,
    /// IMAPS (TLS from the first byte), when `setup.tls` is given.
    pub imaps_port: u16,
    pub user: String,
    pub password: String,
    setup: DovecotSetup,
    /// Owner of the maildir files (Dovecot refuses to serve mail as root).
    mail_owner: Option<(u32, u32)>,
}

impl Dovecot {
    pub fn start() -> Dovecot {
        Dovecot::start_with(DovecotSetup::default())
    }

    pub fn start_with(setup: DovecotSetup) -> Dovecot {
        let dir = TempDir::new("dovecot");
        let mut server = Dovecot {
            child: None,
            port: free_port(),
            imaps_port: free_port(),
            user: "agent".into(),
            password: "secret-imap".into(),
            setup,
            mail_owner: None,
            dir,
        };
        server.spawn();
        server
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.0.join("Maildir")
    }

    fn spawn(&mut self) {
        let root = &self.dir.0;
        for sub in [
            "run",
            "state",
            "home",
            "Maildir/new",
            "Maildir/cur",
            "Maildir/tmp",
        ] {
            std::fs::create_dir_all(root.join(sub)).expect("create dovecot dirs");
        }
        // As root, Dovecot's login and mail processes must run as unprivileged users: the
        // package's own `dovenull` and `dovecot`. As anyone else, everything runs as that user.
        let (login_user, internal_user, internal_group, uid, gid) = if is_root() {
            let uid = id_of(&["-u", "dovecot"]);
            let gid = id_of(&["-g", "dovecot"]);
            self.mail_owner = Some((uid, gid));
            (
                "dovenull".to_owned(),
                "dovecot".to_owned(),
                "dovecot".to_owned(),
                uid,
                gid,
            )
        } else {
            let me = whoami();
            let group = String::from_utf8_lossy(
                &Command::new("id")
                    .arg("-gn")
                    .output()
                    .expect("id -gn")
                    .stdout,
            )
            .trim()
            .to_owned();
            (me.clone(), me, group, id_of(&["-u"]), id_of(&["-g"]))
        };
        std::fs::write(
            root.join("passwd"),
            format!("{}:{{PLAIN}}{}\n", self.user, self.password),
        )
        .expect("write passwd");
        let config = format!(
            r#"base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
auth_mechanisms = plain login{oauth2_mechanisms}
{oauth2_passdb}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:{root}/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service auth {{
  unix_listener auth-client-postfix {{
    mode = 0666
  }}
}}
"#,
            root = root.display(),
            port = self.port,
            ssl = self.ssl_config(),
            oauth2_mechanisms = if self.setup.oauth2_introspection_url.is_some() {
                " xoauth2 oauthbearer"
            } else {
                ""
            },
            oauth2_passdb = self.oauth2_passdb(),
            imaps_port = if self.setup.tls.is_some() {
                self.imaps_port
            } else {
                0
            },
        );
        std::fs::write(root.join("dovecot.conf"), config).expect("write dovecot.conf");
        self.chown_tree();
        let child = Command::new(find_binary("dovecot", INSTALL))
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start dovecot ({error}); {INSTALL}"));
        self.child = Some(child);
        wait_for_port(self.port, "dovecot", &root.join("dovecot.log"));
    }

    /// TLS required for every login when a certificate is given; plain text otherwise.
    fn ssl_config(&self) -> String {
        match &self.setup.tls {
            Some((cert, key)) => format!(
                "ssl = required\nssl_cert = <{}\nssl_key = <{}\ndisable_plaintext_auth = yes",
                cert.display(),
                key.display()
            ),
            None => "ssl = no\ndisable_plaintext_auth = no".to_owned(),
        }
    }

    /// The `oauth2` passdb (tokens), tried only for the OAuth mechanisms; passwords still go to
    /// the passwd-file passdb.
    fn oauth2_passdb(&self) -> String {
        let Some(url) = &self.setup.oauth2_introspection_url else {
            return String::new();
        };
        let root = &self.dir.0;
        std::fs::write(
            root.join("oauth2.conf.ext"),
            format!(
                "introspection_mode = post\nintrospection_url = {url}\nusername_attribute = username\n\
                 active_attribute = active\nactive_value = true\n"
            ),
        )
        .expect("write oauth2.conf.ext");
        format!(
            "auth_verbose = yes\npassdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
            root.join("oauth2.conf.ext").display()
        )
    }

    /// The socket Postfix's `smtpd_sasl_type = dovecot` authenticates through.
    pub fn sasl_socket(&self) -> PathBuf {
        self.dir.0.join("run").join("auth-client-postfix")
    }

    fn chown_tree(&self) {
        let Some((uid, gid)) = self.mail_owner else {
            return;
        };
        for path in [self.dir.0.clone(), self.dir.0.join("home")]
            .into_iter()
            .chain(walk(&self.maildir()))
        {
            let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
        }
    }

    /// Delivers a raw mail the way an MTA does: write into `tmp/`, rename into `new/`.
    pub fn deliver(&self, raw: &str) {
        let n = NEXT_MAIL.fetch_add(1, Ordering::SeqCst);
        let name = format!(
            "{}.M{n}P{}.switchboard-test",
            now_secs(),
            std::process::id()
        );
        let tmp = self.maildir().join("tmp").join(&name);
        std::fs::write(&tmp, raw.replace('\n', "\r\n").replace("\r\r\n", "\r\n"))
            .expect("write mail");
        if let Some((uid, gid)) = self.mail_owner {
            let _ = std::os::unix::fs::chown(&tmp, Some(uid), Some(gid));
        }
        std::fs::rename(&tmp, self.maildir().join("new").join(name)).expect("deliver mail");
    }

    /// How many IMAP logins the server has accepted (from its log).
    pub fn logins(&self) -> usize {
        std::fs::read_to_string(self.dir.0.join("dovecot.log"))
            .unwrap_or_default()
            .matches(" Login: user=<")
            .count()
    }

    /// (seen, unseen) mails in the mailbox, read from maildir file names (`:2,S` = seen).
    pub fn seen_unseen(&self) -> (usize, usize) {
        let mut seen = 0;
        let mut unseen = 0;
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(self.maildir().join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = entry.file_name().to_string_lossy().to_string();
                let flags = name
                    .rsplit_once(":2,")
                    .map(|(_, f)| f.to_owned())
                    .unwrap_or_default();
                if flags.contains('S') {
                    seen += 1;
                } else {
                    unseen += 1;
                }
            }
        }
        (seen, unseen)
    }

    /// Ends every IMAP session of the user (`doveadm kick`), as a server-side logout would: the
    /// client must log in again.
    pub fn kick(&self) {
        let status = Command::new(find_binary("doveadm", INSTALL))
            .arg("-c")
            .arg(self.dir.0.join("dovecot.conf"))
            .args(["kick", &self.user])
            .stdout(Stdio::null())
            .status()
            .expect("run doveadm kick");
        assert!(status.success(), "doveadm kick failed: {status}");
    }

    /// Stops the server abruptly, as an outage would (the maildir stays).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }

    /// Starts it again on the same port with the same mail.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.kill();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Postfix's `smtp-sink`: accepts every mail and writes each one to a file.
pub struct SmtpSink {
    child: Option<Child>,
    pub dir: TempDir,
    pub port: u16,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let dir = TempDir::new("smtp-sink");
        let port = free_port();
        let mut command = Command::new(find_binary("smtp-sink", INSTALL));
        if is_root() {
            command.args(["-u", "root"]);
        }
        let spool = dir.0.join("mail");
        std::fs::create_dir_all(&spool).expect("create spool");
        let child = command
            .arg("-d")
            .arg(format!("{}/%H%M%S.", spool.display()))
            .arg(format!("127.0.0.1:{port}"))
            .arg("10")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start smtp-sink ({error}); {INSTALL}"));
        let sink = SmtpSink {
            child: Some(child),
            dir,
            port,
        };
        wait_for_port(port, "smtp-sink", Path::new("/dev/null"));
        sink
    }

    /// Every captured mail (headers and body as sent), oldest first.
    pub fn mails(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.0.join("mail"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .collect();
        files.sort_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }
}
