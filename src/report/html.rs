//! The report as one self-contained HTML page: inline CSS and SVG, no scripts, no external
//! assets, so it can be mailed, archived or opened offline, and prints on A4.

use std::fmt::Write;

use super::text::{duration, format_utc, one_line, percent};
use super::{Latency, Report};

/// Colours of the CSAT bars, 1 (bad) to 5 (good).
const CSAT_COLOURS: [&str; 5] = ["#d64545", "#e8833a", "#e3b341", "#7cb45a", "#2f9e68"];

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut page = String::with_capacity(16_384);
    let window = report
        .window
        .map(|w| {
            format!(
                "{} – {} UTC",
                format_utc(w.since_ms),
                format_utc(w.until_ms)
            )
        })
        .unwrap_or_default();
    let span = report
        .window
        .map(|w| format!("{} window", duration(w.until_ms - w.since_ms)))
        .unwrap_or_default();
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Support report {}</title><style>{STYLE}</style></head><body><main>\
         <header><p class=\"eyebrow\">Switchboard · support report</p>\
         <h1>Support report</h1><p class=\"window\">{}<span>{}</span></p></header>",
        escape(&window),
        escape(&window),
        escape(&span)
    );
    page.push_str(&kpi_cards(report));
    page.push_str("<div class=\"grid\">");
    let reasons: Vec<(String, u64)> = report
        .top_escalation_reasons()
        .into_iter()
        .map(|(reason, n)| (reason.replace('_', " "), n))
        .collect();
    panel(
        &mut page,
        "Escalations by reason",
        &format!("{} escalations in the window", report.total_escalations()),
        &bar_chart(&reasons, "#6b5bd2", "No escalations"),
    );
    panel(
        &mut page,
        "Conversations by channel",
        &format!(
            "{} conversations, {} customer messages, {} AI answers",
            report.total_conversations(),
            report.total_customer_messages(),
            report.total_ai_answers()
        ),
        &channel_chart(report),
    );
    let csat_note = if report.csat.total() == 0 {
        "No ratings in the window".to_owned()
    } else {
        format!(
            "Average {:.2} / 5 from {}",
            report.csat.average(),
            plural(report.csat.total(), "rating")
        )
    };
    panel(
        &mut page,
        "Customer satisfaction",
        &csat_note,
        &csat_chart(report),
    );
    panel(
        &mut page,
        "Response times",
        "From the customer's first message, and from escalation to an agent's first reply",
        &times_table(report),
    );
    page.push_str("</div>");
    page.push_str(&gaps_table(report));
    page.push_str(&footer(report));
    page.push_str("</main></body></html>\n");
    page
}

fn kpi_cards(report: &Report) -> String {
    let csat = if report.csat.total() == 0 {
        ("–".to_owned(), "no ratings".to_owned())
    } else {
        (
            format!("{:.1} / 5", report.csat.average()),
            plural(report.csat.total(), "rating"),
        )
    };
    let cards = [
        (
            "",
            "Conversations".to_owned(),
            report.total_conversations().to_string(),
            format!("{} customer messages", report.total_customer_messages()),
        ),
        (
            "good",
            "AI resolution".to_owned(),
            percent(report.ai_resolution_rate()),
            format!("{} never escalated", report.ai_resolved_conversations()),
        ),
        (
            "warn",
            "Escalated".to_owned(),
            percent(report.escalation_rate()),
            format!("{} escalations", report.total_escalations()),
        ),
        (
            "",
            "First response".to_owned(),
            latency_headline(&report.first_response),
            "median".to_owned(),
        ),
        (
            "",
            "Time to human".to_owned(),
            latency_headline(&report.time_to_human),
            format!("median · {} waiting", report.awaiting_human),
        ),
        ("", "CSAT".to_owned(), csat.0, csat.1),
        (
            "good",
            "First-contact resolution".to_owned(),
            percent(report.cases.fcr_rate()),
            format!("of {}", plural(report.cases.closed, "closed case")),
        ),
        (
            "good",
            "AI-resolved cases".to_owned(),
            percent(report.cases.ai_resolved_rate()),
            format!("{} with no person", report.cases.ai_resolved),
        ),
        (
            "warn",
            "Repeat contact".to_owned(),
            percent(report.cases.repeat_contact_rate()),
            format!(
                "{} of {} opened · {:.2} escalations/case",
                report.cases.repeat_contacts,
                report.cases.opened,
                report.cases.escalations_per_case()
            ),
        ),
        (
            "",
            "Case resolution".to_owned(),
            latency_headline(&report.cases.time_to_resolution),
            "median, opened to resolved".to_owned(),
        ),
    ];
    let mut out = String::from("<section class=\"kpis\">");
    for (class, label, value, note) in cards {
        let _ = write!(
            out,
            "<div class=\"kpi {class}\"><div class=\"label\">{}</div><div class=\"value\">{}</div>\
             <div class=\"note\">{}</div></div>",
            escape(&label),
            escape(&value),
            escape(&note)
        );
    }
    out.push_str("</section>");
    out
}

