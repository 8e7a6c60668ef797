//! The report as plain text, for the terminal and for pasting into a chat.

use std::collections::BTreeMap;
use std::fmt;

use super::{Latency, Report};

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.window {
            Some(window) => writeln!(
                f,
                "Support report {} .. {} (UTC)",
                format_utc(window.since_ms),
                format_utc(window.until_ms)
            )?,
            None => writeln!(f, "Support report")?,
        }
        writeln!(f)?;
        writeln!(f, "Conversations        {}", self.total_conversations())?;
        by_key(f, &self.conversations)?;
        writeln!(
            f,
            "AI resolution rate   {} ({} of {} never escalated)",
            percent(self.ai_resolution_rate()),
            self.ai_resolved_conversations(),
            self.total_conversations()
        )?;
        writeln!(
            f,
            "Escalation rate      {} ({} conversations)",
            percent(self.escalation_rate()),
            self.escalated_conversations
        )?;
        writeln!(f, "Customer messages    {}", self.total_customer_messages())?;
        by_key(f, &self.customer_messages)?;
        writeln!(f, "AI answers           {}", self.total_ai_answers())?;
        writeln!(f, "Agent replies        {}", self.agent_replies)?;
        writeln!(f, "Resolutions          {}", self.resolutions)?;
        writeln!(f, "First response       {}", latency(&self.first_response))?;
        writeln!(f, "Time to human        {}", latency(&self.time_to_human))?;
        if self.awaiting_human > 0 {
            writeln!(f, "  still waiting      {}", self.awaiting_human)?;
        }
        writeln!(f)?;
        let cases = &self.cases;
        writeln!(
            f,
            "Cases                {} opened, {} closed, {} reopened",
            cases.opened, cases.closed, cases.reopens
        )?;
        writeln!(
            f,
            "  AI-resolved        {} ({} of {} closed with no person)",
            percent(cases.ai_resolved_rate()),
            cases.ai_resolved,
            cases.closed
        )?;
        writeln!(
            f,
            "  first contact      {} ({} resolved, never reopened, no repeat contact)",
            percent(cases.fcr_rate()),
            cases.first_contact_resolved
        )?;
        writeln!(
            f,
            "  repeat contact     {} ({} of {} opened; {} on another channel)",
            percent(cases.repeat_contact_rate()),
            cases.repeat_contacts,
            cases.opened,
            cases.cross_channel_repeats
        )?;
        writeln!(
            f,
            "  escalations/case   {:.2}",
            cases.escalations_per_case()
        )?;
        by_key(f, &cases.closed_as)?;
        writeln!(
            f,
            "  first response     {}",
            latency(&cases.time_to_first_response)
        )?;
        writeln!(f, "  to human           {}", latency(&cases.time_to_human))?;
        writeln!(
            f,
            "  to resolution      {}",
            latency(&cases.time_to_resolution)
        )?;
        writeln!(f)?;
        writeln!(f, "Escalations          {}", self.total_escalations())?;
        for (reason, count) in self.top_escalation_reasons() {
            writeln!(f, "  {reason:<24} {count:>6}")?;
        }
        writeln!(f)?;
        if self.csat.total() == 0 {
            writeln!(f, "CSAT                 no ratings")?;
        } else {
            writeln!(
                f,
                "CSAT                 {:.2} / 5 from {} ratings",
                self.csat.average(),
                self.csat.total()
            )?;
            for (score, count) in (1..=5usize)
                .zip(self.csat.counts)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                writeln!(f, "  {score} {:<20} {count:>6}", "*".repeat(score))?;
            }
        }
        let kb = &self.kb_candidates;
        writeln!(
            f,
            "KB candidates        {} pending review; in the window {} proposed, {} approved, {} rejected",
            kb.pending, kb.proposed, kb.approved, kb.rejected
        )?;
        writeln!(f)?;
        writeln!(f, "Most frequent escalated questions (knowledge gaps)")?;
        if self.knowledge_gaps.is_empty() {
            writeln!(f, "  none")?;
        }
        for (rank, cluster) in self.knowledge_gaps.iter().take(10).enumerate() {
            writeln!(
                f,
                "  {:>2}. {:>4}x  {}  [{}]",
                rank + 1,
                cluster.size,
                one_line(&cluster.representative, 70),
                cluster.top_reason()
            )?;
            for example in &cluster.examples {
                writeln!(f, "              also: {}", one_line(example, 66))?;
            }
        }
        if self.total_skipped() > 0 {
            writeln!(f)?;
            writeln!(f, "Skipped unreadable records: {}", self.total_skipped())?;
            by_key(f, &self.skipped)?;
        }
        Ok(())
    }
}

fn by_key(f: &mut fmt::Formatter<'_>, counts: &BTreeMap<String, u64>) -> fmt::Result {
    for (key, count) in counts {
        writeln!(f, "  {key:<18} {count:>6}")?;
    }
    Ok(())
}

/// A share as a percentage with one decimal.
pub(crate) fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn latency(latency: &Latency) -> String {
    if latency.count() == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {}  p90 {}  max {}  (n={})",
        duration(latency.p50_ms()),
        duration(latency.p90_ms()),
        duration(latency.max_ms()),
        latency.count()
    )
}

/// A duration the way a person says it: 850ms, 12.3s, 4m 05s, 2h 10m, 7d, 8d 6h.
pub(crate) fn duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000),
        3_600_000..=172_799_999 => format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
        _ => match ms % 86_400_000 / 3_600_000 {
            0 => format!("{}d", ms / 86_400_000),
            hours => format!("{}d {hours}h", ms / 86_400_000),
        },
    }
}

/// Text on one line, cut to `max` characters.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// `YYYY-MM-DD HH:MM` in UTC, without a date library (civil-from-days, Howard Hinnant).
pub(crate) fn format_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let (hour, minute) = (secs % 86_400 / 3600, secs % 3600 / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}")
}
