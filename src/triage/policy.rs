//! The escalation policies, each a small pure function over the message and its history.
//!
//! They run in the order [`super::Triage::decide`] calls them; the first that fires wins.
//! Every check returns the evidence (which pattern, which score) so the decision record can
//! explain itself to the agent who picks the conversation up.

use std::collections::HashMap;

use switchboard_api::InboundKind;

use super::text::{content_terms, matches_pattern, pattern_parts, words};
use super::{TranscriptLine, TriageConfig};
use crate::model::Role;

/// VIP bypass: the tier is listed, or the email's domain is.
pub fn vip(config: &TriageConfig, tier: Option<&str>, email: Option<&str>) -> Option<String> {
    if let Some(tier) = tier.map(str::trim) {
        if config
            .vip_tiers
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tier))
        {
            return Some(format!("customer tier `{tier}` goes to a person"));
        }
    }
    let domain = email
        .and_then(|e| e.trim().rsplit_once('@'))
        .map(|(_, d)| d.to_ascii_lowercase())?;
    config
        .vip_email_domains
        .iter()
        .find(|d| d.trim_start_matches('@').eq_ignore_ascii_case(&domain))
        .map(|d| format!("email domain `{d}` is a VIP domain"))
}

/// Repeat contact: the customer is back within `metrics.repeat_window_days` of their previous
/// case's close (on any linked channel). The store flags such a case when it opens; this says
/// whether that escalates, and why. Repeated questions *within* a case are
/// [`repetition`]'s.
pub fn repeat_contact(config: &TriageConfig) -> Option<String> {
    config
        .escalate_repeat_contact
        .then(|| "came back soon after the previous case closed: a repeat contact".to_owned())
}

/// Always-human category from the message's words: (category, the pattern that matched).
pub fn category_from_text(config: &TriageConfig, tokens: &[String]) -> Option<(String, String)> {
    config
        .always_human_categories
        .iter()
        .find_map(|(category, patterns)| {
            patterns
                .iter()
                .find(|p| matches_pattern(tokens, p))
                .map(|p| (category.clone(), p.clone()))
        })
}

/// Explicit request for a person: the button, or a phrase. Returns the evidence.
pub fn human_request(
    config: &TriageConfig,
    kind: InboundKind,
    tokens: &[String],
) -> Option<String> {
    if kind == InboundKind::HumanRequest {
        return Some("pressed \"Talk to a human\"".into());
    }
    let Some(phrase) = config
        .human_request_phrases
        .iter()
        .find(|p| matches_pattern(tokens, p))
    else {
        return contact_verb_near_person(tokens);
    };
    // "I don't need a human" / "no agent please" is not a request.
    let first = words(phrase).first().cloned().unwrap_or_default();
    let at = tokens.iter().position(|t| *t == first).unwrap_or(0);
    let before = &tokens[at.saturating_sub(3)..at];
    if before
        .iter()
        .any(|w| matches!(w.as_str(), "dont" | "not" | "no" | "never" | "without"))
        && before.iter().all(|w| w != "want")
    {
        return None;
    }
    Some(format!("asked for a person: \"{phrase}\""))
}

/// Verbs of reaching someone, and who: "speak with an assistant", "chat to somone".
const CONTACT_VERBS: &[&str] = &[
    "talk",
    "talking",
    "speak",
    "speaking",
    "chat",
    "chatting",
    "contact",
    "contacting",
    "reach",
    "call",
    "connect",
    "transfer",
];
const PERSON_NOUNS: &[&str] = &[
    "someone",
    "somebody",
    "person",
    "assistant",
    "human",
    "agent",
    "operator",
    "staff",
    "employee",
    "representative",
    "people",
    "manager",
    "supervisor",
];

/// English fallback for phrasings the configured list misses: a contact verb followed
/// within three words by a person noun, allowing one typo in the noun ("somenoe").
fn contact_verb_near_person(tokens: &[String]) -> Option<String> {
    for (i, verb) in tokens.iter().enumerate() {
        if !CONTACT_VERBS.contains(&verb.as_str()) {
            continue;
        }
        for noun in tokens.iter().skip(i + 1).take(3) {
            if PERSON_NOUNS
                .iter()
                .any(|p| *p == noun || (p.len() >= 5 && one_edit(p, noun)))
            {
                return Some(format!("asked for a person: \"{verb} ... {noun}\""));
            }
        }
    }
    None
}

/// True when `a` and `b` differ by at most one insertion, deletion, substitution or swap.
fn one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    if ra.is_empty() && rb.is_empty() {
        return true;
    }
    ra.get(1..) == rb.get(1..) // substitution
        || ra.get(1..) == Some(rb) // deletion from a
        || Some(ra) == rb.get(1..) // insertion into a
        || (ra.len() >= 2 && rb.len() >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..])
}

