//! Files shared in Slack messages, fetched the same way for the agent desk (agents' files)
//! and the customer channel (customers' files): each one downloaded with the app's bot token
//! and bounded by the gateway's limit.

use switchboard_api::{Attachment, IngestError};
use tracing::warn;

use super::client::{Download, SlackWeb};
use crate::convert::SharedFile;

/// Downloads the files of one message. A file over `max_bytes` (announced in the event, or
/// by the download's Content-Length before the body is read: Socket Mode events lose the
/// `size` field in slack-morphism's model, or counted while reading) comes
/// back without bytes, so the gateway names it and tells the sender; a download that failed
/// for a reason that may pass asks Slack to redeliver the event (`Unavailable`); one that
/// cannot succeed comes back without bytes, reported as not received.
pub(crate) async fn fetch(
    web: &dyn SlackWeb,
    files: Vec<SharedFile>,
    max_bytes: u64,
) -> Result<Vec<Attachment>, IngestError> {
    let mut fetched = Vec::with_capacity(files.len());
    for file in files {
        if file.size > max_bytes {
            fetched.push(Attachment::over_limit(
                &file.name,
                &file.content_type,
                file.size,
            ));
            continue;
        }
        match web.download(&file.url, max_bytes).await {
            Ok(Download::Complete(bytes)) => {
                fetched.push(Attachment::new(&file.name, &file.content_type, bytes))
            }
            Ok(Download::TooLarge(size)) => fetched.push(Attachment::over_limit(
                &file.name,
                &file.content_type,
                size.unwrap_or(max_bytes + 1),
            )),
            Err(error) if error.is_retryable() => {
                return Err(IngestError::Unavailable(error.to_string()))
            }
            Err(error) => {
                warn!(%error, file = %file.name, "shared file not downloaded");
                // Without bytes and within the limit: the core reports it as not received.
                fetched.push(Attachment::over_limit(&file.name, &file.content_type, 0));
            }
        }
    }
    Ok(fetched)
}
