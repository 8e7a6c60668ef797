//! A neutral [`Briefing`] -> Slack Block Kit JSON (pure): what an agent sees at the top of a
//! conversation's thread.
//!
//! Layout: a header (customer · channel · tier); fields (identity, email, page, reason,
//! AI confidence, status / claimed by, site attributes); the summary; the transcript; the
//! suggested reply as a quote; a context line with the thread commands.
//!
//! Long transcripts: a section holds at most 3000 characters, so when the transcript has more
//! than [`FOLD_LINES`] lines or [`FOLD_CHARS`] characters the briefing shows the latest lines
//! and says how many are folded; the full transcript is then posted as the thread's first
//! reply(ies) (see [`full_transcript`]), one click away under the briefing. A context block
//! was the alternative, but it is capped at 10 elements and 3000 characters too.
//!
//! Every text from a customer, a site or the AI is escaped (`&`, `<`, `>`), so a customer
//! cannot write `<!channel>` and ping the whole support channel.

use serde_json::{json, Value};
use switchboard_api::{human_size, Briefing, BriefingLine};

/// A transcript with more lines than this is folded.
pub const FOLD_LINES: usize = 8;
/// A transcript with more characters than this is folded.
pub const FOLD_CHARS: usize = 2500;
/// One transcript line is cut at this many characters in the briefing.
const LINE_CHARS: usize = 500;
/// Slack's limit for a section's text.
const SECTION_CHARS: usize = 3000;
/// Slack's limit for one section field.
const FIELD_CHARS: usize = 2000;
/// Slack's limit for a header's text.
const HEADER_CHARS: usize = 150;
/// A section holds at most 10 fields.
const MAX_FIELDS: usize = 10;
/// The full transcript is posted in messages of at most this many characters.
const TRANSCRIPT_MESSAGE_CHARS: usize = 3500;

/// Escapes the three characters Slack treats as markup (`&`, `<`, `>`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            other => out.push(other),
        }
    }
    out
}

/// Cuts `text` to at most `max` characters, marking the cut with an ellipsis.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": mrkdwn(truncate(&text, SECTION_CHARS))})
}

fn context(text: String) -> Value {
    json!({"type": "context", "elements": [mrkdwn(truncate(&text, SECTION_CHARS))]})
}

fn field(label: &str, value: String) -> Value {
    mrkdwn(truncate(&format!("*{label}*\n{value}"), FIELD_CHARS))
}

/// `HH:MM` in UTC, the fallback when a Slack client cannot localise a date.
fn utc_clock(at_ms: u64) -> String {
    let day_secs = (at_ms / 1000) % 86_400;
    format!("{:02}:{:02} UTC", day_secs / 3600, (day_secs % 3600) / 60)
}

/// One transcript line; Slack shows the time in each agent's own time zone. Files follow the
/// text by name (a message of only files would otherwise be an empty line), as links when the
/// gateway gave absolute ones.
fn transcript_line(line: &BriefingLine, max_text: usize) -> String {
    let secs = line.at_ms / 1000;
    let mut text = escape(&truncate(&line.text, max_text));
    for file in &line.files {
        if !text.is_empty() {
            text.push(' ');
        }
        let name = escape(&file.name);
        let size = human_size(file.size);
        match file
            .url
            .as_deref()
            .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
        {
            // `|` and `>` would end Slack's link markup early; signed links contain neither.
            Some(url) if !url.contains(['|', '>', '<']) => {
                text.push_str(&format!(":paperclip: <{url}|{name}> ({size})"))
            }
            _ => text.push_str(&format!(":paperclip: {name} ({size})")),
        }
    }
    format!(
        "<!date^{secs}^{{time}}|{}> *{}* _{}_: {text}",
        utc_clock(line.at_ms),
        escape(&line.author),
        escape(&line.role),
    )
}

/// The lines a briefing shows, and how many earlier ones are folded away.
fn visible_transcript(briefing: &Briefing) -> (Vec<String>, usize, bool) {
    let full: Vec<String> = briefing
        .transcript
        .iter()
        .map(|line| transcript_line(line, usize::MAX))
        .collect();
    let full_chars: usize = full.iter().map(|line| line.chars().count() + 1).sum();
    if full.len() <= FOLD_LINES && full_chars <= FOLD_CHARS {
        return (full, 0, false);
    }
    let mut shown = Vec::new();
    let mut chars = 0;
    let mut cut_any = false;
    for line in briefing.transcript.iter().rev() {
        let rendered = transcript_line(line, LINE_CHARS);
        let length = rendered.chars().count() + 1;
        if shown.len() == FOLD_LINES || (chars + length > FOLD_CHARS && !shown.is_empty()) {
            break;
        }
        cut_any |= line.text.chars().count() > LINE_CHARS;
        chars += length;
        shown.push(rendered);
    }
    shown.reverse();
    let folded = briefing.transcript.len() - shown.len();
    (shown, folded, cut_any)
}

