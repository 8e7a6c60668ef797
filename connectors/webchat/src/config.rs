//! The `[connectors.webchat]` section: typed, validated, and buildable without any network.
//!
//! Secrets never live in the TOML file: the admin names an environment variable
//! (`identity_secret_env`) and [`WebchatConfig::resolve_secrets`] reads it, reporting a
//! missing variable with its dotted key path so `check-config` can list every problem.

use std::fmt;

use serde::Deserialize;

use crate::client_ip::IpBlock;

/// Largest message size an admin may configure; keeps one frame well under a megabyte.
const MAX_MESSAGE_BYTES_CEILING: usize = 64 * 1024;

/// Settings of the web chat channel (HTTP + WebSocket endpoint and the embeddable widget).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebchatConfig {
    /// Serve the widget and the chat endpoints.
    pub enabled: bool,
    /// Also serve the Acme Cloud demo pages (`/` and `/webchat/demo/signed`). For trying the
    /// gateway out: the signed demo makes anyone a (demo) signed-in user.
    pub demo: bool,
    /// Largest customer message accepted, in UTF-8 bytes; longer ones are refused with `too_large`.
    pub max_message_bytes: usize,
    /// Name of the environment variable holding the HMAC secret the site signs user claims with.
    pub identity_secret_env: Option<String>,
    /// The resolved HMAC secret (filled by [`WebchatConfig::resolve_secrets`], never read from TOML).
    #[serde(skip)]
    pub identity_secret: Option<String>,
    /// Refuse anonymous visitors: every chat must carry a signed user id.
    pub require_verified_identity: bool,
    /// Origins (`https://shop.example.com`) allowed to embed the widget; empty allows any.
    pub allowed_origins: Vec<String>,
    /// Messages one visitor session may send per minute before `rate_limited`.
    pub rate_limit_per_minute: u32,
    /// New chat sockets plus messages one client address (an IPv6 /64) may open or send per
    /// minute, over all its visitors, before `rate_limited` (HTTP 429 with `Retry-After`).
    pub rate_limit_per_ip_per_minute: u32,
    /// Proxies (`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`) whose `X-Forwarded-For` names the
    /// client; from any other peer the header is ignored and the peer's address counts.
    pub trusted_proxies: Vec<String>,
    /// The widget's header title.
    pub title: String,
    /// The first line the widget shows before any message (not stored).
    pub greeting: String,
    /// The badge shown on AI answers, so the customer always knows a machine is speaking.
    pub assistant_name: String,
}

impl Default for WebchatConfig {
    fn default() -> Self {
        WebchatConfig {
            enabled: true,
            demo: false,
            max_message_bytes: 4000,
            identity_secret_env: None,
            identity_secret: None,
            require_verified_identity: false,
            allowed_origins: Vec::new(),
            rate_limit_per_minute: 30,
            rate_limit_per_ip_per_minute: 600,
            trusted_proxies: Vec::new(),
            title: "Chat with us".to_owned(),
            greeting: "Hi! Ask us anything. Our AI assistant answers right away, and a person from our team is one click away.".to_owned(),
            assistant_name: "AI assistant".to_owned(),
        }
    }
}

// Hand-written so a logged config never shows the secret.
impl fmt::Debug for WebchatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebchatConfig")
            .field("enabled", &self.enabled)
            .field("demo", &self.demo)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("identity_secret_env", &self.identity_secret_env)
            .field(
                "identity_secret",
                &self.identity_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("require_verified_identity", &self.require_verified_identity)
            .field("allowed_origins", &self.allowed_origins)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field(
                "rate_limit_per_ip_per_minute",
                &self.rate_limit_per_ip_per_minute,
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("title", &self.title)
            .field("greeting", &self.greeting)
            .field("assistant_name", &self.assistant_name)
            .finish()
    }
}

impl WebchatConfig {
    /// Reads the secrets named by `*_env` fields from the environment, reporting each missing one.
    pub fn resolve_secrets(&mut self, prefix: &str, problems: &mut Vec<(String, String)>) {
        self.resolve_secrets_from(prefix, problems, |name| std::env::var(name).ok());
    }

    /// [`WebchatConfig::resolve_secrets`] with the environment supplied by the caller (tests).
    pub fn resolve_secrets_from(
        &mut self,
        prefix: &str,
        problems: &mut Vec<(String, String)>,
        env: impl Fn(&str) -> Option<String>,
    ) {
        let Some(name) = self.identity_secret_env.as_deref() else {
            return;
        };
        let key = format!("{prefix}.identity_secret_env");
        match env(name) {
            Some(value) if !value.is_empty() => self.identity_secret = Some(value),
            Some(_) => problems.push((key, format!("environment variable {name} is empty"))),
            None => problems.push((key, format!("environment variable {name} is not set"))),
        }
    }

