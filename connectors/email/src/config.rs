//! The `[connectors.email]` section: typed, validated, and buildable without any network.
//!
//! Passwords never live in the TOML file: the admin names environment variables
//! (`imap.password_env`, ...) and [`EmailConfig::resolve_secrets`] reads them, reporting each
//! missing one with its dotted key path so `check-config` can list every problem at once.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::oauth_config::validate_oauth;
pub use crate::oauth_config::{check_endpoint_url, OAuthConfig, OAuthProvider};

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Tls,
    /// Plain connect, then upgrade with STARTTLS (IMAP 143, submission 587).
    Starttls,
    /// No encryption: loopback test servers only.
    Plain,
}

/// How the gateway logs in to IMAP and SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// Username and password (`imap.password_env`, `smtp.password_env`).
    #[default]
    Password,
    /// OAuth 2.0 access tokens (SASL XOAUTH2), refreshed from `[oauth2]`'s refresh token.
    Oauth2,
}

/// What happens to a mail once the gateway stored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessedAction {
    /// Set `\Seen`; unseen mails are the work queue.
    Flag,
    /// Move it to `processed_mailbox` (falls back to copy + delete without the MOVE extension).
    Move,
}

/// The IMAP mailbox the gateway reads customer mail from.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    /// Server host name (also the TLS server name).
    pub host: String,
    /// Server port (993 for TLS, 143 for STARTTLS or plain).
    pub port: u16,
    /// `tls`, `starttls` or `plain`.
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// PEM file with the CA certificate(s) of a private CA, trusted besides the system's roots.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// The CA file's certificates, read at start (never from TOML).
    #[serde(skip)]
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Environment variable holding the login name (the mailbox's address with OAuth 2.0).
    pub username_env: String,
    /// Environment variable holding the password (`auth = "password"` only).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Resolved login name (never read from TOML).
    #[serde(skip)]
    pub username: String,
    /// Resolved password (never read from TOML).
    #[serde(skip)]
    pub password: String,
    /// Mailbox to watch.
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    /// Use IMAP IDLE when the server offers it; otherwise poll.
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Seconds between polls without IDLE, and the longest IDLE wait before a re-check.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_secs: u64,
    /// `flag` (set `\Seen`) or `move` (to `processed_mailbox`).
    #[serde(default = "default_processed")]
    pub processed: ProcessedAction,
    /// Where processed mails go when `processed = "move"`.
    #[serde(default)]
    pub processed_mailbox: Option<String>,
}

/// The SMTP server replies are sent through.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name (also the TLS server name).
    pub host: String,
    /// Server port (465 for TLS, 587 for STARTTLS, 25 for plain).
    pub port: u16,
    /// `tls`, `starttls` or `plain`.
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// PEM file with the CA certificate(s) of a private CA, trusted besides the system's roots.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// The CA file's certificates, read at start (never from TOML).
    #[serde(skip)]
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Environment variable holding the login name; no login when absent.
    #[serde(default)]
    pub username_env: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Resolved credentials (never read from TOML).
    #[serde(skip)]
    pub credentials: Option<(String, String)>,
    /// With `auth = "oauth2"`: the SMTP login when it differs from IMAP's (never from TOML).
    #[serde(skip)]
    pub oauth2_user: Option<String>,
    /// Seconds one SMTP conversation may take before it counts as a transient failure.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
}

