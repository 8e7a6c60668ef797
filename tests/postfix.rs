//! A private Postfix for the email tests' SMTP with TLS and SASL: submission with STARTTLS
//! required (587-style) and with TLS from the first byte (465-style), logins checked by a
//! [`Dovecot`]'s auth service (`smtpd_sasl_type = dovecot`: passwords and OAuth 2.0 tokens
//! alike), and every accepted mail relayed to an [`SmtpSink`] where the test reads it.
//!
//! Its own config, queue and data directories live in a temp dir; the system's Postfix is not
//! touched. Postfix's master must run as root (its daemons drop to the `postfix` user), so the
//! tests that need it fail with that reason elsewhere.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::harness::TempDir;
use crate::mailservers::{find_binary, free_port, is_root, stop, wait_for_port, Dovecot, INSTALL};

pub struct Postfix {
    child: Option<Child>,
    pub dir: TempDir,
    /// Submission with STARTTLS required before AUTH.
    pub submission_port: u16,
    /// Submission with TLS from the first byte.
    pub smtps_port: u16,
}

impl Postfix {
    /// Serves `cert`/`key`, authenticates through `dovecot`, relays to `relay_port`.
    pub fn start(cert: &(PathBuf, PathBuf), dovecot: &Dovecot, relay_port: u16) -> Postfix {
        assert!(
            is_root(),
            "a private Postfix needs root (its master runs as root, its daemons as `postfix`)"
        );
        let dir = TempDir::new("postfix");
        let root = &dir.0;
        let (etc, data) = (root.join("etc"), root.join("data"));
        for sub in [&etc, &root.join("spool"), &data] {
            std::fs::create_dir_all(sub).expect("create postfix dirs");
        }
        let postfix_uid = crate::mailservers::id_of(&["-u", "postfix"]);
        std::os::unix::fs::chown(&data, Some(postfix_uid), None).expect("chown data dir");
        let (submission_port, smtps_port) = (free_port(), free_port());
        let main_cf = format!(
            r#"compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = localhost
mydomain = localdomain
mydestination =
relayhost = [127.0.0.1]:{relay_port}
maillog_file = /dev/stdout
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {sasl}
smtpd_relay_restrictions = permit_sasl_authenticated, reject
"#,
            root = root.display(),
            cert = cert.0.display(),
            key = cert.1.display(),
            sasl = dovecot.sasl_socket().display(),
        );
        std::fs::write(etc.join("main.cf"), main_cf).expect("write main.cf");
        // No chroot (the last-but-three column): the SASL socket lives outside the queue.
        let master_cf = format!(
            "127.0.0.1:{submission_port} inet n - n - - smtpd\n\
             127.0.0.1:{smtps_port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes\n\
             pickup unix n - n 60 1 pickup\n\
             cleanup unix n - n - 0 cleanup\n\
             qmgr unix n - n 300 1 qmgr\n\
             tlsmgr unix - - n 1000? 1 tlsmgr\n\
             rewrite unix - - n - - trivial-rewrite\n\
             bounce unix - - n - 0 bounce\n\
             defer unix - - n - 0 bounce\n\
             trace unix - - n - 0 bounce\n\
             verify unix - - n - 1 verify\n\
             flush unix n - n 1000? 0 flush\n\
             proxymap unix - - n - - proxymap\n\
             smtp unix - - n - - smtp\n\
             relay unix - - n - - smtp\n\
             showq unix n - n - - showq\n\
             error unix - - n - - error\n\
             retry unix - - n - - error\n\
             discard unix - - n - - discard\n\
             anvil unix - - n - 1 anvil\n\
             scache unix - - n - 1 scache\n\
             postlog unix-dgram n - n - 1 postlogd\n"
        );
        std::fs::write(etc.join("master.cf"), master_cf).expect("write master.cf");
        let postfix = find_binary("postfix", INSTALL);
        let log = std::fs::File::create(root.join("postfix.log")).expect("create postfix log");
        let child = Command::new(&postfix)
            .arg("-c")
            .arg(&etc)
            .arg("start-fg")
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start postfix ({error}); {INSTALL}"));
        let server = Postfix {
            child: Some(child),
            submission_port,
            smtps_port,
            dir,
        };
        wait_for_port(
            submission_port,
            "postfix",
            &server.dir.0.join("postfix.log"),
        );
        wait_for_port(smtps_port, "postfix", &server.dir.0.join("postfix.log"));
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("postfix.log")).unwrap_or_default()
    }

    /// SASL logins smtpd accepted with `method` (`PLAIN`, `XOAUTH2`) for `user`.
    pub fn logins(&self, method: &str, user: &str) -> usize {
        let needle = format!("sasl_method={method}, sasl_username={user}");
        self.log().matches(&needle).count()
    }

    /// TLS sessions smtpd set up (each client connection that got as far as TLS).
    pub fn tls_sessions(&self) -> usize {
        self.log()
            .matches("TLS connection established from")
            .count()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // `postfix stop` takes the master and every daemon down; then reap `start-fg`.
        let _ = Command::new(find_binary("postfix", INSTALL))
            .arg("-c")
            .arg(self.dir.0.join("etc"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }
}
