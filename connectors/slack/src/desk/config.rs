//! `[desk.slack]`: the Slack desk's typed config, its secrets read from the environment, and
//! offline validation that reports every problem with its dotted key path.

use serde::Deserialize;
use switchboard_api::{read_secret, RedactionConfig, Redactor};

/// The secret type every connector shares; re-exported so `config::Secret` keeps working.
pub use switchboard_api::Secret;

/// How Slack delivers agents' actions to the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlackMode {
    /// Socket Mode: the gateway dials out to Slack over a websocket; no public URL needed.
    #[default]
    Socket,
    /// The Events API: Slack POSTs signed events to `events_path` on the gateway's listener.
    EventsApi,
}

/// The Slack desk's settings, at `[desk.slack]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackDeskConfig {
    /// Whether the Slack desk runs at all.
    #[serde(default)]
    pub enabled: bool,
    /// `socket` (default, no public URL) or `events_api` (signed HTTP POSTs).
    #[serde(default)]
    pub mode: SlackMode,
    /// The environment variable holding the bot token (`xoxb-...`).
    #[serde(default = "default_bot_token_env")]
    pub bot_token_env: String,
    /// The environment variable holding the app-level token (`xapp-...`); Socket Mode only.
    #[serde(default = "default_app_token_env")]
    pub app_token_env: String,
    /// The environment variable holding the signing secret; Events API only.
    #[serde(default = "default_signing_secret_env")]
    pub signing_secret_env: String,
    /// The default support channel's id (e.g. `C0123SUPPORT`), where briefings are posted.
    #[serde(default)]
    pub channel: String,
    /// The Web API base URL; Slack's own when unset (tests point it at a loopback stand-in).
    #[serde(default)]
    pub api_url: Option<String>,
    /// The Events API path on the gateway's listener.
    #[serde(default = "default_events_path")]
    pub events_path: String,
    /// Posts per second per channel; Slack allows about one, bursts briefly.
    #[serde(default = "default_posts_per_second")]
    pub posts_per_second_per_channel: f64,
    /// What is hidden from the copies in Slack (Redis keeps the original).
    #[serde(default)]
    pub redact: RedactionConfig,
    /// The bot token, filled by [`SlackDeskConfig::resolve_secrets`].
    #[serde(skip)]
    pub bot_token: Option<Secret>,
    /// The app-level token, filled by [`SlackDeskConfig::resolve_secrets`] (Socket Mode).
    #[serde(skip)]
    pub app_token: Option<Secret>,
    /// The signing secret, filled by [`SlackDeskConfig::resolve_secrets`] (Events API).
    #[serde(skip)]
    pub signing_secret: Option<Secret>,
}

/// Slack's Web API base; slack-morphism appends `/<method>`.
pub const SLACK_API_URL: &str = "https://slack.com/api";

fn default_bot_token_env() -> String {
    "SLACK_BOT_TOKEN".to_string()
}

fn default_app_token_env() -> String {
    "SLACK_APP_TOKEN".to_string()
}

fn default_signing_secret_env() -> String {
    "SLACK_SIGNING_SECRET".to_string()
}

fn default_events_path() -> String {
    "/slack/events".to_string()
}

fn default_posts_per_second() -> f64 {
    1.0
}

impl Default for SlackDeskConfig {
    fn default() -> Self {
        SlackDeskConfig {
            enabled: false,
            mode: SlackMode::default(),
            bot_token_env: default_bot_token_env(),
            app_token_env: default_app_token_env(),
            signing_secret_env: default_signing_secret_env(),
            channel: String::new(),
            api_url: None,
            events_path: default_events_path(),
            posts_per_second_per_channel: default_posts_per_second(),
            redact: RedactionConfig::default(),
            bot_token: None,
            app_token: None,
            signing_secret: None,
        }
    }
}

impl SlackDeskConfig {
    /// Reads the secrets the mode needs from the environment; each missing one is a problem.
    ///
    /// A disabled desk reads nothing, so an unset `SLACK_BOT_TOKEN` is no error there.
    pub fn resolve_secrets(&mut self, prefix: &str, problems: &mut Vec<(String, String)>) {
        self.resolve_secrets_from(prefix, problems, |name| std::env::var(name).ok());
    }

