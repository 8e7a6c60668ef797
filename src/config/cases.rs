//! `[case]` (when a support case opens, closes and reopens) and `[metrics]` (the windows the
//! per-case figures use). Durations are decimals so a test can compress days into
//! milliseconds; every key has a production default.

use serde::Deserialize;

/// `[case]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseConfig {
    /// A case nobody wrote in for this long closes (`idle`).
    #[serde(default = "default_idle_close_days")]
    pub idle_close_days: f64,
    /// A case the AI answered last, with no person involved and no reply from the customer
    /// for this long, closes as resolved by the AI (`ai_idle`).
    #[serde(default = "default_ai_idle_close_hours")]
    pub ai_idle_close_hours: f64,
    /// A customer message this soon after a close reopens the case (counted as a reopen)
    /// instead of opening a new one; 0 never reopens.
    #[serde(default = "default_reopen_window_hours")]
    pub reopen_window_hours: f64,
    /// Short replies to an AI answer with which a customer confirms it solved their problem:
    /// the case closes as resolved by the AI (`confirmed`) and the message is not triaged.
    /// Empty turns confirmation off.
    #[serde(default = "default_confirmation_phrases")]
    pub confirmation_phrases: Vec<String>,
}

fn default_idle_close_days() -> f64 {
    7.0
}
fn default_ai_idle_close_hours() -> f64 {
    24.0
}
fn default_reopen_window_hours() -> f64 {
    24.0
}
fn default_confirmation_phrases() -> Vec<String> {
    [
        "thanks",
        "thank you",
        "thx",
        "that worked",
        "that helped",
        "that solved it",
        "it worked",
        "problem solved",
        "all good",
        "perfect",
    ]
    .iter()
    .map(|phrase| phrase.to_string())
    .collect()
}

impl Default for CaseConfig {
    fn default() -> Self {
        CaseConfig {
            idle_close_days: default_idle_close_days(),
            ai_idle_close_hours: default_ai_idle_close_hours(),
            reopen_window_hours: default_reopen_window_hours(),
            confirmation_phrases: default_confirmation_phrases(),
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// A new case this soon after the customer's previous one closed, on any channel of a
    /// linked contact, is a repeat contact: the previous case was not resolved at first
    /// contact.
    #[serde(default = "default_repeat_window_days")]
    pub repeat_window_days: f64,
}

fn default_repeat_window_days() -> f64 {
    7.0
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            repeat_window_days: default_repeat_window_days(),
        }
    }
}

const HOUR_MS: f64 = 3_600_000.0;
const DAY_MS: f64 = 24.0 * HOUR_MS;

/// The case rules in milliseconds, as the store and the sweeper apply them.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRules {
    /// See [`CaseConfig::idle_close_days`].
    pub idle_close_ms: u64,
    /// See [`CaseConfig::ai_idle_close_hours`].
    pub ai_idle_close_ms: u64,
    /// See [`CaseConfig::reopen_window_hours`].
    pub reopen_window_ms: u64,
    /// See [`MetricsConfig::repeat_window_days`].
    pub repeat_window_ms: u64,
    /// See [`CaseConfig::confirmation_phrases`].
    pub confirmation_phrases: Vec<String>,
}

impl CaseRules {
    /// The rules of a config's `[case]` and `[metrics]`.
    pub fn new(case: &CaseConfig, metrics: &MetricsConfig) -> CaseRules {
        let ms = |value: f64, unit: f64| (value * unit).round() as u64;
        CaseRules {
            idle_close_ms: ms(case.idle_close_days, DAY_MS),
            ai_idle_close_ms: ms(case.ai_idle_close_hours, HOUR_MS),
            reopen_window_ms: ms(case.reopen_window_hours, HOUR_MS),
            repeat_window_ms: ms(metrics.repeat_window_days, DAY_MS),
            confirmation_phrases: case.confirmation_phrases.clone(),
        }
    }
}

impl super::Config {
    /// The case rules of `[case]` and `[metrics]`, in milliseconds.
    pub fn case_rules(&self) -> CaseRules {
        CaseRules::new(&self.case, &self.metrics)
    }
}

impl CaseRules {
    /// How soon after a case opens (or reopens) the sweeper first looks at closing it: the
    /// earlier of the two idle closes (it re-checks and waits longer when neither applies).
    pub fn first_close_check_ms(&self) -> u64 {
        self.ai_idle_close_ms.min(self.idle_close_ms)
    }
}

impl Default for CaseRules {
    fn default() -> Self {
        CaseRules::new(&CaseConfig::default(), &MetricsConfig::default())
    }
}

/// Pushes one problem per bad value of `[case]` and `[metrics]`.
pub fn validate(case: &CaseConfig, metrics: &MetricsConfig, problems: &mut Vec<(String, String)>) {
    let mut check = |key: &str, value: f64, zero_allowed: bool| {
        let ok = value.is_finite() && (value > 0.0 || (zero_allowed && value == 0.0));
        // Beyond ten years a duration in ms no longer means anything to anyone.
        if !ok || value > 3650.0 * 24.0 {
            let least = if zero_allowed { "0 or more" } else { "above 0" };
            problems.push((
                key.into(),
                format!("must be {least} (and finite), got {value}"),
            ));
        }
    };
    check("case.idle_close_days", case.idle_close_days, false);
    check("case.ai_idle_close_hours", case.ai_idle_close_hours, false);
    check("case.reopen_window_hours", case.reopen_window_hours, true);
    check(
        "metrics.repeat_window_days",
        metrics.repeat_window_days,
        true,
    );
    if let Some(bad) = case
        .confirmation_phrases
        .iter()
        .find(|phrase| crate::triage::text_words(phrase).is_empty())
    {
        problems.push((
            "case.confirmation_phrases".into(),
            format!("phrase {bad:?} has no words"),
        ));
    }
}
