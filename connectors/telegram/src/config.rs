//! `[connectors.telegram]`: the Telegram connector's typed config, its secrets read from the
//! environment, and offline validation that reports every problem with its dotted key path.

use serde::Deserialize;
use switchboard_api::read_secret;

/// The secret type every connector shares; re-exported so `config::Secret` keeps working.
pub use switchboard_api::Secret;

/// How Telegram delivers updates to the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TelegramMode {
    /// Long polling with `getUpdates`: no public URL needed; one instance polls at a time.
    #[default]
    Polling,
    /// Telegram POSTs updates to `webhook_path` on the gateway's listener (set with `setWebhook`).
    Webhook,
}

/// The Telegram connector's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Whether the Telegram channel runs at all.
    #[serde(default)]
    pub enabled: bool,
    /// The environment variable holding the bot token from @BotFather.
    #[serde(default = "default_bot_token_env")]
    pub bot_token_env: String,
    /// `polling` (default, no public URL) or `webhook`.
    #[serde(default)]
    pub mode: TelegramMode,
    /// The webhook path on the gateway's listener (webhook mode).
    #[serde(default = "default_webhook_path")]
    pub webhook_path: String,
    /// The environment variable holding the `secret_token` given to `setWebhook`; Telegram
    /// sends it back in `X-Telegram-Bot-Api-Secret-Token`. Required in webhook mode.
    #[serde(default = "default_webhook_secret_env")]
    pub webhook_secret_env: String,
    /// The Bot API base URL; Telegram's own when unset (tests point it at a loopback stand-in).
    #[serde(default)]
    pub api_url: Option<String>,
    /// What the bot answers to `/start`.
    #[serde(default = "default_greeting")]
    pub greeting: String,
    /// How long one `getUpdates` long poll waits for updates, in seconds (Telegram caps it at 50).
    #[serde(default = "default_poll_timeout_secs")]
    pub poll_timeout_secs: u64,
    /// The bot token, filled by [`TelegramConfig::resolve_secrets`].
    #[serde(skip)]
    pub bot_token: Option<Secret>,
    /// The webhook secret, filled by [`TelegramConfig::resolve_secrets`] (webhook mode).
    #[serde(skip)]
    pub webhook_secret: Option<Secret>,
}

/// Telegram's Bot API base; teloxide appends `/bot<token>/<method>`.
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";

fn default_bot_token_env() -> String {
    "TELEGRAM_BOT_TOKEN".to_string()
}

fn default_webhook_path() -> String {
    "/telegram/webhook".to_string()
}

fn default_webhook_secret_env() -> String {
    "TELEGRAM_WEBHOOK_SECRET".to_string()
}

fn default_greeting() -> String {
    "Hi! Ask me anything about our product. If you'd rather talk to a person, just say so."
        .to_string()
}

fn default_poll_timeout_secs() -> u64 {
    25
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig {
            enabled: false,
            bot_token_env: default_bot_token_env(),
            mode: TelegramMode::default(),
            webhook_path: default_webhook_path(),
            webhook_secret_env: default_webhook_secret_env(),
            api_url: None,
            greeting: default_greeting(),
            poll_timeout_secs: default_poll_timeout_secs(),
            bot_token: None,
            webhook_secret: None,
        }
    }
}

impl TelegramConfig {
    /// Reads the secrets the mode needs from the environment; each missing one is a problem.
    ///
    /// A disabled channel reads nothing, so an unset `TELEGRAM_BOT_TOKEN` is no error there.
    pub fn resolve_secrets(&mut self, prefix: &str, problems: &mut Vec<(String, String)>) {
        self.resolve_secrets_from(prefix, problems, |name| std::env::var(name).ok());
    }