    /// [`SlackDeskConfig::resolve_secrets`] with the environment as a function, for tests.
    pub fn resolve_secrets_from(
        &mut self,
        prefix: &str,
        problems: &mut Vec<(String, String)>,
        env: impl Fn(&str) -> Option<String>,
    ) {
        if !self.enabled {
            return;
        }
        let mut read = |key: &str, var: &str| read_secret(&env, prefix, key, var, problems);
        self.bot_token = read("bot_token_env", &self.bot_token_env);
        match self.mode {
            SlackMode::Socket => self.app_token = read("app_token_env", &self.app_token_env),
            SlackMode::EventsApi => {
                self.signing_secret = read("signing_secret_env", &self.signing_secret_env)
            }
        }
    }

    /// Checks the settings offline and reports every problem with its key path.
    pub fn validate(&self, prefix: &str, problems: &mut Vec<(String, String)>) {
        if !self.enabled {
            return;
        }
        let mut problem = |key: &str, message: String| {
            problems.push((format!("{prefix}.{key}"), message));
        };
        if !is_channel_id(&self.channel) {
            // Events name channels by id, so threads are matched by id: a `#name` never matches.
            problem(
                "channel",
                format!(
                    "must be a Slack channel id like C0123SUPPORT (not a #name), got {:?}",
                    self.channel
                ),
            );
        }
        if let Err(error) = Redactor::new(self.redact.clone()) {
            problem("redact", error);
        }
        validate_app_settings(
            AppSettings {
                api_url: self.api_url.as_deref(),
                events_path: &self.events_path,
                posts_per_second: self.posts_per_second_per_channel,
                token_envs: [
                    ("bot_token_env", &self.bot_token_env),
                    ("app_token_env", &self.app_token_env),
                    ("signing_secret_env", &self.signing_secret_env),
                ],
            },
            &mut problem,
        );
    }

    /// The Web API base URL without a trailing slash (slack-morphism adds `/<method>`).
    pub fn api_base(&self) -> String {
        self.api_url
            .as_deref()
            .unwrap_or(SLACK_API_URL)
            .trim_end_matches('/')
            .to_string()
    }
}

/// True for ids of public (`C`) and private (`G`) channels.
pub(crate) fn is_channel_id(channel: &str) -> bool {
    let mut chars = channel.chars();
    matches!(chars.next(), Some('C' | 'G'))
        && channel.len() >= 2
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// The bot token, and the app token Socket Mode needs, from resolved secrets; a secret the
/// mode needs but `resolve_secrets` did not fill is an Auth error naming `connector`.
pub(crate) fn resolved_tokens(
    connector: &'static str,
    mode: SlackMode,
    bot_token: Option<&Secret>,
    app_token: Option<&Secret>,
    signing_secret: Option<&Secret>,
) -> Result<(Secret, Option<Secret>), switchboard_api::ConnectorError> {
    let missing = |what: &str| switchboard_api::ConnectorError::Auth {
        connector,
        detail: format!("{what} not resolved (call resolve_secrets first)"),
    };
    let bot_token = bot_token.cloned().ok_or_else(|| missing("bot token"))?;
    let app_token = match mode {
        SlackMode::Socket => Some(app_token.cloned().ok_or_else(|| missing("app token"))?),
        SlackMode::EventsApi => {
            if signing_secret.is_none() {
                return Err(missing("signing secret"));
            }
            None
        }
    };
    Ok((bot_token, app_token))
}

/// The settings the desk app and the customer app share, checked the same way.
pub(crate) struct AppSettings<'a> {
    pub(crate) api_url: Option<&'a str>,
    pub(crate) events_path: &'a str,
    pub(crate) posts_per_second: f64,
    pub(crate) token_envs: [(&'static str, &'a String); 3],
}

/// Reports each problem of a Slack app's shared settings through `problem(key, message)`.
pub(crate) fn validate_app_settings(
    settings: AppSettings<'_>,
    problem: &mut impl FnMut(&str, String),
) {
    if let Some(url) = settings.api_url {
        if let Err(message) = check_api_url(url) {
            problem("api_url", message);
        }
    }
    if !settings.events_path.starts_with('/') {
        problem(
            "events_path",
            format!("must start with '/', got {:?}", settings.events_path),
        );
    }
    let rate = settings.posts_per_second;
    if !(rate.is_finite() && rate > 0.0) {
        problem(
            "posts_per_second_per_channel",
            format!("must be a positive number, got {rate}"),
        );
    }
    for (key, var) in settings.token_envs {
        if var.trim().is_empty() {
            problem(key, "must name an environment variable".to_string());
        }
    }
}

