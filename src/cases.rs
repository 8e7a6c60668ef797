//! Support cases: when one opens, closes and reopens, and the sweeper that closes idle ones.
//!
//! A case opens with a customer's first message after the previous case closed (or ever),
//! and closes on a resolution (an agent's `resolve`; the customer confirming an AI answer), or
//! when nobody wrote for `case.idle_close_days`, or, with no person involved, when the
//! customer did not reply for `case.ai_idle_close_hours` after the AI's answer. A message
//! within `case.reopen_window_hours` of a close reopens it. Opening and reopening happen in the
//! ingest script; closing in `store/lua/case_close.lua`, so each is atomic with its checks.
//!
//! Idle closes are found in two places per partition. A case's first check comes from the
//! case log, which holds every opening in order: the sweeper reads it up to "now less the
//! shorter idle close" from a shared cursor (`keys::case_log_cursor`). A check that finds the
//! case not due yet puts it in the partition's case deadlines (`keys::case_deadlines`) at the
//! earliest it could close, and later checks come from there. So an open case costs no sorted
//! set entry until its first check, and a customer's messages cost no deadline write. Every
//! instance sweeps, like the desk reminders: the close script checks the record again, so two
//! instances never close a case twice.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use switchboard_api::Author;

use crate::config::CaseRules;
use crate::metrics::Metrics;
use crate::model::{now_ms, Conversation, Delivery, Role};
use crate::store::{keys, CaseEvent, ClosedCase, Commit, ReplyToQueue, Store, StoreError};

/// Cases looked at per partition and sweep; the rest wait for the next sweep.
const SWEEP_BATCH: usize = 200;

/// True when `text` is a short confirmation that an answer solved the problem ("thanks!",
/// "that worked"): one of `phrases`, with at most a few other words and no question.
pub fn is_confirmation(phrases: &[String], text: &str) -> bool {
    if text.contains('?') {
        return false;
    }
    let tokens = crate::triage::text_words(text);
    if tokens.is_empty() || tokens.len() > 6 {
        return false;
    }
    phrases
        .iter()
        .any(|phrase| crate::triage::text_matches_pattern(&tokens, phrase))
}

/// Counts what a customer message did to its case.
pub fn count_event(metrics: &Metrics, event: CaseEvent, channel: &str) {
    match event {
        CaseEvent::Opened => {
            metrics
                .cases_opened
                .get_or_create(&Metrics::label("channel", channel))
                .inc();
        }
        CaseEvent::RepeatContact => {
            metrics
                .cases_opened
                .get_or_create(&Metrics::label("channel", channel))
                .inc();
            metrics
                .repeat_contacts
                .get_or_create(&Metrics::label("channel", channel))
                .inc();
        }
        CaseEvent::Reopened => {
            metrics.case_reopens.inc();
        }
        CaseEvent::Continued | CaseEvent::Rating => {}
    }
}

/// Counts a closed case: how, whether a person was needed, and its times.
pub fn count_close(metrics: &Metrics, closed: &ClosedCase) {
    let how = closed.how.clone().unwrap_or_default();
    let human = if closed.human { "yes" } else { "no" };
    metrics
        .cases_closed
        .get_or_create(&vec![("how", how), ("human", human.to_owned())])
        .inc();
    metrics.case_escalations.observe(closed.escalations as f64);
    if let Some(opened) = closed.opened_ms {
        let seconds = |at: u64| at.saturating_sub(opened) as f64 / 1000.0;
        metrics.case_time_to_close.observe(seconds(closed.at_ms));
        if let Some(at) = closed.first_response_ms {
            metrics.case_time_to_first_response.observe(seconds(at));
        }
        if let Some(at) = closed.first_human_ms {
            metrics.case_time_to_human.observe(seconds(at));
        }
    }
    info!(case = %closed.case_id, how = ?closed.how, human = closed.human, "case closed");
}

