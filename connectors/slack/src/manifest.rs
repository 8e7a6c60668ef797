//! The Slack app manifests for the configured desk and customer apps, and what each bot scope
//! is for, so `switchboard slack manifest` prints an app an admin creates in one paste and
//! `check-config --online` names every scope a running app lacks with the feature that needs it.
//!
//! The scope lists follow the Web API methods and events the code uses (Slack's method and
//! event reference pages name the scope of each); a test runs the desk and the customer channel
//! against the stand-in and checks every method they called is covered here.

use serde_json::{json, Value};

use crate::config::SlackMode;
use crate::{SlackCustomerConfig, SlackDeskConfig};

/// A bot scope and the feature that needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeNeed {
    /// The OAuth scope (`chat:write`).
    pub scope: &'static str,
    /// What stops working without it.
    pub feature: &'static str,
}

const fn need(scope: &'static str, feature: &'static str) -> ScopeNeed {
    ScopeNeed { scope, feature }
}

/// The agent desk's bot scopes.
pub const DESK_SCOPES: &[ScopeNeed] = &[
    need(
        "chat:write",
        "posting briefings, customer messages and notices into threads",
    ),
    need(
        "channels:history",
        "receiving agents' thread replies in public desk channels",
    ),
    need(
        "groups:history",
        "receiving agents' thread replies in private desk channels",
    ),
    need(
        "channels:read",
        "the start-up check that the app is in each public desk channel, and who may press its buttons",
    ),
    need(
        "groups:read",
        "the start-up check that the app is in each private desk channel, and who may press its buttons",
    ),
    need(
        "users:read",
        "signing replies with the agent's display name",
    ),
    need(
        "files:read",
        "relaying files agents attach to their replies",
    ),
    need("files:write", "uploading customers' files into threads"),
    need(
        "reactions:read",
        "reaction commands on briefings (:eyes:, :white_check_mark:, :robot_face:)",
    ),
];

/// The customer channel's bot scopes.
pub const CUSTOMER_SCOPES: &[ScopeNeed] = &[
    need("chat:write", "answering customers in their channels"),
    need(
        "channels:history",
        "receiving customers' messages in public shared channels",
    ),
    need(
        "groups:history",
        "receiving customers' messages in private shared channels",
    ),
    need("users:read", "customers' display names"),
    need(
        "users:read.email",
        "linking a customer's Slack account to their email conversations",
    ),
    need("files:read", "receiving files customers attach"),
    need("files:write", "sending agents' files to customers"),
];

/// Each Web API method the code calls and the bot scope it needs (`""`: none, or an
/// app-level token's scope rather than a bot scope).
pub const METHOD_SCOPES: &[(&str, &str)] = &[
    ("auth.test", ""),
    ("apps.connections.open", ""),
    ("chat.postMessage", "chat:write"),
    ("chat.update", "chat:write"),
    ("chat.delete", "chat:write"),
    ("files.delete", "files:write"),
    ("conversations.info", "channels:read"),
    ("conversations.replies", "channels:history"),
    ("conversations.history", "channels:history"),
    ("users.info", "users:read"),
    ("chat.postEphemeral", "chat:write"),
    ("views.open", ""),
    ("conversations.members", "channels:read"),
    ("files.getUploadURLExternal", "files:write"),
    ("files.completeUploadExternal", "files:write"),
];

/// Events each app subscribes to, as bot events.
const DESK_EVENTS: &[&str] = &["message.channels", "message.groups", "reaction_added"];
const CUSTOMER_EVENTS: &[&str] = &["message.channels", "message.groups"];

/// What both apps' manifests are made of.
struct AppShape<'a> {
    name: &'a str,
    description: &'a str,
    mode: SlackMode,
    events_path: &'a str,
    scopes: &'a [ScopeNeed],
    events: &'a [&'a str],
    interactive: bool,
}

/// The desk app's manifest; `public_base_url` is where Slack reaches the gateway (Events API).
pub fn desk_manifest(config: &SlackDeskConfig, public_base_url: Option<&str>) -> Value {
    manifest(
        &AppShape {
            name: "Switchboard desk",
            description: "Escalated customer conversations, one thread each; reply in the thread to answer the customer.",
            mode: config.mode,
            events_path: &config.events_path,
            scopes: DESK_SCOPES,
            events: DESK_EVENTS,
            interactive: true,
        },
        public_base_url,
    )
}

/// The customer channel app's manifest.
pub fn customer_manifest(config: &SlackCustomerConfig, public_base_url: Option<&str>) -> Value {
    manifest(
        &AppShape {
            name: "Support",
            description:
                "Answers your questions in this channel, and brings in a person when you need one.",
            mode: config.mode,
            events_path: &config.events_path,
            scopes: CUSTOMER_SCOPES,
            events: CUSTOMER_EVENTS,
            interactive: true,
        },
        public_base_url,
    )
}

