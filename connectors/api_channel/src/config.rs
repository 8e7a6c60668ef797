//! `[connectors.api]`: the integrations allowed to post customer messages, how each proves
//! itself, and where its replies go; secrets read from the environment, every problem
//! reported with its dotted key path.

use serde::Deserialize;
use switchboard_api::{read_secret, ConfigProblems, Secret};

/// How an integration's requests prove who sent them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// `X-Switchboard-Timestamp` and `X-Switchboard-Signature: v1=<hex HMAC-SHA256>` of
    /// `{timestamp}.{body}`: the secret never crosses the wire and a captured request goes
    /// stale after the replay window.
    #[default]
    Hmac,
    /// `Authorization: Bearer <secret>`, for providers that can only set a static header.
    Bearer,
}

/// The API channel's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiChannelConfig {
    /// Whether `POST /api/v1/messages` is served and replies are delivered to webhooks.
    #[serde(default)]
    pub enabled: bool,
    /// Longest customer text accepted, in bytes; longer is refused with 413.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// How far a signed request's timestamp may be from the gateway's clock, in seconds.
    #[serde(default = "default_replay_window_secs")]
    pub replay_window_secs: u64,
    /// The systems allowed to post messages, each with its own secret and webhook.
    #[serde(default)]
    pub integrations: Vec<IntegrationConfig>,
}

/// One system posting customer messages (your app, an SMS or WhatsApp provider).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationConfig {
    /// A short name (`[a-z0-9_-]`, up to 32): it prefixes the integration's conversation keys
    /// and is sent back in every webhook event.
    pub name: String,
    /// `hmac` (default) or `bearer`.
    #[serde(default)]
    pub auth: AuthMode,
    /// The environment variable holding the integration's secret (at least 16 characters):
    /// it authenticates requests in and signs webhook events out.
    pub secret_env: String,
    /// Where replies and status events are POSTed (http:// or https://).
    pub webhook_url: String,
    /// True when this integration only sends email addresses it has verified: they then link
    /// the customer's conversations across channels. Off, an address is shown but never links.
    #[serde(default)]
    pub emails_verified: bool,
    /// The secret, filled by [`ApiChannelConfig::resolve_secrets`].
    #[serde(skip)]
    pub secret: Option<Secret>,
}

/// Shortest secret accepted: a guessable one would make the signature pointless.
pub const MIN_SECRET_CHARS: usize = 16;

fn default_max_message_bytes() -> usize {
    4000
}

fn default_replay_window_secs() -> u64 {
    300
}

impl Default for ApiChannelConfig {
    fn default() -> Self {
        ApiChannelConfig {
            enabled: false,
            max_message_bytes: default_max_message_bytes(),
            replay_window_secs: default_replay_window_secs(),
            integrations: Vec::new(),
        }
    }
}

/// True for a name usable in conversation keys: no `:` (the key's separator), nothing to escape.
pub fn is_integration_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_".contains(&byte))
}

impl ApiChannelConfig {
    /// Reads every integration's secret from the environment; a missing, short or shared one
    /// is a problem. A disabled channel reads nothing.
    pub fn resolve_secrets(&mut self, prefix: &str, problems: &mut ConfigProblems) {
        self.resolve_secrets_from(prefix, problems, |name| std::env::var(name).ok());
    }