/// True when the message rejects the previous answer ("no", "that didn't help").
pub fn is_rejection(config: &TriageConfig, text: &str) -> bool {
    let tokens = words(text);
    // A bare "no" rejects; "no, how do I export data" starts a new question instead.
    if tokens.len() > 12 {
        return false;
    }
    config.rejection_phrases.iter().any(|p| {
        let parts = pattern_parts(p);
        if parts.len() == 1 {
            tokens.first().is_some_and(|t| *t == parts[0].0) && tokens.len() <= 4
        } else {
            matches_pattern(&tokens, p)
        }
    })
}

/// AI answers the customer rejected, counting the current message as the latest reply.
pub fn rejected_answers(config: &TriageConfig, history: &[TranscriptLine], text: &str) -> usize {
    let mut count = 0;
    let mut last_was_ai = false;
    for line in history {
        match line.role {
            Role::Ai => last_was_ai = true,
            Role::Customer => {
                if last_was_ai && is_rejection(config, &line.text) {
                    count += 1;
                }
                last_was_ai = false;
            }
            // An agent or a system notice breaks the AI's streak.
            _ => last_was_ai = false,
        }
    }
    if last_was_ai && is_rejection(config, text) {
        count += 1;
    }
    count
}

/// Highest similarity (cosine over topic terms) between the message and an earlier
/// customer message. Messages with fewer than two topic terms never count as repeats:
/// "yes" twice is not a repeated question.
pub fn repetition(history: &[TranscriptLine], text: &str) -> f32 {
    let current = bag(text);
    if current.len() < 2 {
        return 0.0;
    }
    history
        .iter()
        .filter(|l| l.role == Role::Customer)
        .map(|l| cosine(&current, &bag(&l.text)))
        .fold(0.0, f32::max)
}

fn bag(text: &str) -> HashMap<String, f32> {
    let mut map = HashMap::new();
    for t in content_terms(text) {
        *map.entry(t).or_insert(0.0) += 1.0;
    }
    map
}

fn cosine(a: &HashMap<String, f32>, b: &HashMap<String, f32>) -> f32 {
    let dot: f32 = a.iter().filter_map(|(k, v)| b.get(k).map(|w| v * w)).sum();
    let norm = |m: &HashMap<String, f32>| m.values().map(|v| v * v).sum::<f32>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 {
        0.0
    } else {
        dot / denominator
    }
}

/// Known prompt-injection markers: instructions aimed at the assistant rather than a
/// question. The answerer cannot be steered (it only returns knowledge-base text), but such
/// a message should not be answered as if it were an ordinary question either.
const INJECTION_MARKERS: &[&str] = &[
    "ignore your instructions",
    "ignore all instructions",
    "ignore previous instructions",
    "ignore the previous instructions",
    "ignore all previous",
    "ignore your previous",
    "disregard your instructions",
    "disregard previous",
    "disregard all",
    "forget your instructions",
    "system prompt",
    "you are now",
    "act as",
    "pretend you are",
    "pretend to be",
    "developer mode",
    "jailbreak",
    "new instructions",
    "override your",
    "your rules",
];

/// The injection marker the message contains, if any.
pub fn injection(tokens: &[String]) -> Option<&'static str> {
    INJECTION_MARKERS
        .iter()
        .copied()
        .find(|m| matches_pattern(tokens, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(role: &str, text: &str) -> TranscriptLine {
        TranscriptLine {
            role: Role::parse(role),
            text: text.into(),
        }
    }

    #[test]
    fn negated_human_request_is_not_a_request() {
        let config = TriageConfig::default();
        let ask = |t: &str| human_request(&config, InboundKind::Text, &words(t));
        assert!(ask("can I talk to a real person").is_some());
        assert!(ask("I don't need a human, just tell me the price").is_none());
        assert!(ask("I don't want the bot, I want a human").is_some());
        assert!(ask("i do not know how to chat with somenoe").is_some());
        assert!(ask("need to speak with an assistant").is_some());
        assert!(ask("how do I contact your sales team").is_none());
        assert!(
            one_edit("someone", "somone")
                && one_edit("someone", "somenoe")
                && !one_edit("someone", "sumwon")
        );
    }

    #[test]
    fn rejections_are_short_replies_to_the_ai() {
        let config = TriageConfig::default();
        assert!(is_rejection(&config, "No."));
        assert!(is_rejection(&config, "that didn't help at all"));
        assert!(!is_rejection(
            &config,
            "no problem, and how do I export my data to a csv file please"
        ));
        let history = [
            line("customer", "q"),
            line("ai", "a"),
            line("customer", "nope"),
            line("ai", "b"),
        ];
        assert_eq!(rejected_answers(&config, &history, "still doesn't work"), 2);
        assert_eq!(rejected_answers(&config, &history, "thanks!"), 1);
    }

    #[test]
    fn repetition_ignores_stopwords_and_tiny_messages() {
        let history = [line("customer", "How do I reset my password?")];
        assert!(repetition(&history, "how do i reset the password") > 0.8);
        assert_eq!(repetition(&[line("customer", "yes")], "yes"), 0.0);
    }
}
