//! Typed configuration: TOML under `config/`, secrets from environment variables.
//!
//! Loading never stops at the first mistake: every section is parsed on its own and every
//! problem is reported with its dotted key path, so an admin fixes a file in one pass.
//! Nothing here opens a connection; `check-config` validates fully offline.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use switchboard_api::{BuildContext, Connector, ConnectorConfig, ConnectorError};

use crate::registry;
use crate::triage::TriageConfig;

mod cases;
mod desk;
pub use cases::{CaseConfig, CaseRules, MetricsConfig};
pub use desk::{DeskRoute, DeskSection, DeskSettings, Reminders};

/// The whole gateway configuration.
#[derive(Debug, Default)]
pub struct Config {
    /// `[gateway]`: limits and the HTTP listener.
    pub gateway: GatewayConfig,
    /// `[redis]`: where conversations live.
    pub redis: RedisConfig,
    /// `[outbox]`: delivery retries.
    pub outbox: OutboxConfig,
    /// `[triage]`: policies and the knowledge base.
    pub triage: TriageConfig,
    /// `[connectors.*]`: the channels, each enabled or disabled.
    pub connectors: ConnectorsConfig,
    /// `[desk.*]`: where escalations go (an agent desk, and routing rules).
    pub desk: DeskSettings,
    /// `[files]`: attachments both ways, their size limit and retention.
    pub files: FilesConfig,
    /// `[case]`: when support cases open, close and reopen.
    pub case: CaseConfig,
    /// `[metrics]`: the windows of the per-case figures.
    pub metrics: MetricsConfig,
    /// `[retention]`: when conversations leave Redis for the archive.
    pub retention: crate::archive::RetentionConfig,
    /// The directory of the config file; relative paths resolve against it.
    pub base_dir: PathBuf,
}

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address of the HTTP listener (web chat, webhooks, health).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Longest message accepted from any channel, in bytes.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Name of this instance in consumer groups; defaults to host name and process id.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Worker pairs (triage + delivery) in this instance, each owning a share of the
    /// partitions. Two keep Redis busy while one decides or sends (measured +30% on 2 cores).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Address of the admin listener (`/metrics`, `/readyz`, `/healthz`): operators and
    /// monitoring only, so loopback by default and never part of the public listener.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// Environment variable holding a bearer token the admin listener then requires
    /// (`Authorization: Bearer <token>`); set it when `admin_listen` is reachable from a network.
    #[serde(default)]
    pub admin_token_env: Option<String>,
    /// The resolved admin token (never read from TOML).
    #[serde(skip)]
    pub admin_token: Option<switchboard_api::Secret>,
    /// On SIGTERM or SIGINT, how long the deliveries in hand may take to finish before the
    /// process exits anyway (what is left is taken over by another instance). Below Docker's
    /// 10 s `docker stop` timeout by default, so the drain ends before a SIGKILL.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// How `run` writes its log lines: `text` for people reading a terminal, `json` (one
    /// object per line) for pipelines such as Loki or ELK that would otherwise parse text.
    #[serde(default)]
    pub log_format: LogFormat,
}

/// `gateway.log_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (tracing's default format).
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, `fields` and the spans.
    Json,
}

fn default_shutdown_grace_ms() -> u64 {
    8_000
}

fn default_admin_listen() -> String {
    "127.0.0.1:9090".into()
}

fn default_workers() -> usize {
    2
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_max_message_bytes() -> usize {
    16_000
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: default_listen(),
            max_message_bytes: default_max_message_bytes(),
            instance_id: None,
            workers: default_workers(),
            admin_listen: default_admin_listen(),
            admin_token_env: None,
            admin_token: None,
            shutdown_grace_ms: default_shutdown_grace_ms(),
            log_format: LogFormat::default(),
        }
    }
}

