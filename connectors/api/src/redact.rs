//! Redaction of what a desk mirrors outside the gateway (a Slack workspace, say).
//!
//! Redis keeps the original; a desk that copies customer text into a third party's storage
//! passes it through a [`Redactor`] first, so a card number a customer pastes is not kept in
//! Slack's history for years. Detection favours checks over shapes: a card number must pass
//! Luhn and an IBAN its mod-97 check, so order numbers and dates are left alone; secrets are
//! found by their form (key = value, PEM blocks, JWTs, long mixed-class tokens) rather than by
//! a list of vendors' prefixes.

use serde::Deserialize;

use crate::{Briefing, ThreadPost};

/// What a desk hides; cards, IBANs, national ids and secrets on by default, contact
/// details off (agents usually need them, and they are the customer's own).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// Payment card numbers (13 to 19 digits passing the Luhn check).
    pub cards: bool,
    /// Bank account numbers in IBAN form (passing the mod-97 check).
    pub ibans: bool,
    /// Passwords and tokens: `password: ...`, PEM private keys, JWTs, long random tokens.
    pub secrets: bool,
    /// National identity numbers matching `national_id_patterns`.
    pub national_ids: bool,
    /// Regular expressions for national identity numbers; the default covers US social
    /// security numbers. Add your country's (UK NINO, say) here.
    pub national_id_patterns: Vec<String>,
    /// Email addresses.
    pub emails: bool,
    /// Phone numbers (8 to 15 digits, written with `+` or separators).
    pub phones: bool,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            cards: true,
            ibans: true,
            secrets: true,
            national_ids: true,
            national_id_patterns: vec![US_SSN.to_owned()],
            emails: false,
            phones: false,
        }
    }
}

/// US social security numbers as written (`123-45-6789`), without the never-issued ranges.
const US_SSN: &str = r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b";

/// What kind of thing a placeholder stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedactedKind {
    Card,
    Iban,
    Secret,
    NationalId,
    Email,
    Phone,
}

/// A text with its sensitive parts replaced, and what was replaced.
#[derive(Clone, Debug, PartialEq)]
pub struct Redacted {
    pub text: String,
    pub hidden: Vec<RedactedKind>,
}

impl Redacted {
    pub fn changed(&self) -> bool {
        !self.hidden.is_empty()
    }
}

/// A compiled [`RedactionConfig`].
#[derive(Clone, Debug)]
pub struct Redactor {
    config: RedactionConfig,
    national_ids: Vec<fancy_regex::Regex>,
}