/// Settings of the email channel.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Read the mailbox and send replies.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The support address customers write to (`support@example.com`).
    pub address: String,
    /// The name shown in the From header (`Example Support`).
    #[serde(default = "default_display_name")]
    pub display_name: String,
    /// `password` (default) or `oauth2` (then `[connectors.email.oauth2]` is required).
    #[serde(default)]
    pub auth: AuthMethod,
    /// OAuth 2.0 client and refresh token, for `auth = "oauth2"`.
    #[serde(default)]
    pub oauth2: Option<OAuthConfig>,
    /// Inbound mailbox.
    pub imap: ImapConfig,
    /// Outbound server.
    pub smtp: SmtpConfig,
    /// Attachments larger than this (or than the gateway's `files.max_bytes`, whichever is
    /// smaller) are not kept: they are named in the conversation and the customer is told.
    #[serde(default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: usize,
    /// Mails one sender may open per hour; more are marked processed but not stored.
    #[serde(default = "default_max_mails_per_sender")]
    pub max_mails_per_sender_per_hour: u32,
    /// Set `Reply-To: support+<token>@domain` on replies (see `thread.rs` for the rule).
    #[serde(default = "default_true")]
    pub reply_address: bool,
    /// Environment variable with the key for `+token` reply addresses; without it the key is
    /// derived from the support address (tokens are then only a routing hint, see `thread.rs`).
    #[serde(default)]
    pub reply_token_secret_env: Option<String>,
    /// Resolved reply-token key (never read from TOML).
    #[serde(skip)]
    pub reply_token_secret: Option<String>,
}

fn default_tls() -> TlsMode {
    TlsMode::Tls
}
fn default_mailbox() -> String {
    "INBOX".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_poll_interval() -> u64 {
    60
}
fn default_processed() -> ProcessedAction {
    ProcessedAction::Flag
}
fn default_smtp_timeout() -> u64 {
    30
}
fn default_display_name() -> String {
    "Support".to_owned()
}
fn default_max_attachment_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_max_mails_per_sender() -> u32 {
    20
}

// Hand-written so a logged config never shows a password.
impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("enabled", &self.enabled)
            .field("address", &self.address)
            .field("display_name", &self.display_name)
            .field("imap.host", &self.imap.host)
            .field("imap.port", &self.imap.port)
            .field("imap.tls", &self.imap.tls)
            .field("imap.tls_ca_file", &self.imap.tls_ca_file)
            .field("imap.mailbox", &self.imap.mailbox)
            .field("smtp.host", &self.smtp.host)
            .field("smtp.port", &self.smtp.port)
            .field("smtp.tls", &self.smtp.tls)
            .field("smtp.tls_ca_file", &self.smtp.tls_ca_file)
            .field("auth", &self.auth)
            .field(
                "oauth2.provider",
                &self.oauth2.as_ref().map(|oauth| oauth.provider),
            )
            .field("max_attachment_bytes", &self.max_attachment_bytes)
            .field(
                "max_mails_per_sender_per_hour",
                &self.max_mails_per_sender_per_hour,
            )
            .finish_non_exhaustive()
    }
}

impl EmailConfig {
    /// Reads the secrets named by `*_env` fields from the environment, reporting each missing one.
    pub fn resolve_secrets(&mut self, prefix: &str, problems: &mut Vec<(String, String)>) {
        self.resolve_secrets_from(prefix, problems, |name| std::env::var(name).ok());
    }