fn manifest(app: &AppShape<'_>, public_base_url: Option<&str>) -> Value {
    let socket = app.mode == SlackMode::Socket;
    // Socket Mode needs no public URL; the Events API needs one, left for the admin to fill
    // in when the config does not say where the gateway is reachable.
    let request_url = (!socket).then(|| match public_base_url {
        Some(base) => format!("{}{}", base.trim_end_matches('/'), app.events_path),
        None => format!("https://YOUR-GATEWAY-HOST{}", app.events_path),
    });
    let mut events = json!({ "bot_events": app.events });
    let mut interactivity = json!({ "is_enabled": app.interactive });
    if let Some(url) = &request_url {
        events["request_url"] = json!(url);
        if app.interactive {
            interactivity["request_url"] = json!(url);
        }
    }
    let scopes: Vec<&str> = app.scopes.iter().map(|need| need.scope).collect();
    json!({
        "_metadata": { "major_version": 1, "minor_version": 1 },
        "display_information": { "name": app.name, "description": app.description },
        "features": { "bot_user": { "display_name": app.name, "always_online": true } },
        "oauth_config": { "scopes": { "bot": scopes } },
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": false,
            "socket_mode_enabled": socket,
            "token_rotation_enabled": false,
        },
    })
}

/// Asks Slack which of `needed` the app's bot token lacks, as `check_setup` lines.
pub(crate) async fn check_scopes(
    web: &dyn crate::app::client::SlackWeb,
    needed: &[ScopeNeed],
) -> Result<Vec<String>, switchboard_api::ConnectorError> {
    let Some(granted) = web.granted_scopes().await? else {
        return Ok(Vec::new());
    };
    Ok(missing_scopes(needed, &granted)
        .into_iter()
        .map(|need| {
            format!(
                "the app lacks the `{}` scope, needed for {}; add it (or recreate the app from `switchboard slack manifest`) and reinstall",
                need.scope, need.feature
            )
        })
        .collect())
}

/// Prints the manifest of the desk app (or, with `customers`, of the customer app) that the
/// config file describes, as JSON (which Slack's "From an app manifest" accepts). Reads the
/// sections without their secrets: an admin runs this before the app and its tokens exist.
pub fn for_config_file(path: &std::path::Path, customers: bool) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("{}: cannot read: {error}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
    let section =
        |outer: &str, inner: &str| -> Option<toml::Value> { table.get(outer)?.get(inner).cloned() };
    let public_base_url =
        section("files", "public_base_url").and_then(|value| value.as_str().map(str::to_owned));
    let parse_error =
        |key: &str, error: toml::de::Error| format!("{}: {key}: {error}", path.display());
    let manifest = if customers {
        let config: SlackCustomerConfig = match section("connectors", "slack") {
            Some(value) => value
                .try_into()
                .map_err(|e| parse_error("connectors.slack", e))?,
            None => SlackCustomerConfig::default(),
        };
        customer_manifest(&config, public_base_url.as_deref())
    } else {
        let config: SlackDeskConfig = match section("desk", "slack") {
            Some(value) => value.try_into().map_err(|e| parse_error("desk.slack", e))?,
            None => SlackDeskConfig::default(),
        };
        desk_manifest(&config, public_base_url.as_deref())
    };
    serde_json::to_string_pretty(&manifest).map_err(|error| error.to_string())
}

/// The needed scopes `granted` lacks, each with the feature that needs it.
pub fn missing_scopes<'a>(needed: &'a [ScopeNeed], granted: &[String]) -> Vec<&'a ScopeNeed> {
    needed
        .iter()
        .filter(|need| !granted.iter().any(|scope| scope == need.scope))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_mode_apps_need_no_url_and_events_api_apps_get_the_configured_one() {
        let desk = SlackDeskConfig::default();
        let manifest = desk_manifest(&desk, None);
        assert_eq!(manifest["settings"]["socket_mode_enabled"], true);
        assert!(manifest["settings"]["event_subscriptions"]["request_url"].is_null());
        let bot_scopes = manifest["oauth_config"]["scopes"]["bot"]
            .as_array()
            .unwrap();
        assert!(bot_scopes.contains(&json!("reactions:read")));

        let customers = SlackCustomerConfig {
            mode: SlackMode::EventsApi,
            ..SlackCustomerConfig::default()
        };
        let manifest = customer_manifest(&customers, Some("https://support.example.com/"));
        assert_eq!(manifest["settings"]["socket_mode_enabled"], false);
        assert_eq!(
            manifest["settings"]["event_subscriptions"]["request_url"],
            "https://support.example.com/slack/customer-events"
        );
        assert_eq!(
            manifest["settings"]["interactivity"]["request_url"],
            "https://support.example.com/slack/customer-events"
        );
    }

    #[test]
    fn every_method_scope_is_asked_for_by_an_app_that_calls_it() {
        for (method, scope) in METHOD_SCOPES {
            if scope.is_empty() {
                continue;
            }
            let asked = DESK_SCOPES
                .iter()
                .chain(CUSTOMER_SCOPES)
                .any(|need| need.scope == *scope);
            assert!(asked, "{method} needs {scope}, which no manifest asks for");
        }
    }

    #[test]
    fn missing_scopes_name_their_feature() {
        let granted = vec!["chat:write".to_owned(), "users:read".to_owned()];
        let missing = missing_scopes(DESK_SCOPES, &granted);
        assert!(missing.iter().all(|need| need.scope != "chat:write"));
        let files = missing
            .iter()
            .find(|need| need.scope == "files:write")
            .unwrap();
        assert!(files.feature.contains("customers' files"));
        assert_eq!(missing.len(), DESK_SCOPES.len() - 2);
    }
}