fn check_api_url(url: &str) -> Result<(), String> {
    switchboard_api::check_api_url(url, "switchboard-slack", cfg!(feature = "tls"))
}

impl switchboard_api::DeskConfig for SlackDeskConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self, key: &str, problems: &mut switchboard_api::ConfigProblems) {
        SlackDeskConfig::validate(self, key, problems);
    }

    fn resolve_secrets(&mut self, key: &str, problems: &mut switchboard_api::ConfigProblems) {
        SlackDeskConfig::resolve_secrets(self, key, problems);
    }

    fn default_channel(&self) -> &str {
        &self.channel
    }

    fn build(
        self: Box<Self>,
        cx: &switchboard_api::BuildContext,
    ) -> Result<std::sync::Arc<dyn switchboard_api::Desk>, switchboard_api::ConnectorError> {
        let desk = super::SlackDesk::new(*self)?.with_max_file_bytes(cx.max_file_bytes);
        Ok(std::sync::Arc::new(desk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(toml_text: &str) -> SlackDeskConfig {
        let text = format!("enabled = true\n{toml_text}");
        toml::from_str(&text).expect("config parses")
    }

    #[test]
    fn defaults_fill_everything_but_the_channel() {
        let config = enabled("channel = \"C0123SUPPORT\"");
        assert_eq!(config.mode, SlackMode::Socket);
        assert_eq!(config.bot_token_env, "SLACK_BOT_TOKEN");
        assert_eq!(config.events_path, "/slack/events");
        assert_eq!(config.posts_per_second_per_channel, 1.0);
        assert_eq!(config.api_base(), "https://slack.com/api");
        let mut problems = vec![];
        config.validate("desk.slack", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_typo_is_an_error_not_a_silent_default() {
        let text = "enabled = true\nchanel = \"C1\"";
        let error = toml::from_str::<SlackDeskConfig>(text).expect_err("typo rejected");
        assert!(error.to_string().contains("chanel"), "{error}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let config = enabled(
            "channel = \"#support\"\napi_url = \"slack.com\"\nevents_path = \"slack\"\n\
             posts_per_second_per_channel = 0.0",
        );
        let mut problems = vec![];
        config.validate("desk.slack", &mut problems);
        let keys: Vec<&str> = problems.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "desk.slack.channel",
                "desk.slack.api_url",
                "desk.slack.events_path",
                "desk.slack.posts_per_second_per_channel"
            ]
        );
    }

    #[test]
    fn missing_secrets_name_the_variable_for_the_mode_in_use() {
        let mut socket = enabled("channel = \"C1\"");
        let mut problems = vec![];
        socket.resolve_secrets_from("desk.slack", &mut problems, |_| None);
        assert_eq!(
            problems,
            [
                (
                    "desk.slack.bot_token_env".to_string(),
                    "environment variable SLACK_BOT_TOKEN is not set".to_string()
                ),
                (
                    "desk.slack.app_token_env".to_string(),
                    "environment variable SLACK_APP_TOKEN is not set".to_string()
                ),
            ]
        );

        let mut events = enabled("channel = \"C1\"\nmode = \"events_api\"");
        let mut problems = vec![];
        events.resolve_secrets_from("desk.slack", &mut problems, |name| {
            (name == "SLACK_BOT_TOKEN").then(|| "xoxb-1".to_string())
        });
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "desk.slack.signing_secret_env");
        assert_eq!(events.bot_token, Some(Secret::new("xoxb-1")));
        assert!(
            !format!("{events:?}").contains("xoxb-1"),
            "secrets never print"
        );
    }

    #[test]
    fn a_disabled_desk_needs_nothing() {
        let mut config = SlackDeskConfig::default();
        let mut problems = vec![];
        config.resolve_secrets_from("desk.slack", &mut problems, |_| None);
        config.validate("desk.slack", &mut problems);
        assert!(problems.is_empty());
    }
}