impl Redactor {
    /// Compiles the patterns; an invalid one is named in the error (for config validation).
    pub fn new(config: RedactionConfig) -> Result<Redactor, String> {
        let national_ids = if config.national_ids {
            config
                .national_id_patterns
                .iter()
                .map(|pattern| {
                    fancy_regex::Regex::new(pattern).map_err(|error| {
                        format!("national_id_patterns: `{pattern}` is not a valid regular expression: {error}")
                    })
                })
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(Redactor {
            config,
            national_ids,
        })
    }

    /// A redactor that hides nothing (a desk that keeps data inside the gateway).
    pub fn off() -> Redactor {
        Redactor {
            config: RedactionConfig {
                cards: false,
                ibans: false,
                secrets: false,
                national_ids: false,
                national_id_patterns: Vec::new(),
                emails: false,
                phones: false,
            },
            national_ids: Vec::new(),
        }
    }

    /// The briefing as a desk outside the gateway may keep it: every text a customer wrote,
    /// or the gateway wrote about them, goes through [`Redactor::redact`].
    pub fn briefing(&self, briefing: &Briefing) -> (Briefing, usize) {
        let mut hidden = 0;
        let mut clean = |text: &str| {
            let redacted = self.redact(text);
            hidden += redacted.hidden.len();
            redacted.text
        };
        let mut copy = briefing.clone();
        copy.summary = clean(&briefing.summary);
        // Why a model's draft was not used may quote the model's reply (a refusal, a parse
        // error), which may repeat the customer; the cited entries are the company's own.
        copy.summary_source = briefing.summary_source.as_deref().map(&mut clean);
        copy.reason_detail = clean(&briefing.reason_detail);
        // The suggested reply is the company's own knowledge, and desks fingerprint it to
        // send it unchanged: left as written.
        copy.email = briefing.email.as_deref().map(&mut clean);
        for (_, value) in &mut copy.attributes {
            *value = clean(value);
        }
        for line in &mut copy.transcript {
            line.text = clean(&line.text);
        }
        (copy, hidden)
    }

    /// A thread post as a desk outside the gateway may keep it.
    pub fn thread_post(&self, post: &ThreadPost) -> (ThreadPost, usize) {
        match post {
            ThreadPost::CustomerMessage {
                author,
                text,
                message_id,
            } => {
                let redacted = self.redact(text);
                let hidden = redacted.hidden.len();
                let post = ThreadPost::CustomerMessage {
                    author: author.clone(),
                    text: redacted.text,
                    message_id: message_id.clone(),
                };
                (post, hidden)
            }
            other => (other.clone(), 0),
        }
    }

    pub fn redact(&self, text: &str) -> Redacted {
        let mut hidden = Vec::new();
        let mut text = text.to_owned();
        if self.config.secrets {
            text = redact_secrets(&text, &mut hidden);
        }
        if self.config.cards {
            text = replace_digit_runs(&text, &mut hidden, card_placeholder);
        }
        if self.config.ibans {
            text = redact_ibans(&text, &mut hidden);
        }
        for pattern in &self.national_ids {
            text = replace_regex(
                pattern,
                &text,
                &mut hidden,
                RedactedKind::NationalId,
                |_| "[national id]".to_owned(),
            );
        }
        if self.config.emails {
            text = redact_emails(&text, &mut hidden);
        }
        if self.config.phones {
            text = replace_digit_runs(&text, &mut hidden, phone_placeholder);
        }
        Redacted { text, hidden }
    }
}

fn replace_regex(
    pattern: &fancy_regex::Regex,
    text: &str,
    hidden: &mut Vec<RedactedKind>,
    kind: RedactedKind,
    placeholder: impl Fn(&str) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for found in pattern.find_iter(text).flatten() {
        out.push_str(&text[last..found.start()]);
        out.push_str(&placeholder(found.as_str()));
        hidden.push(kind);
        last = found.end();
    }
    out.push_str(&text[last..]);
    out
}

fn last_digits(digits: &str, count: usize) -> &str {
    &digits[digits.len().saturating_sub(count)..]
}

/// A run of digits in groups separated by one space, `-` or `.`, as people write numbers.
struct DigitRun {
    start: usize,
    /// Byte offset just past each group, and the digits up to there.
    group_ends: Vec<(usize, String)>,
    has_plus: bool,
    separated: bool,
}

fn digit_runs(text: &str) -> Vec<DigitRun> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_run = bytes[i].is_ascii_digit()
            || (bytes[i] == b'+' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        let glued_to_word = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !starts_run || glued_to_word {
            i += 1;
            continue;
        }
        let start = i;
        let has_plus = bytes[i] == b'+';
        if has_plus {
            i += 1;
        }
        let mut digits = String::new();
        let mut group_ends = Vec::new();
        let mut separated = false;
        loop {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                digits.push(bytes[i] as char);
                i += 1;
            }
            group_ends.push((i, digits.clone()));
            let separator = i + 1 < bytes.len()
                && matches!(bytes[i], b' ' | b'-' | b'.')
                && bytes[i + 1].is_ascii_digit();
            if !separator {
                break;
            }
            separated = true;
            i += 1;
        }
        // A number glued to letters (`A1234`, `1234abc`) is an identifier, not a number.
        let glued_after = i < bytes.len() && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_');
        if !glued_after {
            runs.push(DigitRun {
                start,
                group_ends,
                has_plus,
                separated,
            });
        }
    }
    runs
}

