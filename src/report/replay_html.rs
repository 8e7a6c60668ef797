//! `switchboard replay --html`: the replay as one self-contained page, in the support report's
//! style (inline CSS and SVG, no scripts, nothing fetched). Every text from Redis (customers'
//! messages, explanations, ids) is escaped.

use std::fmt::Write;

use super::html::{bar_chart, escape, panel, STYLE};
use super::ratio;
use super::replay::{Change, ChangeKind, Replay, EXAMPLES_WITH_CONTEXT};
use super::text::{duration, format_utc, percent};

/// Bar colours per kind of change.
fn colour(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::AnswerToEscalate => "#e8833a",
        ChangeKind::EscalateToAnswer => "#2f9e68",
        ChangeKind::ReasonChanged => "#6b5bd2",
    }
}

/// The whole page.
pub fn render(replay: &Replay) -> String {
    let mut page = String::with_capacity(32_768);
    let window = format!(
        "{} – {} UTC",
        format_utc(replay.since_ms),
        format_utc(replay.until_ms)
    );
    let span = format!(
        "{} window",
        duration(replay.until_ms.saturating_sub(replay.since_ms))
    );
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Policy replay {}</title><style>{STYLE}{EXTRA_STYLE}</style></head><body><main>\
         <header><p class=\"eyebrow\">Switchboard · policy replay</p>\
         <h1>What the candidate config would change</h1>\
         <p class=\"window\">{}<span>{}</span></p></header>",
        escape(&window),
        escape(&window),
        escape(&span)
    );
    page.push_str(&kpi_cards(replay));
    page.push_str("<div class=\"grid\">");
    for kind in ChangeKind::ALL {
        let mut body = String::new();
        for (label, counts) in replay.breakdown(kind) {
            if counts.is_empty() {
                continue;
            }
            let _ = write!(body, "<h3>By {}</h3>", escape(label));
            let items: Vec<(String, u64)> = counts
                .into_iter()
                .map(|(value, n)| (value.replace('_', " "), n))
                .collect();
            body.push_str(&bar_chart(&items, colour(kind), ""));
        }
        if body.is_empty() {
            body = "<p class=\"empty\">No such change</p>".into();
        }
        panel(
            &mut page,
            kind.label(),
            &format!("{} message(s)", replay.count(kind)),
            &body,
        );
    }
    page.push_str("</div>");
    for kind in ChangeKind::ALL {
        page.push_str(&examples(replay, kind));
    }
    let _ = writeln!(
        page,
        "<footer>Computed from Redis by <code>switchboard replay</code>, which sends and writes \
         nothing. {} customer message(s) in the window were not triaged at the time (relayed \
         to an agent, ratings) and are not replayed. Examples keep the lines before the \
         message for the first {EXAMPLES_WITH_CONTEXT} changes of each kind; links open the \
         conversation's thread on the web desk.</footer></main></body></html>",
        replay.not_triaged
    );
    page
}

fn kpi_cards(replay: &Replay) -> String {
    let escalations = |answers: u64| replay.replayed.saturating_sub(answers);
    let rate = |n: u64| percent(ratio(n, replay.replayed));
    let cards = [
        (
            "",
            "Messages replayed",
            replay.replayed.to_string(),
            format!("{} not triaged then", replay.not_triaged),
        ),
        (
            "good",
            "AI answers",
            format!(
                "{} → {}",
                rate(replay.recorded_answers),
                rate(replay.replayed_answers)
            ),
            format!(
                "{} then, {} with the candidate",
                replay.recorded_answers, replay.replayed_answers
            ),
        ),
        (
            "warn",
            "Escalations",
            format!(
                "{} → {}",
                rate(escalations(replay.recorded_answers)),
                rate(escalations(replay.replayed_answers))
            ),
            format!(
                "{} then, {} with the candidate",
                escalations(replay.recorded_answers),
                escalations(replay.replayed_answers)
            ),
        ),
        (
            "",
            "Answer → escalate",
            replay.count(ChangeKind::AnswerToEscalate).to_string(),
            "would go to a person".to_owned(),
        ),
        (
            "",
            "Escalate → answer",
            replay.count(ChangeKind::EscalateToAnswer).to_string(),
            "the AI would answer".to_owned(),
        ),
        (
            "",
            "Reason changed",
            replay.count(ChangeKind::ReasonChanged).to_string(),
            "escalated for another reason".to_owned(),
        ),
    ];
    let mut out = String::from("<section class=\"kpis\">");
    for (class, label, value, note) in cards {
        let _ = write!(
            out,
            "<div class=\"kpi {class}\"><div class=\"label\">{}</div><div class=\"value\">{}</div>\
             <div class=\"note\">{}</div></div>",
            escape(label),
            escape(&value),
            escape(&note)
        );
    }
    out.push_str("</section>");
    out
}

