//! Prometheus metrics for one gateway instance, served at `/metrics` (text format).
//!
//! Each instance counts what it did; Prometheus sums instances. Rates such as the AI
//! resolution rate are ratios of these counters (see the README's PromQL examples).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    /// Customer messages accepted, by channel and whether they were new or a platform's replay.
    pub inbound_messages: Family<Labels, Counter>,
    /// Conversations started, by channel.
    pub conversations_started: Family<Labels, Counter>,
    /// Answers the AI sent, by channel.
    pub ai_answers: Family<Labels, Counter>,
    /// Escalations to a person, by reason.
    pub escalations: Family<Labels, Counter>,
    /// Conversations escalated for the first time; the AI resolution rate is
    /// `1 - conversations_escalated / conversations_started`.
    pub conversations_escalated: Counter,
    /// Replies agents sent to customers.
    pub agent_replies: Counter,
    /// Conversations resolved by an agent.
    pub resolutions: Counter,
    /// Outbox deliveries by target (channel or desk) and outcome (delivered, retry, dead).
    pub outbox_deliveries: Family<Labels, Counter>,
    /// Age in seconds of the oldest delivery held back by failures, by target (channel or
    /// desk); 0 when nothing waits.
    pub outbox_oldest_waiting: Family<Labels, Gauge<f64, AtomicU64>>,
    /// Seconds a target's deliveries have been failing with none getting through; 0 when not.
    pub outbox_failing: Family<Labels, Gauge<f64, AtomicU64>>,
    /// The state behind those two gauges, which `/readyz` reads too.
    pub delivery_health: crate::outbox::health::DeliveryHealth,
    /// Seconds from a customer message to the gateway's reply being queued.
    pub time_to_first_response: Histogram,
    /// Seconds from escalation to the first agent reply.
    pub time_to_human: Histogram,
    /// Seconds from escalation to an agent taking it (a claim or their first reply).
    pub time_to_claim: Histogram,
    /// Reminders posted to the desk, by what someone waited for (`for_claim`, `for_reply`).
    pub desk_reminders: Family<Labels, Counter>,
    /// Redacted texts revealed to an agent (each look is in the audit log).
    pub desk_reveals: Counter,
    /// Seconds triage took to decide.
    pub triage_latency: Histogram,
    /// Support cases opened, by channel (repeat contacts included).
    pub cases_opened: Family<Labels, Counter>,
    /// Cases opened within `metrics.repeat_window_days` of the customer's previous case, by channel.
    pub repeat_contacts: Family<Labels, Counter>,
    /// Closed cases reopened by a message within `case.reopen_window_hours`.
    pub case_reopens: Counter,
    /// Cases closed, by how (`resolved`, `confirmed`, `ai_idle`, `idle`) and whether a person
    /// was involved (`human` = `yes`/`no`); AI-resolved rate: `human="no"` over all.
    pub cases_closed: Family<Labels, Counter>,
    /// Escalations per closed case.
    pub case_escalations: Histogram,
    /// Seconds from a case's opening to its first reply, per closed case.
    pub case_time_to_first_response: Histogram,
    /// Seconds from a case's opening to its first agent reply, per closed case that had one.
    pub case_time_to_human: Histogram,
    /// Seconds from a case's opening to its close, per closed case.
    pub case_time_to_close: Histogram,
    /// Satisfaction ratings given, by rating (1-5).
    pub csat_ratings: Family<Labels, Counter>,
    /// Archive runs this instance made (`retention.run_every_minutes`), by outcome (`ok`,
    /// `failed`).
    pub archive_runs: Family<Labels, Counter>,
    /// Conversations those runs moved out of Redis into the archive.
    pub archived_conversations: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let metrics = Metrics {
            inbound_messages: Family::default(),
            conversations_started: Family::default(),
            ai_answers: Family::default(),
            escalations: Family::default(),
            conversations_escalated: Counter::default(),
            agent_replies: Counter::default(),
            resolutions: Counter::default(),
            outbox_deliveries: Family::default(),
            outbox_oldest_waiting: Family::default(),
            outbox_failing: Family::default(),
            delivery_health: Default::default(),
            time_to_first_response: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            time_to_human: Histogram::new(exponential_buckets(5.0, 2.0, 14)),
            time_to_claim: Histogram::new(exponential_buckets(5.0, 2.0, 14)),
            desk_reminders: Family::default(),
            desk_reveals: Counter::default(),
            triage_latency: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            cases_opened: Family::default(),
            repeat_contacts: Family::default(),
            case_reopens: Counter::default(),
            cases_closed: Family::default(),
            case_escalations: Histogram::new([0.0, 1.0, 2.0, 3.0, 5.0]),
            case_time_to_first_response: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            case_time_to_human: Histogram::new(exponential_buckets(5.0, 2.0, 14)),
            case_time_to_close: Histogram::new(exponential_buckets(60.0, 2.0, 16)),
            csat_ratings: Family::default(),
            archive_runs: Family::default(),
            archived_conversations: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "archive_runs",
            "Archive runs made by this instance, by outcome",
            metrics.archive_runs.clone(),
        );
        registry.register(
            "archived_conversations",
            "Conversations moved out of Redis into the archive by this instance",
            metrics.archived_conversations.clone(),
        );
        registry.register(
            "inbound_messages",
            "Customer messages accepted",
            metrics.inbound_messages.clone(),
        );
        registry.register(
            "conversations_started",
            "Conversations started",
            metrics.conversations_started.clone(),
        );
        registry.register(
            "ai_answers",
            "Answers sent by the AI",
            metrics.ai_answers.clone(),
        );
        registry.register(
            "escalations",
            "Escalations to a person, by reason",
            metrics.escalations.clone(),
        );
        registry.register(
            "conversations_escalated",
            "Conversations escalated to a person, each counted once",
            metrics.conversations_escalated.clone(),
        );
        registry.register(
            "agent_replies",
            "Agent replies relayed to customers",
            metrics.agent_replies.clone(),
        );
        registry.register(
            "resolutions",
            "Conversations resolved by an agent",
            metrics.resolutions.clone(),
        );
        registry.register(
            "outbox_deliveries",
            "Outbox delivery attempts by target and outcome",
            metrics.outbox_deliveries.clone(),
        );
        registry.register(
            "outbox_oldest_waiting_seconds",
            "Age of the oldest delivery held back by failures, by target",
            metrics.outbox_oldest_waiting.clone(),
        );
        registry.register(
            "outbox_failing_seconds",
            "How long no delivery to a target has got through, by target",
            metrics.outbox_failing.clone(),
        );
        registry.register(
            "time_to_first_response_seconds",
            "Customer message to reply queued",
            metrics.time_to_first_response.clone(),
        );
        registry.register(
            "time_to_human_seconds",
            "Escalation to first agent reply",
            metrics.time_to_human.clone(),
        );
        registry.register(
            "time_to_claim_seconds",
            "Escalation to an agent taking the conversation",
            metrics.time_to_claim.clone(),
        );
        registry.register(
            "desk_reminders",
            "Reminders posted to the desk, by what the customer waited for",
            metrics.desk_reminders.clone(),
        );
        registry.register(
            "desk_reveals",
            "Redacted texts revealed to an agent, each look in the audit log",
            metrics.desk_reveals.clone(),
        );
        registry.register(
            "triage_latency_seconds",
            "Time triage took to decide",
            metrics.triage_latency.clone(),
        );
        registry.register(
            "cases_opened",
            "Support cases opened, by channel",
            metrics.cases_opened.clone(),
        );
        registry.register(
            "repeat_contacts",
            "Cases opened soon after the customer's previous case closed, by channel",
            metrics.repeat_contacts.clone(),
        );
        registry.register(
            "case_reopens",
            "Closed cases reopened by the customer",
            metrics.case_reopens.clone(),
        );
        registry.register(
            "cases_closed",
            "Cases closed, by how and whether a person was involved",
            metrics.cases_closed.clone(),
        );
        registry.register(
            "case_escalations",
            "Escalations per closed case",
            metrics.case_escalations.clone(),
        );
        registry.register(
            "case_time_to_first_response_seconds",
            "Case opened to its first reply, per closed case",
            metrics.case_time_to_first_response.clone(),
        );
        registry.register(
            "case_time_to_human_seconds",
            "Case opened to its first agent reply, per closed case",
            metrics.case_time_to_human.clone(),
        );
        registry.register(
            "case_time_to_resolution_seconds",
            "Case opened to closed, per closed case",
            metrics.case_time_to_close.clone(),
        );
        registry.register(
            "csat_ratings",
            "Satisfaction ratings given, by rating",
            metrics.csat_ratings.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// One label set.
    pub fn label(name: &'static str, value: impl Into<String>) -> Labels {
        vec![(name, value.into())]
    }
}
