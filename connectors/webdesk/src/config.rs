//! `[desk.web]`: the web desk's accounts and limits, checked offline with dotted key paths.

use std::sync::Arc;

use serde::Deserialize;
use switchboard_api::{BuildContext, ConfigProblems, ConnectorError, Desk, DeskConfig};

use crate::auth::{hash_is_valid, new_token};
use crate::WebDesk;

/// One agent who may sign in to the web desk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentAccount {
    /// The sign-in name.
    pub id: String,
    /// The name customers see on the agent's replies.
    pub name: String,
    /// An argon2 PHC string (`switchboard hash-password` prints one).
    pub password_hash: String,
    /// The queues (routing channels) the agent works; empty = every queue.
    #[serde(default)]
    pub teams: Vec<String>,
}

/// The web desk's settings, at `[desk.web]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebDeskConfig {
    /// Whether the gateway serves the web desk at `/desk`.
    #[serde(default)]
    pub enabled: bool,
    /// The default queue, where escalations go unless a routing rule names another.
    #[serde(default = "default_channel")]
    pub channel: String,
    /// The agents who may sign in.
    #[serde(default)]
    pub agents: Vec<AgentAccount>,
    /// Prints a one-time sign-in token at start (the quick start: no account to create).
    #[serde(default)]
    pub login_token: bool,
    /// The name the one-time token's agent signs replies with.
    #[serde(default = "default_token_agent_name")]
    pub login_token_name: String,
    /// How long a session lasts without signing in again.
    #[serde(default = "default_session_ttl_secs")]
    pub session_ttl_secs: u64,
    /// Always mark the session cookie `Secure` (it is whenever the request came over HTTPS
    /// through a proxy that says so with `X-Forwarded-Proto`).
    #[serde(default)]
    pub secure_cookie: bool,
    /// Failed sign-ins allowed per account name, and per client address, in each window;
    /// past them every sign-in is refused until the window ends.
    #[serde(default = "default_login_attempts")]
    pub login_attempts: u64,
    /// The sign-in throttling window.
    #[serde(default = "default_login_window_secs")]
    pub login_window_secs: u64,
}

fn default_channel() -> String {
    "support".into()
}

fn default_token_agent_name() -> String {
    "Agent".into()
}

fn default_session_ttl_secs() -> u64 {
    12 * 3600
}

fn default_login_attempts() -> u64 {
    10
}

fn default_login_window_secs() -> u64 {
    300
}

impl Default for WebDeskConfig {
    fn default() -> Self {
        WebDeskConfig {
            enabled: false,
            channel: default_channel(),
            agents: Vec::new(),
            login_token: false,
            login_token_name: default_token_agent_name(),
            session_ttl_secs: default_session_ttl_secs(),
            secure_cookie: false,
            login_attempts: default_login_attempts(),
            login_window_secs: default_login_window_secs(),
        }
    }
}

impl DeskConfig for WebDeskConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn follows(&self) -> bool {
        true
    }

    fn validate(&self, key: &str, problems: &mut ConfigProblems) {
        if !self.enabled {
            return;
        }
        let mut problem = |at: String, message: &str| problems.push((at, message.to_owned()));
        if self.channel.trim().is_empty() {
            problem(format!("{key}.channel"), "must name the default queue");
        }
        if self.agents.is_empty() && !self.login_token {
            problem(
                format!("{key}.agents"),
                "no one can sign in: add [[desk.web.agents]] (switchboard hash-password makes \
                 the password_hash) or set login_token = true",
            );
        }
        for (n, agent) in self.agents.iter().enumerate() {
            let at = format!("{key}.agents[{n}]");
            if agent.id.trim().is_empty() {
                problem(format!("{at}.id"), "must be the agent's sign-in name");
            }
            if agent.name.trim().is_empty() {
                problem(format!("{at}.name"), "must be the name customers see");
            }
            if !hash_is_valid(&agent.password_hash) {
                problem(
                    format!("{at}.password_hash"),
                    "must be an argon2 hash ($argon2id$...); make one with \
                     `switchboard hash-password`",
                );
            }
            if self.agents[..n].iter().any(|other| other.id == agent.id) {
                problem(format!("{at}.id"), "is used by an earlier agent");
            }
        }
        if self.session_ttl_secs == 0 {
            problem(format!("{key}.session_ttl_secs"), "must be above 0");
        }
        if self.login_attempts == 0 || self.login_window_secs == 0 {
            problem(
                format!("{key}.login_attempts"),
                "login_attempts and login_window_secs must be above 0",
            );
        }
    }

    fn resolve_secrets(&mut self, _key: &str, _problems: &mut ConfigProblems) {}

    fn default_channel(&self) -> &str {
        &self.channel
    }

    fn build(self: Box<Self>, cx: &BuildContext) -> Result<Arc<dyn Desk>, ConnectorError> {
        let token = self.login_token.then(new_token);
        Ok(Arc::new(WebDesk::new(*self, cx, token)))
    }
}