    /// [`EmailConfig::resolve_secrets`] with the environment supplied by the caller (tests).
    pub fn resolve_secrets_from(
        &mut self,
        prefix: &str,
        problems: &mut Vec<(String, String)>,
        env: impl Fn(&str) -> Option<String>,
    ) {
        let mut read = |key: &str, name: &str| -> Option<String> {
            match env(name) {
                Some(value) if !value.is_empty() => Some(value),
                Some(_) => {
                    problems.push((
                        format!("{prefix}.{key}"),
                        format!("environment variable {name} is empty"),
                    ));
                    None
                }
                None => {
                    problems.push((
                        format!("{prefix}.{key}"),
                        format!("environment variable {name} is not set"),
                    ));
                    None
                }
            }
        };
        let imap_user = self.imap.username_env.clone();
        self.imap.username = read("imap.username_env", &imap_user).unwrap_or_default();
        if let Some(name) = self.imap.password_env.clone() {
            self.imap.password = read("imap.password_env", &name).unwrap_or_default();
        }
        self.smtp.credentials = match (
            self.smtp.username_env.clone(),
            self.smtp.password_env.clone(),
        ) {
            (Some(user), Some(pass)) => {
                let user = read("smtp.username_env", &user);
                let pass = read("smtp.password_env", &pass);
                user.zip(pass)
            }
            _ => None,
        };
        if let Some(name) = self
            .smtp
            .username_env
            .clone()
            .filter(|_| self.auth == AuthMethod::Oauth2)
        {
            self.smtp.oauth2_user = read("smtp.username_env", &name);
        }
        if let Some(oauth) = self.oauth2.as_mut() {
            let (id, token) = (oauth.client_id_env.clone(), oauth.refresh_token_env.clone());
            oauth.client_id = read("oauth2.client_id_env", &id).unwrap_or_default();
            oauth.refresh_token = read("oauth2.refresh_token_env", &token).unwrap_or_default();
            if let Some(name) = oauth.client_secret_env.clone() {
                oauth.client_secret = read("oauth2.client_secret_env", &name);
            }
        }
        if let Some(name) = self.reply_token_secret_env.clone() {
            self.reply_token_secret = read("reply_token_secret_env", &name);
        }
        self.load_tls_ca_files(prefix, problems);
    }

    /// Reads `imap.tls_ca_file` and `smtp.tls_ca_file`, so a missing or unusable file stops the
    /// start with its key rather than failing the first connection.
    pub fn load_tls_ca_files(&mut self, prefix: &str, problems: &mut Vec<(String, String)>) {
        let mut load = |key: &str, file: &Option<PathBuf>| -> Option<Vec<u8>> {
            let path = file.as_deref()?;
            match read_ca_file(path) {
                Ok(pem) => Some(pem),
                Err(why) => {
                    problems.push((format!("{prefix}.{key}"), why));
                    None
                }
            }
        };
        self.imap.tls_ca_pem = load("imap.tls_ca_file", &self.imap.tls_ca_file);
        self.smtp.tls_ca_pem = load("smtp.tls_ca_file", &self.smtp.tls_ca_file);
    }

