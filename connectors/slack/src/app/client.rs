//! The desk's Slack transport: the few Web API calls it makes and the Socket Mode listener,
//! all through slack-morphism, plus the mapping of Slack's errors to [`ConnectorError`]s.
//!
//! slack-morphism's client is generic over its hyper connector. The desk picks one at run
//! time by the API URL's scheme: a plain `HttpConnector` for `http://` (the loopback stand-in;
//! no TLS), rustls with the system roots for `https://` (Slack itself; `tls` feature). The
//! generic [`MorphismWeb`] hides that choice behind the small [`SlackWeb`] trait.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::Value;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use switchboard_api::{ConnectorError, IngestError};
use tracing::warn;

use crate::config::Secret;

/// The name errors and logs carry.
pub const CONNECTOR: &str = "slack desk";

/// Who the bot is, learned from `auth.test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    /// The bot's user id; events from it are never relayed.
    pub user_id: String,
    /// The workspace's id.
    pub team_id: String,
}

/// What a Slack app does with what Slack sends it, over Socket Mode or the Events API: the
/// `event_callback` JSON of each event and the payload of each interaction. An error
/// withholds the ack (Socket Mode) or answers 503 (Events API) so Slack redelivers.
#[async_trait]
pub trait EnvelopeHandler: Send + Sync {
    /// Handles one callback; `Err(Unavailable)` means "do not ack, let Slack redeliver".
    async fn handle_callback(&self, callback: &Value) -> Result<(), IngestError>;

    /// Handles one `interactive` payload (e.g. `block_actions`); the desk does not use them.
    async fn handle_interaction(&self, _payload: &Value) -> Result<(), IngestError> {
        Ok(())
    }
}

/// A Slack user as `users.info` shows them: a name to show and, with `users:read.email`, the
/// account's email address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    /// The display name, else the real name.
    pub name: Option<String>,
    /// `profile.email`, when the app may read it.
    pub email: Option<String>,
}

/// What a bounded download got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Download {
    /// The whole file.
    Complete(Bytes),
    /// The file is over the limit; its size when Slack said it (`Content-Length`).
    TooLarge(Option<u64>),
}

/// One message of a thread, as far as looking for an earlier copy needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadMessage {
    /// The message's `ts`.
    pub ts: String,
    /// Who posted it (a bot's messages carry the bot's user id).
    pub user: Option<String>,
    /// The thread it belongs to (its parent's `ts`; a parent's own `ts`).
    pub thread_ts: Option<String>,
    /// The message metadata it was posted with.
    pub metadata: Option<SlackMessageMetadata>,
    /// The ids of files shared with it.
    pub files: Vec<String>,
}

/// What became of a `chat.delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Deleted now.
    Deleted,
    /// Already gone.
    Gone,
    /// Slack will not delete it (a workspace's retention or compliance settings).
    Refused,
}

/// A `conversations.replies` page, read only as far as the lookup needs: slack-morphism's full
/// message model would fail the whole page on one message it cannot read (another app's
/// metadata with a number in its payload, say).
#[derive(Debug, Deserialize)]
struct RepliesPage {
    #[serde(default)]
    messages: Vec<RepliesMessage>,
    #[serde(default)]
    response_metadata: Option<RepliesCursor>,
}

