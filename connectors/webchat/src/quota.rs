//! Byte quotas on visitors' uploads: the connector asks, the gateway counts.
//!
//! Anyone can open the widget and upload, so files are the one way an anonymous visitor can
//! fill the gateway's storage. The counts must hold across every gateway instance, so the
//! connector does not keep them: the gateway implements [`UploadQuota`] over Redis, and the
//! connector turns each refusal into a status and a sentence the widget shows.

use std::time::Duration;

use async_trait::async_trait;
use switchboard_api::human_size;

use crate::convert::{ErrorCode, Refusal};

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

impl QuotaRefusal {
    /// What the visitor is told, with the status it maps to.
    pub(crate) fn to_refusal(&self, name: &str) -> Refusal {
        match self {
            QuotaRefusal::Conversation { limit } => Refusal::new(
                ErrorCode::TooLarge,
                format!(
                    "{name} was not sent: this conversation already holds {} of files, the most \
                     it can keep. You can still write to us.",
                    human_size(*limit)
                ),
            ),
            QuotaRefusal::Address { limit, retry_after } => Refusal::rate_limited(
                format!(
                    "{name} was not sent: {} of files a day can come from your network, and that \
                     is reached. You can still write to us.",
                    human_size(*limit)
                ),
                *retry_after,
            ),
            QuotaRefusal::Total | QuotaRefusal::RedisNearlyFull => Refusal::new(
                ErrorCode::StorageFull,
                format!(
                    "{name} was not sent: we cannot take files right now. You can still write to us."
                ),
            ),
            QuotaRefusal::Unavailable(_) => Refusal::new(
                ErrorCode::Unavailable,
                "we could not save your file; please try again",
            ),
        }
    }
}
