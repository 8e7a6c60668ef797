//! Files in messages: what a connector hands in ([`Attachment`], with its bytes) and what the
//! gateway hands out ([`FileRef`], a stored file with a signed link).
//!
//! Bytes never travel through JSON: the outbox and the transcript keep only the reference,
//! and the gateway's file store (Redis, with a retention TTL) keeps the bytes. The outbox
//! fills in the link, and the bytes for connectors that send files natively, at delivery time.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A file a customer or an agent sent, as the connector received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file name shown to people (no path).
    pub name: String,
    /// The MIME type, `application/octet-stream` when unknown.
    pub content_type: String,
    /// The size in bytes, as received or as the platform announced it.
    pub size: u64,
    /// The content; `None` when the connector did not fetch it because it is over the limit.
    #[serde(skip)]
    pub bytes: Option<Bytes>,
}

impl Attachment {
    /// A received file with its content.
    pub fn new(name: &str, content_type: &str, bytes: Bytes) -> Attachment {
        Attachment {
            name: clean_file_name(name),
            content_type: clean_content_type(content_type),
            size: bytes.len() as u64,
            bytes: Some(bytes),
        }
    }

    /// A file the connector refused to fetch: `size` is over the configured limit.
    pub fn over_limit(name: &str, content_type: &str, size: u64) -> Attachment {
        Attachment {
            name: clean_file_name(name),
            content_type: clean_content_type(content_type),
            size,
            bytes: None,
        }
    }
    /// The attachment for what fetching a customer's file from its platform gave. A failed
    /// fetch keeps neither bytes nor an over-the-limit size, so the customer is told the file
    /// "could not be received" rather than that it was too large.
    pub fn fetched(
        name: &str,
        content_type: &str,
        outcome: Result<Fetched, impl std::fmt::Display>,
    ) -> Attachment {
        match outcome {
            Ok(Fetched::Bytes(bytes)) => Attachment::new(name, content_type, bytes),
            Ok(Fetched::TooLarge(size)) => Attachment::over_limit(name, content_type, size),
            Err(error) => {
                tracing::warn!(%error, file = %name, "customer's file not fetched");
                Attachment::over_limit(name, content_type, 0)
            }
        }
    }
}

/// A customer's file as a connector fetched it from its platform, within the size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The whole file.
    Bytes(Bytes),
    /// Over the limit: the size the platform announced, or what had arrived when the download
    /// was cut off.
    TooLarge(u64),
}

/// A stored file, as messages refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The gateway's id for the file (unique within its conversation).
    pub id: String,
    /// The file name shown to people.
    pub name: String,
    /// The MIME type.
    pub content_type: String,
    /// The size in bytes.
    pub size: u64,
    /// A signed, expiring download link; filled in when the message is delivered or shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The content, filled in at delivery for connectors that send files natively.
    #[serde(skip)]
    pub bytes: Option<Bytes>,
}

impl FileRef {
    /// True for the image types every browser and chat app shows inline.
    pub fn is_image(&self) -> bool {
        is_inline_image(&self.content_type)
    }
}

/// True for the image types safe to show inline (no SVG: it can carry script).
pub fn is_inline_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// A size as people read it: `512 bytes`, `340 KB`, `14 MB` (powers of 1024, rounded up so
/// a file just over the limit never reads as equal to it).
pub fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if bytes < KIB {
        format!("{bytes} bytes")
    } else if bytes < MIB {
        format!("{} KB", bytes.div_ceil(KIB))
    } else if bytes.is_multiple_of(MIB) {
        format!("{} MB", bytes / MIB)
    } else {
        let tenths = (bytes * 10).div_ceil(MIB);
        format!("{}.{} MB", tenths / 10, tenths % 10)
    }
}

/// The sentence telling someone a file was not taken: `"photo.png is 14.2 MB; the limit is 10 MB."`
pub fn too_large_message(name: &str, size: u64, limit: u64) -> String {
    format!(
        "{name} is {}; the limit is {}.",
        human_size(size),
        human_size(limit)
    )
}

/// A file name safe to show and to put in a header: no path, no control characters,
/// at most 200 bytes, never empty.
pub fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.');
    let mut end = trimmed.len().min(200);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    if trimmed[..end].is_empty() {
        "file".to_owned()
    } else {
        trimmed[..end].to_owned()
    }
}

/// A MIME type in its plain `type/subtype` form (parameters dropped, lowercase); anything
/// malformed becomes `application/octet-stream`.
pub fn clean_content_type(content_type: &str) -> String {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let valid = essence.split_once('/').is_some_and(|(kind, sub)| {
        let token = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        token(kind) && token(sub)
    });
    if valid {
        essence
    } else {
        "application/octet-stream".to_owned()
    }
}

/// The text a channel without file support shows: the message, then one line per file
/// with its link.
pub fn text_with_links(text: &str, files: &[FileRef]) -> String {
    let mut out = text.trim_end().to_owned();
    for file in files {
        if !out.is_empty() {
            out.push('\n');
        }
        let link = file.url.as_deref().unwrap_or("(link unavailable)");
        out.push_str(&format!(
            "\u{1F4CE} {} ({}): {link}",
            file.name,
            human_size(file.size)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(12), "12 bytes");
        assert_eq!(human_size(1024), "1 KB");
        assert_eq!(human_size(1025), "2 KB");
        assert_eq!(human_size(10 * 1024 * 1024), "10 MB");
        assert_eq!(human_size(14 * 1024 * 1024 + 200_000), "14.2 MB");
        // One byte over the limit must not print as the limit.
        assert_eq!(human_size(10 * 1024 * 1024 + 1), "10.1 MB");
        assert_eq!(
            too_large_message("photo.png", 14 * 1024 * 1024, 10 * 1024 * 1024),
            "photo.png is 14 MB; the limit is 10 MB."
        );
    }

    #[test]
    fn names_and_types_are_cleaned() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_file_name("a\"b\r\n.png"), "ab.png");
        assert_eq!(clean_file_name("..."), "file");
        assert_eq!(clean_file_name(""), "file");
        assert_eq!(clean_content_type("Image/PNG; charset=x"), "image/png");
        assert_eq!(
            clean_content_type("text/html\r\nX-Evil: 1"),
            "application/octet-stream"
        );
        assert_eq!(clean_content_type(""), "application/octet-stream");
    }

    #[test]
    fn bytes_never_reach_json() {
        let attachment = Attachment::new("a.txt", "text/plain", Bytes::from_static(b"secret"));
        let json = serde_json::to_string(&attachment).unwrap();
        assert!(
            !json.contains("secret") && json.contains("\"size\":6"),
            "{json}"
        );
        let back: Attachment = serde_json::from_str(&json).unwrap();
        assert_eq!(back.bytes, None);
    }

    #[test]
    fn links_are_appended_one_per_line() {
        let file = FileRef {
            id: "f1".into(),
            name: "invoice.pdf".into(),
            content_type: "application/pdf".into(),
            size: 2048,
            url: Some("https://gw/files/c/f1?exp=1&sig=ab".into()),
            bytes: None,
        };
        assert_eq!(
            text_with_links("Here it is", std::slice::from_ref(&file)),
            "Here it is\n\u{1F4CE} invoice.pdf (2 KB): https://gw/files/c/f1?exp=1&sig=ab"
        );
        assert_eq!(
            text_with_links("", &[file]),
            "\u{1F4CE} invoice.pdf (2 KB): https://gw/files/c/f1?exp=1&sig=ab"
        );
    }
}