#[derive(Debug, Deserialize)]
struct RepliesMessage {
    ts: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    thread_ts: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    files: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct RepliesCursor {
    #[serde(default)]
    next_cursor: Option<String>,
}

impl RepliesMessage {
    /// Its metadata with the payload's string values (the only kind this crate writes).
    fn into_thread_message(self) -> ThreadMessage {
        let metadata = self.metadata.and_then(|metadata| {
            let event_type = metadata.get("event_type")?.as_str()?.to_string();
            let payload = metadata
                .get("event_payload")
                .and_then(Value::as_object)
                .map(|payload| {
                    payload
                        .iter()
                        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
                        .collect()
                });
            Some(SlackMessageMetadata::new(event_type).opt_event_payload(payload))
        });
        ThreadMessage {
            ts: self.ts,
            user: self.user,
            thread_ts: self.thread_ts,
            metadata,
            files: (self.files.iter())
                .filter_map(|file| Some(file.get("id")?.as_str()?.to_string()))
                .collect(),
        }
    }
}

/// Messages asked for per `conversations.replies` page (Slack advises at most 200).
const THREAD_PAGE: u16 = 200;
/// Pages read before a thread is given up as too long to search.
const THREAD_PAGES: usize = 10;

/// The Slack calls the desk makes.
#[async_trait]
pub trait SlackWeb: Send + Sync {
    /// `auth.test` with the bot token.
    async fn auth_test(&self) -> Result<BotIdentity, ConnectorError>;
    /// `chat.postMessage`, with message `metadata` when given; returns the new message's `ts`.
    async fn post_message(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: Option<Vec<Value>>,
        metadata: Option<SlackMessageMetadata>,
    ) -> Result<String, ConnectorError>;
    /// `chat.postMessage` of a thread reply also shown in the channel (`reply_broadcast`).
    async fn post_broadcast_reply(
        &self,
        channel: &str,
        thread_ts: &str,
        text: &str,
    ) -> Result<String, ConnectorError>;
    /// Every message of the thread `thread_ts` (`conversations.replies`, page by page), oldest
    /// first, with its metadata.
    async fn thread_messages(
        &self,
        channel: &str,
        thread_ts: &str,
    ) -> Result<Vec<ThreadMessage>, ConnectorError>;
    /// `chat.update` of a message's text and blocks.
    async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Vec<Value>,
    ) -> Result<(), ConnectorError>;
    /// `chat.delete` of one of the bot's own messages.
    async fn delete_message(&self, channel: &str, ts: &str) -> Result<Deletion, ConnectorError>;
    /// `files.delete` of a file the bot uploaded; false when it was already gone.
    async fn delete_file(&self, file_id: &str) -> Result<bool, ConnectorError>;
    /// `users.info`: the display name, else the real name, else `None`.
    async fn user_name(&self, user: &str) -> Result<Option<String>, ConnectorError>;

    /// Whether the bot is a member of `channel` (`conversations.info`).
    async fn is_member(&self, channel: &str) -> Result<bool, ConnectorError>;
    /// Runs Socket Mode with the app token until the returned future is dropped;
    /// `interactive` also hands `interactive` envelopes (button presses) to
    /// [`EnvelopeHandler::handle_interaction`].
    async fn socket_mode(
        &self,
        handler: Arc<dyn EnvelopeHandler>,
        interactive: bool,
    ) -> Result<(), ConnectorError>;
    /// `users.info`: the name and, when present, the profile's email.
    async fn user_profile(&self, user: &str) -> Result<UserProfile, ConnectorError>;
    /// Uploads a file into a thread (files.getUploadURLExternal, the bytes to the upload URL,
    /// files.completeUploadExternal with the channel and thread); returns the file id.
    async fn upload_file(
        &self,
        channel: &str,
        thread_ts: &str,
        name: &str,
        content_type: &str,
        bytes: Bytes,
        comment: &str,
    ) -> Result<String, ConnectorError>;
    /// Fetches a file's `url_private_download` with the bot token, refusing more than `max_bytes`.
    async fn download(&self, url: &str, max_bytes: u64) -> Result<Download, ConnectorError>;
    /// The bot token's granted scopes, as `auth.test` lists them in its `x-oauth-scopes` header
    /// (which slack-morphism does not expose); `None` when Slack sent no such header.
    async fn granted_scopes(&self) -> Result<Option<Vec<String>>, ConnectorError>;
    /// `chat.postEphemeral`: `text` shown to `user` alone in `channel`.
    async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), ConnectorError>;
    /// `views.open` of a modal with an interaction's `trigger_id` (valid 3 seconds, once).
    async fn open_view(&self, trigger_id: &str, view: Value) -> Result<(), ConnectorError>;
    /// Every member of `channel` (`conversations.members`, page by page).
    async fn channel_members(&self, channel: &str) -> Result<Vec<String>, ConnectorError>;
}

