//! Erasing the bot's own posts in a thread (`switchboard contact forget`): the desk's in a
//! customer's desk thread, and the customer channel's replies in the customer's own thread.

use switchboard_api::{ConnectorError, ForgottenPosts, ThreadRef};

use super::Shared;
use crate::app::client::Deletion;
use crate::app::SlackApp;

/// What a post Slack refuses to delete is overwritten with.
pub const REDACTED: &str = "[removed at the customer's request]";

/// Deletes every post of the bot in `thread` (files it uploaded too), replies first: Slack
/// keeps a deleted parent that still has replies as a "This message was deleted" tombstone.
/// Running it again finds nothing more to do, so a failure halfway is retried by re-running.
pub(crate) async fn forget_thread(
    shared: &Shared,
    thread: &ThreadRef,
) -> Result<ForgottenPosts, ConnectorError> {
    forget_bot_posts(&shared.app, thread).await
}

/// [`forget_thread`] for any thread the app's bot posted in.
pub(crate) async fn forget_bot_posts(
    app: &SlackApp,
    thread: &ThreadRef,
) -> Result<ForgottenPosts, ConnectorError> {
    let bot = app.bot().await?.user_id.clone();
    let web = app.web();
    let messages = match web.thread_messages(&thread.channel, &thread.ts).await {
        Ok(messages) => messages,
        // The thread (or its channel) is gone already: nothing of ours is left in it.
        Err(ConnectorError::Permanent { detail, .. })
            if detail.contains("thread_not_found") || detail.contains("channel_not_found") =>
        {
            return Ok(ForgottenPosts::default())
        }
        Err(error) => return Err(app.named(error)),
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