/// Replaces, in each digit run, the longest leading groups `placeholder` accepts.
fn replace_digit_runs(
    text: &str,
    hidden: &mut Vec<RedactedKind>,
    placeholder: fn(&DigitRun, &str) -> Option<(RedactedKind, String)>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for run in digit_runs(text) {
        let found = run
            .group_ends
            .iter()
            .rev()
            .find_map(|(end, digits)| placeholder(&run, digits).map(|found| (*end, found)));
        if let Some((end, (kind, replacement))) = found {
            out.push_str(&text[last..run.start]);
            out.push_str(&replacement);
            hidden.push(kind);
            last = end;
        }
    }
    out.push_str(&text[last..]);
    out
}

fn card_placeholder(run: &DigitRun, digits: &str) -> Option<(RedactedKind, String)> {
    let card = !run.has_plus && (13..=19).contains(&digits.len()) && luhn_valid(digits);
    card.then(|| {
        (
            RedactedKind::Card,
            format!("[card •••• {}]", last_digits(digits, 4)),
        )
    })
}

fn phone_placeholder(run: &DigitRun, digits: &str) -> Option<(RedactedKind, String)> {
    // Written like a phone number: international form, or grouped; a bare digit string is
    // more often an order or tracking number.
    let phone = (run.has_plus || run.separated) && (8..=15).contains(&digits.len());
    phone.then(|| {
        (
            RedactedKind::Phone,
            format!("[phone •••• {}]", last_digits(digits, 2)),
        )
    })
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, digit)| {
            let value = u32::from(digit - b'0');
            if position % 2 == 1 {
                let doubled = value * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                value
            }
        })
        .sum();
    sum.is_multiple_of(10) && digits.bytes().any(|digit| digit != b'0')
}

/// IBANs, written whole or in groups of four: country letters, check digits, 11 to 30
/// alphanumerics, valid under ISO 7064 mod 97-10.
fn redact_ibans(text: &str, hidden: &mut Vec<RedactedKind>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut i = 0;
    while i + 4 <= bytes.len() {
        let at_word_start = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let looks_like_start = at_word_start
            && bytes[i].is_ascii_uppercase()
            && bytes[i + 1].is_ascii_uppercase()
            && bytes[i + 2].is_ascii_digit()
            && bytes[i + 3].is_ascii_digit();
        if !looks_like_start {
            i += 1;
            continue;
        }
        let mut candidate = String::new();
        let mut ends = Vec::new();
        let mut j = i;
        loop {
            while j < bytes.len() && bytes[j].is_ascii_alphanumeric() && candidate.len() < 34 {
                candidate.push(bytes[j].to_ascii_uppercase() as char);
                j += 1;
            }
            let word_ends = j >= bytes.len() || !bytes[j].is_ascii_alphanumeric();
            if word_ends {
                ends.push((j, candidate.clone()));
            }
            let grouped = j + 1 < bytes.len()
                && bytes[j] == b' '
                && bytes[j + 1].is_ascii_alphanumeric()
                && candidate.len() < 34;
            if !word_ends || !grouped {
                break;
            }
            j += 1;
        }
        let found = ends
            .iter()
            .rev()
            .find(|(_, candidate)| (15..=34).contains(&candidate.len()) && iban_valid(candidate));
        match found {
            Some((end, iban)) => {
                out.push_str(&text[last..i]);
                out.push_str(&format!(
                    "[IBAN {}•• •••• {}]",
                    &iban[..2],
                    last_digits(iban, 4)
                ));
                hidden.push(RedactedKind::Iban);
                last = *end;
                i = *end;
            }
            None => i += 1,
        }
    }
    out.push_str(&text[last..]);
    out
}

fn iban_valid(iban: &str) -> bool {
    let rearranged = iban[4..].chars().chain(iban[..4].chars());
    let mut remainder: u32 = 0;
    for c in rearranged {
        let value = match c.to_digit(36) {
            Some(value) => value,
            None => return false,
        };
        remainder = if value < 10 {
            (remainder * 10 + value) % 97
        } else {
            (remainder * 100 + value) % 97
        };
    }
    remainder == 1
}