    /// [`TelegramConfig::resolve_secrets`] with the environment as a function, for tests.
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
        if self.mode == TelegramMode::Webhook {
            self.webhook_secret = read("webhook_secret_env", &self.webhook_secret_env);
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
        if let Some(url) = &self.api_url {
            if let Err(message) = check_api_url(url) {
                problem("api_url", message);
            }
        }
        if !self.webhook_path.starts_with('/') {
            problem(
                "webhook_path",
                format!("must start with '/', got {:?}", self.webhook_path),
            );
        }
        if !(1..=50).contains(&self.poll_timeout_secs) {
            // Telegram caps long polls at 50 s; 0 would turn long polling into busy polling.
            problem(
                "poll_timeout_secs",
                format!("must be between 1 and 50, got {}", self.poll_timeout_secs),
            );
        }
        if self.greeting.trim().is_empty() {
            problem("greeting", "must not be empty".to_string());
        }
        for (key, var) in [
            ("bot_token_env", &self.bot_token_env),
            ("webhook_secret_env", &self.webhook_secret_env),
        ] {
            if var.trim().is_empty() {
                problem(key, "must name an environment variable".to_string());
            }
        }
    }

    /// The Bot API base URL (teloxide adds `/bot<token>/<method>`).
    pub fn api_base(&self) -> &str {
        self.api_url.as_deref().unwrap_or(TELEGRAM_API_URL)
    }
}

fn check_api_url(url: &str) -> Result<(), String> {
    if url::Url::parse(url).is_err() {
        return Err(format!("must be an absolute URL, got {url:?}"));
    }
    switchboard_api::check_api_url(url, "switchboard-telegram", cfg!(feature = "tls"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(toml_text: &str) -> TelegramConfig {
        let text = format!("enabled = true\n{toml_text}");
        toml::from_str(&text).expect("config parses")
    }

    #[test]
    fn defaults_fill_everything() {
        let config = enabled("");
        assert_eq!(config.mode, TelegramMode::Polling);
        assert_eq!(config.bot_token_env, "TELEGRAM_BOT_TOKEN");
        assert_eq!(config.webhook_path, "/telegram/webhook");
        assert_eq!(config.poll_timeout_secs, 25);
        assert_eq!(config.api_base(), "https://api.telegram.org");
        let mut problems = vec![];
        config.validate("connectors.telegram", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_typo_is_an_error_not_a_silent_default() {
        let text = "enabled = true\nmod = \"webhook\"";
        let error = toml::from_str::<TelegramConfig>(text).expect_err("typo rejected");
        assert!(error.to_string().contains("mod"), "{error}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let config = enabled(
            "api_url = \"api.telegram.org\"\nwebhook_path = \"hook\"\npoll_timeout_secs = 0\n\
             greeting = \" \"\nbot_token_env = \"\"",
        );
        let mut problems = vec![];
        config.validate("connectors.telegram", &mut problems);
        let keys: Vec<&str> = problems.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "connectors.telegram.api_url",
                "connectors.telegram.webhook_path",
                "connectors.telegram.poll_timeout_secs",
                "connectors.telegram.greeting",
                "connectors.telegram.bot_token_env",
            ]
        );
    }

    #[test]
    fn missing_secrets_name_the_variable_for_the_mode_in_use() {
        let mut polling = enabled("");
        let mut problems = vec![];
        polling.resolve_secrets_from("connectors.telegram", &mut problems, |_| None);
        assert_eq!(
            problems,
            [(
                "connectors.telegram.bot_token_env".to_string(),
                "environment variable TELEGRAM_BOT_TOKEN is not set".to_string()
            )]
        );

        let mut webhook = enabled("mode = \"webhook\"");
        let mut problems = vec![];
        webhook.resolve_secrets_from("connectors.telegram", &mut problems, |name| {
            (name == "TELEGRAM_BOT_TOKEN").then(|| "123:abc".to_string())
        });
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "connectors.telegram.webhook_secret_env");
        assert_eq!(webhook.bot_token, Some(Secret::new("123:abc")));
        assert!(
            !format!("{webhook:?}").contains("123:abc"),
            "secrets never print"
        );
    }

    #[test]
    fn a_disabled_channel_needs_nothing() {
        let mut config = TelegramConfig::default();
        let mut problems = vec![];
        config.resolve_secrets_from("connectors.telegram", &mut problems, |_| None);
        config.validate("connectors.telegram", &mut problems);
        assert!(problems.is_empty());
    }
}
