//! Files both ways: the size limit, the file store, and signed download links.
//!
//! A file is stored (under its conversation's hash tag, with the retention as TTL) when the
//! message carrying it is stored; messages keep only [`FileRef`]s. Links are
//! `/files/<conversation>/<file>?exp=<unix seconds>&sig=<hex HMAC-SHA256>`, signed with one
//! key every instance shares, so any instance serves any link, and nobody can guess a file
//! of another conversation. They are the web chat's way to show files, and the fallback for
//! channels that cannot carry files. Visitors' uploads are bounded by byte quotas, and no
//! customer's file is taken while Redis is nearly full (`files/quota.rs`).

mod quota;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchboard_api::{
    is_inline_image, text_with_links, too_large_message, Attachment, DeskNotice, FileRef, Inbound,
    IngestError, Outbound,
};
use tracing::warn;

use crate::config::FilesConfig;
use crate::model::{Delivery, DeskAction, DeskPost};
use crate::store::{Commit, NewFile, Store, StoreError, UploadLimits};
use quota::MemoryGuard;

type HmacSha256 = Hmac<Sha256>;

/// The gateway's file handling, shared by intake, the desk, the outbox and the HTTP route.
pub struct Files {
    store: Store,
    secret: Vec<u8>,
    base_url: String,
    max_bytes: u64,
    retention: Duration,
    limits: UploadLimits,
    memory: MemoryGuard,
}

/// Attachments split into what is stored and what was refused (one sentence each).
#[derive(Debug, Default)]
pub struct Taken {
    /// Files to store, with their refs.
    pub stored: Vec<NewFile>,
    /// Why each refused file was refused, in words for the sender.
    pub refused: Vec<String>,
}