    /// Checks every field, pushing `(dotted key, problem)` for each mistake found.
    pub fn validate(&self, prefix: &str, problems: &mut Vec<(String, String)>) {
        let mut problem = |field: &str, text: &str| {
            problems.push((format!("{prefix}.{field}"), text.to_owned()));
        };
        if !is_plain_address(&self.address) {
            problem(
                "address",
                "must be a plain address like support@example.com",
            );
        } else if self
            .address
            .split('@')
            .next()
            .is_some_and(|local| local.contains('+'))
        {
            problem(
                "address",
                "must not contain '+': replies use support+<token>@domain",
            );
        }
        if self.display_name.contains(['\r', '\n', '<', '>', '"']) {
            problem(
                "display_name",
                "must not contain line breaks, quotes or angle brackets",
            );
        }
        for (key, host) in [
            ("imap.host", &self.imap.host),
            ("smtp.host", &self.smtp.host),
        ] {
            if host.trim().is_empty() || host.contains(char::is_whitespace) {
                problem(key, "must be a host name or IP address");
            }
        }
        if self.imap.port == 0 {
            problem("imap.port", "must be between 1 and 65535");
        }
        if self.smtp.port == 0 {
            problem("smtp.port", "must be between 1 and 65535");
        }
        if self.imap.mailbox.trim().is_empty() {
            problem("imap.mailbox", "must name a mailbox (usually INBOX)");
        }
        if self.imap.poll_interval_secs == 0 || self.imap.poll_interval_secs > 3600 {
            problem("imap.poll_interval_secs", "must be between 1 and 3600");
        }
        match (&self.imap.processed, &self.imap.processed_mailbox) {
            (ProcessedAction::Move, None) => problem(
                "imap.processed_mailbox",
                "is required when imap.processed = \"move\"",
            ),
            (ProcessedAction::Move, Some(target)) if *target == self.imap.mailbox => problem(
                "imap.processed_mailbox",
                "must differ from imap.mailbox (mails would be read again)",
            ),
            _ => {}
        }
        match self.auth {
            AuthMethod::Password => {
                if self.imap.password_env.is_none() {
                    problem("imap.password_env", "is required with auth = \"password\"");
                }
                if self.smtp.username_env.is_some() != self.smtp.password_env.is_some() {
                    problem(
                        "smtp.password_env",
                        "smtp.username_env and smtp.password_env go together (both or neither)",
                    );
                }
                if self.oauth2.is_some() {
                    problem("oauth2", "is only used with auth = \"oauth2\"");
                }
            }
            AuthMethod::Oauth2 => {
                for (key, given) in [
                    ("imap.password_env", self.imap.password_env.is_some()),
                    ("smtp.password_env", self.smtp.password_env.is_some()),
                ] {
                    if given {
                        problem(key, "is not used with auth = \"oauth2\" (remove it)");
                    }
                }
                match &self.oauth2 {
                    None => problem(
                        "oauth2",
                        "[connectors.email.oauth2] is required with auth = \"oauth2\"",
                    ),
                    Some(oauth) => validate_oauth(oauth, &mut problem),
                }
            }
        }
        if self.smtp.timeout_secs == 0 {
            problem("smtp.timeout_secs", "must be at least 1");
        }
        if self.max_attachment_bytes == 0 {
            problem("max_attachment_bytes", "must be greater than 0");
        }
        if self.max_mails_per_sender_per_hour == 0 {
            problem(
                "max_mails_per_sender_per_hour",
                "must be at least 1 (no customer could write)",
            );
        }
        for (key, mode, ca_file) in [
            ("imap.tls_ca_file", self.imap.tls, &self.imap.tls_ca_file),
            ("smtp.tls_ca_file", self.smtp.tls, &self.smtp.tls_ca_file),
        ] {
            if mode == TlsMode::Plain && ca_file.is_some() {
                problem(
                    key,
                    "is only used with tls = \"tls\" or \"starttls\" (this server is \"plain\")",
                );
            }
        }
        if cfg!(not(feature = "tls")) {
            for (key, mode) in [("imap.tls", self.imap.tls), ("smtp.tls", self.smtp.tls)] {
                if mode != TlsMode::Plain {
                    problem(
                        key,
                        "this build has no TLS support (feature `tls`); use \"plain\"",
                    );
                }
            }
        }
    }

    /// The domain of the support address.
    pub(crate) fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// The key reply tokens are derived with.
    pub(crate) fn token_key(&self) -> Vec<u8> {
        match &self.reply_token_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => format!(
                "switchboard-email-reply-token:{}",
                self.address.to_lowercase()
            )
            .into_bytes(),
        }
    }
}

/// The file's bytes when it holds at least one PEM certificate and nothing unreadable.
fn read_ca_file(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path)
        .map_err(|error| format!("cannot read CA file {}: {error}", path.display()))?;
    #[cfg(feature = "tls")]
    match crate::tls::parse_certificates(&pem) {
        Ok(certs) if certs.is_empty() => {
            return Err(format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ))
        }
        Ok(_) => {}
        Err(why) => return Err(format!("{}: {why}", path.display())),
    }
    Ok(pem)
}

