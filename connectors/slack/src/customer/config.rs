//! `[connectors.slack]`: Slack as a customer channel (Slack Connect shared channels or a
//! community workspace). A separate Slack app from the team's agent desk, so its own tokens,
//! its own channels and its own Events API path.

use serde::Deserialize;
use switchboard_api::read_secret;

use crate::config::{
    is_channel_id, validate_app_settings, AppSettings, Secret, SlackMode, SLACK_API_URL,
};

/// The Slack customer channel's settings, at `[connectors.slack]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackCustomerConfig {
    /// Whether the channel runs at all.
    #[serde(default)]
    pub enabled: bool,
    /// `socket` (default, no public URL) or `events_api` (signed HTTP POSTs).
    #[serde(default)]
    pub mode: SlackMode,
    /// The environment variable holding the customer app's bot token (`xoxb-...`).
    #[serde(default = "default_bot_token_env")]
    pub bot_token_env: String,
    /// The environment variable holding the app-level token (`xapp-...`); Socket Mode only.
    #[serde(default = "default_app_token_env")]
    pub app_token_env: String,
    /// The environment variable holding the signing secret; Events API only.
    #[serde(default = "default_signing_secret_env")]
    pub signing_secret_env: String,
    /// The channel ids (e.g. `C0SHARED1`) where the bot answers customers; others are ignored.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The Web API base URL; Slack's own when unset (tests point it at a loopback stand-in).
    #[serde(default)]
    pub api_url: Option<String>,
    /// The Events API (and interactivity) path on the gateway's listener.
    #[serde(default = "default_events_path")]
    pub events_path: String,
    /// Posts per second per channel; Slack allows about one, bursts briefly.
    #[serde(default = "default_posts_per_second")]
    pub posts_per_second_per_channel: f64,
    /// The bot token, filled by [`SlackCustomerConfig::resolve_secrets`].
    #[serde(skip)]
    pub bot_token: Option<Secret>,
    /// The app-level token, filled by [`SlackCustomerConfig::resolve_secrets`] (Socket Mode).
    #[serde(skip)]
    pub app_token: Option<Secret>,
    /// The signing secret, filled by [`SlackCustomerConfig::resolve_secrets`] (Events API).
    #[serde(skip)]
    pub signing_secret: Option<Secret>,
}

fn default_bot_token_env() -> String {
    "SLACK_CUSTOMER_BOT_TOKEN".to_string()
}

fn default_app_token_env() -> String {
    "SLACK_CUSTOMER_APP_TOKEN".to_string()
}

fn default_signing_secret_env() -> String {
    "SLACK_CUSTOMER_SIGNING_SECRET".to_string()
}

fn default_events_path() -> String {
    "/slack/customer-events".to_string()
}

fn default_posts_per_second() -> f64 {
    1.0
}

impl Default for SlackCustomerConfig {
    fn default() -> Self {
        SlackCustomerConfig {
            enabled: false,
            mode: SlackMode::default(),
            bot_token_env: default_bot_token_env(),
            app_token_env: default_app_token_env(),
            signing_secret_env: default_signing_secret_env(),
            channels: Vec::new(),
            api_url: None,
            events_path: default_events_path(),
            posts_per_second_per_channel: default_posts_per_second(),
            bot_token: None,
            app_token: None,
            signing_secret: None,
        }
    }
}

impl SlackCustomerConfig {
    /// Reads the secrets the mode needs from the environment; each missing one is a problem.
    /// A disabled channel reads nothing.
    pub fn resolve_secrets(&mut self, prefix: &str, problems: &mut Vec<(String, String)>) {
        self.resolve_secrets_from(prefix, problems, |name| std::env::var(name).ok());
    }

    /// [`SlackCustomerConfig::resolve_secrets`] with the environment as a function, for tests.
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
        if self.channels.is_empty() {
            problem(
                "channels",
                "list at least one channel id where the bot answers customers".to_string(),
            );
        }
        for (index, channel) in self.channels.iter().enumerate() {
            if !is_channel_id(channel) {
                // Events name channels by id; a `#name` would silently never match.
                problem(
                    &format!("channels[{index}]"),
                    format!("must be a Slack channel id like C0123SHARED (not a #name), got {channel:?}"),
                );
            }
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

    /// True when the bot answers customers in `channel`.
    pub fn answers_in(&self, channel: &str) -> bool {
        self.channels.iter().any(|configured| configured == channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(toml_text: &str) -> SlackCustomerConfig {
        let text = format!("enabled = true\n{toml_text}");
        toml::from_str(&text).expect("config parses")
    }

    #[test]
    fn defaults_fill_everything_but_the_channels() {
        let config = enabled("channels = [\"C0SHARED1\", \"G0COMMUNITY\"]");
        assert_eq!(config.mode, SlackMode::Socket);
        assert_eq!(config.bot_token_env, "SLACK_CUSTOMER_BOT_TOKEN");
        assert_eq!(config.app_token_env, "SLACK_CUSTOMER_APP_TOKEN");
        assert_eq!(config.events_path, "/slack/customer-events");
        assert_eq!(config.api_base(), "https://slack.com/api");
        assert!(config.answers_in("G0COMMUNITY") && !config.answers_in("C0OTHER"));
        let mut problems = vec![];
        config.validate("connectors.slack", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_typo_is_an_error_not_a_silent_default() {
        let error = toml::from_str::<SlackCustomerConfig>("enabled = true\nchannel = \"C1\"")
            .expect_err("typo rejected");
        assert!(error.to_string().contains("channel"), "{error}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let config = enabled(
            "channels = [\"C0OK\", \"#support\"]\napi_url = \"slack.com\"\n\
             events_path = \"x\"\nposts_per_second_per_channel = -1.0",
        );
        let mut problems = vec![];
        config.validate("connectors.slack", &mut problems);
        let keys: Vec<&str> = problems.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "connectors.slack.channels[1]",
                "connectors.slack.api_url",
                "connectors.slack.events_path",
                "connectors.slack.posts_per_second_per_channel"
            ]
        );
        let mut problems = vec![];
        enabled("").validate("connectors.slack", &mut problems);
        assert_eq!(problems[0].0, "connectors.slack.channels");
    }

    #[test]
    fn missing_secrets_name_the_customer_apps_variables() {
        let mut config = enabled("channels = [\"C1\"]");
        let mut problems = vec![];
        config.resolve_secrets_from("connectors.slack", &mut problems, |_| None);
        let vars: Vec<&str> = problems
            .iter()
            .map(|(_, message)| message.as_str())
            .collect();
        assert_eq!(
            vars,
            [
                "environment variable SLACK_CUSTOMER_BOT_TOKEN is not set",
                "environment variable SLACK_CUSTOMER_APP_TOKEN is not set"
            ]
        );
        let mut disabled = SlackCustomerConfig::default();
        let mut problems = vec![];
        disabled.resolve_secrets_from("connectors.slack", &mut problems, |_| None);
        disabled.validate("connectors.slack", &mut problems);
        assert!(problems.is_empty());
    }
}
