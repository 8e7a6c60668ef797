//! Loop and noise protection: mails the gateway must never answer.
//!
//! An auto-reply answered by our auto-reply is a mail loop; a bounce answered is a bounce
//! storm. Every check here reads headers only and is conservative in one direction: when in
//! doubt a mail is *stored*, except for the machine-generated signals RFC 3834 and RFC 3464
//! define, which real customers never send.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use mail_parser::{Message, MimeHeaders};

/// Why a mail was skipped (still marked processed, with a log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Auto-Submitted, X-Autoreply and friends (RFC 3834).
    AutoReply(String),
    /// Precedence bulk/junk/list or a mailing list (List-Id).
    Bulk(String),
    /// A delivery status notification or a mail from mailer-daemon/postmaster.
    Bounce(String),
    /// Sent from our own support address (our own reply coming back).
    OwnMail,
    /// The sender wrote more than `max_mails_per_sender_per_hour`.
    RateLimited,
    /// Not a mail we can read: no parsable headers or no sender address.
    Unreadable(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::AutoReply(why) => write!(f, "auto-reply ({why})"),
            SkipReason::Bulk(why) => write!(f, "bulk mail ({why})"),
            SkipReason::Bounce(why) => write!(f, "bounce ({why})"),
            SkipReason::OwnMail => f.write_str("sent from our own address"),
            SkipReason::RateLimited => f.write_str("sender over the hourly limit"),
            SkipReason::Unreadable(why) => write!(f, "unreadable ({why})"),
        }
    }
}

