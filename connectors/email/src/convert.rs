//! Pure mail -> [`Inbound`]: parsing, noise checks, text extraction, trimming, attributes.
//!
//! No I/O here, so every sample mail (including the malformed ones) can be fed through it in
//! unit tests. What goes into the stored message:
//! - `text`: the customer's new text (quoted history and signature trimmed, see `trim/`);
//!   HTML-only mails are converted to text by mail-parser; a mail without text is stored
//!   with an empty text when it carries files, else as "(no text)" so agents still see it.
//! - `files`: the mail's attachments, except signatures (S/MIME, PGP) and the small inline
//!   images of signatures (logos referenced by `cid:`); one over the size limit is kept
//!   without its bytes, so the gateway can name it and the customer be told.
//! - attributes (kept small, they travel with every outbound as `reply_context`):
//!   `email.message_id`, `email.references`, `email.subject`, `email.reply_token`,
//!   `email.raw_size`, `email.attachments`, `email.trimmed`, `email.reply_token_valid`.
//!   The full untrimmed mail stays in the IMAP mailbox (flagged or moved, never deleted).

use std::collections::BTreeMap;

use mail_parser::{Message, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};
use switchboard_api::{
    clean_content_type, clean_file_name, Attachment, CustomerContext, Identity, Inbound,
    InboundKind,
};

use crate::noise::{self, SkipReason};
use crate::thread;
use crate::trim::trim_reply;

/// Stored text of a mail without any readable text.
pub const NO_TEXT: &str = "(no text)";

/// Longest subject kept in the attributes, in characters.
const MAX_SUBJECT_CHARS: usize = 200;
/// References kept for threading our reply (the newest ones; clients need only a few).
const MAX_REFERENCES: usize = 10;
/// Attachments listed by name; more are summarized as "and N more".
const MAX_LISTED_ATTACHMENTS: usize = 10;
/// Attachments taken from one mail; a mail bomb of thousands of tiny parts stops here.
const MAX_FILES: usize = 20;
/// Inline images smaller than this with a `Content-ID` are signature logos and social icons,
/// not something the customer meant to send; a pasted screenshot is bigger.
const SIGNATURE_IMAGE_BYTES: usize = 16 * 1024;

/// What the converter needs to know about our side.
#[derive(Debug, Clone)]
pub struct ConvertSettings {
    /// Our support address (lowercase).
    pub support_address: String,
    /// Attachments above this size are listed as not kept.
    pub max_attachment_bytes: usize,
    /// Key for `+token` reply addresses.
    pub token_key: Vec<u8>,
}

/// The outcome for one raw mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converted {
    /// Store it.
    Inbound(Box<Inbound>),
    /// Do not store it; mark it processed and log why.
    Skip {
        /// Why.
        reason: SkipReason,
        /// The sender, when known (for the log line).
        sender: Option<String>,
    },
}