/// True when the briefing folds the transcript, so the full text goes into the thread.
pub fn is_folded(briefing: &Briefing) -> bool {
    let (_, folded, cut) = visible_transcript(briefing);
    folded > 0 || cut
}

fn page_value(briefing: &Briefing) -> String {
    let title = briefing.page_title.as_deref().map(escape);
    match briefing.page_url.as_deref() {
        // Only plain http(s) links become links; a `|` or `>` would break Slack's link syntax.
        Some(url)
            if (url.starts_with("https://") || url.starts_with("http://"))
                && !url.contains(['|', '<', '>', ' ']) =>
        {
            let label = title.unwrap_or_else(|| escape(url));
            format!("<{url}|{label}>")
        }
        Some(url) => match title {
            Some(title) => format!("{title} ({})", escape(url)),
            None => escape(url),
        },
        None => title.unwrap_or_else(|| "—".to_string()),
    }
}

/// Where the conversation stands, as the header shows it (updated in place).
pub fn state_label(briefing: &Briefing) -> String {
    match (briefing.status.as_str(), briefing.claimed_by.as_deref()) {
        ("resolved", _) => "✅ Resolved".to_owned(),
        ("bot", _) => "🤖 Back with the AI".to_owned(),
        (_, Some(agent)) => format!("🙋 Claimed by {agent}"),
        (_, None) => "⏳ Waiting".to_owned(),
    }
}

fn header_text(briefing: &Briefing) -> String {
    let tier = briefing.tier.as_deref().unwrap_or("no tier");
    truncate(
        &format!(
            "{} · {} · {} · {}",
            state_label(briefing),
            briefing.customer_name,
            briefing.channel,
            tier
        ),
        HEADER_CHARS,
    )
}

/// A link to a thread's parent message; slack.com redirects it into the workspace.
fn thread_link(thread: &switchboard_api::ThreadRef) -> String {
    format!(
        "https://slack.com/archives/{}/p{}",
        thread.channel,
        thread.ts.replace('.', "")
    )
}

/// The Block Kit blocks of a briefing; blocks; `revealable` when the redaction hid something in it.
pub fn briefing_blocks(briefing: &Briefing, revealable: bool) -> Vec<Value> {
    let identity = if briefing.verified {
        format!("`{}` ✅ verified", escape(&briefing.customer_id))
    } else {
        format!("`{}` ⚠️ not verified", escape(&briefing.customer_id))
    };
    let claimed = match briefing.claimed_by.as_deref() {
        Some(agent) => format!("claimed by *{}*", escape(agent)),
        None => "unclaimed".to_string(),
    };
    let confidence = (briefing.confidence.clamp(0.0, 1.0) * 100.0).round() as u32;
    let mut fields = vec![
        field("Identity", identity),
        field(
            "Email",
            briefing
                .email
                .as_deref()
                .map(escape)
                .unwrap_or_else(|| "—".to_string()),
        ),
        field("Page", page_value(briefing)),
        field(
            "Reason",
            format!(
                "`{}`: {}",
                escape(&briefing.reason),
                escape(&briefing.reason_detail)
            ),
        ),
        field("AI confidence", format!("{confidence}%")),
        field(
            "Status",
            format!("{} · {claimed}", escape(&briefing.status)),
        ),
    ];
    let mut extra_attributes = Vec::new();
    for (key, value) in &briefing.attributes {
        if fields.len() < MAX_FIELDS {
            fields.push(field(&escape(key), escape(value)));
        } else {
            extra_attributes.push(format!("*{}*: {}", escape(key), escape(value)));
        }
    }

    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header_text(briefing), "emoji": true}}),
        json!({"type": "section", "fields": fields}),
    ];
    if !extra_attributes.is_empty() {
        blocks.push(context(extra_attributes.join(" · ")));
    }
    if let Some(previous) = &briefing.previous_case {
        blocks.push(context(format!(
            "↩️ Previous case `{}`: <{}|its thread>",
            escape(&previous.case_id),
            thread_link(&previous.thread)
        )));
    }
    let source = briefing
        .summary_source
        .as_deref()
        .map(|source| format!(" _— {}_", escape(source)))
        .unwrap_or_default();
    blocks.push(section(format!(
        "*Summary*{source}\n{}",
        escape(&briefing.summary)
    )));
    if !briefing.citations.is_empty() {
        let cited: Vec<String> = briefing
            .citations
            .iter()
            .map(|c| format!("`{}` {}", escape(&c.id), escape(&c.title)))
            .collect();
        blocks.push(context(format!("Knowledge base: {}", cited.join(" · "))));
    }
    blocks.push(json!({"type": "divider"}));

    let (lines, folded, cut) = visible_transcript(briefing);
    if lines.is_empty() {
        blocks.push(section("*Transcript*\n_no messages yet_".to_string()));
    } else {
        let title = if folded > 0 {
            format!(
                "*Transcript* (last {} of {})",
                lines.len(),
                briefing.transcript.len()
            )
        } else {
            "*Transcript*".to_string()
        };
        blocks.push(section(format!("{title}\n{}", lines.join("\n"))));
    }
    if folded > 0 || cut {
        let what = if folded > 0 {
            format!("{folded} earlier message(s) folded")
        } else {
            "long messages shortened".to_string()
        };
        blocks.push(context(format!(
            ":arrow_down: {what}: the full transcript is the first reply in this thread"
        )));
    }
    if let Some(reply) = briefing.suggested_reply.as_deref() {
        let quoted: Vec<String> = reply
            .lines()
            .map(|line| format!(">{}", escape(line)))
            .collect();
        blocks.push(section(format!("*Suggested reply*\n{}", quoted.join("\n"))));
    }
    if let Some(actions) = super::actions::briefing_actions(briefing, revealable) {
        blocks.push(actions);
    }
    blocks.push(context(format!(
        "Reply in this thread to answer the customer · `// note` stays internal · \
         `!claim` · `!resolve` · `!ai` hands back to the AI · conversation `{}`",
        escape(&briefing.conversation_id)
    )));
    blocks
}