fn redact_emails(text: &str, hidden: &mut Vec<RedactedKind>) -> String {
    let is_local = |c: char| c.is_alphanumeric() || "._%+-".contains(c);
    let is_domain = |c: char| c.is_alphanumeric() || ".-".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in text.match_indices('@') {
        if at < last {
            continue;
        }
        let start = text[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_local(*c))
            .last()
            .map(|(index, _)| index);
        let domain_len: usize = text[at + 1..]
            .chars()
            .take_while(|c| is_domain(*c))
            .map(char::len_utf8)
            .sum();
        let domain = text[at + 1..at + 1 + domain_len].trim_end_matches(['.', '-']);
        let (Some(start), true) = (start, domain.contains('.') && !domain.starts_with('.')) else {
            continue;
        };
        out.push_str(&text[last..start]);
        out.push_str("[email]");
        hidden.push(RedactedKind::Email);
        last = at + 1 + domain.len();
    }
    out.push_str(&text[last..]);
    out
}

/// Words naming a credential, after which `:` or `=` introduces its value.
const CREDENTIAL_WORDS: [&str; 9] = [
    "password", "passwd", "pwd", "passcode", "secret", "token", "api_key", "apikey", "api-key",
];

fn redact_secrets(text: &str, hidden: &mut Vec<RedactedKind>) -> String {
    let text = redact_pem_blocks(text, hidden);
    let text = redact_credential_values(&text, hidden);
    redact_random_tokens(&text, hidden)
}

fn redact_pem_blocks(text: &str, hidden: &mut Vec<RedactedKind>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let header_end = rest[begin..]
            .find("-----\n")
            .or_else(|| rest[begin + 11..].find("-----").map(|at| at + 11));
        let Some(header_end) = header_end else { break };
        let header = &rest[begin..begin + header_end];
        if !header.contains("PRIVATE KEY") {
            out.push_str(&rest[..begin + 11]);
            rest = &rest[begin + 11..];
            continue;
        }
        let end = rest[begin..]
            .find("-----END ")
            .and_then(|end| {
                rest[begin + end + 9..]
                    .find("-----")
                    .map(|close| begin + end + 9 + close + 5)
            })
            .unwrap_or(rest.len());
        out.push_str(&rest[..begin]);
        out.push_str("[private key]");
        hidden.push(RedactedKind::Secret);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn redact_credential_values(text: &str, hidden: &mut Vec<RedactedKind>) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut search_from = 0;
    while let Some((word_at, word)) = CREDENTIAL_WORDS
        .iter()
        .filter_map(|word| {
            lower[search_from..]
                .find(word)
                .map(|at| (search_from + at, *word))
        })
        .min_by_key(|(at, _)| *at)
    {
        search_from = word_at + word.len();
        let after_word = &text[search_from..];
        let gap = after_word.len() - after_word.trim_start_matches([' ', '\t']).len();
        let Some(operator) = after_word[gap..]
            .chars()
            .next()
            .filter(|c| *c == ':' || *c == '=')
        else {
            continue;
        };
        let value_from = search_from + gap + operator.len_utf8();
        let value_rest = &text[value_from..];
        let spaces = value_rest.len() - value_rest.trim_start_matches([' ', '\t']).len();
        let value_start = value_from + spaces;
        let value_len: usize = text[value_start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !"\"'<>,;)".contains(*c))
            .map(char::len_utf8)
            .sum();
        let value = text[value_start..value_start + value_len].trim_end_matches(['.', '!', '?']);
        if value.is_empty() || value_start < last {
            continue;
        }
        out.push_str(&text[last..value_start]);
        out.push_str("[secret]");
        hidden.push(RedactedKind::Secret);
        last = value_start + value.len();
        search_from = last;
    }
    out.push_str(&text[last..]);
    out
}