/// The first changes of `kind`, each with its conversation and the lines before it.
fn examples(replay: &Replay, kind: ChangeKind) -> String {
    let changes: Vec<&Change> = replay
        .changes
        .iter()
        .filter(|c| c.kind == kind)
        .take(EXAMPLES_WITH_CONTEXT)
        .collect();
    if changes.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "<section class=\"panel examples-panel\" id=\"{}\"><h2>{}: examples</h2>\
         <p class=\"sub\">The first {} of {}</p>",
        kind.key(),
        escape(kind.label()),
        changes.len(),
        replay.count(kind)
    );
    for (n, change) in changes.iter().enumerate() {
        let conversation = escape(&change.conversation_id);
        let conversation = match &change.link {
            Some(link) => format!(
                "<a href=\"{}\" rel=\"noopener noreferrer\">{conversation}</a>",
                escape(link)
            ),
            None => conversation,
        };
        let _ = write!(
            out,
            "<article class=\"change\" id=\"{}-{n}\"><p class=\"where\">Conversation \
             <code>{conversation}</code> · {} · message <code>{}</code>{}</p>",
            kind.key(),
            escape(&change.channel),
            escape(&change.message_id),
            change
                .category
                .as_deref()
                .map(|c| format!(" · <span class=\"tag\">{}</span>", escape(c)))
                .unwrap_or_default()
        );
        if !change.context.is_empty() {
            out.push_str("<ol class=\"context\">");
            for line in &change.context {
                let _ = write!(
                    out,
                    "<li><b>{}</b> {}</li>",
                    escape(&line.role),
                    escape(&line.text)
                );
            }
            out.push_str("</ol>");
        }
        let _ = write!(
            out,
            "<blockquote>{}</blockquote><p class=\"verdict\">Was <b>{}</b>, would be <b>{}</b>: \
             {}</p></article>",
            escape(&change.text),
            escape(&change.recorded.to_string()),
            escape(&change.replayed.to_string()),
            escape(&change.explanation)
        );
    }
    out.push_str("</section>");
    out
}

const EXTRA_STYLE: &str = r#"
h3{margin:10px 0 4px;font-size:13px;color:var(--muted);font-weight:600}
.examples-panel{margin-bottom:18px}
.change{border-top:1px solid var(--line);padding:10px 0}
.change .where{margin:0;color:var(--muted);font-size:13px}
.change blockquote{margin:6px 0;padding:6px 12px;border-left:3px solid var(--accent);background:var(--bg);white-space:pre-wrap}
.change .verdict{margin:0;font-size:14px}
.context{margin:6px 0 0;padding-left:18px;color:var(--muted);font-size:13px;white-space:pre-wrap}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::replay::{ContextLine, Outcome};

    #[test]
    fn everything_from_redis_is_escaped() {
        let mut replay = Replay::default();
        replay.since_ms = 1_767_225_600_000;
        replay.until_ms = 1_767_830_400_000;
        replay.replayed = 2;
        replay.recorded_answers = 1;
        replay.changes.push(Change {
            kind: ChangeKind::AnswerToEscalate,
            conversation_id: "webchat:<i>x</i>".into(),
            channel: "webchat".into(),
            message_id: "1-0".into(),
            text: "<script>alert(1)</script> & \"quotes\"".into(),
            recorded: Outcome::Answer,
            replayed: Outcome::Escalate {
                reason: "low_confidence".into(),
            },
            explanation: "confidence 0.40 < 0.60".into(),
            category: Some("<b>billing</b>".into()),
            link: Some("https://desk.example/desk#thread=a\"onmouseover=\"x".into()),
            context: vec![ContextLine {
                role: "ai".into(),
                text: "<img src=x onerror=alert(2)>".into(),
            }],
        });
        let page = render(&replay);
        for raw in ["<script", "<img", "<i>x", "<b>billing", "a\"onmouseover"] {
            assert!(!page.contains(raw), "{raw} unescaped in {page}");
        }
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"));
        assert!(
            page.contains("href=\"https://desk.example/desk#thread=a&quot;onmouseover=&quot;x\"")
        );
        assert!(page.contains("50.0% → 0.0%"), "AI answer rates: {page}");
    }
}