/// Turns one raw RFC 5322 mail into an [`Inbound`], or says why it must be skipped.
pub fn convert(raw: &[u8], settings: &ConvertSettings) -> Converted {
    // mail-parser 0.11 panics on some malformed multipart nestings ("Invalid part ID", found
    // by the fuzz run); such a mail is unreadable, not a reason to lose the mailbox task.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw));
    let message = match parsed {
        Ok(Some(message)) => message,
        Ok(None) => return skip(SkipReason::Unreadable("not a mail".into()), None),
        Err(_) => {
            return skip(
                SkipReason::Unreadable("malformed MIME structure the parser cannot read".into()),
                None,
            )
        }
    };
    let Some((sender, display_name)) = sender_of(&message) else {
        return skip(SkipReason::Unreadable("no sender address".into()), None);
    };
    if let Some(reason) = noise::classify(&message, &sender, &settings.support_address) {
        return skip(reason, Some(sender));
    }
    let key = thread::conversation_key(&sender);
    let mut attributes = BTreeMap::new();

    let message_id = match message
        .message_id()
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        Some(id) => clean_id(id),
        // Without a Message-ID the raw bytes identify the mail, so a re-read dedupes.
        None => format!(
            "sha256-{}@switchboard",
            &hex::encode(Sha256::digest(raw))[..32]
        ),
    };
    attributes.insert("email.message_id".into(), format!("<{message_id}>"));
    let references = references_of(&message);
    if !references.is_empty() {
        attributes.insert("email.references".into(), references.join(" "));
    }
    if let Some(subject) = message.subject().map(one_line).filter(|s| !s.is_empty()) {
        attributes.insert(
            "email.subject".into(),
            subject.chars().take(MAX_SUBJECT_CHARS).collect(),
        );
    }
    attributes.insert(
        "email.reply_token".into(),
        thread::reply_token(&settings.token_key, &key),
    );
    if let Some(token) = recipients(&message)
        .iter()
        .find_map(|to| thread::token_in(to, &settings.support_address))
    {
        let valid = thread::token_matches(&settings.token_key, &token, &key);
        if !valid {
            tracing::warn!(sender = %key, "reply token of another conversation; using the sender's own");
        }
        attributes.insert("email.reply_token_valid".into(), valid.to_string());
    }
    attributes.insert("email.raw_size".into(), raw.len().to_string());
    if let Some(listing) = attachment_listing(&message, settings.max_attachment_bytes) {
        attributes.insert("email.attachments".into(), listing);
    }

    let full = message
        .body_text(0)
        .map(|text| text.replace("\r\n", "\n"))
        .unwrap_or_default();
    let trimmed = trim_reply(&full);
    let files = files_of(&message, settings.max_attachment_bytes);
    let text = if !trimmed.trim().is_empty() {
        if trimmed.trim() != full.trim() {
            attributes.insert("email.trimmed".into(), "true".into());
        }
        trimmed
    } else if !full.trim().is_empty() {
        // The trimmer removed everything (e.g. a bare forward): the whole text beats nothing.
        full.trim().to_owned()
    } else if files.is_empty() {
        NO_TEXT.to_owned()
    } else {
        // The files say what the mail is; the gateway shows their names.
        String::new()
    };

    Converted::Inbound(Box::new(Inbound {
        channel: crate::CHANNEL,
        conversation_key: key.clone(),
        message_id,
        kind: InboundKind::Text,
        author: Identity {
            id: key.clone(),
            display_name,
            email: Some(key),
            verified: false,
            // Replies go to this address, so it is the customer's to read.
            email_verified: true,
        },
        text,
        context: CustomerContext {
            attributes,
            ..CustomerContext::default()
        },
        files,
    }))
}

/// The files the customer attached (see the module doc for what is left out).
fn files_of(message: &Message<'_>, max_bytes: usize) -> Vec<Attachment> {
    message
        .attachments()
        .filter(|part| !is_signature_part(part))
        .take(MAX_FILES)
        .map(|part| {
            let content_type = clean_content_type(&mime_type(part));
            let name = part
                .attachment_name()
                .map(one_line)
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| {
                    if part.is_message() {
                        "forwarded.eml".to_owned()
                    } else {
                        "attachment".to_owned()
                    }
                });
            let contents = part.contents();
            if contents.len() > max_bytes {
                Attachment::over_limit(&name, &content_type, contents.len() as u64)
            } else {
                Attachment::new(
                    &clean_file_name(&name),
                    &content_type,
                    bytes::Bytes::copy_from_slice(contents),
                )
            }
        })
        .collect()
}

/// `type/subtype` of a part, `application/octet-stream` when it has none.
fn mime_type(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_owned(),
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned())
        .to_ascii_lowercase()
}

/// Signatures of the mail itself and the small inline images of a signature block.
fn is_signature_part(part: &mail_parser::MessagePart<'_>) -> bool {
    let mime = mime_type(part);
    if matches!(
        mime.as_str(),
        "application/pgp-signature"
            | "application/pkcs7-signature"
            | "application/x-pkcs7-signature"
            | "application/pgp-keys"
    ) {
        return true;
    }
    let inline = part
        .content_disposition()
        .is_none_or(|disposition| !disposition.ctype().eq_ignore_ascii_case("attachment"));
    inline
        && part.content_id().is_some()
        && mime.starts_with("image/")
        && part.contents().len() < SIGNATURE_IMAGE_BYTES
}

fn skip(reason: SkipReason, sender: Option<String>) -> Converted {
    Converted::Skip { reason, sender }
}

