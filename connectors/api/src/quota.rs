//! Byte quotas on visitors' uploads, counted by the gateway where every instance sees the same
//! counts: a connector that accepts anonymous uploads asks before storing a file (see
//! [`crate::BuildContext::upload_quota`]).

use std::time::Duration;

use async_trait::async_trait;

/// Counts visitors' upload bytes against the gateway's quotas.
#[async_trait]
pub trait UploadQuota: Send + Sync {
    /// Counts `bytes` against the conversation, the client address (when known) and the
    /// gateway's ceilings, or says which limit refused them (then nothing is counted).
    async fn reserve(
        &self,
        conversation_key: &str,
        client: Option<&str>,
        bytes: u64,
    ) -> Result<UploadReservation, QuotaRefusal>;

    /// Gives back a reservation whose file was not stored, or was a resend of a stored one.
    async fn release(&self, reservation: UploadReservation);
}

/// Bytes counted for one upload, and what [`UploadQuota::release`] needs to give them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReservation {
    /// The web chat conversation key the bytes were counted for.
    pub conversation_key: String,
    /// The client address the bytes were counted for, when known.
    pub client: Option<String>,
    /// How many bytes.
    pub bytes: u64,
    /// The UTC day (days since the Unix epoch) the bytes were counted on.
    pub day: u64,
}

/// Which limit refused an upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaRefusal {
    /// The conversation already holds its most bytes of files.
    #[error("the conversation holds its limit of {limit} bytes of files")]
    Conversation {
        /// `files.max_bytes_per_conversation`.
        limit: u64,
    },
    /// The client address uploaded its most bytes today.
    #[error("the client address uploaded its daily {limit} bytes")]
    Address {
        /// `files.max_bytes_per_address_per_day`.
        limit: u64,
        /// Until the day ends (UTC).
        retry_after: Duration,
    },
    /// Every visitor's files together reached `files.max_bytes_total`.
    #[error("visitors' files reached the gateway's ceiling")]
    Total,
    /// Redis is using more than `files.max_redis_memory_fraction` of its `maxmemory`.
    #[error("Redis is near its maxmemory")]
    RedisNearlyFull,
    /// The counts could not be read or written.
    #[error("upload quotas unavailable: {0}")]
    Unavailable(String),
}
