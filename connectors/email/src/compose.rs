//! Pure [`Outbound`] -> lettre [`Message`]: headers that keep the customer's thread together.
//!
//! - From `display_name <address>`, Reply-To `support+<token>@domain` (see `thread.rs`).
//! - Subject `Re: <original>` without stacking `Re: Re:`.
//! - Message-ID derived from `Outbound.id`, so a retried send carries the same id and the
//!   customer's client shows one mail.
//! - In-Reply-To / References from the customer's latest mail (`reply_context`).
//! - `Auto-Submitted: auto-replied` on AI answers and system notices (RFC 3834), so other
//!   robots do not answer them; agents' replies are signed with the agent's name.
//! - Files as `multipart/mixed` attachments after the text; a file whose bytes are gone
//!   (expired from the gateway's store) is sent as its link in the text instead.

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use switchboard_api::{text_with_links, Author, CustomerAction, FileRef, Outbound};

use crate::config::EmailConfig;
use crate::thread;

/// Subject used when the customer's mail had none.
const FALLBACK_SUBJECT: &str = "Your support request";

/// Why an outbound message cannot become a mail (never worth retrying).
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The conversation key is not a deliverable address.
    #[error("recipient {0:?} is not a valid address")]
    Recipient(String),
    /// Our own From/Reply-To could not be built.
    #[error("sender address: {0}")]
    Sender(String),
    /// lettre refused the message.
    #[error("cannot build the mail: {0}")]
    Build(String),
}

/// The `Auto-Submitted` header (RFC 3834).
#[derive(Debug, Clone)]
struct AutoSubmitted(String);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `Re: <subject>`, adding the prefix once however many the customer's client stacked.
pub fn reply_subject(original: Option<&str>) -> String {
    let mut rest = original.unwrap_or("").trim();
    loop {
        let lower = rest.to_ascii_lowercase();
        let stripped = ["re:", "re :", "aw:", "sv:", "antw:"]
            .iter()
            .find(|prefix| lower.starts_with(**prefix))
            .map(|prefix| rest[prefix.len()..].trim_start());
        match stripped {
            Some(next) => rest = next,
            None => break,
        }
    }
    let rest: String = rest.chars().filter(|c| !c.is_control()).collect();
    if rest.is_empty() {
        format!("Re: {FALLBACK_SUBJECT}")
    } else {
        format!("Re: {rest}")
    }
}

/// The stable Message-ID of an outbound message (without angle brackets).
pub fn message_id_for(outbound_id: &str, domain: &str) -> String {
    let id: String = outbound_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '.'
            }
        })
        .take(100)
        .collect();
    format!("switchboard.{id}@{domain}")
}

/// Only well-formed `<id>` tokens survive from the stored context into our headers.
fn ids(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|id| {
            id.len() > 2
                && id.starts_with('<')
                && id.ends_with('>')
                && id[1..id.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '<' && c != '>')
        })
        .map(str::to_owned)
        .collect()
}

/// The mail body: the text, a way to reach a person, and who is speaking.
pub fn body(outbound: &Outbound, config: &EmailConfig) -> String {
    let unsent: Vec<FileRef> = outbound
        .files
        .iter()
        .filter(|file| file.bytes.is_none())
        .cloned()
        .collect();
    let mut body = text_with_links(&outbound.text, &unsent).replace("\r\n", "\n");
    if outbound.actions.contains(&CustomerAction::TalkToHuman) {
        body.push_str("\n\nWould you rather talk to a person? Just reply and ask for a human.");
    }
    let signature = match &outbound.author {
        Author::Agent { name } => format!("{name}\n{}", config.display_name),
        Author::Ai => format!("{} (AI assistant)", config.display_name),
        Author::System | Author::Customer => config.display_name.clone(),
    };
    body.push_str("\n\n-- \n");
    body.push_str(&signature);
    body.push('\n');
    body
}