/// `[redis]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Redis URL (`redis://host:port/db` or `redis+unix:///path/to.sock`).
    #[serde(default = "default_redis_url")]
    pub url: String,
    /// Environment variable that overrides `url` when set (it may carry a password); required
    /// when the file gives no `url`.
    #[serde(default)]
    pub url_env: Option<String>,
    /// How long one Redis command may take before the request fails with 503.
    #[serde(default = "default_command_timeout_ms")]
    pub command_timeout_ms: u64,
    /// At start, how long to keep trying a Redis that refuses connections or is still loading
    /// its data, before exiting with the error.
    #[serde(default = "default_startup_wait_ms")]
    pub startup_wait_ms: u64,
}

fn default_startup_wait_ms() -> u64 {
    60_000
}

fn default_redis_url() -> String {
    "redis://127.0.0.1:6379/".into()
}
fn default_command_timeout_ms() -> u64 {
    2_000
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: default_redis_url(),
            url_env: None,
            command_timeout_ms: default_command_timeout_ms(),
            startup_wait_ms: default_startup_wait_ms(),
        }
    }
}

/// `[outbox]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// A delivery not acked for this long is taken over by another instance (its owner died).
    #[serde(default = "default_claim_idle_ms")]
    pub claim_idle_ms: u64,
    /// First retry delay; doubles on each failure.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest retry delay.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// How long a delivery keeps being retried while its platform fails (counted from its
    /// first failed attempt) before it is moved to the dead-letter stream. Time, not a number
    /// of attempts: a platform's outage of an hour must not lose replies.
    #[serde(default = "default_give_up_after_ms")]
    pub give_up_after_ms: u64,
    /// A target (a channel, or the desk) whose deliveries have been failing for this long with
    /// none getting through is reported by `/readyz`.
    #[serde(default = "default_unhealthy_after_ms")]
    pub unhealthy_after_ms: u64,
    /// How long one connector send may take.
    #[serde(default = "default_send_timeout_ms")]
    pub send_timeout_ms: u64,
}

fn default_claim_idle_ms() -> u64 {
    30_000
}
fn default_initial_backoff_ms() -> u64 {
    500
}
fn default_max_backoff_ms() -> u64 {
    60_000
}
fn default_give_up_after_ms() -> u64 {
    72 * 60 * 60 * 1000
}
fn default_unhealthy_after_ms() -> u64 {
    5 * 60 * 1000
}
fn default_send_timeout_ms() -> u64 {
    10_000
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            claim_idle_ms: default_claim_idle_ms(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            give_up_after_ms: default_give_up_after_ms(),
            unhealthy_after_ms: default_unhealthy_after_ms(),
            send_timeout_ms: default_send_timeout_ms(),
        }
    }
}

/// `[files]`: files customers and agents send each other.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Largest file accepted from a customer or an agent, in bytes; larger ones are refused
    /// with a message saying the size and the limit.
    #[serde(default = "default_max_file_bytes")]
    pub max_bytes: u64,
    /// How long stored files (and their download links) live, in days.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// The gateway's public URL (`https://support.example.com`), put in front of download
    /// links sent to channels that cannot carry files; without it links are relative paths,
    /// which only the web chat widget can resolve.
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// Environment variable holding the key download links are signed with; without it the
    /// gateway keeps a random key in Redis, shared by every instance.
    #[serde(default)]
    pub link_secret_env: Option<String>,
    /// The resolved signing key (never read from TOML).
    #[serde(skip)]
    pub link_secret: Option<switchboard_api::Secret>,
    /// Most bytes of web chat uploads one conversation may hold while its files live.
    #[serde(default = "default_max_bytes_per_conversation")]
    pub max_bytes_per_conversation: u64,
    /// Most bytes of web chat uploads one client address (an IPv6 /64) may send per UTC day.
    #[serde(default = "default_max_bytes_per_address_per_day")]
    pub max_bytes_per_address_per_day: u64,
    /// Most bytes of web chat uploads stored at once, over every visitor (within the retention).
    #[serde(default = "default_max_bytes_total")]
    pub max_bytes_total: u64,
    /// Refuse files while Redis uses more than this fraction of its `maxmemory`, so chats
    /// keep the rest.
    #[serde(default = "default_max_redis_memory_fraction")]
    pub max_redis_memory_fraction: f64,
}