#[path = "interactive_api.rs"]
mod interactive_api;

pub use super::errors::map_error;

/// Builds the transport for `api_base`: plain HTTP for `http://`, rustls for `https://`.
pub fn connect(
    api_base: &str,
    bot_token: &Secret,
    app_token: Option<&Secret>,
) -> Result<Arc<dyn SlackWeb>, ConnectorError> {
    let bot_token = SlackApiToken::new(bot_token.expose().into());
    let app_token = app_token.map(|token| SlackApiToken::new(token.expose().into()));
    if api_base.starts_with("http://") {
        return Ok(Arc::new(MorphismWeb::new(
            HttpConnector::new(),
            api_base,
            bot_token,
            app_token,
        )));
    }
    https(api_base, bot_token, app_token)
}

#[cfg(feature = "tls")]
fn https(
    api_base: &str,
    bot_token: SlackApiToken,
    app_token: Option<SlackApiToken>,
) -> Result<Arc<dyn SlackWeb>, ConnectorError> {
    // Reads the system's root certificates; no network.
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|error| ConnectorError::Permanent {
            connector: CONNECTOR,
            detail: format!("no TLS root certificates available: {error}"),
        })?
        .https_only()
        .enable_http1()
        .build();
    Ok(Arc::new(MorphismWeb::new(
        https, api_base, bot_token, app_token,
    )))
}

#[cfg(not(feature = "tls"))]
fn https(
    api_base: &str,
    _bot_token: SlackApiToken,
    _app_token: Option<SlackApiToken>,
) -> Result<Arc<dyn SlackWeb>, ConnectorError> {
    Err(ConnectorError::Permanent {
        connector: CONNECTOR,
        detail: format!("{api_base} needs switchboard-slack's `tls` feature"),
    })
}

/// [`SlackWeb`] through slack-morphism's client with connector `H`.
pub struct MorphismWeb<H: Connect + Clone + Send + Sync + 'static> {
    client: Arc<SlackClient<SlackClientHyperConnector<H>>>,
    files: HyperClient<H, Empty<Bytes>>,
    api_base: String,
    bot_token: SlackApiToken,
    app_token: Option<SlackApiToken>,
}

impl<H: Connect + Clone + Send + Sync + 'static> MorphismWeb<H> {
    fn new(
        connector: H,
        api_base: &str,
        bot_token: SlackApiToken,
        app_token: Option<SlackApiToken>,
    ) -> Self {
        MorphismWeb {
            files: HyperClient::builder(TokioExecutor::new()).build(connector.clone()),
            api_base: api_base.trim_end_matches('/').to_owned(),
            client: Arc::new(SlackClient::new(
                SlackClientHyperConnector::with_connector(connector).with_slack_api_url(api_base),
            )),
            bot_token,
            app_token,
        }
    }
}

fn blocks_of(blocks: Vec<Value>) -> Result<Vec<SlackBlock>, ConnectorError> {
    serde_json::from_value(Value::Array(blocks)).map_err(|error| ConnectorError::Permanent {
        connector: CONNECTOR,
        detail: format!("briefing blocks do not fit slack-morphism's Block Kit model: {error}"),
    })
}

impl<H: Connect + Clone + Send + Sync + 'static> MorphismWeb<H> {
    /// A bodiless request to `url` carrying the bot token, for the calls slack-morphism's
    /// typed client cannot make (a response header, a file download).
    fn with_bot_token(
        &self,
        request: hyper::http::request::Builder,
        url: &str,
    ) -> Result<hyper::Request<Empty<Bytes>>, ConnectorError> {
        request
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.bot_token.token_value.0),
            )
            .body(Empty::new())
            .map_err(|error| ConnectorError::Permanent {
                connector: CONNECTOR,
                detail: format!("{url} is not usable: {error}"),
            })
    }
}