/// The From address (lowercased) and display name, falling back to Sender.
fn sender_of(message: &Message<'_>) -> Option<(String, Option<String>)> {
    let addr = message
        .from()
        .and_then(|from| from.first())
        .filter(|addr| addr.address().is_some())
        .or_else(|| message.sender().and_then(|sender| sender.first()))?;
    let address = addr.address()?.trim().to_lowercase();
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty()
        || domain.is_empty()
        || address.contains(|c: char| c.is_whitespace() || c.is_control() || "<>\",;".contains(c))
    {
        return None;
    }
    let name = addr.name().map(one_line).filter(|name| !name.is_empty());
    Some((address, name))
}

/// Every To/Cc/Delivered-To address, lowercased.
fn recipients(message: &Message<'_>) -> Vec<String> {
    let mut all: Vec<String> = message
        .to()
        .into_iter()
        .chain(message.cc())
        .flat_map(|list| list.iter())
        .filter_map(|addr| addr.address().map(|a| a.trim().to_lowercase()))
        .collect();
    all.extend(
        message
            .headers_raw()
            .filter(|(name, _)| name.eq_ignore_ascii_case("Delivered-To"))
            .map(|(_, value)| value.trim().trim_matches(['<', '>']).to_lowercase()),
    );
    all
}

/// The mail's own References plus In-Reply-To, as `<id>` strings, newest last.
fn references_of(message: &Message<'_>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for value in [message.references(), message.in_reply_to()] {
        let list = value
            .as_text_list()
            .map(|list| list.iter().map(|id| id.to_string()).collect::<Vec<_>>())
            .or_else(|| value.as_text().map(|id| vec![id.to_owned()]))
            .unwrap_or_default();
        for id in list {
            let id = format!("<{}>", clean_id(&id));
            if id.len() > 2 && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let skip = ids.len().saturating_sub(MAX_REFERENCES);
    ids.split_off(skip)
}

/// A message id without brackets, whitespace or characters that could break a header.
fn clean_id(id: &str) -> String {
    id.trim()
        .trim_matches(['<', '>'])
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && !"<>\"".contains(*c))
        .take(250)
        .collect()
}

/// A header value on one line (8-bit and encoded-word headers arrive decoded).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// "invoice.pdf (application/pdf, 12 KB); big.zip (application/zip, 30 MB, too large, not kept)".
fn attachment_listing(message: &Message<'_>, max_bytes: usize) -> Option<String> {
    let mut items: Vec<String> = Vec::new();
    let mut count = 0;
    for part in message.attachments() {
        count += 1;
        if items.len() >= MAX_LISTED_ATTACHMENTS {
            continue;
        }
        let name = part
            .attachment_name()
            .map(one_line)
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "unnamed".to_owned());
        let name: String = name.chars().take(100).collect();
        let ctype = mime_type(part);
        let size = part.contents().len();
        let note = if size > max_bytes {
            ", too large, not kept"
        } else {
            ""
        };
        items.push(format!("{name} ({ctype}, {}{note})", human_size(size)));
    }
    if count > items.len() {
        items.push(format!("and {} more", count - items.len()));
    }
    (!items.is_empty()).then(|| items.join("; "))
}

