//! The stand-in's files: customers' attachments served at their CDN-style URLs
//! (`GET /attachments/{id}/{name}`, no token, as Discord's signed CDN links), and message
//! creates as Discord takes them with files: `multipart/form-data` with `payload_json` and
//! `files[n]` parts, each announced in the payload's `attachments` by its `n`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{DiscordStandIn, Inner, Recorded};

/// The stand-in's file state.
#[derive(Default)]
pub(super) struct Files {
    hosted: HashMap<u64, (String, Vec<u8>)>,
    downloads: u32,
    uploaded: Vec<UploadedFile>,
}

/// One file uploaded with a message create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    /// The channel the message went to.
    pub channel_id: u64,
    /// The message it belongs to.
    pub message_id: u64,
    /// The part's file name.
    pub filename: String,
    /// The filename the payload's `attachments` gave for the part's index.
    pub announced_filename: Option<String>,
    /// The uploaded bytes.
    pub bytes: Vec<u8>,
}

/// One part of a `multipart/form-data` body.
pub(super) struct FormPart {
    name: String,
    file_name: Option<String>,
    data: Vec<u8>,
}

impl DiscordStandIn {
    /// Hosts `bytes` as a customer's attachment; returns the attachment object for a
    /// message's `attachments` (Discord's fields: id, filename, size, url, proxy_url,
    /// content_type). `size` is what the object announces, normally `bytes.len()`.
    pub fn host_attachment(
        &self,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
        size: usize,
    ) -> Value {
        let mut recorded = self.inner.lock();
        let id = recorded.id();
        recorded
            .files
            .hosted
            .insert(id, (filename.to_string(), bytes.to_vec()));
        let url = format!("http://{}/attachments/{id}/{filename}", self.inner.addr);
        json!({
            "id": id.to_string(), "filename": filename, "size": size, "url": url,
            "proxy_url": url, "content_type": content_type,
        })
    }

    /// How many hosted attachments were downloaded.
    pub fn attachment_downloads(&self) -> u32 {
        self.inner.lock().files.downloads
    }

    /// Every file uploaded with a message so far.
    pub fn uploaded_files(&self) -> Vec<UploadedFile> {
        self.inner.lock().files.uploaded.clone()
    }

    /// Waits until at least `n` files were uploaded or `timeout` passed.
    pub async fn wait_for_uploaded_files(&self, n: usize, timeout: Duration) -> Vec<UploadedFile> {
        self.wait_until(timeout, |recorded| recorded.files.uploaded.len() >= n)
            .await;
        self.uploaded_files()
    }
}

/// `GET /attachments/{id}/{name}`: the hosted bytes.
pub(super) async fn attachment(
    State(inner): State<Arc<Inner>>,
    Path((id, _name)): Path<(u64, String)>,
) -> Response {
    let mut recorded = inner.lock();
    let Some((_, bytes)) = recorded.files.hosted.get(&id).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    recorded.files.downloads += 1;
    Bytes::from(bytes).into_response()
}

/// A message create's JSON body, and its files when it came as `multipart/form-data`.
pub(super) fn message_body(headers: &HeaderMap, body: Bytes) -> (Bytes, Vec<FormPart>) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let Some(parts) = multipart(content_type, &body) else {
        return (body, Vec::new());
    };
    let (json, files): (Vec<FormPart>, Vec<FormPart>) = parts
        .into_iter()
        .partition(|part| part.name == "payload_json");
    let json = json
        .into_iter()
        .next()
        .map(|part| Bytes::from(part.data))
        .unwrap_or_default();
    (json, files)
}

/// Records the `files[n]` parts of message `message_id`.
pub(super) fn record(
    recorded: &mut Recorded,
    channel_id: u64,
    message_id: u64,
    payload: &Value,
    parts: Vec<FormPart>,
) {
    for part in parts {
        let Some(index) = part
            .name
            .strip_prefix("files[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|index| index.parse::<u64>().ok())
        else {
            continue;
        };
        let announced_filename = payload
            .get("attachments")
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter()
                    .find(|item| item.get("id").and_then(Value::as_u64) == Some(index))
            })
            .and_then(|item| item.get("filename").and_then(Value::as_str))
            .map(str::to_string);
        recorded.files.uploaded.push(UploadedFile {
            channel_id,
            message_id,
            filename: part.file_name.unwrap_or_default(),
            announced_filename,
            bytes: part.data,
        });
    }
}

/// Parses a `multipart/form-data` body into its parts; `None` when it is not one.
fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<FormPart>> {
    let (kind, rest) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = rest
        .split(';')
        .find_map(|param| param.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let separator = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    let mut rest = &body[find(body, delimiter.as_bytes())? + delimiter.len()..];
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
        let disposition = head.split("\r\n").find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then_some(value)
        });
        for param in disposition.unwrap_or_default().split(';').skip(1) {
            if let Some((key, value)) = param.trim().split_once('=') {
                let value = value.trim_matches('"').to_string();
                match key {
                    "name" => part.name = value,
                    "filename" => part.file_name = Some(value),
                    _ => {}
                }
            }
        }
        parts.push(part);
        rest = &after[data_start + data_len + separator.len()..];
    }
    Some(parts)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
