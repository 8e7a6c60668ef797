//! Per-case figures: read from each partition's case log (`keys::case_log`), which the
//! ingest and close scripts append to as cases open, reopen and close.
//!
//! A case counts as closed when its latest event in the window is its close (a case reopened
//! since is open again). First-contact resolution: closed by a resolution (an agent's, a
//! confirmation, or no reply after the AI's answer), never reopened, and the customer did
//! not open another case within `metrics.repeat_window_days` of the close, on any channel
//! (linked contacts share one conversation, so their channels share the count).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{ratio, Latency, Report, ReportError, Window};
use crate::store::{keys, ClosedCase, Store};

/// How a case may close and count as resolved.
const RESOLVED_AS: [&str; 3] = ["resolved", "confirmed", "ai_idle"];

/// The per-case figures of a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseFigures {
    /// Cases opened in the window.
    pub opened: u64,
    /// Of those, repeat contacts (within the repeat window of the previous case's close).
    pub repeat_contacts: u64,
    /// Of those, on another channel than the customer's previous message.
    pub cross_channel_repeats: u64,
    /// Reopens in the window.
    pub reopens: u64,
    /// Cases closed in the window (and not reopened since).
    pub closed: u64,
    /// Closed cases by how they closed.
    pub closed_as: BTreeMap<String, u64>,
    /// Closed with no person involved.
    pub ai_resolved: u64,
    /// Resolved at first contact.
    pub first_contact_resolved: u64,
    /// Escalations of the closed cases.
    pub escalations: u64,
    /// Case opened to first reply, closed cases.
    pub time_to_first_response: Latency,
    /// Case opened to first agent reply, closed cases that had one.
    pub time_to_human: Latency,
    /// Case opened to close, closed cases resolved (not idle).
    pub time_to_resolution: Latency,
}

impl CaseFigures {
    /// Share of closed cases closed with no person, 0..1.
    pub fn ai_resolved_rate(&self) -> f64 {
        ratio(self.ai_resolved, self.closed)
    }
    /// First-contact resolution rate, 0..1.
    pub fn fcr_rate(&self) -> f64 {
        ratio(self.first_contact_resolved, self.closed)
    }
    /// Share of opened cases that were repeat contacts, 0..1.
    pub fn repeat_contact_rate(&self) -> f64 {
        ratio(self.repeat_contacts, self.opened)
    }
    /// Escalations per closed case.
    pub fn escalations_per_case(&self) -> f64 {
        if self.closed == 0 {
            0.0
        } else {
            self.escalations as f64 / self.closed as f64
        }
    }
}

/// Every partition's case events in the window (stream id, fields).
async fn case_events(
    store: &Store,
    window: Window,
) -> Result<Vec<(String, HashMap<String, String>)>, ReportError> {
    let entries = super::collect::partition_log(store, window, keys::case_log).await?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let fields = entry
                .map
                .iter()
                .filter_map(|(name, value)| {
                    let value = redis::from_redis_value_ref::<String>(value).ok()?;
                    Some((name.clone(), value))
                })
                .collect();
            (entry.id, fields)
        })
        .collect())
}

/// Reads the case log into `report.cases`.
/// `archived` are archived conversations' events in the window; an event both there and in
/// Redis (a run that died before trimming the log) counts once.
pub(super) async fn read_cases(
    store: &Store,
    window: Window,
    archived: Vec<(String, HashMap<String, String>)>,
    report: &mut Report,
) -> Result<(), ReportError> {
    let mut events = Vec::new();
    let mut seen = HashSet::new();
    let all = case_events(store, window)
        .await?
        .into_iter()
        .chain(archived);
    for (id, fields) in all {
        if !seen.insert((id.clone(), fields.get("case").cloned())) {
            continue;
        }
        match ClosedCase::from_entry(&id, &fields) {
            Some(event) => events.push(event),
            None => report.skip("case log entries"),
        }
    }
    // Partitions are read one after another; the figures need time order.
    events.sort_by_key(|event| event.at_ms);
    report.cases = figures(&events, store.case_rules().repeat_window_ms);
    Ok(())
}