/// Builds the reply mail for `outbound`.
pub fn compose(outbound: &Outbound, config: &EmailConfig) -> Result<Message, ComposeError> {
    let context = &outbound.reply_context;
    let to: Mailbox = outbound
        .conversation_key
        .parse()
        .map_err(|_| ComposeError::Recipient(outbound.conversation_key.clone()))?;
    let from = Mailbox::new(
        Some(config.display_name.clone()),
        config
            .address
            .parse()
            .map_err(|error| ComposeError::Sender(format!("{}: {error}", config.address)))?,
    );
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(reply_subject(
            context.get("email.subject").map(String::as_str),
        ))
        .message_id(Some(format!(
            "<{}>",
            message_id_for(&outbound.id, config.domain())
        )))
        .date_now();
    if config.reply_address {
        let token = context
            .get("email.reply_token")
            .filter(|token| token.chars().all(|c| c.is_ascii_hexdigit()) && !token.is_empty())
            .cloned()
            .unwrap_or_else(|| {
                thread::reply_token(&config.token_key(), &outbound.conversation_key)
            });
        let reply_to = thread::reply_address(&config.address, &token);
        let address = reply_to
            .parse()
            .map_err(|error| ComposeError::Sender(format!("{reply_to}: {error}")))?;
        builder = builder.reply_to(Mailbox::new(Some(config.display_name.clone()), address));
    }
    let parent = context
        .get("email.message_id")
        .map(|id| ids(id))
        .unwrap_or_default();
    if let Some(parent) = parent.first() {
        let mut references = context
            .get("email.references")
            .map(|refs| ids(refs))
            .unwrap_or_default();
        if !references.contains(parent) {
            references.push(parent.clone());
        }
        builder = builder
            .in_reply_to(parent.clone())
            .references(references.join(" "));
    }
    if matches!(outbound.author, Author::Ai | Author::System) {
        builder = builder.header(AutoSubmitted("auto-replied".into()));
    }
    let text = body(outbound, config);
    let attached: Vec<(&FileRef, &bytes::Bytes)> = outbound
        .files
        .iter()
        .filter_map(|file| file.bytes.as_ref().map(|bytes| (file, bytes)))
        .collect();
    let built = if attached.is_empty() {
        builder.header(ContentType::TEXT_PLAIN).body(text)
    } else {
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(text));
        for (file, bytes) in attached {
            // Names and types were cleaned when the file was stored; a type lettre still
            // cannot read goes as plain bytes rather than failing the whole reply.
            let content_type = ContentType::parse(&file.content_type)
                .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("valid"));
            parts = parts
                .singlepart(Attachment::new(file.name.clone()).body(bytes.to_vec(), content_type));
        }
        builder.multipart(parts)
    };
    built.map_err(|error| ComposeError::Build(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MimeHeaders;
    use std::collections::BTreeMap;

    fn config() -> EmailConfig {
        toml::from_str(
            r#"
            address = "support@example.com"
            display_name = "Example Support"
            [imap]
            host = "127.0.0.1"
            port = 143
            tls = "plain"
            username_env = "U"
            password_env = "P"
            [smtp]
            host = "127.0.0.1"
            port = 25
            tls = "plain"
            "#,
        )
        .expect("config")
    }

    fn outbound(author: Author) -> Outbound {
        let mut reply_context = BTreeMap::new();
        reply_context.insert("email.message_id".into(), "<m2@example.org>".into());
        reply_context.insert(
            "email.references".into(),
            "<m1@example.org> <switchboard.a@example.com>".into(),
        );
        reply_context.insert("email.subject".into(), "RE: Re: Password reset".into());
        reply_context.insert("email.reply_token".into(), "0123456789abcdef".into());
        Outbound {
            id: "1700000000000-0".into(),
            conversation_id: "c1".into(),
            channel: crate::CHANNEL,
            conversation_key: "alice@example.org".into(),
            author,
            text: "Go to Settings > Security.".into(),
            actions: vec![CustomerAction::TalkToHuman],
            reply_context,
            files: Vec::new(),
            maybe_sent: false,
        }
    }

    fn rendered(outbound: &Outbound) -> String {
        String::from_utf8(compose(outbound, &config()).expect("compose").formatted()).expect("utf8")
    }

    #[test]
    fn subject_gets_one_re() {
        assert_eq!(reply_subject(Some("Password")), "Re: Password");
        assert_eq!(reply_subject(Some("Re: Password")), "Re: Password");
        assert_eq!(reply_subject(Some("RE: re:  Aw: Password")), "Re: Password");
        assert_eq!(
            reply_subject(Some("Regarding my order")),
            "Re: Regarding my order"
        );
        assert_eq!(reply_subject(None), "Re: Your support request");
        assert_eq!(reply_subject(Some("Re:")), "Re: Your support request");
    }

    #[test]
    fn ai_answer_headers_thread_and_mark_auto_reply() {
        let mail = rendered(&outbound(Author::Ai));
        assert!(
            mail.contains("From: \"Example Support\" <support@example.com>"),
            "{mail}"
        );
        assert!(mail.contains("To: alice@example.org"), "{mail}");
        assert!(
            mail.contains("Reply-To: \"Example Support\" <support+0123456789abcdef@example.com>"),
            "{mail}"
        );
        assert!(mail.contains("Subject: Re: Password reset"), "{mail}");
        assert!(
            mail.contains("Message-ID: <switchboard.1700000000000-0@example.com>"),
            "{mail}"
        );
        assert!(mail.contains("In-Reply-To: <m2@example.org>"), "{mail}");
        assert!(
            mail.contains(
                "References: <m1@example.org> <switchboard.a@example.com> <m2@example.org>"
            ),
            "{mail}"
        );
        assert!(mail.contains("Auto-Submitted: auto-replied"), "{mail}");
        assert!(mail.contains("(AI assistant)"), "{mail}");
        assert!(mail.contains("ask for a human"), "{mail}");
    }

    #[test]
    fn agent_reply_is_signed_and_not_auto_submitted() {
        let mail = rendered(&outbound(Author::Agent {
            name: "Dana".into(),
        }));
        assert!(mail.contains("Dana\r\nExample Support"), "{mail}");
        assert!(!mail.contains("Auto-Submitted"), "{mail}");
    }

    #[test]
    fn message_id_is_stable_across_retries() {
        let first = rendered(&outbound(Author::Ai));
        let second = rendered(&outbound(Author::Ai));
        let id = |mail: &str| {
            mail.lines()
                .find(|l| l.starts_with("Message-ID:"))
                .map(str::to_owned)
        };
        assert_eq!(id(&first), id(&second));
    }

    #[test]
    fn files_are_attached_after_the_text_and_expired_ones_linked() {
        let mut out = outbound(Author::Agent {
            name: "Dana".into(),
        });
        let pdf = b"%PDF-1.4\n\xff\xfe binary".to_vec();
        out.files = vec![
            FileRef {
                id: "f1".into(),
                name: "invoice.pdf".into(),
                content_type: "application/pdf".into(),
                size: pdf.len() as u64,
                url: Some("https://support.example.com/files/c1/f1?exp=1&sig=a".into()),
                bytes: Some(bytes::Bytes::from(pdf.clone())),
            },
            FileRef {
                id: "f2".into(),
                name: "old.log".into(),
                content_type: "text/plain".into(),
                size: 2048,
                url: Some("https://support.example.com/files/c1/f2?exp=1&sig=b".into()),
                bytes: None,
            },
        ];
        let raw = compose(&out, &config()).expect("compose").formatted();
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parses");
        let attachments: Vec<(Option<&str>, &[u8])> = parsed
            .attachments()
            .map(|part| (part.attachment_name(), part.contents()))
            .collect();
        assert_eq!(attachments, [(Some("invoice.pdf"), &pdf[..])]);
        let text = parsed.body_text(0).expect("a text part");
        assert!(text.contains("Go to Settings"), "{text}");
        assert!(
            text.contains("old.log (2 KB): https://support.example.com/files/c1/f2?exp=1&sig=b"),
            "{text}"
        );
        assert!(text.contains("Dana"), "{text}");
    }

    #[test]
    fn injected_ids_and_bad_recipients_are_refused() {
        let mut out = outbound(Author::Ai);
        out.reply_context.insert(
            "email.message_id".into(),
            "<x>\r\nBcc: evil@example.net".into(),
        );
        let mail = rendered(&out);
        assert!(!mail.contains("evil"), "{mail}");
        out.conversation_key = "not an address".into();
        assert!(matches!(
            compose(&out, &config()),
            Err(ComposeError::Recipient(_))
        ));
    }
}
