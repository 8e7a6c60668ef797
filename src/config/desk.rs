//! `[desk]`: which desk takes escalations, where they are routed, and when it is reminded.

use serde::Deserialize;

use super::{optional_section, unknown_key, ConfigProblem};
use crate::registry;

/// `[desk]`: the agent desk.
#[derive(Debug, Default)]
pub struct DeskSettings {
    /// Every `[desk.<name>]` section given, enabled or not, in registry order.
    pub sections: Vec<DeskSection>,
    /// `[[desk.routes]]`: which desk channel an escalation goes to; first match wins, else the
    /// desk's default channel.
    pub routes: Vec<DeskRoute>,
    /// What a customer who needs a person is told while no desk is enabled (say where else
    /// to reach the team); without it they are told no one can join this chat.
    pub unstaffed_notice: Option<String>,
    /// When to remind the desk of people waiting; routes may override.
    pub reminders: Reminders,
}

/// `[desk]` reminder settings: who is called when someone has waited on a person too long.
#[derive(Debug, Clone, PartialEq)]
pub struct Reminders {
    /// Remind when an escalation is not claimed within this many minutes; 0 = never.
    pub remind_after_minutes: f64,
    /// Remind when a customer's message waits this many minutes for an agent's reply; 0 = never.
    pub remind_waiting_customer_minutes: f64,
    /// Whom a reminder calls (`@here`, `@channel`, a user group or user id); none by default.
    pub mention: Option<String>,
    /// Also show reminders in the channel, not only in the thread.
    pub broadcast_reminders: bool,
}

impl Default for Reminders {
    fn default() -> Self {
        Reminders {
            remind_after_minutes: 10.0,
            remind_waiting_customer_minutes: 10.0,
            mention: None,
            broadcast_reminders: false,
        }
    }
}

/// One `[desk.<name>]` section, parsed by the desk's own crate.
#[derive(Debug)]
pub struct DeskSection {
    /// The desk's name (`slack`).
    pub name: &'static str,
    /// Its settings.
    pub config: Box<dyn switchboard_api::DeskConfig>,
}

impl DeskSettings {
    /// The enabled desk that opens threads (the one that cannot follow another), if any.
    pub fn enabled(&self) -> Option<&DeskSection> {
        self.lead_position().map(|at| &self.sections[at])
    }

    /// Takes the leading desk's section out, to build it.
    pub fn take_enabled(&mut self) -> Option<DeskSection> {
        let at = self.lead_position()?;
        Some(self.sections.remove(at))
    }

    /// Takes out the other enabled desks, which follow the leading desk's threads.
    pub fn take_followers(&mut self) -> Vec<DeskSection> {
        let (followers, rest) = std::mem::take(&mut self.sections)
            .into_iter()
            .partition(|section| section.config.enabled());
        self.sections = rest;
        followers
    }

    fn lead_position(&self) -> Option<usize> {
        let enabled = |section: &&DeskSection| section.config.enabled();
        let sections = self.sections.iter();
        (sections.clone())
            .position(|section| enabled(&section) && !section.config.follows())
            .or_else(|| sections.clone().position(|section| enabled(&section)))
    }

    /// Checks the desk sections and routes; each problem is (key path, message).
    pub(super) fn validate(&self, raw: &mut Vec<(String, String)>) {
        for section in &self.sections {
            section
                .config
                .validate(&format!("desk.{}", section.name), raw);
        }
        let leading: Vec<&str> = (self.sections.iter())
            .filter(|section| section.config.enabled() && !section.config.follows())
            .map(|section| section.name)
            .collect();
        if leading.len() > 1 {
            raw.push((
                "desk".into(),
                format!(
                    "{} each open their own threads and cannot run together; keep one \
                     (a desk that follows another's threads, such as web, can run beside it)",
                    leading.join(", ")
                ),
            ));
        }
        for (n, route) in self.routes.iter().enumerate() {
            let key = format!("desk.routes[{n}]");
            if route.channel.trim().is_empty() {
                raw.push((
                    format!("{key}.channel"),
                    "must name a desk channel id".into(),
                ));
            }
            for name in &route.customer_channels {
                if registry::find(name).is_none() {
                    raw.push((
                        format!("{key}.customer_channels"),
                        format!(
                            "`{name}` is not a channel ({})",
                            registry::channel_names().join(", ")
                        ),
                    ));
                }
            }
            if route
                .remind_after_minutes
                .is_some_and(|minutes| !minutes.is_finite() || minutes < 0.0)
            {
                raw.push((
                    format!("{key}.remind_after_minutes"),
                    "must be a number of minutes, 0 or more (0 turns the reminder off)".into(),
                ));
            }
            // A misspelt reason would silently never match: the route would never be used.
            for name in &route.reasons {
                if crate::model::EscalationReason::known(name).is_none() {
                    raw.push((
                        format!("{key}.reasons"),
                        format!(
                            "`{name}` is not an escalation reason ({})",
                            crate::model::EscalationReason::known_names()
                        ),
                    ));
                }
            }
        }
        if !self.routes.is_empty() && self.sections.is_empty() {
            let names: Vec<String> = (registry::DESKS.iter())
                .map(|entry| format!("[desk.{}]", entry.name))
                .collect();
            raw.push((
                "desk.routes".into(),
                format!("routing rules need a desk ({})", names.join(" or ")),
            ));
        }
    }