/// The first raw value of header `name` (case-insensitive), trimmed.
fn header<'a>(message: &'a Message<'_>, name: &str) -> Option<&'a str> {
    message
        .headers_raw()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

/// Checks the headers for machine-generated mail; `sender` is the lowercased From address.
pub fn classify(message: &Message<'_>, sender: &str, own_address: &str) -> Option<SkipReason> {
    let (local, domain) = sender.rsplit_once('@').unwrap_or((sender, ""));
    let (own_local, own_domain) = own_address.rsplit_once('@').unwrap_or((own_address, ""));
    // support+token@ is ours too.
    let own_base = local.split('+').next().unwrap_or(local);
    if domain.eq_ignore_ascii_case(own_domain) && own_base.eq_ignore_ascii_case(own_local) {
        return Some(SkipReason::OwnMail);
    }
    if ["mailer-daemon", "postmaster"].contains(&local) {
        return Some(SkipReason::Bounce(format!("sender {sender}")));
    }
    let is_report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    if is_report {
        return Some(SkipReason::Bounce("multipart/report".into()));
    }
    if header(message, "Return-Path")
        .is_some_and(|path| path.trim_matches(['<', '>', ' ']).is_empty())
    {
        return Some(SkipReason::Bounce("null Return-Path".into()));
    }
    if let Some(value) = header(message, "Auto-Submitted") {
        let value = value.split(';').next().unwrap_or("").trim();
        if !value.eq_ignore_ascii_case("no") {
            return Some(SkipReason::AutoReply(format!("Auto-Submitted: {value}")));
        }
    }
    for name in ["X-Autoreply", "X-Autorespond", "X-Autoresponder"] {
        if header(message, name).is_some() {
            return Some(SkipReason::AutoReply(name.to_owned()));
        }
    }
    // Exchange marks out-of-office replies this way.
    if header(message, "X-Auto-Response-Suppress")
        .is_some_and(|value| value.to_ascii_lowercase().contains("oof"))
        && header(message, "X-MS-Exchange-Generated-Message-Source").is_some()
    {
        return Some(SkipReason::AutoReply("Exchange out of office".into()));
    }
    if let Some(value) = header(message, "Precedence") {
        let value = value.to_ascii_lowercase();
        if ["bulk", "junk", "list", "auto_reply"].contains(&value.as_str()) {
            return Some(if value == "auto_reply" {
                SkipReason::AutoReply("Precedence: auto_reply".into())
            } else {
                SkipReason::Bulk(format!("Precedence: {value}"))
            });
        }
    }
    if header(message, "List-Id").is_some() {
        return Some(SkipReason::Bulk("List-Id".into()));
    }
    None
}

/// At most `limit` mails per sender per hour, counted in memory (a restart forgets; the
/// limit exists to stop loops with a misbehaving robot, not to meter customers exactly).
#[derive(Debug)]
pub struct SenderRateLimit {
    limit: usize,
    window: Duration,
    seen: HashMap<String, VecDeque<Instant>>,
}

impl SenderRateLimit {
    /// A limit of `per_hour` mails per sender.
    pub fn new(per_hour: u32) -> SenderRateLimit {
        SenderRateLimit {
            limit: per_hour.max(1) as usize,
            window: Duration::from_secs(3600),
            seen: HashMap::new(),
        }
    }

    /// Counts one mail from `sender` at `now`; false when it is over the limit.
    pub fn allow(&mut self, sender: &str, now: Instant) -> bool {
        let window = self.window;
        // Forget idle senders so the map cannot grow without bound.
        if self.seen.len() > 10_000 {
            self.seen.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let times = self.seen.entry(sender.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            times.pop_front();
        }
        if times.len() >= self.limit {
            return false;
        }
        times.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn check(headers: &str, from: &str) -> Option<SkipReason> {
        let raw = format!(
            "From: {from}\r\nTo: support@example.com\r\nSubject: hi\r\n{headers}\r\nhello\r\n"
        );
        let message = MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parse");
        classify(&message, from, "support@example.com")
    }

    #[test]
    fn customer_mail_is_not_noise() {
        assert_eq!(check("", "alice@example.org"), None);
        assert_eq!(check("Auto-Submitted: no\r\n", "alice@example.org"), None);
    }

    #[test]
    fn auto_replies_are_skipped() {
        for headers in [
            "Auto-Submitted: auto-replied\r\n",
            "Auto-Submitted: auto-generated; vacation\r\n",
            "X-Autoreply: yes\r\n",
            "X-Autorespond: vacation\r\n",
            "Precedence: auto_reply\r\n",
        ] {
            assert!(
                matches!(
                    check(headers, "alice@example.org"),
                    Some(SkipReason::AutoReply(_))
                ),
                "{headers}"
            );
        }
    }

    #[test]
    fn bulk_and_lists_are_skipped() {
        for headers in [
            "Precedence: bulk\r\n",
            "Precedence: junk\r\n",
            "List-Id: <news.example.org>\r\n",
        ] {
            assert!(
                matches!(
                    check(headers, "news@example.org"),
                    Some(SkipReason::Bulk(_))
                ),
                "{headers}"
            );
        }
    }

    #[test]
    fn bounces_are_skipped() {
        assert!(matches!(
            check("", "mailer-daemon@mx.example.org"),
            Some(SkipReason::Bounce(_))
        ));
        assert!(matches!(
            check("", "postmaster@example.org"),
            Some(SkipReason::Bounce(_))
        ));
        assert!(matches!(
            check("Return-Path: <>\r\n", "alice@example.org"),
            Some(SkipReason::Bounce(_))
        ));
        let dsn = "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n";
        assert!(matches!(
            check(dsn, "alice@example.org"),
            Some(SkipReason::Bounce(_))
        ));
    }

    #[test]
    fn our_own_mail_is_skipped() {
        assert_eq!(check("", "support@example.com"), Some(SkipReason::OwnMail));
        assert_eq!(
            check("", "support+abc123@example.com"),
            Some(SkipReason::OwnMail)
        );
    }

    #[test]
    fn rate_limit_is_per_sender_and_per_hour() {
        let mut limit = SenderRateLimit::new(2);
        let start = Instant::now();
        assert!(limit.allow("a@x.org", start));
        assert!(limit.allow("a@x.org", start));
        assert!(!limit.allow("a@x.org", start));
        assert!(limit.allow("b@x.org", start));
        assert!(limit.allow("a@x.org", start + Duration::from_secs(3601)));
    }
}