    /// [`ApiChannelConfig::resolve_secrets`] with the environment as a function, for tests.
    pub fn resolve_secrets_from(
        &mut self,
        prefix: &str,
        problems: &mut ConfigProblems,
        env: impl Fn(&str) -> Option<String>,
    ) {
        if !self.enabled {
            return;
        }
        for index in 0..self.integrations.len() {
            let key = format!("{prefix}.integrations[{index}]");
            let integration = &self.integrations[index];
            let secret = read_secret(&env, &key, "secret_env", &integration.secret_env, problems);
            let secret = secret.filter(|secret| {
                let long_enough = secret.expose().chars().count() >= MIN_SECRET_CHARS;
                if !long_enough {
                    problems.push((
                        format!("{key}.secret_env"),
                        format!(
                            "the secret in {} is shorter than {MIN_SECRET_CHARS} characters",
                            integration.secret_env
                        ),
                    ));
                }
                long_enough
            });
            // A request is matched to the integration whose secret it proves; two sharing
            // one could not be told apart.
            let shared_with = secret.as_ref().and_then(|secret| {
                self.integrations[..index]
                    .iter()
                    .find(|earlier| earlier.secret.as_ref() == Some(secret))
            });
            if let Some(earlier) = shared_with {
                problems.push((
                    format!("{key}.secret_env"),
                    format!("the same secret as integration {:?}", earlier.name),
                ));
            }
            self.integrations[index].secret = secret;
        }
    }

    /// Checks the settings offline and reports every problem with its key path.
    pub fn validate(&self, prefix: &str, problems: &mut ConfigProblems) {
        if !self.enabled {
            return;
        }
        if !(1..=100_000).contains(&self.max_message_bytes) {
            problems.push((
                format!("{prefix}.max_message_bytes"),
                format!(
                    "must be between 1 and 100000, got {}",
                    self.max_message_bytes
                ),
            ));
        }
        if !(1..=3600).contains(&self.replay_window_secs) {
            problems.push((
                format!("{prefix}.replay_window_secs"),
                format!(
                    "must be between 1 and 3600, got {}",
                    self.replay_window_secs
                ),
            ));
        }
        if self.integrations.is_empty() {
            problems.push((
                format!("{prefix}.integrations"),
                "an enabled API channel needs at least one [[connectors.api.integrations]]"
                    .to_owned(),
            ));
        }
        for (index, integration) in self.integrations.iter().enumerate() {
            let key = format!("{prefix}.integrations[{index}]");
            let mut problem = |field: &str, message: String| {
                problems.push((format!("{key}.{field}"), message));
            };
            if !is_integration_name(&integration.name) {
                problem(
                    "name",
                    format!("must be 1 to 32 of [a-z0-9_-], got {:?}", integration.name),
                );
            } else if self.integrations[..index]
                .iter()
                .any(|earlier| earlier.name == integration.name)
            {
                problem("name", format!("{:?} is used twice", integration.name));
            }
            if integration.secret_env.trim().is_empty() {
                problem("secret_env", "must name an environment variable".to_owned());
            }
            if let Err(message) = check_webhook_url(&integration.webhook_url) {
                problem("webhook_url", message);
            }
        }
    }

    /// The integration called `name`.
    pub fn integration(&self, name: &str) -> Option<&IntegrationConfig> {
        self.integrations
            .iter()
            .find(|integration| integration.name == name)
    }
}