/// Long tokens that look machine-made: JWTs, and 24+ characters mixing at least three of
/// lowercase, uppercase, digits and `-`/`_`, with the spread of letters random keys have.
fn redact_random_tokens(text: &str, hidden: &mut Vec<RedactedKind>) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "-_+/=.".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !is_token_char(c) {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some((index, next)) = chars.peek().copied() {
            if !is_token_char(next) {
                break;
            }
            end = index + next.len_utf8();
            chars.next();
        }
        let token = text[start..end].trim_end_matches(['.', '=', '/']);
        let token = token.trim_end_matches('.');
        if looks_random(token) {
            out.push_str(&text[last..start]);
            out.push_str("[secret]");
            hidden.push(RedactedKind::Secret);
            last = start + token.len();
        }
    }
    out.push_str(&text[last..]);
    out
}

fn looks_random(token: &str) -> bool {
    if token.starts_with("eyJ") && token.matches('.').count() == 2 && token.len() > 30 {
        return true;
    }
    if token.len() < 24 || token.contains("://") || token.contains('/') && token.contains('.') {
        return false;
    }
    // A UUID names a record (an order, a request) an agent needs to read, not a credential.
    if is_uuid(token) {
        return false;
    }
    let classes = [
        token.bytes().any(|b| b.is_ascii_lowercase()),
        token.bytes().any(|b| b.is_ascii_uppercase()),
        token.bytes().any(|b| b.is_ascii_digit()),
        token.bytes().any(|b| b == b'-' || b == b'_'),
    ]
    .iter()
    .filter(|present| **present)
    .count();
    classes >= 3 && shannon_bits_per_char(token) >= 3.5
}

