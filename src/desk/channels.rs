//! Whether the desk can post in every channel the config names, asked of the platform: at
//! start (logged, shown by `/readyz`) and by `switchboard check-config --online`.

use std::time::Duration;

use switchboard_api::Desk;

use crate::config::DeskRoute;

/// How long one channel check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A desk channel the config names, and what the platform said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCheck {
    /// Where the config names it: `desk.<name>.channel` or `desk.routes[N].channel`.
    pub key: String,
    /// The channel id.
    pub channel: String,
    /// True for the desk's default channel, where escalations fall back to.
    pub is_default: bool,
    /// Why the desk cannot post there, if it cannot.
    pub problem: Option<String>,
}

/// Checks the default channel and each route's channel once each, in config order; `desk_key`
/// is the desk's section (`desk.slack`).
pub async fn check_channels(
    desk: &dyn Desk,
    desk_key: &str,
    default_channel: &str,
    routes: &[DeskRoute],
) -> Vec<ChannelCheck> {
    let named = std::iter::once((format!("{desk_key}.channel"), default_channel)).chain(
        routes
            .iter()
            .enumerate()
            .map(|(n, route)| (format!("desk.routes[{n}].channel"), route.channel.as_str())),
    );
    let mut checks: Vec<ChannelCheck> = Vec::new();
    for (key, channel) in named {
        let problem = match checks.iter().find(|check| check.channel == channel) {
            Some(earlier) => earlier.problem.clone(),
            None => match tokio::time::timeout(CHECK_TIMEOUT, desk.check_channel(channel)).await {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(_) => Some(format!("no answer within {CHECK_TIMEOUT:?}")),
            },
        };
        checks.push(ChannelCheck {
            key,
            channel: channel.to_owned(),
            is_default: channel == default_channel,
            problem,
        });
    }
    checks
}
