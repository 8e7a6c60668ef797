//! `switchboard report`: support figures for a time window, computed from Redis and the archive.
//!
//! The Prometheus counters in [`crate::metrics`] belong to one instance and start at zero on
//! every restart; this report reads what every instance wrote to Redis, so it covers any
//! window and all instances. Sources:
//! - conversation hashes (found in each partition's index by creation time): channel,
//!   timestamps, CSAT;
//! - their transcripts: messages by role, time to first response;
//! - each partition's escalation log: escalations by reason and the questions behind them;
//! - the knowledge-base candidates hash `sb:kb:candidates`;
//! - each partition's case log: per-case figures ([`cases`]);
//! - the archive (`retention.archive_dir` or `[retention.s3]`), when the window reaches back
//!   to conversations archived out of Redis: their records, transcripts, escalations and case
//!   events count the same as if they were still in Redis.
//!
//! Records that do not parse are skipped and counted, never fatal: one bad write must not
//! hide a week of figures. Rendering lives in [`text`] (the `Display` impl) and [`html`].

mod cases;
pub mod cluster;
mod collect;
pub mod html;
pub mod replay;
pub mod replay_html;
mod text;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub use cases::{figures as case_figures, CaseFigures};
pub use cluster::{cluster_questions, EscalatedQuestion, QuestionCluster};
pub use collect::{collect, collect_with_archive};

use crate::config::Config;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Redis refused or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The store could not be read.
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// The archive could not be read.
    #[error("{0}")]
    Archive(#[from] crate::archive::ArchiveError),
    /// The archive the config names could not be set up.
    #[error("{0}")]
    ArchiveSetup(String),
    /// The time window is not usable.
    #[error("window: {0}")]
    Window(String),
    /// The HTML page could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// A half-open time window `[since_ms, until_ms)`, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First millisecond included.
    pub since_ms: u64,
    /// First millisecond after the window.
    pub until_ms: u64,
}

impl Window {
    /// A window; fails when it is empty or reversed.
    pub fn new(since_ms: u64, until_ms: u64) -> Result<Window, ReportError> {
        if since_ms >= until_ms {
            return Err(ReportError::Window(format!(
                "since ({since_ms}) must be before until ({until_ms})"
            )));
        }
        Ok(Window { since_ms, until_ms })
    }

    /// Reads a CLI bound relative to `now_ms`: `7d`, `24h`, `30m` ago, `now`, or epoch milliseconds.
    pub fn parse_bound(text: &str, now_ms: u64) -> Result<u64, ReportError> {
        let text = text.trim();
        if text == "now" {
            return Ok(now_ms);
        }
        let unit_ms = match text.chars().last() {
            Some('d') => Some(86_400_000),
            Some('h') => Some(3_600_000),
            Some('m') => Some(60_000),
            _ => None,
        };
        let bad = || {
            ReportError::Window(format!(
                "`{text}` is not a time: use 7d, 24h, 30m (ago), now, or epoch milliseconds"
            ))
        };
        match unit_ms {
            Some(unit) => {
                let count: u64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
                Ok(now_ms.saturating_sub(count.saturating_mul(unit)))
            }
            None => text.parse().map_err(|_| bad()),
        }
    }

    /// True when `ms` falls inside the window.
    pub fn contains(&self, ms: u64) -> bool {
        (self.since_ms..self.until_ms).contains(&ms)
    }
}

/// A sample of durations, summarised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latency {
    /// Sorted samples, in milliseconds.
    samples_ms: Vec<u64>,
}

impl Latency {
    /// Adds one sample.
    pub fn push(&mut self, ms: u64) {
        let at = self.samples_ms.partition_point(|&x| x <= ms);
        self.samples_ms.insert(at, ms);
    }
    /// How many samples.
    pub fn count(&self) -> usize {
        self.samples_ms.len()
    }
    /// The `p`th percentile (nearest rank), 0 when there are no samples.
    pub fn percentile_ms(&self, p: f64) -> u64 {
        if self.samples_ms.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * self.samples_ms.len() as f64).ceil() as usize;
        self.samples_ms[rank.clamp(1, self.samples_ms.len()) - 1]
    }
    /// The median.
    pub fn p50_ms(&self) -> u64 {
        self.percentile_ms(50.0)
    }
    /// The 90th percentile.
    pub fn p90_ms(&self) -> u64 {
        self.percentile_ms(90.0)
    }
    /// The longest, 0 when there are no samples.
    pub fn max_ms(&self) -> u64 {
        self.samples_ms.last().copied().unwrap_or(0)
    }
}

/// Customer satisfaction ratings given in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Csat {
    /// Ratings 1..=5 at index 0..=4.
    pub counts: [u64; 5],
}

