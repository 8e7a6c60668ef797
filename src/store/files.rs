//! The file store: the bytes of files customers and agents sent, one hash per file under
//! the conversation's hash tag, expiring after the configured retention.
//!
//! Transcript entries and outbox payloads keep only [`FileRef`]s; the bytes are written
//! here before the message that refers to them, so a reference never points at nothing
//! (until the retention has passed, which the download route reports as gone).

use std::time::Duration;

use bytes::Bytes;
use switchboard_api::FileRef;

use super::{keys, Store, StoreError};

/// A file to store: its reference and its bytes.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// What messages will record.
    pub file: FileRef,
    /// The content.
    pub bytes: Bytes,
}

/// A stored file read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The file name.
    pub name: String,
    /// The MIME type.
    pub content_type: String,
    /// The content.
    pub bytes: Bytes,
}

impl Store {
    /// Stores files of conversation `id` in one round trip, each expiring after `retention`.
    pub async fn put_files(
        &self,
        id: &str,
        files: &[NewFile],
        retention: Duration,
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        let ttl = retention.as_secs().max(1);
        for file in files {
            let key = keys::file(id, &file.file.id);
            pipe.cmd("HSET")
                .arg(&key)
                .arg("name")
                .arg(&file.file.name)
                .arg("type")
                .arg(&file.file.content_type)
                .arg("data")
                .arg(file.bytes.as_ref())
                .ignore()
                .expire(&key, ttl as i64)
                .ignore();
        }
        let mut conn = self.conn.clone();
        // Writing megabytes may take longer than a small command; allow a second per 10 MB.
        let size: usize = files.iter().map(|file| file.bytes.len()).sum();
        let extra = Duration::from_millis((size / 10_000) as u64);
        self.bounded(extra, pipe.query_async::<()>(&mut conn)).await
    }

    /// One stored file, or `None` when it does not exist (never stored, or expired).
    pub async fn file(&self, id: &str, file_id: &str) -> Result<Option<StoredFile>, StoreError> {
        let mut conn = self.conn.clone();
        let (name, content_type, data): (Option<String>, Option<String>, Option<Vec<u8>>) = self
            .bounded(
                Duration::from_secs(2),
                redis::cmd("HMGET")
                    .arg(keys::file(id, file_id))
                    .arg("name")
                    .arg("type")
                    .arg("data")
                    .query_async(&mut conn),
            )
            .await?;
        Ok(match (name, content_type, data) {
            (Some(name), Some(content_type), Some(data)) => Some(StoredFile {
                name,
                content_type,
                bytes: Bytes::from(data),
            }),
            _ => None,
        })
    }

    /// The key download links are signed with: created once, then the same for every instance.
    pub async fn file_link_secret(&self) -> Result<String, StoreError> {
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        let mut conn = self.conn.clone();
        let existing: Option<String> = self
            .bounded(
                Duration::ZERO,
                redis::cmd("SET")
                    .arg(keys::FILE_LINK_SECRET)
                    .arg(&fresh)
                    .arg("NX")
                    .arg("GET")
                    .query_async(&mut conn),
            )
            .await?;
        Ok(existing.unwrap_or(fresh))
    }
}
