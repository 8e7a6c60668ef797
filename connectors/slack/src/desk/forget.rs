//! Erasing the desk's own posts in a customer's thread (`switchboard contact forget`).

use switchboard_api::{ConnectorError, ForgottenPosts, ThreadRef};

use super::Shared;
use crate::app::client::Deletion;

/// What a post Slack refuses to delete is overwritten with.
pub const REDACTED: &str = "[removed at the customer's request]";

/// Deletes every post of the bot in `thread` (files it uploaded too), replies first: Slack
/// keeps a deleted parent that still has replies as a "This message was deleted" tombstone.
/// Running it again finds nothing more to do, so a failure halfway is retried by re-running.
pub(crate) async fn forget_thread(
    shared: &Shared,
    thread: &ThreadRef,
) -> Result<ForgottenPosts, ConnectorError> {
    let bot = shared.app.bot().await?.user_id.clone();
    let web = shared.app.web();
    let messages = match web.thread_messages(&thread.channel, &thread.ts).await {
        Ok(messages) => messages,
        // The thread (or its channel) is gone already: nothing of ours is left in it.
        Err(ConnectorError::Permanent { detail, .. })
            if detail.contains("thread_not_found") || detail.contains("channel_not_found") =>
        {
            return Ok(ForgottenPosts::default())
        }
        Err(error) => return Err(shared.app.named(error)),
    };
    let mut forgotten = ForgottenPosts::default();
    for message in messages.iter().rev() {
        if message.user.as_deref() != Some(bot.as_str()) {
            forgotten.left_by_people += 1;
            continue;
        }
        for file in &message.files {
            if web.delete_file(file).await? {
                forgotten.files_deleted += 1;
            }
        }
        match web.delete_message(&thread.channel, &message.ts).await? {
            Deletion::Deleted => forgotten.deleted += 1,
            Deletion::Gone => {}
            Deletion::Refused => {
                web.update_message(&thread.channel, &message.ts, REDACTED, Vec::new())
                    .await?;
                forgotten.redacted += 1;
            }
        }
    }
    Ok(forgotten)
}