fn check_webhook_url(url: &str) -> Result<(), String> {
    let parsed: hyper::Uri = url
        .parse()
        .map_err(|_| format!("must be an absolute URL, got {url:?}"))?;
    if parsed.host().is_none() {
        return Err(format!("must be an absolute URL, got {url:?}"));
    }
    // The channel always builds rustls, so https needs no feature here.
    switchboard_api::check_api_url(url, "switchboard-api-channel", true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "connectors.api";

    fn parse(text: &str) -> ApiChannelConfig {
        toml::from_str(text).expect("config parses")
    }

    fn one_integration(extra: &str) -> ApiChannelConfig {
        parse(&format!(
            "enabled = true\n{extra}\n[[integrations]]\nname = \"acme\"\nsecret_env = \"ACME_SECRET\"\n\
             webhook_url = \"https://acme.example.com/hooks/switchboard\"\n"
        ))
    }

    fn problems_of(config: &ApiChannelConfig) -> Vec<String> {
        let mut problems = vec![];
        config.validate(KEY, &mut problems);
        problems.into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn one_integration_with_defaults_is_valid() {
        let config = one_integration("");
        assert_eq!(config.max_message_bytes, 4000);
        assert_eq!(config.replay_window_secs, 300);
        assert_eq!(config.integrations[0].auth, AuthMode::Hmac);
        assert!(!config.integrations[0].emails_verified);
        assert!(problems_of(&config).is_empty());
    }

    #[test]
    fn a_typo_is_an_error_not_a_silent_default() {
        for typo in [
            "enabled = true\nmax_mesage_bytes = 10",
            "[[integrations]]\nname = \"a\"\nsecret_env = \"S\"\nwebhook_url = \"http://x\"\nauht = \"bearer\"",
        ] {
            let error = toml::from_str::<ApiChannelConfig>(typo).expect_err("typo rejected");
            assert!(error.to_string().contains("unknown field"), "{error}");
        }
        let error = toml::from_str::<ApiChannelConfig>(
            "[[integrations]]\nname = \"a\"\nsecret_env = \"S\"\nwebhook_url = \"http://x\"\nauth = \"basic\"",
        )
        .expect_err("unknown auth mode rejected");
        assert!(error.to_string().contains("basic"), "{error}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let config = parse(
            "enabled = true\nmax_message_bytes = 0\nreplay_window_secs = 0\n\
             [[integrations]]\nname = \"Acme:App\"\nsecret_env = \" \"\nwebhook_url = \"ftp://acme\"\n\
             [[integrations]]\nname = \"sms\"\nsecret_env = \"S\"\nwebhook_url = \"/relative\"\n\
             [[integrations]]\nname = \"sms\"\nsecret_env = \"T\"\nwebhook_url = \"http://sms.example\"\n",
        );
        assert_eq!(
            problems_of(&config),
            [
                "connectors.api.max_message_bytes",
                "connectors.api.replay_window_secs",
                "connectors.api.integrations[0].name",
                "connectors.api.integrations[0].secret_env",
                "connectors.api.integrations[0].webhook_url",
                "connectors.api.integrations[1].webhook_url",
                "connectors.api.integrations[2].name",
            ]
        );
        let empty = parse("enabled = true");
        assert_eq!(problems_of(&empty), ["connectors.api.integrations"]);
    }

    #[test]
    fn secrets_must_be_set_long_and_distinct() {
        let mut config = parse(
            "enabled = true\n\
             [[integrations]]\nname = \"a\"\nsecret_env = \"A\"\nwebhook_url = \"http://a.example\"\n\
             [[integrations]]\nname = \"b\"\nsecret_env = \"B\"\nwebhook_url = \"http://b.example\"\n\
             [[integrations]]\nname = \"c\"\nsecret_env = \"C\"\nwebhook_url = \"http://c.example\"\n\
             [[integrations]]\nname = \"d\"\nsecret_env = \"D\"\nwebhook_url = \"http://d.example\"\n",
        );
        let mut problems = vec![];
        config.resolve_secrets_from(KEY, &mut problems, |var| match var {
            "A" | "C" => Some("a-long-enough-secret-1".to_owned()),
            "B" => Some("short".to_owned()),
            _ => None,
        });
        let keys: Vec<&str> = problems.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "connectors.api.integrations[1].secret_env",
                "connectors.api.integrations[2].secret_env",
                "connectors.api.integrations[3].secret_env",
            ],
            "{problems:?}"
        );
        assert!(problems[1].1.contains("\"a\""), "{problems:?}");
        assert!(config.integrations[0].secret.is_some());
        assert!(!format!("{config:?}").contains("a-long-enough-secret-1"));
    }

    #[test]
    fn a_disabled_channel_needs_nothing() {
        let mut config = ApiChannelConfig::default();
        let mut problems = vec![];
        config.resolve_secrets_from(KEY, &mut problems, |_| None);
        config.validate(KEY, &mut problems);
        assert!(problems.is_empty());
    }
}