#[async_trait]
impl<H: Connect + Clone + Send + Sync + 'static> SlackWeb for MorphismWeb<H> {
    async fn auth_test(&self) -> Result<BotIdentity, ConnectorError> {
        let session = self.client.open_session(&self.bot_token);
        let response = session
            .auth_test()
            .await
            .map_err(|error| map_error("bot token", "auth.test", error))?;
        Ok(BotIdentity {
            user_id: response.user_id.to_string(),
            team_id: response.team_id.to_string(),
        })
    }

    async fn post_message(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: Option<Vec<Value>>,
        metadata: Option<SlackMessageMetadata>,
    ) -> Result<String, ConnectorError> {
        let mut content = SlackMessageContent::new()
            .with_text(text.to_string())
            .opt_metadata(metadata);
        if let Some(blocks) = blocks {
            content = content.with_blocks(blocks_of(blocks)?);
        }
        let mut request = SlackApiChatPostMessageRequest::new(channel.into(), content);
        if let Some(thread_ts) = thread_ts {
            request = request.with_thread_ts(thread_ts.into());
        }
        let session = self.client.open_session(&self.bot_token);
        let response = session
            .chat_post_message(&request)
            .await
            .map_err(|error| map_error("bot token", "chat.postMessage", error))?;
        Ok(response.ts.to_string())
    }

    async fn post_broadcast_reply(
        &self,
        channel: &str,
        thread_ts: &str,
        text: &str,
    ) -> Result<String, ConnectorError> {
        let content = SlackMessageContent::new().with_text(text.to_string());
        let request = SlackApiChatPostMessageRequest::new(channel.into(), content)
            .with_thread_ts(thread_ts.into())
            .with_reply_broadcast(true);
        let session = self.client.open_session(&self.bot_token);
        let response = session
            .chat_post_message(&request)
            .await
            .map_err(|error| map_error("bot token", "chat.postMessage", error))?;
        Ok(response.ts.to_string())
    }

    async fn thread_messages(
        &self,
        channel: &str,
        thread_ts: &str,
    ) -> Result<Vec<ThreadMessage>, ConnectorError> {
        let session = self.client.open_session(&self.bot_token);
        let limit = THREAD_PAGE.to_string();
        let mut messages = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..THREAD_PAGES {
            // slack-morphism's replies request has no `include_all_metadata` (its history
            // request does), so the method goes through the session's plain GET: the same
            // call with that parameter added, since without it Slack may leave the payload out.
            let params: Vec<(&str, Option<&str>)> = vec![
                ("channel", Some(channel)),
                ("ts", Some(thread_ts)),
                ("limit", Some(limit.as_str())),
                ("include_all_metadata", Some("true")),
                ("cursor", cursor.as_deref()),
            ];
            let page: RepliesPage = session
                .http_session_api
                .http_get(
                    "conversations.replies",
                    &params,
                    Some(&SLACK_TIER3_METHOD_CONFIG),
                )
                .await
                .map_err(|error| map_error("bot token", "conversations.replies", error))?;
            messages.extend(
                page.messages
                    .into_iter()
                    .map(RepliesMessage::into_thread_message),
            );
            cursor = page
                .response_metadata
                .and_then(|meta| meta.next_cursor)
                .filter(|next| !next.is_empty());
            if cursor.is_none() {
                return Ok(messages);
            }
        }
        Err(ConnectorError::Transient {
            connector: CONNECTOR,
            detail: format!(
                "thread {thread_ts} has more than {} messages; not searched to its end",
                usize::from(THREAD_PAGE) * THREAD_PAGES
            ),
        })
    }

    async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Vec<Value>,
    ) -> Result<(), ConnectorError> {
        let content = SlackMessageContent::new()
            .with_text(text.to_string())
            .with_blocks(blocks_of(blocks)?);
        let request = SlackApiChatUpdateRequest::new(channel.into(), content, ts.into());
        let session = self.client.open_session(&self.bot_token);
        session
            .chat_update(&request)
            .await
            .map_err(|error| map_error("bot token", "chat.update", error))?;
        Ok(())
    }

    async fn delete_message(&self, channel: &str, ts: &str) -> Result<Deletion, ConnectorError> {
        let session = self.client.open_session(&self.bot_token);
        let request = SlackApiChatDeleteRequest::new(channel.into(), ts.into());
        match session.chat_delete(&request).await {
            Ok(_) => Ok(Deletion::Deleted),
            Err(SlackClientError::ApiError(api)) if api.code == "message_not_found" => {
                Ok(Deletion::Gone)
            }
            Err(SlackClientError::ApiError(api))
                if matches!(
                    api.code.as_str(),
                    "cant_delete_message" | "compliance_exports_prevent_deletion"
                ) =>
            {
                Ok(Deletion::Refused)
            }
            Err(error) => Err(map_error("bot token", "chat.delete", error)),
        }
    }

    async fn delete_file(&self, file_id: &str) -> Result<bool, ConnectorError> {
        let session = self.client.open_session(&self.bot_token);
        let request = SlackApiFilesDeleteRequest::new(file_id.into());
        match session.files_delete(&request).await {
            Ok(_) => Ok(true),
            Err(SlackClientError::ApiError(api)) if api.code == "file_not_found" => Ok(false),
            Err(SlackClientError::ApiError(api)) if api.code == "file_deleted" => Ok(false),
            Err(error) => Err(map_error("bot token", "files.delete", error)),
        }
    }

    async fn is_member(&self, channel: &str) -> Result<bool, ConnectorError> {
        let session = self.client.open_session(&self.bot_token);
        let response = session
            .conversations_info(&SlackApiConversationsInfoRequest::new(channel.into()))
            .await
            .map_err(|error| map_error("bot token", "conversations.info", error))?;
        Ok(response.channel.flags.is_member.unwrap_or(false))
    }

    async fn user_name(&self, user: &str) -> Result<Option<String>, ConnectorError> {
        Ok(self.users_info_profile(user).await?.name)
    }

    async fn socket_mode(
        &self,
        handler: Arc<dyn EnvelopeHandler>,
        interactive: bool,
    ) -> Result<(), ConnectorError> {
        self.listen(handler, interactive).await
    }

    async fn user_profile(&self, user: &str) -> Result<UserProfile, ConnectorError> {
        self.users_info_profile(user).await
    }

    async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), ConnectorError> {
        self.ephemeral(channel, user, text).await
    }

    async fn open_view(&self, trigger_id: &str, view: Value) -> Result<(), ConnectorError> {
        self.views_open(trigger_id, view).await
    }

    async fn channel_members(&self, channel: &str) -> Result<Vec<String>, ConnectorError> {
        self.members(channel).await
    }

    async fn upload_file(
        &self,
        channel: &str,
        thread_ts: &str,
        name: &str,
        content_type: &str,
        bytes: Bytes,
        comment: &str,
    ) -> Result<String, ConnectorError> {
        let session = self.client.open_session(&self.bot_token);
        let target = session
            .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new(
                name.to_string(),
                bytes.len(),
            ))
            .await
            .map_err(|error| map_error("bot token", "files.getUploadURLExternal", error))?;
        session
            .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
                target.upload_url,
                bytes.to_vec(),
                content_type.to_string(),
            ))
            .await
            .map_err(|error| map_error("bot token", "file upload", error))?;
        let mut request =
            SlackApiFilesCompleteUploadExternalRequest::new(vec![SlackApiFilesComplete::new(
                target.file_id.clone(),
            )
            .with_title(name.to_string())])
            .with_channel_id(channel.into())
            .with_thread_ts(thread_ts.into());
        if !comment.is_empty() {
            request = request.with_initial_comment(comment.to_string());
        }
        session
            .files_complete_upload_external(&request)
            .await
            .map_err(|error| map_error("bot token", "files.completeUploadExternal", error))?;
        Ok(target.file_id.to_string())
    }

    async fn granted_scopes(&self) -> Result<Option<Vec<String>>, ConnectorError> {
        let url = format!("{}/auth.test", self.api_base);
        let request = self.with_bot_token(hyper::Request::post(&url), &url)?;
        let response =
            self.files
                .request(request)
                .await
                .map_err(|error| ConnectorError::Transient {
                    connector: CONNECTOR,
                    detail: format!("auth.test failed: {error}"),
                })?;
        let scopes = response
            .headers()
            .get("x-oauth-scopes")
            .and_then(|value| value.to_str().ok())
            .map(|list| {
                list.split(',')
                    .map(|scope| scope.trim().to_owned())
                    .filter(|scope| !scope.is_empty())
                    .collect()
            });
        Ok(scopes)
    }

    async fn download(&self, url: &str, max_bytes: u64) -> Result<Download, ConnectorError> {
        let failed = |detail: String| ConnectorError::Transient {
            connector: CONNECTOR,
            detail,
        };
        let request = self.with_bot_token(hyper::Request::get(url), url)?;
        let response = self
            .files
            .request(request)
            .await
            .map_err(|error| failed(format!("file download failed: {error}")))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(failed(format!("file download answered HTTP {status}")));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        // Without `files:read` Slack answers with its sign-in page instead of the file.
        let html = header(hyper::header::CONTENT_TYPE).is_some_and(|t| t.starts_with("text/html"));
        if !status.is_success() || html {
            return Err(ConnectorError::Permanent {
                connector: CONNECTOR,
                detail: format!(
                    "file download refused (HTTP {status}); does the app have the files:read scope?"
                ),
            });
        }
        let length: Option<u64> =
            header(hyper::header::CONTENT_LENGTH).and_then(|n| n.parse().ok());
        if length.is_some_and(|length| length > max_bytes) {
            return Ok(Download::TooLarge(length));
        }
        let limit = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        match Limited::new(response.into_body(), limit).collect().await {
            Ok(body) => Ok(Download::Complete(body.to_bytes())),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                Ok(Download::TooLarge(length))
            }
            Err(error) => Err(failed(format!("file download interrupted: {error}"))),
        }
    }
}

