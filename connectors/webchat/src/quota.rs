//! Byte quotas on visitors' uploads: the connector asks, the gateway counts.
//!
//! Anyone can open the widget and upload, so files are the one way an anonymous visitor can
//! fill the gateway's storage. The counts must hold across every gateway instance, so the
//! connector does not keep them: the gateway implements
//! [`switchboard_api::UploadQuota`] over Redis, and the
//! connector turns each refusal into a status and a sentence the widget shows.

use switchboard_api::{human_size, QuotaRefusal};

use crate::convert::{ErrorCode, Refusal};

/// What the visitor is told when `refused` keeps their file `name`, with the status it maps to.
pub(crate) fn refusal_for(refused: &QuotaRefusal, name: &str) -> Refusal {
    match refused {
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
