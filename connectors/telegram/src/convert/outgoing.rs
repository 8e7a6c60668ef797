//! Outbound message -> Telegram message parts: the speaker in bold, the text split at
//! Telegram's length limit, buttons under the last part, files as photos or documents.

use bytes::Bytes;
use switchboard_api::{text_with_links, Author, CustomerAction, FileRef, Outbound};

use super::MAX_MESSAGE_CHARS;

/// One Telegram message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingPart {
    /// The text, at most [`MAX_MESSAGE_CHARS`] characters.
    pub text: String,
    /// The length in UTF-16 code units of a bold speaker prefix ("Sam (support team):").
    pub bold_prefix_utf16: Option<usize>,
    /// Show the "Talk to a human" button under this part.
    pub human_button: bool,
    /// Show the row of rating buttons "1".."5" under this part.
    pub rate_buttons: bool,
}

/// Why an outbound message cannot be rendered for Telegram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The conversation key is not a Telegram chat id.
    #[error("telegram: conversation key {0:?} is not a chat id")]
    BadChatId(String),
    /// Telegram refuses empty messages.
    #[error("telegram: refusing to send an empty message")]
    Empty,
}

/// The chat an outbound message goes to.
pub fn chat_id(outbound: &Outbound) -> Result<i64, RenderError> {
    outbound
        .conversation_key
        .trim()
        .parse()
        .map_err(|_| RenderError::BadChatId(outbound.conversation_key.clone()))
}

/// Renders an outbound message: the speaker in bold first (agents by name, so the customer
/// knows a person is speaking; the AI as the assistant), split at Telegram's length limit,
/// the buttons under the last part.
pub fn render(outbound: &Outbound) -> Result<Vec<OutgoingPart>, RenderError> {
    let body = outbound.text.trim();
    if body.is_empty() {
        return Err(RenderError::Empty);
    }
    let speaker = speaker(&outbound.author);
    let text = match &speaker {
        Some(speaker) => format!("{speaker} {body}"),
        None => body.to_string(),
    };
    let chunks = split_text(&text, MAX_MESSAGE_CHARS);
    let last = chunks.len().saturating_sub(1);
    let button = outbound.actions.contains(&CustomerAction::TalkToHuman);
    let rate = outbound.actions.contains(&CustomerAction::RateService);
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(index, text)| OutgoingPart {
            text,
            bold_prefix_utf16: speaker
                .as_ref()
                .filter(|_| index == 0)
                .map(|speaker| speaker.encode_utf16().count()),
            human_button: button && index == last,
            rate_buttons: rate && index == last,
        })
        .collect())
}

/// Telegram's limit on a file's caption, in characters.
pub const MAX_CAPTION_CHARS: usize = 1024;
/// The largest file a bot may upload (Bot API `sendDocument`); bigger ones go as links.
pub const MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

/// One file to send (`sendPhoto` or `sendDocument`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFile {
    /// The file name the customer sees.
    pub name: String,
    /// The content.
    pub bytes: Bytes,
    /// Send as a photo (shown inline) rather than a document.
    pub as_photo: bool,
    /// The caption (possibly empty) and, on the last message, the buttons.
    pub caption: OutgoingPart,
}

/// An outbound message as Telegram messages: text parts first, then the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Text messages.
    pub parts: Vec<OutgoingPart>,
    /// File messages, after the text.
    pub files: Vec<OutgoingFile>,
}

/// Renders an outbound message with its files. A text that fits a caption becomes the first
/// file's caption (one message, as a person would send it); a longer one goes first as text.
/// Files without bytes (expired from the store) or over Telegram's upload limit go as links.
pub fn render_with_files(outbound: &Outbound) -> Result<Rendered, RenderError> {
    let (sendable, linked): (Vec<&FileRef>, Vec<&FileRef>) =
        outbound.files.iter().partition(|file| {
            file.bytes
                .as_ref()
                .is_some_and(|bytes| (bytes.len() as u64) <= MAX_UPLOAD_BYTES)
        });
    let linked: Vec<FileRef> = linked.into_iter().cloned().collect();
    let text = text_with_links(&outbound.text, &linked);
    let with_text = |text: String| Outbound {
        text,
        files: Vec::new(),
        ..outbound.clone()
    };
    if sendable.is_empty() {
        return Ok(Rendered {
            parts: render(&with_text(text))?,
            files: Vec::new(),
        });
    }
    let speaker = speaker(&outbound.author);
    let body = text.trim();
    let caption_text = match (&speaker, body.is_empty()) {
        (Some(speaker), true) => speaker.clone(),
        (Some(speaker), false) => format!("{speaker} {body}"),
        (None, _) => body.to_string(),
    };
    let fits = caption_text.chars().count() <= MAX_CAPTION_CHARS;
    let mut parts = if fits || body.is_empty() {
        Vec::new()
    } else {
        render(&with_text(text.clone()))?
    };
    for part in &mut parts {
        part.human_button = false;
        part.rate_buttons = false;
    }
    let last = sendable.len() - 1;
    let files = sendable
        .into_iter()
        .enumerate()
        .map(|(index, file)| {
            let captioned = index == 0 && (fits || body.is_empty());
            let caption_text = match (captioned, fits) {
                (false, _) => String::new(),
                (true, true) => caption_text.clone(),
                (true, false) => speaker.clone().unwrap_or_default(),
            };
            OutgoingFile {
                name: file.name.clone(),
                bytes: file.bytes.clone().unwrap_or_default(),
                as_photo: sends_as_photo(&file.content_type),
                caption: OutgoingPart {
                    bold_prefix_utf16: speaker
                        .as_ref()
                        .filter(|_| !caption_text.is_empty())
                        .map(|speaker| speaker.encode_utf16().count()),
                    text: caption_text,
                    human_button: index == last
                        && outbound.actions.contains(&CustomerAction::TalkToHuman),
                    rate_buttons: index == last
                        && outbound.actions.contains(&CustomerAction::RateService),
                },
            }
        })
        .collect();
    Ok(Rendered { parts, files })
}

/// Photos Telegram recompresses and shows inline; GIFs would lose their animation, so they
/// go as documents like every other type.
fn sends_as_photo(content_type: &str) -> bool {
    matches!(content_type, "image/jpeg" | "image/png" | "image/webp")
}

/// How the speaker is introduced: agents by name, so the customer knows a person is
/// speaking; the AI as the assistant.
fn speaker(author: &Author) -> Option<String> {
    match author {
        Author::Agent { name } => Some(format!("{} (support team):", name.trim())),
        Author::Ai => Some("AI assistant:".to_string()),
        Author::System | Author::Customer => None,
    }
}

/// Splits text into pieces of at most `max` characters, preferring line then word breaks.
fn split_text(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let hard = rest
            .char_indices()
            .nth(max)
            .map(|(index, _)| index)
            .unwrap_or(rest.len());
        let window = &rest[..hard];
        let cut = window
            .rfind('\n')
            .or_else(|| window.rfind(' '))
            .filter(|cut| *cut > 0)
            .unwrap_or(hard);
        parts.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}