impl<H: Connect + Clone + Send + Sync + 'static> MorphismWeb<H> {
    async fn users_info_profile(&self, user: &str) -> Result<UserProfile, ConnectorError> {
        let session = self.client.open_session(&self.bot_token);
        let response = session
            .users_info(&SlackApiUsersInfoRequest::new(user.into()))
            .await
            .map_err(|error| map_error("bot token", "users.info", error))?;
        let user = response.user;
        let non_empty = |text: Option<String>| text.filter(|text| !text.trim().is_empty());
        let profile = user.profile.as_ref();
        let name = non_empty(profile.and_then(|p| p.display_name.clone()))
            .or_else(|| non_empty(profile.and_then(|p| p.real_name.clone())))
            .or_else(|| non_empty(user.real_name.clone()));
        let email = non_empty(
            profile
                .and_then(|p| p.email.as_ref())
                .map(|email| email.0.clone()),
        );
        Ok(UserProfile { name, email })
    }

    /// Runs Socket Mode until dropped; `interactive` also delivers button presses.
    async fn listen(
        &self,
        handler: Arc<dyn EnvelopeHandler>,
        interactive: bool,
    ) -> Result<(), ConnectorError> {
        let Some(app_token) = self.app_token.clone() else {
            return Err(ConnectorError::Auth {
                connector: CONNECTOR,
                detail: "Socket Mode needs an app-level token (xapp-...)".to_string(),
            });
        };
        // slack-morphism retries a refused app token forever in the background; one call up
        // front turns a wrong token into an Auth error that stops this connector.
        self.client
            .open_session(&app_token)
            .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
            .await
            .map_err(|error| map_error("app token", "apps.connections.open", error))?;

        let mut callbacks = SlackSocketModeListenerCallbacks::new().with_push_events(on_push_event);
        if interactive {
            callbacks = callbacks.with_interaction_events(on_interaction_event);
        }
        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(self.client.clone())
                .with_error_handler(on_listener_error)
                .with_user_state(handler),
        );
        let listener = Arc::new(SlackClientSocketModeListener::new(
            &SlackClientSocketModeConfig::new(),
            environment,
            callbacks,
        ));
        listener
            .listen_for(&app_token)
            .await
            .map_err(|error| map_error("app token", "apps.connections.open", error))?;
        let _shutdown = ShutdownOnDrop(listener.clone());
        listener.start().await;
        // slack-morphism reconnects by itself (Slack rotates connections every few hours), so
        // this runs until the caller drops it; the guard then closes the websockets.
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// Hands an `interactive` envelope's payload to the handler as Slack's JSON; an error
/// withholds the ack so Slack redelivers.
async fn on_interaction_event<H: Connect + Clone + Send + Sync + 'static>(
    event: SlackInteractionEvent,
    _client: Arc<SlackClient<SlackClientHyperConnector<H>>>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let handler = handler_of(&state).await?;
    let payload = serde_json::to_value(&event)?;
    handler
        .handle_interaction(&payload)
        .await
        .map_err(|error| error.to_string().into())
}