impl Csat {
    /// How many ratings.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
    /// The mean rating, 0 when there are none.
    pub fn average(&self) -> f64 {
        let weighted: u64 = (1..=5u64)
            .zip(self.counts)
            .map(|(score, n)| score * n)
            .sum();
        ratio(weighted, self.total())
    }
}

/// Knowledge-base candidates from resolved conversations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KbCandidates {
    /// Waiting for review now, whenever they were proposed (the backlog).
    pub pending: u64,
    /// Proposed in the window.
    pub proposed: u64,
    /// Approved in the window.
    pub approved: u64,
    /// Rejected in the window.
    pub rejected: u64,
}

/// Every figure of the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The window the figures cover.
    pub window: Option<Window>,
    /// Conversations started in the window, by channel.
    pub conversations: BTreeMap<String, u64>,
    /// Of those, how many were ever escalated to a person.
    pub escalated_conversations: u64,
    /// Customer messages in the window, by channel.
    pub customer_messages: BTreeMap<String, u64>,
    /// AI answers sent in the window, by channel.
    pub ai_answers: BTreeMap<String, u64>,
    /// Escalations in the window (the escalation log), by reason.
    pub escalations: BTreeMap<String, u64>,
    /// Customer's first message to the first reply (AI, agent or notice), conversations started in the window.
    pub first_response: Latency,
    /// Escalation to the first agent reply, for escalations in the window.
    pub time_to_human: Latency,
    /// Escalated in the window and still waiting for an agent's first reply.
    pub awaiting_human: u64,
    /// Agent replies relayed to customers in the window (corrections included).
    pub agent_replies: u64,
    /// Conversations resolved in the window.
    pub resolutions: u64,
    /// Ratings given in the window.
    pub csat: Csat,
    /// Escalated questions grouped by topic, largest first.
    pub knowledge_gaps: Vec<QuestionCluster>,
    /// Knowledge-base candidates.
    pub kb_candidates: KbCandidates,
    /// Per-case figures (FCR, repeat contact, AI-resolved rate, ...).
    pub cases: CaseFigures,
    /// Records that could not be read, by kind.
    pub skipped: BTreeMap<String, u64>,
}

impl Report {
    /// All conversations started in the window.
    pub fn total_conversations(&self) -> u64 {
        self.conversations.values().sum()
    }
    /// Conversations started in the window that the AI handled without a person.
    pub fn ai_resolved_conversations(&self) -> u64 {
        self.total_conversations()
            .saturating_sub(self.escalated_conversations)
    }
    /// Share of conversations never escalated, 0..1 (0 when there were none).
    pub fn ai_resolution_rate(&self) -> f64 {
        ratio(self.ai_resolved_conversations(), self.total_conversations())
    }
    /// Share of conversations escalated, 0..1 (0 when there were none).
    pub fn escalation_rate(&self) -> f64 {
        ratio(self.escalated_conversations, self.total_conversations())
    }
    /// Escalation events in the window.
    pub fn total_escalations(&self) -> u64 {
        self.escalations.values().sum()
    }
    /// Customer messages in the window.
    pub fn total_customer_messages(&self) -> u64 {
        self.customer_messages.values().sum()
    }
    /// AI answers in the window.
    pub fn total_ai_answers(&self) -> u64 {
        self.ai_answers.values().sum()
    }
    /// Escalation reasons, most frequent first.
    pub fn top_escalation_reasons(&self) -> Vec<(&str, u64)> {
        let mut reasons: Vec<(&str, u64)> = self
            .escalations
            .iter()
            .map(|(reason, &count)| (reason.as_str(), count))
            .collect();
        reasons.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        reasons
    }
    /// Records skipped as unreadable, all kinds.
    pub fn total_skipped(&self) -> u64 {
        self.skipped.values().sum()
    }
    pub(crate) fn skip(&mut self, kind: &str) {
        *self.skipped.entry(kind.to_owned()).or_default() += 1;
    }
}

/// `part / whole`, 0 when `whole` is 0 (an empty window reads as zeros, never NaN).
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// What the CLI runs: connects with the config's Redis, computes the report, and writes
/// the HTML page to `html_out` when given. The caller prints the returned report.
pub async fn run_report(
    config: &Config,
    window: Window,
    html_out: Option<&Path>,
) -> Result<Report, ReportError> {
    // A report reads far more per command than the gateway does, so it allows more than
    // `command_timeout_ms`; it still never hangs on a Redis that does not answer.
    let response =
        Duration::from_millis(config.redis.command_timeout_ms).max(Duration::from_secs(10));
    let store = crate::store::Store::connect(&config.redis.url, response)
        .await?
        .with_case_rules(config.case_rules());
    let archive = crate::admin::archive_of(config).map_err(ReportError::ArchiveSetup)?;
    let report = collect_with_archive(&store, archive.as_ref(), window).await?;
    if let Some(path) = html_out {
        std::fs::write(path, html::render(&report)).map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(report)
}