/// Files over this would strain Redis (one value per file) and every channel's own limit.
pub const MAX_FILE_BYTES_CEILING: u64 = 100 * 1024 * 1024;

fn default_max_file_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_retention_days() -> u32 {
    30
}
fn default_max_bytes_per_conversation() -> u64 {
    50 * 1024 * 1024
}
fn default_max_bytes_per_address_per_day() -> u64 {
    100 * 1024 * 1024
}
fn default_max_bytes_total() -> u64 {
    1024 * 1024 * 1024
}
fn default_max_redis_memory_fraction() -> f64 {
    0.9
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_bytes: default_max_file_bytes(),
            retention_days: default_retention_days(),
            public_base_url: None,
            link_secret_env: None,
            link_secret: None,
            max_bytes_per_conversation: default_max_bytes_per_conversation(),
            max_bytes_per_address_per_day: default_max_bytes_per_address_per_day(),
            max_bytes_total: default_max_bytes_total(),
            max_redis_memory_fraction: default_max_redis_memory_fraction(),
        }
    }
}

impl FilesConfig {
    fn validate(&self, problems: &mut Vec<(String, String)>) {
        if self.max_bytes == 0 || self.max_bytes > MAX_FILE_BYTES_CEILING {
            problems.push((
                "files.max_bytes".into(),
                format!(
                    "must be between 1 and {MAX_FILE_BYTES_CEILING} (100 MiB), got {}",
                    self.max_bytes
                ),
            ));
        }
        if self.retention_days == 0 || self.retention_days > 3650 {
            problems.push((
                "files.retention_days".into(),
                format!("must be between 1 and 3650, got {}", self.retention_days),
            ));
        }
        for (key, quota) in [
            (
                "max_bytes_per_conversation",
                self.max_bytes_per_conversation,
            ),
            (
                "max_bytes_per_address_per_day",
                self.max_bytes_per_address_per_day,
            ),
            ("max_bytes_total", self.max_bytes_total),
        ] {
            if quota < self.max_bytes {
                problems.push((
                    format!("files.{key}"),
                    format!(
                        "must be at least files.max_bytes ({}), or no file that size could ever be sent; got {quota}",
                        self.max_bytes
                    ),
                ));
            }
        }
        let fraction = self.max_redis_memory_fraction;
        if !(fraction > 0.0 && fraction <= 1.0) {
            problems.push((
                "files.max_redis_memory_fraction".into(),
                format!("must be above 0 and at most 1 (0.9 keeps a tenth of Redis for chats), got {fraction}"),
            ));
        }
        if let Some(url) = &self.public_base_url {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            let host = url.split_once("://").map(|(_, rest)| rest).unwrap_or("");
            if !scheme_ok || host.is_empty() || url.contains(['?', '#', ' ']) {
                problems.push((
                    "files.public_base_url".into(),
                    format!("`{url}` is not an http(s) URL like https://support.example.com"),
                ));
            }
        }
    }

    fn resolve_secrets(&mut self, problems: &mut Vec<(String, String)>) {
        let Some(var) = &self.link_secret_env else {
            return;
        };
        match std::env::var(var) {
            Ok(secret) if secret.len() >= 16 => {
                self.link_secret = Some(switchboard_api::Secret::new(secret))
            }
            Ok(_) => problems.push((
                "files.link_secret_env".into(),
                format!("environment variable {var} must hold at least 16 characters"),
            )),
            Err(_) => problems.push((
                "files.link_secret_env".into(),
                format!("environment variable {var} is not set"),
            )),
        }
    }
}

/// `[connectors]`: the sections given, one per channel of the [`registry`], in its order.
#[derive(Debug, Default)]
pub struct ConnectorsConfig {
    sections: Vec<ConnectorSection>,
}