/// The handler `listen` stored in the listener's state.
async fn handler_of(
    state: &SlackClientEventsUserState,
) -> UserCallbackResult<Arc<dyn EnvelopeHandler>> {
    let storage = state.read().await;
    storage
        .get_user_state::<Arc<dyn EnvelopeHandler>>()
        .cloned()
        .ok_or_else(|| "slack: socket mode handler missing".into())
}

/// Closes the Socket Mode connections when `run` is cancelled.
struct ShutdownOnDrop<H: Connect + Clone + Send + Sync + 'static>(
    Arc<SlackClientSocketModeListener<SlackClientHyperConnector<H>>>,
);

impl<H: Connect + Clone + Send + Sync + 'static> Drop for ShutdownOnDrop<H> {
    fn drop(&mut self) {
        let listener = self.0.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { listener.shutdown().await });
        }
    }
}

/// slack-morphism acks an envelope only when this returns `Ok` (or the error handler below
/// says success, which it never does), so a failed sink leaves the envelope un-acked and
/// Slack redelivers it; the core dedupes on `event_id`.
async fn on_push_event<H: Connect + Clone + Send + Sync + 'static>(
    event: SlackPushEventCallback,
    _client: Arc<SlackClient<SlackClientHyperConnector<H>>>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let handler = handler_of(&state).await?;
    // slack-morphism hands a typed event; the desk's mapping works on Slack's JSON.
    let mut callback = serde_json::to_value(&event)?;
    if let Some(object) = callback.as_object_mut() {
        object.insert("type".into(), Value::String("event_callback".into()));
    }
    handler
        .handle_callback(&callback)
        .await
        .map_err(|error| error.to_string().into())
}

/// Logs listener errors; a non-success status withholds the envelope's ack.
fn on_listener_error<H: Connect + Clone + Send + Sync + 'static>(
    error: Box<dyn std::error::Error + Send + Sync + 'static>,
    _client: Arc<SlackClient<SlackClientHyperConnector<H>>>,
    _state: SlackClientEventsUserState,
) -> HttpStatusCode {
    warn!(%error, connector = CONNECTOR, "socket mode event not handled; Slack will redeliver");
    HttpStatusCode::SERVICE_UNAVAILABLE
}