/// The figures of a window's case events (in time order).
pub fn figures(events: &[ClosedCase], repeat_window_ms: u64) -> CaseFigures {
    let mut cases = CaseFigures::default();
    let mut latest: HashMap<&str, &ClosedCase> = HashMap::new();
    let mut opens: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    for event in events {
        match event.event.as_str() {
            "opened" => {
                cases.opened += 1;
                if event.repeat {
                    cases.repeat_contacts += 1;
                    let other = event
                        .previous_channel
                        .as_deref()
                        .is_some_and(|previous| previous != event.channel);
                    if other {
                        cases.cross_channel_repeats += 1;
                    }
                }
                opens
                    .entry(event.conversation_id.as_str())
                    .or_default()
                    .push((case_number(&event.case_id), event.at_ms));
            }
            "reopened" => cases.reopens += 1,
            _ => {}
        }
        latest.insert(event.case_id.as_str(), event);
    }
    for event in latest.values().filter(|event| event.event == "closed") {
        cases.closed += 1;
        let how = event.how.clone().unwrap_or_default();
        *cases.closed_as.entry(how.clone()).or_default() += 1;
        if !event.human {
            cases.ai_resolved += 1;
        }
        cases.escalations += event.escalations;
        let came_back = opens
            .get(event.conversation_id.as_str())
            .is_some_and(|opened| {
                // A later case by number, not by time: a customer answering at once can open
                // the next case in the very millisecond the previous one closed.
                let closed_number = case_number(&event.case_id);
                opened.iter().any(|&(number, at)| {
                    number > closed_number && at.saturating_sub(event.at_ms) <= repeat_window_ms
                })
            });
        if RESOLVED_AS.contains(&how.as_str()) && event.reopens == 0 && !came_back {
            cases.first_contact_resolved += 1;
        }
        if let Some(opened) = event.opened_ms {
            if let Some(at) = event.first_response_ms {
                cases.time_to_first_response.push(at.saturating_sub(opened));
            }
            if let Some(at) = event.first_human_ms {
                cases.time_to_human.push(at.saturating_sub(opened));
            }
            if RESOLVED_AS.contains(&how.as_str()) {
                cases
                    .time_to_resolution
                    .push(event.at_ms.saturating_sub(opened));
            }
        }
    }
    cases
}