/// One `[connectors.<name>]` section, parsed into its channel's config.
#[derive(Debug)]
struct ConnectorSection {
    name: &'static str,
    config: Box<dyn ConnectorConfig>,
}

impl ConnectorsConfig {
    fn parse(connectors: &toml::Table, problems: &mut Vec<ConfigProblem>) -> ConnectorsConfig {
        let names = registry::channel_names();
        for key in connectors.keys() {
            if registry::find(key).is_none() {
                problems.push(unknown_key(&format!("connectors.{key}"), &names));
            }
        }
        let mut sections = Vec::new();
        for entry in registry::CHANNELS {
            let Some(value) = connectors.get(entry.name()) else {
                continue;
            };
            match (entry.parse)(value.clone()) {
                Ok(config) => sections.push(ConnectorSection {
                    name: entry.name(),
                    config,
                }),
                Err((inner, message)) => {
                    let key = match inner.as_str() {
                        "" => format!("connectors.{}", entry.name()),
                        inner => format!("connectors.{}.{inner}", entry.name()),
                    };
                    problems.push(ConfigProblem { key, message });
                }
            }
        }
        ConnectorsConfig { sections }
    }

    /// The names of the sections given, enabled or not, in registry order.
    pub fn names(&self) -> Vec<&'static str> {
        self.sections.iter().map(|section| section.name).collect()
    }

    /// Whether `[connectors.<name>]` is given with `enabled = true`.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.sections
            .iter()
            .any(|section| section.name == name && section.config.enabled())
    }

    /// What `switchboard run` prints after its address for the enabled channels (a demo page).
    pub fn startup_notes(&self) -> Vec<&'static str> {
        self.sections
            .iter()
            .filter(|section| section.config.enabled())
            .filter_map(|section| section.config.startup_note())
            .collect()
    }

    /// Builds the enabled channels' connectors; opens no connection.
    pub fn build(self, cx: &BuildContext) -> Result<Vec<Arc<dyn Connector>>, ConnectorError> {
        self.sections
            .into_iter()
            .filter(|section| section.config.enabled())
            .map(|section| section.config.build(cx))
            .collect()
    }

    fn resolve_secrets(&mut self, problems: &mut Vec<(String, String)>) {
        for section in &mut self.sections {
            let key = format!("connectors.{}", section.name);
            section.config.resolve_secrets(&key, problems);
        }
    }

    fn validate(&self, problems: &mut Vec<(String, String)>) {
        for section in &self.sections {
            section
                .config
                .validate(&format!("connectors.{}", section.name), problems);
        }
    }
}

/// One mistake in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `connectors.webchat.max_message_bytes`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found in one config file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// Each problem, in file order where known.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} problem(s)",
            self.path.display(),
            self.problems.len()
        )?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

const TOP_LEVEL_KEYS: [&str; 10] = [
    "gateway",
    "redis",
    "outbox",
    "triage",
    "connectors",
    "desk",
    "files",
    "case",
    "metrics",
    "retention",
];