    /// Checks every field, pushing `(dotted key, problem)` for each mistake found.
    pub fn validate(&self, prefix: &str, problems: &mut Vec<(String, String)>) {
        let mut problem = |field: &str, text: String| {
            problems.push((format!("{prefix}.{field}"), text));
        };
        if self.max_message_bytes == 0 || self.max_message_bytes > MAX_MESSAGE_BYTES_CEILING {
            problem(
                "max_message_bytes",
                format!(
                    "must be between 1 and {MAX_MESSAGE_BYTES_CEILING}, got {}",
                    self.max_message_bytes
                ),
            );
        }
        if self.rate_limit_per_minute == 0 {
            problem(
                "rate_limit_per_minute",
                "must be at least 1 (a visitor could not send anything)".to_owned(),
            );
        }
        if self.rate_limit_per_ip_per_minute == 0 {
            problem(
                "rate_limit_per_ip_per_minute",
                "must be at least 1 (no visitor could send anything)".to_owned(),
            );
        }
        for (index, proxy) in self.trusted_proxies.iter().enumerate() {
            if let Err(why) = IpBlock::parse(proxy) {
                problem(&format!("trusted_proxies[{index}]"), why);
            }
        }
        if let Some(name) = &self.identity_secret_env {
            if name.trim().is_empty() {
                problem(
                    "identity_secret_env",
                    "must name an environment variable".to_owned(),
                );
            }
        }
        if self.require_verified_identity && self.identity_secret_env.is_none() {
            problem(
                "require_verified_identity",
                "needs identity_secret_env: without a secret no user id can be verified".to_owned(),
            );
        }
        for (index, origin) in self.allowed_origins.iter().enumerate() {
            if let Err(why) = check_origin(origin) {
                problem(&format!("allowed_origins[{index}]"), why);
            }
        }
        if self.title.trim().is_empty() {
            problem("title", "must not be empty".to_owned());
        }
        if self.assistant_name.trim().is_empty() {
            problem("assistant_name", "must not be empty".to_owned());
        }
    }

    /// The trusted proxies that parse (`validate` reports the others).
    pub(crate) fn trusted_proxy_blocks(&self) -> Vec<IpBlock> {
        self.trusted_proxies
            .iter()
            .filter_map(|proxy| IpBlock::parse(proxy).ok())
            .collect()
    }

    /// The secret as bytes, when identity verification is configured.
    pub(crate) fn secret_bytes(&self) -> Option<Vec<u8>> {
        self.identity_secret
            .as_ref()
            .filter(|secret| !secret.is_empty())
            .map(|secret| secret.as_bytes().to_vec())
    }
}

/// An origin is what browsers send in the `Origin` header: scheme, host, optional port, no path.
fn check_origin(origin: &str) -> Result<(), String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("{origin:?} must start with https:// or http://"))?;
    if rest.is_empty() || rest.contains('/') || rest.contains(char::is_whitespace) {
        return Err(format!(
            "{origin:?} must be a bare origin like https://shop.example.com (no path, no trailing slash)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(config: &WebchatConfig) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        config.validate("connectors.webchat", &mut problems);
        problems
    }

    #[test]
    fn defaults_are_valid() {
        assert!(problems_of(&WebchatConfig::default()).is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let error = toml::from_str::<WebchatConfig>("max_mesage_bytes = 10").unwrap_err();
        assert!(error.to_string().contains("max_mesage_bytes"), "{error}");
    }

    #[test]
    fn toml_fields_parse() {
        let config: WebchatConfig = toml::from_str(
            r#"
            identity_secret_env = "WEBCHAT_IDENTITY_SECRET"
            require_verified_identity = true
            allowed_origins = ["https://shop.example.com"]
            rate_limit_per_minute = 10
            rate_limit_per_ip_per_minute = 100
            trusted_proxies = ["10.0.0.0/8", "2001:db8::1"]
            title = "Acme Cloud Support"
            "#,
        )
        .unwrap();
        assert!(config.enabled);
        assert!(!config.demo, "the demo pages are opt-in");
        assert_eq!(config.max_message_bytes, 4000);
        assert_eq!(config.rate_limit_per_minute, 10);
        assert_eq!(config.rate_limit_per_ip_per_minute, 100);
        assert_eq!(config.trusted_proxy_blocks().len(), 2);
        assert!(problems_of(&config).is_empty());
    }

    #[test]
    fn missing_secret_is_reported_with_its_key() {
        let mut config = WebchatConfig {
            identity_secret_env: Some("WEBCHAT_IDENTITY_SECRET".to_owned()),
            ..WebchatConfig::default()
        };
        let mut problems = Vec::new();
        config.resolve_secrets_from("connectors.webchat", &mut problems, |_| None);
        assert_eq!(
            problems,
            vec![(
                "connectors.webchat.identity_secret_env".to_owned(),
                "environment variable WEBCHAT_IDENTITY_SECRET is not set".to_owned()
            )]
        );
        let mut problems = Vec::new();
        config.resolve_secrets_from("connectors.webchat", &mut problems, |_| {
            Some("s3cret".to_owned())
        });
        assert!(problems.is_empty());
        assert_eq!(config.identity_secret.as_deref(), Some("s3cret"));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn bad_values_are_each_reported() {
        let config = WebchatConfig {
            max_message_bytes: 0,
            rate_limit_per_minute: 0,
            require_verified_identity: true,
            allowed_origins: vec!["shop.example.com".to_owned(), "https://a.b/".to_owned()],
            rate_limit_per_ip_per_minute: 0,
            trusted_proxies: vec!["10.0.0.0/8".to_owned(), "proxy.internal".to_owned()],
            ..WebchatConfig::default()
        };
        let keys: Vec<String> = problems_of(&config).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "connectors.webchat.max_message_bytes",
                "connectors.webchat.rate_limit_per_minute",
                "connectors.webchat.rate_limit_per_ip_per_minute",
                "connectors.webchat.trusted_proxies[1]",
                "connectors.webchat.require_verified_identity",
                "connectors.webchat.allowed_origins[0]",
                "connectors.webchat.allowed_origins[1]",
            ]
        );
    }
}
