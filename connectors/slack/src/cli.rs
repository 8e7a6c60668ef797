//! `switchboard slack ...`: the commands the Slack crate adds to the binary, registered in
//! the core's tool table like its config sections.

use std::path::PathBuf;

use clap::{FromArgMatches, Subcommand};

/// The `slack` command and its subcommands.
pub fn command() -> clap::Command {
    SlackAction::augment_subcommands(
        clap::Command::new("slack")
            .about(
                "Slack apps: print the manifest to create the desk app (or the customer app) from",
            )
            .subcommand_required(true),
    )
}

/// Runs what [`command`] parsed.
pub fn run(arguments: &clap::ArgMatches) -> Result<(), String> {
    let SlackAction::Manifest { config, customers } =
        SlackAction::from_arg_matches(arguments).map_err(|error| error.to_string())?;
    let manifest = crate::manifest::for_config_file(&config, customers)?;
    println!("{manifest}");
    Ok(())
}

#[derive(Subcommand)]
enum SlackAction {
    /// Print the app manifest (JSON) for the configured desk, or with `--customers` for the
    /// customer channel: exact bot scopes, events, Socket Mode or the request URL. Paste it in
    /// api.slack.com/apps -> Create New App -> From an app manifest.
    Manifest {
        /// The config file; its tokens need not exist yet.
        #[arg(long, short, default_value = "config/switchboard.toml")]
        config: PathBuf,
        /// The customer channel's app (`[connectors.slack]`) instead of the desk's.
        #[arg(long)]
        customers: bool,
    },
}