impl Config {
    /// Reads, parses, resolves secrets and validates one config file, reporting every problem.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError {
            path: path.to_owned(),
            problems,
        };
        let text = std::fs::read_to_string(path).map_err(|error| {
            fail(vec![ConfigProblem {
                key: "(file)".into(),
                message: format!("cannot read: {error}"),
            }])
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        Config::parse(&text, base_dir).map_err(fail)
    }

    /// Parses config text; relative paths resolve against `base_dir`.
    pub fn parse(text: &str, base_dir: PathBuf) -> Result<Config, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(error) => {
                return Err(vec![ConfigProblem {
                    key: "(syntax)".into(),
                    message: error.to_string().trim().replace('\n', " "),
                }])
            }
        };
        for key in table.keys() {
            if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
                problems.push(unknown_key(key, &TOP_LEVEL_KEYS));
            }
        }
        let mut config = Config {
            gateway: section(&table, "gateway", &mut problems),
            redis: section(&table, "redis", &mut problems),
            outbox: outbox_section(&table, &mut problems),
            triage: section(&table, "triage", &mut problems),
            connectors: ConnectorsConfig::default(),
            desk: DeskSettings::default(),
            files: section(&table, "files", &mut problems),
            case: section(&table, "case", &mut problems),
            metrics: section(&table, "metrics", &mut problems),
            retention: section(&table, "retention", &mut problems),
            base_dir,
        };
        match table.get("connectors") {
            None => {}
            Some(toml::Value::Table(connectors)) => {
                config.connectors = ConnectorsConfig::parse(connectors, &mut problems);
            }
            Some(_) => problems.push(ConfigProblem {
                key: "connectors".into(),
                message: "must be a table of connector sections".into(),
            }),
        }
        match table.get("desk") {
            None => {}
            Some(toml::Value::Table(desk)) => {
                config.desk = DeskSettings::parse(desk, &mut problems);
            }
            Some(_) => problems.push(ConfigProblem {
                key: "desk".into(),
                message: "must be a table of desk sections".into(),
            }),
        }
        let redis_url_given = table
            .get("redis")
            .and_then(|redis| redis.get("url"))
            .is_some();
        config.resolve_secrets(redis_url_given, &mut problems);
        config.validate(&mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    fn resolve_secrets(&mut self, redis_url_given: bool, problems: &mut Vec<ConfigProblem>) {
        let mut raw = Vec::new();
        if let Some(var) = &self.redis.url_env {
            match std::env::var(var) {
                Ok(url) => self.redis.url = url,
                Err(_) if redis_url_given => {}
                Err(_) => raw.push((
                    "redis.url_env".to_owned(),
                    format!("environment variable {var} is not set"),
                )),
            }
        }
        if let Some(var) = &self.gateway.admin_token_env {
            match std::env::var(var) {
                Ok(token) if token.len() >= 16 => {
                    self.gateway.admin_token = Some(switchboard_api::Secret::new(token))
                }
                Ok(_) => raw.push((
                    "gateway.admin_token_env".into(),
                    format!("environment variable {var} must hold at least 16 characters"),
                )),
                Err(_) => raw.push((
                    "gateway.admin_token_env".into(),
                    format!("environment variable {var} is not set"),
                )),
            }
        }
        self.files.resolve_secrets(&mut raw);
        self.retention.resolve_secrets(&mut raw);
        self.connectors.resolve_secrets(&mut raw);
        for section in &mut self.desk.sections {
            let key = format!("desk.{}", section.name);
            section.config.resolve_secrets(&key, &mut raw);
        }
        problems.extend(
            raw.into_iter()
                .map(|(key, message)| ConfigProblem { key, message }),
        );
    }

    fn validate(&self, problems: &mut Vec<ConfigProblem>) {
        let mut raw: Vec<(String, String)> = Vec::new();
        if self.gateway.listen.parse::<std::net::SocketAddr>().is_err() {
            raw.push((
                "gateway.listen".into(),
                format!(
                    "`{}` is not a socket address like 127.0.0.1:8080",
                    self.gateway.listen
                ),
            ));
        }
        if self
            .gateway
            .admin_listen
            .parse::<std::net::SocketAddr>()
            .is_err()
        {
            raw.push((
                "gateway.admin_listen".into(),
                format!(
                    "`{}` is not a socket address like 127.0.0.1:9090",
                    self.gateway.admin_listen
                ),
            ));
        }
        // Port 0 (a free port each) is the one address the two may share.
        if self.gateway.admin_listen == self.gateway.listen && !self.gateway.listen.ends_with(":0")
        {
            raw.push((
                "gateway.admin_listen".into(),
                "must differ from gateway.listen: admin endpoints are never served to the public"
                    .into(),
            ));
        }
        if self.gateway.max_message_bytes == 0 {
            raw.push((
                "gateway.max_message_bytes".into(),
                "must be greater than 0".into(),
            ));
        }
        if !(1..=crate::store::keys::PARTITIONS).contains(&self.gateway.workers) {
            raw.push((
                "gateway.workers".into(),
                format!(
                    "must be between 1 and {} (the number of partitions)",
                    crate::store::keys::PARTITIONS
                ),
            ));
        }
        if redis::parse_redis_url(&self.redis.url).is_none() {
            raw.push((
                "redis.url".into(),
                format!(
                    "`{}` is not a redis:// or redis+unix:// URL",
                    self.redis.url
                ),
            ));
        }
        if self.redis.command_timeout_ms == 0 {
            raw.push((
                "redis.command_timeout_ms".into(),
                "must be greater than 0".into(),
            ));
        }
        if self.outbox.initial_backoff_ms > self.outbox.max_backoff_ms {
            raw.push((
                "outbox.initial_backoff_ms".into(),
                "must not exceed outbox.max_backoff_ms".into(),
            ));
        }
        if self.outbox.give_up_after_ms == 0 {
            raw.push((
                "outbox.give_up_after_ms".into(),
                "must be greater than 0 (259200000 = 72 h is the default)".into(),
            ));
        }
        if self.outbox.unhealthy_after_ms == 0 {
            raw.push((
                "outbox.unhealthy_after_ms".into(),
                "must be greater than 0".into(),
            ));
        }
        self.triage.validate("triage", &self.base_dir, &mut raw);
        self.files.validate(&mut raw);
        cases::validate(&self.case, &self.metrics, &mut raw);
        self.retention.validate(&mut raw);
        self.connectors.validate(&mut raw);
        self.desk.validate(&mut raw);
        problems.extend(
            raw.into_iter()
                .map(|(key, message)| ConfigProblem { key, message }),
        );
    }
}