fn latency_headline(latency: &Latency) -> String {
    if latency.count() == 0 {
        "–".into()
    } else {
        duration(latency.p50_ms())
    }
}

pub(super) fn panel(page: &mut String, title: &str, subtitle: &str, body: &str) {
    let _ = write!(
        page,
        "<section class=\"panel\"><h2>{}</h2><p class=\"sub\">{}</p>{body}</section>",
        escape(title),
        escape(subtitle)
    );
}

/// Horizontal bars, one row per item, scaled to the largest.
pub(super) fn bar_chart(items: &[(String, u64)], colour: &str, empty: &str) -> String {
    if items.is_empty() {
        return format!("<p class=\"empty\">{}</p>", escape(empty));
    }
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let (row, label_w, bar_w) = (34u64, 170u64, 300u64);
    let height = row * items.len() as u64 + 6;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 540 {height}\" role=\"img\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, (label, n)) in items.iter().enumerate() {
        let y = row * i as u64 + 4;
        let width = (bar_w * n / max).max(2);
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" class=\"lbl\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{bar_w}\" height=\"24\" rx=\"4\" fill=\"#eef0f4\"/>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{width}\" height=\"24\" rx=\"4\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{}\" class=\"num\">{n}</text>",
            label_w - 10,
            y + 17,
            escape(&one_line(label, 24)),
            label_w + bar_w + 10,
            y + 17,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Per channel, three bars: conversations started, customer messages, AI answers.
fn channel_chart(report: &Report) -> String {
    let mut channels: Vec<&String> = report
        .conversations
        .keys()
        .chain(report.customer_messages.keys())
        .chain(report.ai_answers.keys())
        .collect();
    channels.sort();
    channels.dedup();
    if channels.is_empty() {
        return "<p class=\"empty\">No conversations</p>".into();
    }
    let series = [
        ("conversations", &report.conversations, "#2d7dd2"),
        ("customer messages", &report.customer_messages, "#9cc3ec"),
        ("AI answers", &report.ai_answers, "#6b5bd2"),
    ];
    let count = |counts: &std::collections::BTreeMap<String, u64>, channel: &String| {
        counts.get(channel).copied().unwrap_or(0)
    };
    let max = channels
        .iter()
        .flat_map(|channel| series.iter().map(|(_, counts, _)| count(counts, channel)))
        .max()
        .unwrap_or(0)
        .max(1);
    let (group, label_w, bar_w) = (64u64, 170u64, 300u64);
    let height = 30 + group * channels.len() as u64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 540 {height}\" role=\"img\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, (name, _, colour)) in series.iter().enumerate() {
        let x = label_w + [0u64, 120, 265][i];
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"4\" width=\"10\" height=\"10\" rx=\"2\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"13\" class=\"legend\">{name}</text>",
            x + 15
        );
    }
    for (row, channel) in channels.iter().enumerate() {
        let y = 30 + group * row as u64;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" class=\"lbl\" text-anchor=\"end\">{}</text>",
            label_w - 10,
            y + 27,
            escape(&one_line(channel, 24))
        );
        for (i, (_, counts, colour)) in series.iter().enumerate() {
            let n = count(counts, channel);
            let bar_y = y + i as u64 * 18;
            let width = (bar_w * n / max).max(2);
            let _ = write!(
                svg,
                "<rect x=\"{label_w}\" y=\"{bar_y}\" width=\"{width}\" height=\"14\" rx=\"3\" \
                 fill=\"{colour}\"/><text x=\"{}\" y=\"{}\" class=\"num\">{n}</text>",
                label_w + width + 8,
                bar_y + 12
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Five columns, 1 to 5 stars, coloured from red to green.
fn csat_chart(report: &Report) -> String {
    let max = report.csat.counts.iter().copied().max().unwrap_or(0).max(1);
    let (base, top) = (150u64, 20u64);
    let mut svg = String::from(
        "<svg class=\"chart\" viewBox=\"0 0 540 185\" role=\"img\" \
         xmlns=\"http://www.w3.org/2000/svg\">",
    );
    let _ = write!(
        svg,
        "<line x1=\"40\" y1=\"{base}\" x2=\"500\" y2=\"{base}\" stroke=\"#c9ced8\"/>"
    );
    for (i, count) in report.csat.counts.iter().enumerate() {
        let x = 60 + i as u64 * 90;
        let h = (base - top) * count / max;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"60\" height=\"{h}\" rx=\"4\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" class=\"num\" text-anchor=\"middle\">{count}</text>\
             <text x=\"{}\" y=\"{}\" class=\"lbl\" text-anchor=\"middle\">{} ★</text>",
            base - h,
            CSAT_COLOURS[i],
            x + 30,
            base - h - 6,
            x + 30,
            base + 22,
            i + 1,
        );
    }
    svg.push_str("</svg>");
    svg
}

fn times_table(report: &Report) -> String {
    let row = |name: &str, latency: &Latency| {
        if latency.count() == 0 {
            return format!(
                "<tr><th>{name}</th><td colspan=\"4\" class=\"muted\">no samples</td></tr>"
            );
        }
        format!(
            "<tr><th>{name}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            duration(latency.p50_ms()),
            duration(latency.p90_ms()),
            duration(latency.max_ms()),
            latency.count()
        )
    };
    let kb = &report.kb_candidates;
    format!(
        "<table class=\"times\"><thead><tr><th></th><th>p50</th><th>p90</th><th>max</th>\
         <th>n</th></tr></thead><tbody>{}{}</tbody></table>\
         <dl class=\"facts\"><div><dt>Waiting for an agent</dt><dd>{}</dd></div>\
         <div><dt>Agent replies</dt><dd>{}</dd></div>\
         <div><dt>Resolutions</dt><dd>{}</dd></div>\
         <div><dt>KB candidates pending</dt><dd>{}</dd></div>\
         <div><dt>KB approved / rejected</dt><dd>{} / {}</dd></div></dl>",
        row("First response", &report.first_response),
        row("Time to human", &report.time_to_human),
        report.awaiting_human,
        report.agent_replies,
        report.resolutions,
        kb.pending,
        kb.approved,
        kb.rejected,
    )
}

fn gaps_table(report: &Report) -> String {
    let mut out = String::from(
        "<section class=\"panel wide\"><h2>Knowledge gaps</h2><p class=\"sub\">The most \
         frequent escalated questions, grouped by topic (requests for a person are left out: \
         they name no topic)</p>",
    );
    if report.knowledge_gaps.is_empty() {
        out.push_str("<p class=\"empty\">No escalated questions in the window</p></section>");
        return out;
    }
    out.push_str(
        "<table class=\"gaps\"><thead><tr><th>#</th><th>Asked</th><th>Question</th>\
         <th>Reason</th></tr></thead><tbody>",
    );
    for (rank, cluster) in report.knowledge_gaps.iter().take(15).enumerate() {
        let examples: String = cluster
            .examples
            .iter()
            .map(|example| format!("<li>{}</li>", escape(&one_line(example, 120))))
            .collect();
        let _ = write!(
            out,
            "<tr><td class=\"rank\">{}</td><td class=\"count\">{}</td><td><div class=\"q\">{}</div>{}</td>\
             <td><span class=\"tag\">{}</span></td></tr>",
            rank + 1,
            cluster.size,
            escape(&one_line(&cluster.representative, 140)),
            if examples.is_empty() {
                String::new()
            } else {
                format!("<ul class=\"examples\">{examples}</ul>")
            },
            escape(&cluster.top_reason().replace('_', " ")),
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

fn footer(report: &Report) -> String {
    let skipped = if report.total_skipped() == 0 {
        String::new()
    } else {
        let kinds: Vec<String> = report
            .skipped
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        format!(
            " Skipped {} unreadable records ({}).",
            report.total_skipped(),
            escape(&kinds.join(", "))
        )
    };
    format!(
        "<footer>Computed from Redis by <code>switchboard report</code>. AI resolution: \
         conversations started in the window that never escalated.{skipped}</footer>"
    )
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

pub(super) const STYLE: &str = r#"
:root{--ink:#1d2433;--muted:#667085;--line:#e4e7ec;--bg:#f6f7fb;--card:#fff;--accent:#6b5bd2}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:32px 28px 40px}
header{border-bottom:3px solid var(--accent);margin-bottom:24px;padding-bottom:14px}
.window{margin:6px 0 0;font-size:17px;color:#344054}
.window span{margin-left:12px;color:var(--muted);font-size:14px}
.chart .legend{font-size:12px;fill:var(--muted)}
.kpi.good{border-top:4px solid #2f9e68}
.kpi.warn{border-top:4px solid #e8833a}
.eyebrow{margin:0;color:var(--accent);font-weight:600;letter-spacing:.06em;text-transform:uppercase;font-size:12px}
h1{margin:4px 0 0;font-size:28px;font-weight:700}
h2{margin:0;font-size:17px}
.sub{margin:2px 0 14px;color:var(--muted);font-size:13px}
.kpis{display:grid;grid-template-columns:repeat(6,1fr);gap:14px;margin-bottom:18px}
.kpi{background:var(--card);border:1px solid var(--line);border-top:4px solid var(--line);border-radius:10px;padding:14px 16px}
.kpi .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.kpi .value{font-size:30px;font-weight:700;margin:4px 0 2px;font-variant-numeric:tabular-nums}
.kpi .note{color:var(--muted);font-size:12px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:18px;margin-bottom:18px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;break-inside:avoid}
.chart{width:100%;height:auto;display:block}
.chart .lbl{font-size:13px;fill:#344054}
.chart .num{font-size:13px;font-weight:600;fill:var(--ink)}
.empty{color:var(--muted);font-style:italic;margin:24px 0}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}
thead th{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em;font-weight:600}
.times td{font-weight:600}
.muted{color:var(--muted);font-weight:400!important}
.facts{display:grid;grid-template-columns:repeat(3,1fr);gap:10px;margin:16px 0 0}
.facts div{background:var(--bg);border-radius:8px;padding:8px 10px}
.facts dt{color:var(--muted);font-size:12px}
.facts dd{margin:2px 0 0;font-size:18px;font-weight:700}
.gaps .rank{color:var(--muted);width:32px}
.gaps .count{font-weight:700;width:70px;font-size:17px}
.gaps .q{font-weight:600}
.examples{margin:4px 0 0;padding-left:18px;color:var(--muted);font-size:13px}
.tag{display:inline-block;background:#efecfb;color:#4b3cae;border-radius:999px;padding:2px 10px;font-size:12px;white-space:nowrap}
footer{margin-top:20px;color:var(--muted);font-size:12px}
@media (max-width:900px){.kpis{grid-template-columns:repeat(3,1fr)}.grid{grid-template-columns:1fr}}
@page{size:A4;margin:14mm}
@media print{body{background:#fff;font-size:12px}main{padding:0;max-width:none}.kpis{grid-template-columns:repeat(3,1fr)}.kpi,.panel{border-color:#ccc;break-inside:avoid}}
"#;
