//! The channels and agent desks this build has: one line each, read by config parsing, error
//! messages and start-up alike.
//!
//! Each channel's crate implements [`ConnectorConfig`] for its config type; adding a channel
//! is its folder plus one line in [`CHANNELS`] (its crate names itself with a `CHANNEL`
//! constant). A desk's crate implements [`DeskConfig`] and takes one line in [`DESKS`].

use serde::de::DeserializeOwned;
use switchboard_api::{ChannelKind, ConnectorConfig, DeskConfig};
use switchboard_discord::DiscordConfig;
use switchboard_email::EmailConfig;
use switchboard_slack::{SlackCustomerConfig, SlackDeskConfig};
use switchboard_telegram::TelegramConfig;
use switchboard_webchat::WebchatConfig;
use switchboard_webdesk::WebDeskConfig;

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
    channel::<switchboard_api_channel::ApiChannelConfig>(switchboard_api_channel::CHANNEL),
];

/// One agent desk: its `[desk.<name>]` name and how to parse its config section.
#[derive(Clone, Copy)]
pub struct DeskEntry {
    /// The `<name>` of `[desk.<name>]`.
    pub name: &'static str,
    /// Parses the `[desk.<name>]` table into the desk's config.
    pub parse: fn(toml::Value) -> Result<Box<dyn DeskConfig>, SectionError>,
}

/// A command a channel's crate adds to the binary (`switchboard <name> ...`).
#[derive(Clone, Copy)]
pub struct ToolEntry {
    /// The subcommand's name.
    pub name: &'static str,
    /// Its arguments and help, as clap shows them.
    pub command: fn() -> clap::Command,
    /// Runs it with what clap parsed.
    pub run: fn(&clap::ArgMatches) -> Result<(), String>,
}

/// Every channel's own commands, beside the core's.
pub static TOOLS: &[ToolEntry] = &[
    ToolEntry {
        name: "email",
        command: switchboard_email::cli::command,
        run: switchboard_email::cli::run,
    },
    ToolEntry {
        name: "slack",
        command: switchboard_slack::cli::command,
        run: switchboard_slack::cli::run,
    },
];

/// Every agent desk this build has.
pub static DESKS: &[DeskEntry] = &[
    desk::<SlackDeskConfig>("slack"),
    desk::<WebDeskConfig>(switchboard_webdesk::DESK),
];

/// The desk named `name`, if this build has it.
pub fn find_desk(name: &str) -> Option<&'static DeskEntry> {
    DESKS.iter().find(|entry| entry.name == name)
}

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
        parse: |value| Ok(Box::new(parse_section::<T>(value)?)),
    }
}

const fn desk<T: DeskConfig + DeserializeOwned + 'static>(name: &'static str) -> DeskEntry {
    DeskEntry {
        name,
        parse: |value| Ok(Box::new(parse_section::<T>(value)?)),
    }
}

fn parse_section<T: DeserializeOwned>(value: toml::Value) -> Result<T, SectionError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|error| {
        let inner = error.path().to_string();
        let inner = if inner == "." { String::new() } else { inner };
        (inner, error.into_inner().to_string().trim().to_owned())
    })
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

    #[test]
    fn each_desk_parses_its_section_and_names_typos() {
        for entry in DESKS {
            let section = toml::Value::Table(toml::Table::new());
            let config = (entry.parse)(section).expect("an empty section is a disabled desk");
            assert!(!config.enabled(), "{}", entry.name);
            let typo: toml::Value = toml::from_str("enabeld = true").expect("valid toml");
            let error = (entry.parse)(typo).expect_err("unknown keys are errors");
            assert!(
                error.1.contains("unknown field"),
                "{}: {error:?}",
                entry.name
            );
        }
        assert!(find_desk("slack").is_some() && find_desk("fax").is_none());
        assert!(find_desk(switchboard_webdesk::DESK).is_some());
    }
}
