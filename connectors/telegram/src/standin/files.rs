//! The stand-in's files, as the Bot API documents them: customers' files are hosted for
//! `getFile` (which answers a `file_path`) and served at `GET /file/bot<token>/<file_path>`;
//! `sendPhoto` and `sendDocument` take `multipart/form-data`, the file either in the field
//! itself or, as teloxide sends it, in a part the field names with `attach://<part>`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::{bot_json, chat_json, fail, int, ok, Shared, TelegramStandIn, DATE, TOKEN};

/// A file hosted for customers' messages.
#[derive(Debug, Clone)]
struct Hosted {
    unique_id: String,
    path: String,
    bytes: Vec<u8>,
    /// The size `getFile` and the message announce; `None` leaves `file_size` out.
    announced: Option<u64>,
}

/// The stand-in's file state.
#[derive(Default)]
pub(super) struct Files {
    hosted: BTreeMap<String, Hosted>,
    next_file: u64,
    downloads: u32,
    sent: Vec<SentFile>,
}

/// One recorded `sendPhoto` or `sendDocument` call.
#[derive(Debug, Clone, PartialEq)]
pub struct SentFile {
    /// `sendPhoto` or `sendDocument`, as Telegram spells them.
    pub method: String,
    /// The chat it went to.
    pub chat_id: i64,
    /// The uploaded part's file name.
    pub file_name: String,
    /// The uploaded bytes.
    pub bytes: Vec<u8>,
    /// The caption (empty when none).
    pub caption: String,
    /// The `caption_entities` as sent (`null` when none).
    pub caption_entities: Value,
    /// The `reply_markup` as sent (`null` when none).
    pub reply_markup: Value,
    /// The message id the stand-in answered with.
    pub message_id: i64,
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub(super) struct FormPart {
    name: String,
    file_name: Option<String>,
    data: Vec<u8>,
}

impl TelegramStandIn {
    /// Hosts `bytes` as a customer's file; returns its `file_id` for a message's media.
    pub fn host_file(&self, bytes: &[u8]) -> String {
        self.host_file_announcing(bytes, Some(bytes.len() as u64))
    }

    /// Hosts `bytes`, announcing `announced` as its size (`None`: no `file_size` at all),
    /// for clients that must not trust what they are told.
    pub fn host_file_announcing(&self, bytes: &[u8], announced: Option<u64>) -> String {
        let mut inner = self.shared.lock();
        inner.files.next_file += 1;
        let n = inner.files.next_file;
        let file_id = format!("BQACAgIAAxkBAAI{n:05}");
        inner.files.hosted.insert(
            file_id.clone(),
            Hosted {
                unique_id: format!("AgAD{n:05}"),
                path: format!("documents/file_{n}"),
                bytes: bytes.to_vec(),
                announced,
            },
        );
        file_id
    }

    /// Queues a photo from `user` in `chat_id`, in two sizes as Telegram sends them (a
    /// thumbnail, then `bytes` as the full size), with an optional caption.
    pub fn push_photo(&self, chat_id: i64, user: &str, bytes: &[u8], caption: &str) -> i64 {
        let thumbnail = self.host_file(&bytes[..bytes.len().min(64)]);
        let full = self.host_file(bytes);
        let mut content = json!({
            "photo": [
                self.photo_size(&thumbnail, 90, 60),
                self.photo_size(&full, 1280, 853),
            ]
        });
        if !caption.is_empty() {
            content["caption"] = json!(caption);
        }
        self.push_message(chat_id, user, content)
    }

    /// Queues a document from `user` in `chat_id`, shaped like Telegram's example
    /// (`09_message_with_a_document.json`).
    pub fn push_document(
        &self,
        chat_id: i64,
        user: &str,
        file_name: &str,
        mime_type: &str,
        bytes: &[u8],
    ) -> i64 {
        let file_id = self.host_file(bytes);
        let document = self.media_json(
            &file_id,
            json!({"file_name": file_name, "mime_type": mime_type}),
        );
        self.push_message(chat_id, user, json!({ "document": document }))
    }

    /// The JSON of a hosted file as a message's media field, with `extra` fields.
    pub fn media_json(&self, file_id: &str, extra: Value) -> Value {
        let inner = self.shared.lock();
        let mut media = json!({ "file_id": file_id });
        if let Some(hosted) = inner.files.hosted.get(file_id) {
            media["file_unique_id"] = json!(hosted.unique_id);
            if let Some(size) = hosted.announced {
                media["file_size"] = json!(size);
            }
        }
        if let (Some(media), Some(extra)) = (media.as_object_mut(), extra.as_object()) {
            media.extend(extra.clone());
        }
        media
    }

    fn photo_size(&self, file_id: &str, width: u32, height: u32) -> Value {
        self.media_json(file_id, json!({ "width": width, "height": height }))
    }

    /// How many hosted files were downloaded through the file path.
    pub fn file_downloads(&self) -> u32 {
        self.shared.lock().files.downloads
    }

    /// Every `sendPhoto` and `sendDocument` call so far.
    pub fn sent_files(&self) -> Vec<SentFile> {
        self.shared.lock().files.sent.clone()
    }

