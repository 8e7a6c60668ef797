//! `[connectors.discord]`: the Discord channel's typed config, the bot token read from the
//! environment, and offline validation that reports every problem with its dotted key path.

use serde::Deserialize;
use switchboard_api::read_secret;

/// The secret type every connector shares; re-exported so `config::Secret` keeps working.
pub use switchboard_api::Secret;

/// Discord's own API host; serenity appends `/api/v10/...`.
pub const DISCORD_API_URL: &str = "https://discord.com";

/// The Discord channel's settings, at `[connectors.discord]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// Whether the Discord connector runs at all.
    #[serde(default)]
    pub enabled: bool,
    /// The environment variable holding the bot token (Developer Portal -> Bot -> Token).
    #[serde(default = "default_bot_token_env")]
    pub bot_token_env: String,
    /// A channel (snowflake id) where each customer's top-level message becomes a thread.
    /// Without it only direct messages to the bot are served.
    #[serde(default)]
    pub support_channel_id: Option<String>,
    /// The server (snowflake id) the support channel belongs to; messages from other servers
    /// are ignored when set.
    #[serde(default)]
    pub guild_id: Option<String>,
    /// The API host (`https://discord.com` when unset); tests point it at a loopback stand-in.
    #[serde(default)]
    pub api_url: Option<String>,
    /// The bot token, filled by [`DiscordConfig::resolve_secrets`].
    #[serde(skip)]
    pub bot_token: Option<Secret>,
}

fn default_bot_token_env() -> String {
    "DISCORD_BOT_TOKEN".to_string()
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            enabled: false,
            bot_token_env: default_bot_token_env(),
            support_channel_id: None,
            guild_id: None,
            api_url: None,
            bot_token: None,
        }
    }
}

impl DiscordConfig {
    /// Reads the bot token from the environment; a missing one is a problem.
    ///
    /// A disabled connector reads nothing, so an unset `DISCORD_BOT_TOKEN` is no error there.
    pub fn resolve_secrets(&mut self, prefix: &str, problems: &mut Vec<(String, String)>) {
        self.resolve_secrets_from(prefix, problems, |name| std::env::var(name).ok());
    }

    /// [`DiscordConfig::resolve_secrets`] with the environment as a function, for tests.
    pub fn resolve_secrets_from(
        &mut self,
        prefix: &str,
        problems: &mut Vec<(String, String)>,
        env: impl Fn(&str) -> Option<String>,
    ) {
        if !self.enabled {
            return;
        }
        self.bot_token = read_secret(&env, prefix, "bot_token_env", &self.bot_token_env, problems);
    }

    /// Checks the settings offline and reports every problem with its key path.
    pub fn validate(&self, prefix: &str, problems: &mut Vec<(String, String)>) {
        if !self.enabled {
            return;
        }
        let mut problem = |key: &str, message: String| {
            problems.push((format!("{prefix}.{key}"), message));
        };
        if self.bot_token_env.trim().is_empty() {
            problem("bot_token_env", "must name an environment variable".into());
        }
        for (key, value) in [
            ("support_channel_id", &self.support_channel_id),
            ("guild_id", &self.guild_id),
        ] {
            if let Some(id) = value {
                if parse_snowflake(id).is_none() {
                    // Gateway events name channels by id, so a `#name` would never match.
                    problem(
                        key,
                        format!("must be a Discord id (digits, not a #name), got {id:?}"),
                    );
                }
            }
        }
        if let Some(url) = &self.api_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problem(
                    "api_url",
                    format!("must start with http:// or https://, got {url:?}"),
                );
            }
        }
    }

    /// The API host without a trailing slash.
    pub fn api_base(&self) -> String {
        self.api_url
            .as_deref()
            .unwrap_or(DISCORD_API_URL)
            .trim_end_matches('/')
            .to_string()
    }

    /// The support channel as a number, when configured and valid.
    pub fn support_channel(&self) -> Option<u64> {
        self.support_channel_id.as_deref().and_then(parse_snowflake)
    }

    /// The guild as a number, when configured and valid.
    pub fn guild(&self) -> Option<u64> {
        self.guild_id.as_deref().and_then(parse_snowflake)
    }
}

/// A Discord id: a non-zero 64-bit number written in decimal.
pub(crate) fn parse_snowflake(id: &str) -> Option<u64> {
    id.trim().parse::<u64>().ok().filter(|id| *id != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(toml_text: &str) -> DiscordConfig {
        let text = format!("enabled = true\n{toml_text}");
        toml::from_str(&text).expect("config parses")
    }

    #[test]
    fn defaults_are_enough_for_direct_messages() {
        let config = enabled("");
        assert_eq!(config.bot_token_env, "DISCORD_BOT_TOKEN");
        assert_eq!(config.api_base(), "https://discord.com");
        assert_eq!(config.support_channel(), None);
        let mut problems = vec![];
        config.validate("connectors.discord", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_typo_is_an_error_not_a_silent_default() {
        let error = toml::from_str::<DiscordConfig>("enabled = true\nsupport_channel = \"1\"")
            .expect_err("typo rejected");
        assert!(error.to_string().contains("support_channel"), "{error}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let config = enabled(
            "support_channel_id = \"#support\"\nguild_id = \"0\"\napi_url = \"discord.com\"\n\
             bot_token_env = \"\"",
        );
        let mut problems = vec![];
        config.validate("connectors.discord", &mut problems);
        let keys: Vec<&str> = problems.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "connectors.discord.bot_token_env",
                "connectors.discord.support_channel_id",
                "connectors.discord.guild_id",
                "connectors.discord.api_url",
            ]
        );
    }

    #[test]
    fn a_missing_token_names_the_variable_and_a_present_one_never_prints() {
        let mut config = enabled("support_channel_id = \"1100000000000000001\"");
        let mut problems = vec![];
        config.resolve_secrets_from("connectors.discord", &mut problems, |_| None);
        assert_eq!(
            problems,
            [(
                "connectors.discord.bot_token_env".to_string(),
                "environment variable DISCORD_BOT_TOKEN is not set".to_string()
            )]
        );
        let mut problems = vec![];
        config.resolve_secrets_from("connectors.discord", &mut problems, |_| {
            Some(" sekrit-token ".into())
        });
        assert!(problems.is_empty());
        assert_eq!(config.bot_token, Some(Secret::new("sekrit-token")));
        assert!(!format!("{config:?}").contains("sekrit"));
        assert_eq!(config.support_channel(), Some(1100000000000000001));
    }

    #[test]
    fn a_disabled_connector_needs_nothing() {
        let mut config = DiscordConfig::default();
        let mut problems = vec![];
        config.resolve_secrets_from("connectors.discord", &mut problems, |_| None);
        config.validate("connectors.discord", &mut problems);
        assert!(problems.is_empty());
    }
}