    pub(super) fn parse(desk: &toml::Table, problems: &mut Vec<ConfigProblem>) -> DeskSettings {
        let mut settings = DeskSettings::default();
        let mut known: Vec<&str> = registry::DESKS.iter().map(|entry| entry.name).collect();
        known.extend([
            "routes",
            "unstaffed_notice",
            "remind_after_minutes",
            "remind_waiting_customer_minutes",
            "mention",
            "broadcast_reminders",
        ]);
        for key in desk.keys() {
            if !known.contains(&key.as_str()) {
                problems.push(unknown_key(&format!("desk.{key}"), &known));
            }
        }
        for entry in registry::DESKS {
            let Some(value) = desk.get(entry.name) else {
                continue;
            };
            match (entry.parse)(value.clone()) {
                Ok(config) => settings.sections.push(DeskSection {
                    name: entry.name,
                    config,
                }),
                Err((inner, message)) => {
                    let key = match inner.as_str() {
                        "" => format!("desk.{}", entry.name),
                        inner => format!("desk.{}.{inner}", entry.name),
                    };
                    problems.push(ConfigProblem { key, message });
                }
            }
        }
        settings.routes =
            optional_section(desk, "desk.routes", "routes", problems).unwrap_or_default();
        match desk.get("unstaffed_notice") {
            None => {}
            Some(toml::Value::String(text)) if !text.trim().is_empty() => {
                settings.unstaffed_notice = Some(text.clone())
            }
            Some(_) => problems.push(ConfigProblem {
                key: "desk.unstaffed_notice".into(),
                message: "must be the text a customer is told when no desk can take \
                          the conversation (a non-empty string)"
                    .into(),
            }),
        }
        settings.reminders = parse_reminders(desk, problems);
        settings
    }
}

fn parse_reminders(desk: &toml::Table, problems: &mut Vec<ConfigProblem>) -> Reminders {
    let mut reminders = Reminders::default();
    let mut minutes = |key: &str, slot: &mut f64| match desk.get(key) {
        None => {}
        Some(value) => match value.as_float().or(value.as_integer().map(|n| n as f64)) {
            Some(n) if n.is_finite() && n >= 0.0 => *slot = n,
            _ => problems.push(ConfigProblem {
                key: format!("desk.{key}"),
                message: "must be a number of minutes, 0 or more (0 turns the reminder off)".into(),
            }),
        },
    };
    minutes("remind_after_minutes", &mut reminders.remind_after_minutes);
    minutes(
        "remind_waiting_customer_minutes",
        &mut reminders.remind_waiting_customer_minutes,
    );
    match desk.get("mention") {
        None => {}
        Some(toml::Value::String(text)) if !text.trim().is_empty() => {
            reminders.mention = Some(text.trim().to_owned())
        }
        Some(_) => problems.push(ConfigProblem {
            key: "desk.mention".into(),
            message: "must name whom reminders call (`@here`, a user group id like S0123TEAM)"
                .into(),
        }),
    }
    match desk.get("broadcast_reminders") {
        None => {}
        Some(toml::Value::Boolean(on)) => reminders.broadcast_reminders = *on,
        Some(_) => problems.push(ConfigProblem {
            key: "desk.broadcast_reminders".into(),
            message: "must be true or false".into(),
        }),
    }
    reminders
}

/// One routing rule: escalations matching every given condition go to `channel`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeskRoute {
    /// The desk channel (a Slack channel id like `C0123BILLING`).
    pub channel: String,
    /// Triage categories (e.g. `billing_dispute`, `security`); empty = any.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Customer tiers (e.g. `vip`); empty = any.
    #[serde(default)]
    pub tiers: Vec<String>,
    /// Customer channels (`webchat`, `email`, `telegram`, `discord`, `slack`); empty = any.
    #[serde(default)]
    pub customer_channels: Vec<String>,
    /// Escalation reasons (e.g. `negative_sentiment`); empty = any.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// This route's `desk.remind_after_minutes`.
    #[serde(default)]
    pub remind_after_minutes: Option<f64>,
    /// This route's `desk.mention` (the team that owns it).
    #[serde(default)]
    pub mention: Option<String>,
    /// This route's `desk.broadcast_reminders`.
    #[serde(default)]
    pub broadcast_reminders: Option<bool>,
}