/// The number of a case id `<conversation id>:<number>` (0 when it has none).
fn case_number(case_id: &str) -> u64 {
    (case_id.rsplit_once(':'))
        .and_then(|(_, number)| number.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: serde_json::Value) -> ClosedCase {
        let mut fields: HashMap<String, String> = json
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| {
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    serde_json::Value::Bool(flag) => if *flag { "1" } else { "0" }.to_owned(),
                    other => other.to_string(),
                };
                (name.clone(), text)
            })
            .collect();
        let at = fields.remove("at_ms").unwrap();
        let rename = |fields: &mut HashMap<String, String>, from: &str, to: &str| {
            if let Some(value) = fields.remove(from) {
                fields.insert(to.to_owned(), value);
            }
        };
        for (from, to) in [
            ("event", "ev"),
            ("case_id", "case"),
            ("channel", "ch"),
            ("previous_channel", "prev"),
            ("repeat", "rep"),
            ("opened_ms", "opened"),
            ("escalations", "esc"),
            ("first_response_ms", "first"),
            ("first_human_ms", "human_at"),
        ] {
            rename(&mut fields, from, to);
        }
        ClosedCase::from_entry(&format!("{at}-0"), &fields).expect("a case event")
    }

    #[test]
    fn reopened_and_returning_customers_are_no_first_contact_resolution() {
        const DAY: u64 = 86_400_000;
        let events = [
            // a: resolved by an agent at once.
            event(
                serde_json::json!({"event": "opened", "case_id": "a:1", "conversation_id": "a", "channel": "webchat", "at_ms": "1000"}),
            ),
            event(
                serde_json::json!({"event": "closed", "case_id": "a:1", "conversation_id": "a", "how": "resolved", "human": true, "at_ms": "5000", "opened_ms": "1000", "escalations": 1, "first_response_ms": "1500", "first_human_ms": "3000"}),
            ),
            // b: closed, reopened, closed again.
            event(
                serde_json::json!({"event": "opened", "case_id": "b:1", "conversation_id": "b", "channel": "email", "at_ms": "1000"}),
            ),
            event(
                serde_json::json!({"event": "closed", "case_id": "b:1", "conversation_id": "b", "how": "confirmed", "human": false, "at_ms": "2000", "opened_ms": "1000"}),
            ),
            event(
                serde_json::json!({"event": "reopened", "case_id": "b:1", "conversation_id": "b", "channel": "email", "at_ms": "3000"}),
            ),
            event(
                serde_json::json!({"event": "closed", "case_id": "b:1", "conversation_id": "b", "how": "ai_idle", "human": false, "at_ms": "9000", "opened_ms": "1000", "reopens": 1}),
            ),
            // c: AI-resolved, back on another channel within the window, then quiet.
            event(
                serde_json::json!({"event": "opened", "case_id": "c:1", "conversation_id": "c", "channel": "webchat", "at_ms": "1000"}),
            ),
            event(
                serde_json::json!({"event": "closed", "case_id": "c:1", "conversation_id": "c", "how": "ai_idle", "human": false, "at_ms": "2000", "opened_ms": "1000"}),
            ),
            event(
                serde_json::json!({"event": "opened", "case_id": "c:2", "conversation_id": "c", "channel": "email", "previous_channel": "webchat", "repeat": true, "at_ms": (2000 + DAY).to_string()}),
            ),
            event(
                serde_json::json!({"event": "closed", "case_id": "c:2", "conversation_id": "c", "how": "idle", "human": false, "at_ms": (3000 + 8 * DAY).to_string(), "opened_ms": (2000 + DAY).to_string()}),
            ),
        ];
        let cases = figures(&events, 7 * DAY);
        assert_eq!(cases.opened, 4);
        assert_eq!(cases.reopens, 1);
        assert_eq!(cases.closed, 4);
        assert_eq!(cases.ai_resolved, 3);
        assert_eq!(
            cases.first_contact_resolved, 1,
            "only a: b reopened, c came back, c:2 went idle"
        );
        assert_eq!(cases.repeat_contacts, 1);
        assert_eq!(cases.cross_channel_repeats, 1);
        assert_eq!(cases.escalations, 1);
        assert_eq!(cases.time_to_human.p50_ms(), 2000);
        assert_eq!(
            cases.time_to_resolution.count(),
            3,
            "the idle close is no resolution"
        );
        // The same events with a one-hour window: c's return was too late to count against it.
        assert_eq!(figures(&events, 3_600_000).first_contact_resolved, 2);
        // Back within the same millisecond as the close: still a return.
        let quick = [
            event(
                serde_json::json!({"event": "opened", "case_id": "d:1", "conversation_id": "d", "channel": "webchat", "at_ms": "1000"}),
            ),
            event(
                serde_json::json!({"event": "closed", "case_id": "d:1", "conversation_id": "d", "how": "confirmed", "human": false, "at_ms": "2000", "opened_ms": "1000"}),
            ),
            event(
                serde_json::json!({"event": "opened", "case_id": "d:2", "conversation_id": "d", "channel": "webchat", "repeat": true, "at_ms": "2000"}),
            ),
        ];
        assert_eq!(figures(&quick, DAY).first_contact_resolved, 0);
    }
}