fn unknown_key(key: &str, expected: &[&str]) -> ConfigProblem {
    // `"" = 1` is legal TOML; quoted, the problem still names a key (found by fuzzing).
    let key = if key.is_empty() || key.ends_with('.') {
        format!("{key}\"\"")
    } else {
        key.to_owned()
    };
    ConfigProblem {
        key,
        message: format!("unknown key (expected one of: {})", expected.join(", ")),
    }
}

/// `[outbox]`, naming the keys earlier versions took and this one replaced (rather than a bare
/// "unknown field"), so an admin upgrading knows what to write instead.
fn outbox_section(table: &toml::Table, problems: &mut Vec<ConfigProblem>) -> OutboxConfig {
    let Some(mut outbox) = table.get("outbox").cloned() else {
        return OutboxConfig::default();
    };
    if let toml::Value::Table(keys) = &mut outbox {
        if keys.remove("max_attempts").is_some() {
            problems.push(ConfigProblem {
                key: "outbox.max_attempts".into(),
                message: "was replaced by outbox.give_up_after_ms: deliveries are now given up on \
                          after a time of failing (default 259200000 = 72 h), not after a number \
                          of attempts; remove this key"
                    .into(),
            });
        }
    }
    let only_outbox = toml::Table::from_iter([("outbox".to_owned(), outbox)]);
    section(&only_outbox, "outbox", problems)
}

/// Deserializes one optional table, recording a problem with the full key path on failure.
fn section<T: DeserializeOwned + Default>(
    table: &toml::Table,
    name: &str,
    problems: &mut Vec<ConfigProblem>,
) -> T {
    optional_section(table, name, name, problems).unwrap_or_default()
}

fn optional_section<T: DeserializeOwned>(
    table: &toml::Table,
    path: &str,
    name: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Option<T> {
    let value = table.get(name)?.clone();
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let inner = error.path().to_string();
            let key = if inner == "." || inner.is_empty() {
                path.to_owned()
            } else {
                format!("{path}.{inner}")
            };
            let message = error.into_inner().to_string().trim().to_owned();
            problems.push(ConfigProblem { key, message });
            None
        }
    }
}