/// Told to a customer who confirmed the AI's answer solved their problem.
pub const CONFIRMED_NOTICE: &str = "Glad that helped! If anything else comes up, just write here.";

/// The customer confirmed the AI's answer: thank them; the case then closes as `confirmed`.
pub fn commit_for_confirmation(
    conversation: &Conversation,
    ack: Option<(String, String)>,
) -> Commit {
    let outbound = conversation.outbound(Author::System, CONFIRMED_NOTICE);
    Commit {
        conversation_id: conversation.id.clone(),
        fields: vec![("updated_ms".into(), now_ms().to_string())],
        reply: Some(ReplyToQueue {
            role: Role::System,
            text: CONFIRMED_NOTICE.into(),
            payload: serde_json::to_string(&Delivery::Customer(outbound)).unwrap_or_default(),
            ..Default::default()
        }),
        ack,
        ..Default::default()
    }
}

/// Closes cases that went quiet.
pub struct CaseSweeper {
    store: Store,
    metrics: Arc<Metrics>,
}

impl CaseSweeper {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> CaseSweeper {
        CaseSweeper { store, metrics }
    }

    /// Sweeps for as long as the gateway runs, a quarter of the shorter idle close apart (at
    /// most 30 s), so a case closes at most that late.
    pub async fn run(self) {
        let period = sweep_period(self.store.case_rules());
        loop {
            if let Err(error) = self.sweep().await {
                warn!(%error, "case sweeper: sweep failed; trying again");
            }
            tokio::time::sleep(period).await;
        }
    }

    /// Closes every case due by now; returns how many it closed.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        self.sweep_as_of(now_ms()).await
    }

    /// [`CaseSweeper::sweep`] as if the clock read `now` (ms since the epoch).
    pub async fn sweep_as_of(&self, now: u64) -> Result<usize, StoreError> {
        let first_check_by = now.saturating_sub(self.store.case_rules().first_close_check_ms());
        let mut closed = 0;
        for partition in keys::partitions() {
            // First checks, from the case log; a crash before the cursor moves only repeats
            // checks, which close a case once.
            let opened = (self.store)
                .cases_opened_by(partition, first_check_by, SWEEP_BATCH)
                .await?;
            closed += self.check(&opened.conversations, now).await?;
            if let Some(read_to) = &opened.read_to {
                self.store.case_log_checked(partition, read_to).await?;
            }
            // Later checks, of cases a check found not due yet.
            let due = self.store.cases_due(partition, now, SWEEP_BATCH).await?;
            closed += self.check(&due, now).await?;
        }
        Ok(closed)
    }

    async fn check(&self, conversations: &[String], now: u64) -> Result<usize, StoreError> {
        let mut closed = 0;
        for id in conversations {
            if let Some(case) = self.store.close_case(id, None, now).await? {
                count_close(&self.metrics, &case);
                closed += 1;
            }
        }
        Ok(closed)
    }
}

fn sweep_period(rules: &CaseRules) -> Duration {
    (Duration::from_millis(rules.first_close_check_ms()) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_thanks_confirm_and_questions_do_not() {
        let phrases = crate::config::CaseConfig::default().confirmation_phrases;
        assert!(is_confirmation(&phrases, "Thanks!"));
        assert!(is_confirmation(&phrases, "great, that worked"));
        assert!(!is_confirmation(&phrases, "thanks, but how do I export?"));
        assert!(!is_confirmation(
            &phrases,
            "thanks but it still does not let me log in at all"
        ));
        assert!(!is_confirmation(&[], "thanks"));
    }

    #[test]
    fn the_sweep_period_follows_the_shorter_close_within_bounds() {
        let mut rules = CaseRules::default();
        assert_eq!(sweep_period(&rules), Duration::from_secs(30));
        rules.ai_idle_close_ms = 400;
        assert_eq!(sweep_period(&rules), Duration::from_millis(100));
    }
}