    /// Waits until at least `n` files were sent (or `timeout` passed); returns them all.
    pub async fn wait_for_sent_files(&self, n: usize, timeout: Duration) -> Vec<SentFile> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            let sent = self.sent_files();
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

/// `getFile`: the file's metadata and the `file_path` to download it from.
pub(super) fn get_file(shared: &Shared, params: &Map<String, Value>) -> Response {
    let file_id = params
        .get("file_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let inner = shared.lock();
    let Some(hosted) = inner.files.hosted.get(file_id) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "Bad Request: invalid file_id",
            None,
        );
    };
    let mut file = json!({
        "file_id": file_id,
        "file_unique_id": hosted.unique_id,
        "file_path": hosted.path,
    });
    if let Some(size) = hosted.announced {
        file["file_size"] = json!(size);
    }
    ok(file)
}

/// `GET /file/bot<token>/<file_path>`: the file's bytes.
pub(super) async fn download(
    State(shared): State<Arc<Shared>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    let mut inner = shared.lock();
    if inner.revoked || bot.strip_prefix("bot") != Some(TOKEN) {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    }
    let found = inner
        .files
        .hosted
        .values()
        .find(|hosted| hosted.path == path)
        .map(|hosted| hosted.bytes.clone());
    match found {
        Some(bytes) => {
            inner.files.downloads += 1;
            Bytes::from(bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

/// `sendPhoto` / `sendDocument`: records the uploaded file and answers with the message.
pub(super) fn send_file(
    shared: &Shared,
    method: &str,
    params: &Map<String, Value>,
    parts: &[FormPart],
) -> Response {
    let (field, method) = if method.eq_ignore_ascii_case("sendphoto") {
        ("photo", "sendPhoto")
    } else {
        ("document", "sendDocument")
    };
    // The file is the field's own part, or the part `attach://<name>` points to.
    let attached = params
        .get(field)
        .and_then(Value::as_str)
        .and_then(|value| value.strip_prefix("attach://"));
    let part = parts.iter().find(|part| {
        part.file_name.is_some() && (part.name == field || Some(part.name.as_str()) == attached)
    });
    let Some(part) = part else {
        return fail(
            StatusCode::BAD_REQUEST,
            &format!("Bad Request: there is no {field} in the request"),
            None,
        );
    };
    let Some(chat_id) = int(params, "chat_id") else {
        return fail(StatusCode::BAD_REQUEST, "Bad Request: chat not found", None);
    };
    let json_field = |key: &str| match params.get(key) {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let caption = params
        .get("caption")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let response = {
        let mut inner = shared.lock();
        let message_id = inner.next_message_id;
        inner.next_message_id += 1;
        let sent = SentFile {
            method: method.to_string(),
            chat_id,
            file_name: part.file_name.clone().unwrap_or_default(),
            bytes: part.data.clone(),
            caption: caption.clone(),
            caption_entities: json_field("caption_entities"),
            reply_markup: json_field("reply_markup"),
            message_id,
        };
        let media = json!({
            "file_id": format!("sent-{message_id}"),
            "file_unique_id": format!("sent-u-{message_id}"),
            "file_size": sent.bytes.len(),
            "file_name": sent.file_name,
        });
        let mut message = json!({
            "message_id": message_id,
            "from": bot_json(),
            "chat": chat_json(chat_id, "Customer"),
            "date": DATE,
        });
        if method == "sendPhoto" {
            message["photo"] = json!([{"width": 1280, "height": 853, "file_id": media["file_id"], "file_unique_id": media["file_unique_id"], "file_size": media["file_size"]}]);
        } else {
            message["document"] = media;
        }
        if !caption.is_empty() {
            message["caption"] = json!(caption);
        }
        inner.files.sent.push(sent);
        ok(message)
    };
    shared.changed.notify_waiters();
    response
}

/// Parses a `multipart/form-data` body: text fields into `params` (as the JSON body would
/// give them), every part into the list. `None` when it is not multipart.
pub(super) fn multipart(
    content_type: &str,
    body: &[u8],
) -> Option<(Map<String, Value>, Vec<FormPart>)> {
    let (kind, rest) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = rest
        .split(';')
        .find_map(|param| param.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = &body[find(body, delimiter.as_bytes())? + delimiter.len()..];
    let separator = format!("\r\n--{boundary}");
    while let Some(after) = rest.strip_prefix(b"\r\n") {
        let head_end = find(after, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&after[..head_end]).to_string();
        let data_start = head_end + 4;
        let data_len = find(&after[data_start..], separator.as_bytes())?;
        let mut part = FormPart {
            name: String::new(),
            file_name: None,
            data: after[data_start..data_start + data_len].to_vec(),
        };
        for line in head.split("\r\n") {
            let Some((header, value)) = line.split_once(':') else {
                continue;
            };
            if !header.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for param in value.split(';').skip(1) {
                if let Some((key, value)) = param.trim().split_once('=') {
                    let value = percent_decode(value.trim_matches('"'));
                    match key {
                        "name" => part.name = value,
                        "filename" => part.file_name = Some(value),
                        _ => {}
                    }
                }
            }
        }
        parts.push(part);
        rest = &after[data_start + data_len + separator.len()..];
    }
    let params = parts
        .iter()
        .filter(|part| part.file_name.is_none())
        .map(|part| {
            let text = String::from_utf8_lossy(&part.data).to_string();
            (part.name.clone(), Value::String(text))
        })
        .collect();
    Some((params, parts))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Undoes the percent-encoding reqwest applies to file names.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}