/// `local@domain` with no spaces, brackets or display name.
fn is_plain_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !address.contains(|c: char| c.is_whitespace() || "<>\"(),;:".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        address = "support@example.com"
        display_name = "Example Support"
        [imap]
        host = "imap.example.com"
        port = 993
        username_env = "EMAIL_IMAP_USER"
        password_env = "EMAIL_IMAP_PASSWORD"
        [smtp]
        host = "smtp.example.com"
        port = 587
        tls = "starttls"
        username_env = "EMAIL_SMTP_USER"
        password_env = "EMAIL_SMTP_PASSWORD"
    "#;

    fn problems_of(config: &EmailConfig) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        config.validate("connectors.email", &mut problems);
        problems
    }

    #[test]
    fn example_parses_with_defaults_and_is_valid() {
        let config: EmailConfig = toml::from_str(EXAMPLE).expect("parse");
        assert!(config.enabled);
        assert_eq!(config.imap.mailbox, "INBOX");
        assert!(config.imap.idle);
        assert_eq!(config.imap.processed, ProcessedAction::Flag);
        assert_eq!(config.smtp.tls, TlsMode::Starttls);
        assert!(
            problems_of(&config).is_empty(),
            "{:?}",
            problems_of(&config)
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = EXAMPLE.replace("display_name", "dispaly_name");
        let error = toml::from_str::<EmailConfig>(&text).unwrap_err();
        assert!(error.to_string().contains("dispaly_name"), "{error}");
    }

    #[test]
    fn missing_secrets_are_reported_with_their_key() {
        let mut config: EmailConfig = toml::from_str(EXAMPLE).expect("parse");
        let mut problems = Vec::new();
        config.resolve_secrets_from("connectors.email", &mut problems, |name| {
            (name == "EMAIL_IMAP_USER").then(|| "bot".to_owned())
        });
        assert!(problems.contains(&(
            "connectors.email.imap.password_env".to_owned(),
            "environment variable EMAIL_IMAP_PASSWORD is not set".to_owned()
        )));
        assert!(problems
            .iter()
            .any(|(key, _)| key == "connectors.email.smtp.password_env"));
        assert_eq!(config.imap.username, "bot");
    }

    #[test]
    fn every_mistake_is_reported() {
        let text = EXAMPLE
            .replace("support@example.com", "not an address")
            .replace("port = 993", "port = 0\nprocessed = \"move\"");
        let config: EmailConfig = toml::from_str(&text).expect("parse");
        let keys: Vec<String> = problems_of(&config)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        for expected in [
            "connectors.email.address",
            "connectors.email.imap.port",
            "connectors.email.imap.processed_mailbox",
        ] {
            assert!(
                keys.iter().any(|key| key == expected),
                "{expected} in {keys:?}"
            );
        }
    }

    #[test]
    fn an_unreadable_or_empty_ca_file_is_reported_with_its_key() {
        let dir = std::env::temp_dir().join(format!("email-ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let not_pem = dir.join("not-a-cert.pem");
        std::fs::write(&not_pem, "just text\n").expect("write");
        let missing = dir.join("missing.pem");
        let text = EXAMPLE
            .replace(
                "port = 993",
                &format!(
                    "port = 993\ntls_ca_file = {:?}",
                    missing.display().to_string()
                ),
            )
            .replace(
                "port = 587",
                &format!(
                    "port = 587\ntls_ca_file = {:?}",
                    not_pem.display().to_string()
                ),
            );
        let mut config: EmailConfig = toml::from_str(&text).expect("parse");
        let mut problems = Vec::new();
        config.load_tls_ca_files("connectors.email", &mut problems);
        let _ = std::fs::remove_dir_all(&dir);
        let imap = problems
            .iter()
            .find(|(key, _)| key == "connectors.email.imap.tls_ca_file")
            .unwrap_or_else(|| panic!("imap.tls_ca_file in {problems:?}"));
        assert!(imap.1.contains("cannot read CA file"), "{imap:?}");
        assert!(imap.1.contains("missing.pem"), "{imap:?}");
        let smtp = problems
            .iter()
            .find(|(key, _)| key == "connectors.email.smtp.tls_ca_file")
            .unwrap_or_else(|| panic!("smtp.tls_ca_file in {problems:?}"));
        assert!(smtp.1.contains("holds no PEM certificate"), "{smtp:?}");
    }

    #[test]
    fn a_ca_file_on_a_plain_connection_is_a_mistake() {
        let text = EXAMPLE.replace(
            "port = 993",
            "port = 143\ntls = \"plain\"\ntls_ca_file = \"/etc/ssl/private-ca.pem\"",
        );
        let config: EmailConfig = toml::from_str(&text).expect("parse");
        assert!(problems_of(&config)
            .iter()
            .any(|(key, _)| key == "connectors.email.imap.tls_ca_file"));
    }

    #[test]
    fn oauth2_needs_its_section_and_a_usable_token_endpoint() {
        let base = EXAMPLE
            .replace("display_name", "auth = \"oauth2\"\n        display_name")
            .replace("password_env = \"EMAIL_IMAP_PASSWORD\"", "")
            .replace("username_env = \"EMAIL_SMTP_USER\"", "")
            .replace("password_env = \"EMAIL_SMTP_PASSWORD\"", "");
        let missing: EmailConfig = toml::from_str(&base).expect("parse");
        assert!(problems_of(&missing)
            .iter()
            .any(|(key, _)| key == "connectors.email.oauth2"));

        let custom = format!(
            "{base}\n[oauth2]\nprovider = \"custom\"\nclient_id_env = \"ID\"\n\
             refresh_token_env = \"REFRESH\"\ntoken_url = \"http://login.example.com/token\"\n"
        );
        let config: EmailConfig = toml::from_str(&custom).expect("parse");
        let problems = problems_of(&config);
        for expected in [
            "connectors.email.oauth2.token_url",
            "connectors.email.oauth2.scopes",
        ] {
            assert!(
                problems.iter().any(|(key, _)| key == expected),
                "{expected} in {problems:?}"
            );
        }

        let google = format!(
            "{base}\n[oauth2]\nprovider = \"google\"\nclient_id_env = \"ID\"\n\
             refresh_token_env = \"REFRESH\"\n"
        );
        let config: EmailConfig = toml::from_str(&google).expect("parse");
        assert!(
            problems_of(&config).is_empty(),
            "{:?}",
            problems_of(&config)
        );
        let oauth = config.oauth2.expect("oauth2");
        assert_eq!(
            oauth.token_endpoint().as_deref(),
            Some("https://oauth2.googleapis.com/token")
        );
        assert_eq!(oauth.scope_list(), ["https://mail.google.com/"]);
    }

    #[test]
    fn a_password_is_refused_alongside_oauth2() {
        let text = EXAMPLE.replace("display_name", "auth = \"oauth2\"\n        display_name")
            + "\n[oauth2]\nprovider = \"microsoft\"\nclient_id_env = \"ID\"\nrefresh_token_env = \"R\"\n";
        let config: EmailConfig = toml::from_str(&text).expect("parse");
        let keys: Vec<String> = problems_of(&config).into_iter().map(|(k, _)| k).collect();
        assert!(
            keys.contains(&"connectors.email.imap.password_env".to_owned()),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"connectors.email.smtp.password_env".to_owned()),
            "{keys:?}"
        );
    }

    #[test]
    fn debug_output_hides_passwords() {
        let mut config: EmailConfig = toml::from_str(EXAMPLE).expect("parse");
        config.imap.password = "hunter2".into();
        assert!(!format!("{config:?}").contains("hunter2"));
        let text = EXAMPLE.replace("display_name", "auth = \"oauth2\"\n        display_name")
            + "\n[oauth2]\nprovider = \"google\"\nclient_id_env = \"ID\"\nrefresh_token_env = \"R\"\n";
        let mut config: EmailConfig = toml::from_str(&text).expect("parse");
        if let Some(oauth) = config.oauth2.as_mut() {
            oauth.refresh_token = "1//refresh-secret".into();
            oauth.client_secret = Some("client-secret".into());
        }
        let shown = format!("{config:?}");
        assert!(shown.contains("Google"), "{shown}");
        assert!(!shown.contains("refresh-secret") && !shown.contains("client-secret"));
    }
}