fn human_size(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{} KB", b.div_ceil(1024)),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    fn settings() -> ConvertSettings {
        ConvertSettings {
            support_address: "support@example.com".into(),
            max_attachment_bytes: 1024,
            token_key: b"test-key".to_vec(),
        }
    }

    fn inbound(raw: &str) -> Inbound {
        match convert(raw.as_bytes(), &settings()) {
            Converted::Inbound(inbound) => *inbound,
            other => panic!("expected an inbound, got {other:?}"),
        }
    }

    #[test]
    fn plain_mail_becomes_an_inbound_keyed_by_sender() {
        let inbound = inbound(
            "From: Alice Doe <Alice@Example.org>\r\nTo: support@example.com\r\nSubject: Password\r\nMessage-ID: <m1@example.org>\r\n\r\nHow do I reset my password?\r\n",
        );
        assert_eq!(inbound.conversation_key, "alice@example.org");
        assert_eq!(inbound.message_id, "m1@example.org");
        assert_eq!(inbound.text, "How do I reset my password?");
        assert_eq!(inbound.author.display_name.as_deref(), Some("Alice Doe"));
        assert_eq!(inbound.author.email.as_deref(), Some("alice@example.org"));
        assert!(!inbound.author.verified);
        let attrs = &inbound.context.attributes;
        assert_eq!(attrs["email.message_id"], "<m1@example.org>");
        assert_eq!(attrs["email.subject"], "Password");
        assert_eq!(attrs["email.reply_token"].len(), 16);
    }

    #[test]
    fn reply_is_trimmed_and_threading_kept() {
        let inbound = inbound(
            "From: alice@example.org\r\nTo: support+abc@example.com\r\nSubject: Re: Password\r\nMessage-ID: <m2@example.org>\r\nIn-Reply-To: <sb-1@example.com>\r\nReferences: <m1@example.org> <sb-1@example.com>\r\n\r\nThat worked, thanks!\r\n\r\nOn Mon, 6 Jan 2025 at 10:00, Support <support@example.com> wrote:\r\n> Go to Settings.\r\n",
        );
        assert_eq!(inbound.text, "That worked, thanks!");
        let attrs = &inbound.context.attributes;
        assert_eq!(
            attrs["email.references"],
            "<m1@example.org> <sb-1@example.com>"
        );
        assert_eq!(attrs["email.trimmed"], "true");
        // "abc" is not this sender's token: recorded, but the conversation stays the sender's.
        assert_eq!(attrs["email.reply_token_valid"], "false");
        assert_eq!(inbound.conversation_key, "alice@example.org");
    }

    #[test]
    fn forged_token_of_another_customer_does_not_move_the_mail() {
        let bob_token = thread::reply_token(b"test-key", "bob@example.net");
        let raw = format!(
            "From: mallory@example.net\r\nTo: support+{bob_token}@example.com\r\nIn-Reply-To: <bobs-mail@example.net>\r\nSubject: Re: hi\r\n\r\nlet me in\r\n"
        );
        let inbound = inbound(&raw);
        assert_eq!(inbound.conversation_key, "mallory@example.net");
        assert_eq!(
            inbound.context.attributes["email.reply_token_valid"],
            "false"
        );
        let own = thread::reply_token(b"test-key", "bob@example.net");
        let raw = format!("From: bob@example.net\r\nTo: support+{own}@example.com\r\n\r\nhi\r\n");
        assert_eq!(inbound_attrs(&raw)["email.reply_token_valid"], "true");
    }

    fn inbound_attrs(raw: &str) -> BTreeMap<String, String> {
        inbound(raw).context.attributes
    }

    #[test]
    fn html_only_mail_gets_readable_text() {
        let inbound = inbound(
            "From: alice@example.org\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello <b>team</b>,</p><p>my invoice&nbsp;is wrong.</p><script>x()</script></body></html>\r\n",
        );
        assert!(inbound.text.contains("Hello team"), "{}", inbound.text);
        assert!(inbound.text.contains("invoice"), "{}", inbound.text);
        assert!(!inbound.text.contains('<'), "{}", inbound.text);
    }

    #[test]
    fn missing_message_id_uses_a_stable_hash() {
        let raw = "From: alice@example.org\r\n\r\nhi\r\n";
        let first = inbound(raw).message_id;
        assert!(first.starts_with("sha256-"));
        assert_eq!(first, inbound(raw).message_id);
    }

    #[test]
    fn no_text_and_attachments_are_listed() {
        let raw = "From: alice@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf; name=invoice.pdf\r\nContent-Disposition: attachment; filename=invoice.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=big.zip\r\n\r\n".to_owned()
            + &"x".repeat(3000)
            + "\r\n--b--\r\n";
        let inbound = inbound(&raw);
        assert_eq!(inbound.text, "", "the files say what the mail is");
        let names: Vec<(&str, u64, Option<&[u8]>)> = inbound
            .files
            .iter()
            .map(|file| (file.name.as_str(), file.size, file.bytes.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("invoice.pdf", 9, Some(&b"%PDF-1.4\n"[..])),
                ("big.zip", 3000, None)
            ],
            "the big one is named, not kept"
        );
        assert_eq!(inbound.files[0].content_type, "application/pdf");
        let listing = &inbound.context.attributes["email.attachments"];
        assert!(
            listing.contains("invoice.pdf (application/pdf, 9 B)"),
            "{listing}"
        );
        assert!(
            listing.contains("big.zip (application/zip, 3 KB, too large, not kept)"),
            "{listing}"
        );
    }

    #[test]
    fn signature_logos_and_smime_signatures_are_not_files() {
        let logo = "R0lGODlhAQABAAAAACw=";
        let screenshot = "iVBORw0KGgo".to_owned() + &"A".repeat(30_000);
        let raw = format!(
            "From: alice@example.org\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=s\r\n\r\n\
             --s\r\nContent-Type: multipart/related; boundary=r\r\n\r\n\
             --r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See the screenshot</p><img src=\"cid:shot\"><p>--<br><img src=\"cid:logo\"></p>\r\n\
             --r\r\nContent-Type: image/gif\r\nContent-ID: <logo>\r\nContent-Disposition: inline; filename=logo.gif\r\nContent-Transfer-Encoding: base64\r\n\r\n{logo}\r\n\
             --r\r\nContent-Type: image/png\r\nContent-ID: <shot>\r\nContent-Disposition: inline; filename=screenshot.png\r\nContent-Transfer-Encoding: base64\r\n\r\n{screenshot}\r\n\
             --r--\r\n\
             --s\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Disposition: attachment; filename=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\r\n\
             --s--\r\n"
        );
        let big = ConvertSettings {
            max_attachment_bytes: 1024 * 1024,
            ..settings()
        };
        let Converted::Inbound(inbound) = convert(raw.as_bytes(), &big) else {
            panic!("stored");
        };
        let names: Vec<&str> = inbound
            .files
            .iter()
            .map(|file| file.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["screenshot.png"],
            "a pasted screenshot is a file; the logo and the signature are not"
        );
        assert!(
            inbound.text.contains("See the screenshot"),
            "{}",
            inbound.text
        );
    }

    #[test]
    fn eight_bit_headers_and_garbage_do_not_panic() {
        let raw =
            b"From: J\xfcrgen <j@example.de>\r\nSubject: Gr\xfc\xdfe\r\n\r\nText \xff\xfe\r\n";
        assert!(matches!(convert(raw, &settings()), Converted::Inbound(_)));
        assert!(matches!(convert(b"", &settings()), Converted::Skip { .. }));
        assert!(matches!(
            convert(b"\x00\x01\x02", &settings()),
            Converted::Skip { .. }
        ));
        assert!(matches!(
            convert(b"Subject: no sender\r\n\r\nhi", &settings()),
            Converted::Skip { .. }
        ));
    }

    #[test]
    fn auto_reply_is_skipped() {
        let raw =
            b"From: alice@example.org\r\nAuto-Submitted: auto-replied\r\n\r\nI am on vacation\r\n";
        assert!(matches!(
            convert(raw, &settings()),
            Converted::Skip {
                reason: SkipReason::AutoReply(_),
                ..
            }
        ));
    }

    /// Every sample of mail-parser's corpus we may redistribute (`tests/fixtures/eml`: RFC
    /// examples and Dovecot's test mails, including `malformed/`): no panic, no hang.
    #[test]
    fn every_sample_mail_converts_without_panic_in_bounded_time() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eml");
        let mut files = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()));
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|ext| ext == "eml") {
                    files.push(path);
                }
            }
        }
        files.sort();
        assert!(files.len() >= 50, "only {} sample mails found", files.len());
        assert!(files
            .iter()
            .any(|f| f.to_string_lossy().contains("malformed")));
        let (mut stored, mut skipped) = (0, 0);
        for file in &files {
            let raw = std::fs::read(file).expect("read sample");
            let start = Instant::now();
            match convert(&raw, &settings()) {
                Converted::Inbound(inbound) => {
                    stored += 1;
                    assert!(
                        !inbound.text.is_empty() || !inbound.files.is_empty(),
                        "{}",
                        file.display()
                    );
                    assert!(!inbound.message_id.is_empty(), "{}", file.display());
                }
                Converted::Skip { .. } => skipped += 1,
            }
            let took = start.elapsed();
            assert!(
                took < Duration::from_secs(5),
                "{} took {took:?}",
                file.display()
            );
        }
        println!(
            "{} sample mails: {stored} stored, {skipped} skipped",
            files.len()
        );
    }
}
