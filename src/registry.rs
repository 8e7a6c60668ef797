//! The channels this build speaks: one line per channel, read by config parsing, error
//! messages and start-up alike.
//!
//! Each channel's crate implements [`ConnectorConfig`] for its config type; adding a channel
//! is its folder plus one line in [`CHANNELS`] (its crate names itself with a `CHANNEL` constant).

use serde::de::DeserializeOwned;
use switchboard_api::{ChannelKind, ConnectorConfig};
use switchboard_discord::DiscordConfig;
use switchboard_email::EmailConfig;
use switchboard_slack::SlackCustomerConfig;
use switchboard_telegram::TelegramConfig;
use switchboard_webchat::WebchatConfig;

/// A `[connectors.<name>]` section that did not parse: the key path inside it (empty for the
/// section itself) and what is wrong.
pub type SectionError = (String, String);

/// One channel: its name and how to parse its config section.
#[derive(Clone, Copy)]
pub struct ChannelEntry {
    /// The channel.
    pub kind: ChannelKind,
    /// Parses the `[connectors.<name>]` table into the channel's config.
    pub parse: fn(toml::Value) -> Result<Box<dyn ConnectorConfig>, SectionError>,
}

impl ChannelEntry {
    /// The `<name>` of `[connectors.<name>]`, and of the channel in keys and logs.
    pub fn name(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// Every channel, in the order their sections are checked and their connectors built.
pub static CHANNELS: &[ChannelEntry] = &[
    channel::<WebchatConfig>(switchboard_webchat::CHANNEL),
    channel::<EmailConfig>(switchboard_email::CHANNEL),
    channel::<DiscordConfig>(switchboard_discord::CHANNEL),
    channel::<TelegramConfig>(switchboard_telegram::CHANNEL),
    channel::<SlackCustomerConfig>(switchboard_slack::CHANNEL),
];

/// The channel named `name`, if this build has it.
pub fn find(name: &str) -> Option<&'static ChannelEntry> {
    CHANNELS.iter().find(|entry| entry.name() == name)
}

/// Every target a delivery can have: each channel's name, and `desk`.
pub fn delivery_targets() -> Vec<&'static str> {
    CHANNELS
        .iter()
        .map(ChannelEntry::name)
        .chain(std::iter::once("desk"))
        .collect()
}

/// Every channel's name, as error messages list them.
pub fn channel_names() -> Vec<&'static str> {
    CHANNELS.iter().map(ChannelEntry::name).collect()
}

const fn channel<T: ConnectorConfig + DeserializeOwned + 'static>(
    kind: ChannelKind,
) -> ChannelEntry {
    ChannelEntry {
        kind,
        parse: parse_section::<T>,
    }
}

fn parse_section<T: ConnectorConfig + DeserializeOwned + 'static>(
    value: toml::Value,
) -> Result<Box<dyn ConnectorConfig>, SectionError> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(parsed) => Ok(Box::new(parsed)),
        Err(error) => {
            let inner = error.path().to_string();
            let inner = if inner == "." { String::new() } else { inner };
            Err((inner, error.into_inner().to_string().trim().to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_api::{BuildContext, ChannelKind};

    use super::*;

    #[test]
    fn every_channel_is_registered_once_under_a_name_that_reads_back() {
        let mut names = channel_names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CHANNELS.len());
        for entry in CHANNELS {
            assert_eq!(ChannelKind::parse(entry.name()), Some(entry.kind));
            assert!(find(entry.name()).is_some());
        }
        assert_eq!(delivery_targets().last(), Some(&"desk"));
        assert!(
            !channel_names().contains(&"desk"),
            "`desk` is the agents' target"
        );
    }

    #[tokio::test]
    async fn each_channel_builds_offline_into_its_own_kind() {
        let cx = BuildContext::single_instance("test", 1024);
        for entry in CHANNELS {
            let section = toml::Value::Table(toml::Table::new());
            // Some channels need settings (a mail server); those have nothing to build here.
            let Ok(config) = (entry.parse)(section) else {
                continue;
            };
            // Building opens nothing (no server is running), and says which channel it is.
            if let Ok(connector) = config.build(&cx) {
                assert_eq!(connector.channel(), entry.kind);
            }
        }
    }

    #[test]
    fn a_typo_in_a_section_names_its_key() {
        let entry = find("webchat").expect("web chat is registered");
        let section: toml::Value = toml::from_str("max_mesage_bytes = 1").expect("valid toml");
        let error = (entry.parse)(section).expect_err("unknown keys are errors");
        assert!(error.1.contains("unknown field"), "{error:?}");
        assert!(find("fax").is_none());
    }
}