/// The notification / screen-reader text that goes with the blocks.
pub fn briefing_text(briefing: &Briefing) -> String {
    let tier = briefing.tier.as_deref().unwrap_or("no tier");
    let summary = briefing.summary.lines().next().unwrap_or_default();
    truncate(
        &escape(&format!(
            "{} ({}, {}) needs a person: {} ({}). {}",
            briefing.customer_name,
            briefing.channel,
            tier,
            briefing.reason,
            briefing.status,
            summary
        )),
        SECTION_CHARS,
    )
}

/// The full transcript as thread messages, when the briefing folds it; else nothing.
pub fn full_transcript(briefing: &Briefing) -> Vec<String> {
    if !is_folded(briefing) {
        return Vec::new();
    }
    let mut messages = Vec::new();
    let mut current = String::from("*Full transcript*");
    for line in &briefing.transcript {
        let rendered = transcript_line(line, TRANSCRIPT_MESSAGE_CHARS - 100);
        if current.chars().count() + rendered.chars().count() + 1 > TRANSCRIPT_MESSAGE_CHARS {
            messages.push(std::mem::take(&mut current));
            current = "*Full transcript (continued)*".to_string();
        }
        current.push('\n');
        current.push_str(&rendered);
    }
    messages.push(current);
    messages
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A briefing with every field set, shared with the desk's stand-in tests.
    pub(crate) fn sample_briefing(lines: usize) -> Briefing {
        Briefing {
            conversation_id: "conv-42".into(),
            customer_name: "Ada Lovelace".into(),
            customer_id: "user-1815".into(),
            verified: true,
            email: Some("ada@example.com".into()),
            channel: switchboard_api::ChannelKind::new("webchat"),
            tier: Some("vip".into()),
            page_url: Some("https://shop.example.com/billing".into()),
            page_title: Some("Billing settings".into()),
            attributes: vec![("plan".into(), "enterprise".into())],
            reason: "human_requested".into(),
            reason_detail: "Customer asked for a real person".into(),
            confidence: 0.42,
            summary: "Charged twice for the March invoice.\nWants a refund of one charge.".into(),
            summary_source: Some("written by the model".into()),
            citations: vec![switchboard_api::Citation {
                id: "billing-double-charge".into(),
                title: "Why was I charged twice?".into(),
            }],
            transcript: (0..lines)
                .map(|i| BriefingLine {
                    role: if i % 2 == 0 { "customer" } else { "ai" }.into(),
                    author: if i % 2 == 0 { "Ada Lovelace" } else { "AI" }.into(),
                    text: format!("message number {i} <!channel>"),
                    at_ms: 1_700_000_000_000 + i as u64 * 60_000,
                    files: Vec::new(),
                })
                .collect(),
            suggested_reply: Some("Sorry about that!\nI have refunded the duplicate.".into()),
            claimed_by: Some("Dana".into()),
            status: "human".into(),
            previous_case: Some(switchboard_api::PreviousCase {
                case_id: "conv-42:1".into(),
                thread: switchboard_api::ThreadRef {
                    channel: "C0SUPPORT".into(),
                    ts: "1700000000.000100".into(),
                },
            }),
        }
    }

    fn all_text(blocks: &[Value]) -> String {
        serde_json::to_string(blocks).expect("blocks serialise")
    }

    #[test]
    fn every_briefing_field_is_shown() {
        let briefing = sample_briefing(3);
        let text = all_text(&briefing_blocks(&briefing, false));
        for expected in [
            "Ada Lovelace · webchat · vip",
            "user-1815",
            "verified",
            "ada@example.com",
            "<https://shop.example.com/billing|Billing settings>",
            "human_requested",
            "Customer asked for a real person",
            "42%",
            "claimed by *Dana*",
            "human",
            "*plan*",
            "enterprise",
            "Charged twice for the March invoice.",
            "*Summary* _— written by the model_",
            "`billing-double-charge` Why was I charged twice?",
            "message number 2",
            ">Sorry about that!",
            ">I have refunded the duplicate.",
            "!claim",
            "!resolve",
            "!ai",
            "// note",
            "conv-42",
            "Previous case `conv-42:1`: <https://slack.com/archives/C0SUPPORT/p1700000000000100|its thread>",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in {text}");
        }
        assert!(!is_folded(&briefing));
        assert!(full_transcript(&briefing).is_empty());
    }

    #[test]
    fn customer_text_cannot_ping_the_channel() {
        let text = all_text(&briefing_blocks(&sample_briefing(1), false));
        assert!(!text.contains("<!channel>"));
        assert!(text.contains("&lt;!channel&gt;"));
    }

    #[test]
    fn a_file_only_message_shows_its_files_with_their_links() {
        let mut briefing = sample_briefing(2);
        let file = |name: &str, url: Option<&str>| switchboard_api::FileRef {
            id: name.into(),
            name: name.into(),
            content_type: "image/png".into(),
            size: 2048,
            url: url.map(str::to_owned),
            bytes: None,
        };
        briefing.transcript[0].text = String::new();
        briefing.transcript[0].files = vec![
            file(
                "error.png",
                Some("https://support.example.com/files/c/f1?exp=9&sig=ab"),
            ),
            // Without `files.public_base_url` links are relative: Slack cannot open them.
            file("log<1>.txt", Some("/files/c/f2?exp=9&sig=cd")),
        ];
        let text = all_text(&briefing_blocks(&briefing, false));
        assert!(
            text.contains(
                "_customer_: :paperclip: <https://support.example.com/files/c/f1?exp=9&sig=ab|error.png> (2 KB) :paperclip: log&lt;1&gt;.txt (2 KB)"
            ),
            "{text}"
        );
    }

    #[test]
    fn long_transcripts_fold_to_the_last_lines_and_go_to_the_thread_in_full() {
        let briefing = sample_briefing(30);
        let blocks = briefing_blocks(&briefing, false);
        let text = all_text(&blocks);
        assert!(text.contains("last 8 of 30"));
        assert!(text.contains("message number 29"));
        assert!(!text.contains("message number 21 "));
        assert!(text.contains("22 earlier message(s) folded"));
        let full = full_transcript(&briefing).join("\n");
        assert!(full.contains("message number 0 "));
        assert!(full.contains("message number 29"));
    }

    #[test]
    fn slack_limits_hold_for_huge_input() {
        let mut briefing = sample_briefing(200);
        briefing.summary = "s".repeat(10_000);
        briefing.reason_detail = "r".repeat(10_000);
        briefing.customer_name = "n".repeat(500);
        briefing.transcript[199].text = "x".repeat(20_000);
        briefing.attributes = (0..20).map(|i| (format!("k{i}"), "v".into())).collect();
        let blocks = briefing_blocks(&briefing, false);
        assert!(blocks.len() <= 50);
        for block in &blocks {
            if let Some(text) = block.pointer("/text/text").and_then(Value::as_str) {
                assert!(text.chars().count() <= SECTION_CHARS, "{}", &text[..40]);
            }
            if let Some(fields) = block.get("fields").and_then(Value::as_array) {
                assert!(fields.len() <= MAX_FIELDS);
            }
        }
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .map(str::len)
                .unwrap_or(0)
                <= HEADER_CHARS * 4
        );
        for message in full_transcript(&briefing) {
            assert!(message.chars().count() <= TRANSCRIPT_MESSAGE_CHARS);
        }
    }

    #[test]
    fn blocks_parse_as_slack_morphism_blocks() {
        let blocks = briefing_blocks(&sample_briefing(30), false);
        let parsed: Result<Vec<slack_morphism::prelude::SlackBlock>, _> =
            serde_json::from_value(Value::Array(blocks));
        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
