//! The Web API calls behind buttons and modals: `chat.postEphemeral`, `views.open`, and
//! `conversations.members` (who may press the desk's buttons).

use serde::Deserialize;
use serde_json::{json, Value};
use slack_morphism::prelude::*;
use switchboard_api::ConnectorError;

use super::{map_error, MorphismWeb};
use hyper_util::client::legacy::connect::Connect;

/// Members asked for per `conversations.members` page.
const MEMBERS_PAGE: u16 = 1000;
/// Pages read before a channel is given up as too large to check.
const MEMBERS_PAGES: usize = 50;

/// A `views.open` answer, read only as far as success goes: slack-morphism's view model is
/// not needed to know the modal opened.
#[derive(Debug, Deserialize)]
struct Opened {}

impl<H: Connect + Clone + Send + Sync + 'static> MorphismWeb<H> {
    pub(super) async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), ConnectorError> {
        let request = SlackApiChatPostEphemeralRequest::new(
            channel.into(),
            user.into(),
            SlackMessageContent::new().with_text(text.to_owned()),
        );
        self.client
            .open_session(&self.bot_token)
            .chat_post_ephemeral(&request)
            .await
            .map_err(|error| map_error("bot token", "chat.postEphemeral", error))?;
        Ok(())
    }

    pub(super) async fn views_open(
        &self,
        trigger_id: &str,
        view: Value,
    ) -> Result<(), ConnectorError> {
        // The modal is built as Slack's JSON; posting it as is keeps every field Slack reads.
        let request = json!({"trigger_id": trigger_id, "view": view});
        let _: Opened = self
            .client
            .open_session(&self.bot_token)
            .http_session_api
            .http_post("views.open", &request, Some(&SLACK_TIER4_METHOD_CONFIG))
            .await
            .map_err(|error| map_error("bot token", "views.open", error))?;
        Ok(())
    }

    pub(super) async fn members(&self, channel: &str) -> Result<Vec<String>, ConnectorError> {
        let session = self.client.open_session(&self.bot_token);
        let mut members = Vec::new();
        let mut cursor: Option<SlackCursorId> = None;
        for _ in 0..MEMBERS_PAGES {
            let request = SlackApiConversationsMembersRequest::new()
                .with_channel(channel.into())
                .with_limit(MEMBERS_PAGE)
                .opt_cursor(cursor.clone());
            let page = session
                .conversations_members(&request)
                .await
                .map_err(|error| map_error("bot token", "conversations.members", error))?;
            members.extend(page.members.into_iter().map(|user| user.to_string()));
            cursor = page
                .response_metadata
                .and_then(|meta| meta.next_cursor)
                .filter(|next| !next.0.is_empty());
            if cursor.is_none() {
                return Ok(members);
            }
        }
        Err(ConnectorError::Transient {
            connector: super::CONNECTOR,
            detail: format!("channel {channel} has too many members to check"),
        })
    }
}
