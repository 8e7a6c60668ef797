//! Secrets read from the environment: one redacted type and one way to read them.
//!
//! Config files name environment variables (`bot_token_env = "..."`), never the secrets
//! themselves; each connector's `resolve_secrets` reads them with [`read_secret`], so a missing
//! one is reported the same way everywhere, with its dotted key path, and none is ever printed.

use std::fmt;

/// A secret read from the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

// Hand-written so a logged config never shows the secret.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Reads the secret in environment variable `var`, trimmed; a missing or blank one is a problem.
///
/// The problem is `("{prefix}.{field}", "environment variable {var} is not set")`, where `field`
/// is the config key that names the variable (e.g. `bot_token_env`), so `check-config` points
/// the admin at the line to fix.
pub fn read_secret(
    env: &dyn Fn(&str) -> Option<String>,
    prefix: &str,
    field: &str,
    var: &str,
    problems: &mut Vec<(String, String)>,
) -> Option<Secret> {
    match env(var).filter(|value| !value.trim().is_empty()) {
        Some(value) => Some(Secret::new(value.trim())),
        None => {
            problems.push((
                format!("{prefix}.{field}"),
                format!("environment variable {var} is not set"),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_but_can_be_exposed() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!(!format!("{:?}", Some(secret.clone())).contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(secret, Secret::new(String::from("hunter2")));
        assert_ne!(secret, Secret::new("hunter3"));
    }

    #[test]
    fn a_set_variable_is_read_trimmed() {
        let mut problems = vec![];
        let env = |name: &str| (name == "BOT_TOKEN").then(|| "  xoxb-1\n".to_string());
        let secret = read_secret(
            &env,
            "desk.slack",
            "bot_token_env",
            "BOT_TOKEN",
            &mut problems,
        );
        assert_eq!(secret, Some(Secret::new("xoxb-1")));
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_missing_or_blank_variable_is_reported_with_its_key() {
        for value in [None, Some(""), Some("  \t")] {
            let mut problems = vec![];
            let env = |_: &str| value.map(str::to_string);
            let secret = read_secret(
                &env,
                "connectors.discord",
                "bot_token_env",
                "DISCORD_BOT_TOKEN",
                &mut problems,
            );
            assert_eq!(secret, None);
            assert_eq!(
                problems,
                [(
                    "connectors.discord.bot_token_env".to_string(),
                    "environment variable DISCORD_BOT_TOKEN is not set".to_string()
                )]
            );
        }
    }
}