fn is_uuid(token: &str) -> bool {
    let groups: Vec<&str> = token.split('-').collect();
    groups.len() == 5
        && groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|group| group.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn shannon_bits_per_char(token: &str) -> f64 {
    let mut counts = [0u32; 256];
    for byte in token.bytes() {
        counts[usize::from(byte)] += 1;
    }
    let length = token.len() as f64;
    counts
        .iter()
        .filter(|count| **count > 0)
        .map(|count| {
            let p = f64::from(*count) / length;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_redact(text: &str) -> String {
        Redactor::new(RedactionConfig::default())
            .unwrap()
            .redact(text)
            .text
    }

    fn everything() -> Redactor {
        Redactor::new(RedactionConfig {
            emails: true,
            phones: true,
            ..RedactionConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn card_numbers_passing_luhn_are_hidden_however_they_are_grouped() {
        assert_eq!(
            default_redact("my card is 4242 4242 4242 4242, exp 12/27"),
            "my card is [card •••• 4242], exp 12/27"
        );
        assert_eq!(
            default_redact("5555-5555-5555-4444 cvv 123"),
            "[card •••• 4444] cvv 123"
        );
        assert_eq!(default_redact("378282246310005"), "[card •••• 0005]");
        // The card followed by its security code in the same run of groups.
        assert_eq!(
            default_redact("4000 0566 5566 5556 123"),
            "[card •••• 5556] 123"
        );
    }

    #[test]
    fn numbers_failing_luhn_or_glued_to_words_are_left_alone() {
        for text in [
            "order 4242 4242 4242 4241 is late",
            "tracking 1234567890123",
            "ref A4242424242424242",
            "invoice 4242424242424242x",
            "0000 0000 0000 0000",
        ] {
            assert_eq!(default_redact(text), text);
        }
    }

    #[test]
    fn ibans_are_hidden_only_when_their_check_digits_agree() {
        assert_eq!(
            default_redact("IBAN: DE89 3704 0044 0532 0130 00 thanks"),
            "IBAN: [IBAN DE•• •••• 3000] thanks"
        );
        assert_eq!(
            default_redact("pay GB82WEST12345698765432."),
            "pay [IBAN GB•• •••• 5432]."
        );
        let wrong_check = "DE88 3704 0044 0532 0130 00";
        assert_eq!(default_redact(wrong_check), wrong_check);
    }

    #[test]
    fn credentials_and_random_tokens_are_hidden_but_ids_are_not() {
        assert_eq!(
            default_redact("my password: hunter2! and login bob"),
            "my password: [secret]! and login bob"
        );
        assert_eq!(
            default_redact("use API_KEY=abc123 please"),
            "use API_KEY=[secret] please"
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(
            default_redact(&format!("token {jwt} ok")),
            "token [secret] ok"
        );
        assert_eq!(
            default_redact("key xkeysib-9f8aB7c6D5e4F3g2H1i0JkLmN ok"),
            "key [secret] ok"
        );
        for kept in [
            "request 3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c failed",
            "see https://example.com/help/articles/how-to-reset-your-password-quickly",
            "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
            "internationalization-and-localization",
        ] {
            assert_eq!(default_redact(kept), kept);
        }
    }

    #[test]
    fn private_key_blocks_are_hidden_whole() {
        let text = "here:\n-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\nbye";
        assert_eq!(default_redact(text), "here:\n[private key]\nbye");
        let certificate = "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----";
        assert_eq!(default_redact(certificate), certificate);
    }

    #[test]
    fn national_ids_follow_the_configured_patterns() {
        assert_eq!(default_redact("SSN 123-45-6789"), "SSN [national id]");
        assert_eq!(default_redact("SSN 000-45-6789"), "SSN 000-45-6789");
        let nino = Redactor::new(RedactionConfig {
            national_id_patterns: vec![r"\b[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]\b".into()],
            ..RedactionConfig::default()
        })
        .unwrap();
        assert_eq!(nino.redact("NI AB123456C").text, "NI [national id]");
        let error = Redactor::new(RedactionConfig {
            national_id_patterns: vec!["(".into()],
            ..RedactionConfig::default()
        })
        .unwrap_err();
        assert!(error.contains("`(`"), "{error}");
    }

    #[test]
    fn emails_and_phones_are_kept_unless_turned_on() {
        let text = "reach me at ana.lopez@example.co.uk or +44 20 7946 0958";
        assert_eq!(default_redact(text), text);
        let redacted = everything().redact(text);
        assert_eq!(redacted.text, "reach me at [email] or [phone •••• 58]");
        assert_eq!(
            redacted.hidden,
            vec![RedactedKind::Email, RedactedKind::Phone]
        );
        // Plain digit strings are order numbers more often than phones.
        assert_eq!(everything().redact("order 20240511").text, "order 20240511");
        assert_eq!(
            everything().redact("at 10:30, 2 items").text,
            "at 10:30, 2 items"
        );
    }

    #[test]
    fn a_briefing_is_redacted_in_every_customer_text_and_the_original_is_untouched() {
        let briefing: Briefing = serde_json::from_value(serde_json::json!({
            "conversation_id": "c1", "customer_name": "Ana", "customer_id": "v1",
            "verified": false, "email": "ana@example.com", "channel": "webchat",
            "tier": null, "page_url": null, "page_title": null,
            "attributes": [["note", "card 4242424242424242"]],
            "reason": "human_requested", "reason_detail": "said: charge 4242424242424242 twice",
            "confidence": 0.2, "summary": "double charge on 4242424242424242",
            "summary_source": "heuristic (model refused: cannot discuss card 4242424242424242)",
            "transcript": [{"role": "customer", "author": "Ana", "text": "my card 4242 4242 4242 4242 was charged twice", "at_ms": 1}],
            "suggested_reply": null, "claimed_by": null, "status": "escalated"
        }))
        .unwrap();
        let (redacted, hidden) = Redactor::new(RedactionConfig::default())
            .unwrap()
            .briefing(&briefing);
        assert_eq!(hidden, 5);
        let shown = serde_json::to_string(&redacted).unwrap();
        assert!(
            !shown.contains("4242424242424242") && !shown.contains("4242 4242"),
            "{shown}"
        );
        assert_eq!(
            redacted.transcript[0].text,
            "my card [card •••• 4242] was charged twice"
        );
        assert_eq!(redacted.email.as_deref(), Some("ana@example.com"));
        assert!(briefing.transcript[0].text.contains("4242 4242 4242 4242"));
    }

    #[test]
    fn text_without_anything_sensitive_is_unchanged_and_reports_nothing() {
        let text = "Hi, j'ai été débité deux fois 😡 pour la commande 123456, merci!";
        let redacted = everything().redact(text);
        assert_eq!(redacted.text, text);
        assert!(!redacted.changed());
    }
}