impl Files {
    /// File handling by `config`; reads (or creates) the shared link key in Redis unless the
    /// config names one.
    pub async fn new(store: Store, config: &FilesConfig) -> Result<Files, StoreError> {
        let secret = match &config.link_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => store.file_link_secret().await?.into_bytes(),
        };
        Ok(Files {
            store,
            secret,
            base_url: config
                .public_base_url
                .as_deref()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_owned(),
            max_bytes: config.max_bytes,
            retention: Duration::from_secs(u64::from(config.retention_days) * 86_400),
            limits: UploadLimits {
                per_conversation: config.max_bytes_per_conversation,
                per_address_per_day: config.max_bytes_per_address_per_day,
                total: config.max_bytes_total,
                retention_days: config.retention_days,
            },
            memory: MemoryGuard::new(config.max_redis_memory_fraction),
        })
    }

    /// The largest file accepted, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// How long files are kept.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Splits `attachments` into files to store and refusals. `seed` names the message (the
    /// channel's message id): file ids derive from it, so a replay stores the same keys.
    pub fn take(&self, seed: &str, attachments: Vec<Attachment>) -> Taken {
        let mut taken = Taken::default();
        for (index, attachment) in attachments.into_iter().enumerate() {
            match attachment.bytes {
                Some(bytes) if (bytes.len() as u64) <= self.max_bytes => {
                    taken.stored.push(NewFile {
                        file: FileRef {
                            id: file_id(seed, index),
                            name: attachment.name,
                            content_type: attachment.content_type,
                            size: bytes.len() as u64,
                            url: None,
                            bytes: None,
                        },
                        bytes,
                    })
                }
                Some(bytes) => taken.refused.push(too_large_message(
                    &attachment.name,
                    bytes.len() as u64,
                    self.max_bytes,
                )),
                None if attachment.size > self.max_bytes => taken.refused.push(too_large_message(
                    &attachment.name,
                    attachment.size,
                    self.max_bytes,
                )),
                None => taken
                    .refused
                    .push(format!("{} could not be received.", attachment.name)),
            }
        }
        taken
    }

    /// [`Files::take`], refusing every file while Redis is nearly full (any channel's
    /// customer: the text still goes through). If Redis can not say, the files are taken:
    /// storing them will tell.
    async fn take_if_room(&self, seed: &str, attachments: Vec<Attachment>) -> Taken {
        let mut taken = self.take(seed, attachments);
        let bytes = taken.stored.iter().map(|file| file.file.size).sum();
        if taken.stored.is_empty() {
            return taken;
        }
        match self.memory.would_overfill(&self.store, bytes).await {
            Ok(false) => {}
            Ok(true) => {
                warn!("customer's files refused: Redis is near its maxmemory");
                for file in std::mem::take(&mut taken.stored) {
                    taken.refused.push(format!(
                        "{} was not received: we cannot take files right now.",
                        file.file.name
                    ));
                }
            }
            Err(error) => warn!(%error, "Redis memory unknown; taking the files"),
        }
        taken
    }

    /// Stores files of conversation `id` (before the message that refers to them).
    pub async fn put(&self, id: &str, files: &[NewFile]) -> Result<(), StoreError> {
        if files.is_empty() {
            return Ok(());
        }
        self.store.put_files(id, files, self.retention).await
    }

    /// A signed link to a file of conversation `id`, valid for the retention period.
    pub fn link(&self, id: &str, file_id: &str) -> String {
        let exp = unix_now() + self.retention.as_secs();
        let sig = hex::encode(self.mac(id, file_id, exp).finalize().into_bytes());
        format!("{}/files/{id}/{file_id}?exp={exp}&sig={sig}", self.base_url)
    }

    /// Fills in the links of `files` (a message of conversation `id`).
    pub fn with_links(&self, id: &str, files: &mut [FileRef]) {
        for file in files {
            file.url = Some(self.link(id, &file.id));
        }
    }

    /// True when `sig` signs (`id`, `file_id`, `exp`) and `exp` has not passed.
    pub fn verify(&self, id: &str, file_id: &str, exp: u64, sig: &str) -> bool {
        if exp < unix_now() {
            return false;
        }
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        // `verify_slice` compares in constant time.
        self.mac(id, file_id, exp).verify_slice(&sig).is_ok()
    }

    fn mac(&self, id: &str, file_id: &str, exp: u64) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(format!("{id}/{file_id}/{exp}").as_bytes());
        mac
    }

    /// Loads a file's bytes into `file`; false when it is no longer stored.
    pub async fn load(&self, id: &str, file: &mut FileRef) -> Result<bool, StoreError> {
        match self.store.file(id, &file.id).await? {
            Some(stored) => {
                file.bytes = Some(stored.bytes);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Readies an outbound message's files for a connector: links always; the bytes when the
    /// connector sends files itself (`native`), else the links appended to the text.
    pub async fn prepare(&self, outbound: &mut Outbound, native: bool) -> Result<(), StoreError> {
        let id = outbound.conversation_id.clone();
        self.with_links(&id, &mut outbound.files);
        if !native {
            outbound.text = text_with_links(&outbound.text, &outbound.files);
            outbound.files.clear();
            return Ok(());
        }
        for file in &mut outbound.files {
            if !self.load(&id, file).await? {
                warn!(conversation = %id, file = %file.id, "file expired before delivery; sending its link");
            }
        }
        Ok(())
    }

    /// `GET /files/{conversation}/{file}?exp=..&sig=..`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/files/{conversation}/{file}", get(download))
            .with_state(self)
    }
}

/// Intake's part: stores nothing yet, but splits the message's files into those to store and
/// those refused. A refused file is named in the stored text, so the agents see it; a message
/// of nothing but refused files is refused as a whole (the customer is told why) and, when
/// the conversation has a desk thread, the thread is told too.
pub async fn take_inbound(
    files: Option<&Files>,
    store: &Store,
    inbound: &mut Inbound,
) -> Result<Taken, IngestError> {
    if inbound.files.is_empty() {
        return Ok(Taken::default());
    }
    let attachments = std::mem::take(&mut inbound.files);
    let seed = format!("{}:{}", inbound.channel, inbound.message_id);
    let taken = match files {
        Some(files) => files.take_if_room(&seed, attachments).await,
        None => Taken {
            stored: Vec::new(),
            refused: attachments
                .iter()
                .map(|file| {
                    format!(
                        "{} was not received: this gateway does not accept files.",
                        file.name
                    )
                })
                .collect(),
        },
    };
    if taken.refused.is_empty() {
        return Ok(taken);
    }
    let refused = taken.refused.join(" ");
    if inbound.text.trim().is_empty() && taken.stored.is_empty() {
        note_refusal_in_thread(store, inbound, &refused).await;
        return Err(IngestError::Rejected(refused));
    }
    inbound.text = format!(
        "{}\n[file not received: {refused}]",
        inbound.text.trim_end()
    )
    .trim_start()
    .to_owned();
    Ok(taken)
}

/// Best effort: the customer already gets the refusal; the thread only hears about it.
async fn note_refusal_in_thread(store: &Store, inbound: &Inbound, refused: &str) {
    let noted = async {
        let id = store
            .resolve_conversation(inbound.channel, &inbound.conversation_key)
            .await?;
        let Some(conversation) = store.conversation(&id).await? else {
            return Ok(());
        };
        if conversation.desk_thread.is_none() {
            return Ok(());
        }
        let notice = Delivery::Desk(DeskPost {
            conversation_id: id.clone(),
            action: DeskAction::Notify {
                notice: DeskNotice::CustomerFileRefused {
                    problem: refused.to_owned(),
                },
            },
        });
        let commit = Commit {
            conversation_id: id,
            desk_payload: serde_json::to_string(&notice).ok(),
            dedupe: Some(format!("refused:{}", inbound.message_id)),
            ..Default::default()
        };
        store.commit(&commit).await.map(|_| ())
    };
    if let Err(error) = noted.await {
        warn!(%error, "refused file not noted in the desk thread");
    }
}

/// What triage reads for a message of files without text (`[file: invoice.pdf]`), if it is one.
pub fn placeholder(text: &str, files: &[FileRef]) -> Option<String> {
    if !text.trim().is_empty() || files.is_empty() {
        return None;
    }
    let names: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
    Some(format!("[file: {}]", names.join(", ")))
}

/// A file id: 16 hex digits from the message's seed and the file's position in it.
fn file_id(seed: &str, index: usize) -> String {
    let digest = Sha256::digest(format!("{seed}\0{index}").as_bytes());
    hex::encode(&digest[..8])
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[derive(Debug, Deserialize)]
struct LinkQuery {
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    sig: Option<String>,
}

async fn download(
    State(files): State<Arc<Files>>,
    Path((conversation, file_id)): Path<(String, String)>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.ok().map(|Query(query)| query);
    let (Some(exp), Some(sig)) = (
        query.as_ref().and_then(|q| q.exp),
        query.as_ref().and_then(|q| q.sig.as_deref()),
    ) else {
        return (StatusCode::FORBIDDEN, "this link is not signed").into_response();
    };
    if !files.verify(&conversation, &file_id, exp, sig) {
        return (StatusCode::FORBIDDEN, "this link is invalid or has expired").into_response();
    }
    let stored = match files.store.file(&conversation, &file_id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            return (StatusCode::NOT_FOUND, "this file is no longer stored").into_response()
        }
        Err(error) => {
            warn!(%error, "file download: redis unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment").into_response();
        }
    };
    // Only plain images are shown inline; anything else (HTML, SVG, scripts) is a download,
    // so a customer's file can never run as a page on the gateway's origin.
    let inline = is_inline_image(&stored.content_type);
    let content_type = if inline {
        stored.content_type.as_str()
    } else {
        "application/octet-stream"
    };
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        stored
            .name
            .replace(|c: char| !c.is_ascii_graphic() && c != ' ', "_"),
        percent_encode(&stored.name)
    );
    let mut response = stored.bytes.into_response();
    let headers = response.headers_mut();
    let mut set = |name, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, content_type);
    set(header::CONTENT_DISPOSITION, &disposition);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(
        header::CONTENT_SECURITY_POLICY,
        "sandbox; default-src 'none'",
    );
    set(header::CACHE_CONTROL, "private, max-age=3600");
    response
}

/// RFC 5987 encoding for `filename*`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_stable_per_message_and_position() {
        assert_eq!(file_id("wc:c1", 0), file_id("wc:c1", 0));
        assert_ne!(file_id("wc:c1", 0), file_id("wc:c1", 1));
        assert_ne!(file_id("wc:c1", 0), file_id("wc:c2", 0));
        assert_eq!(file_id("wc:c1", 0).len(), 16);
    }

    #[test]
    fn filenames_are_percent_encoded() {
        assert_eq!(percent_encode("a b/é.png"), "a%20b%2F%C3%A9.png");
    }
}
