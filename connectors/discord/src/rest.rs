//! The few Discord REST calls the connector makes, with errors mapped to [`ConnectorError`].
//!
//! Requests are built by serenity (`Request` + `Route`: its paths, its `Bot` authorization,
//! its proxy rewrite for a non-Discord host) but executed on a `reqwest::Client` we keep,
//! because serenity's `ErrorResponse` drops the 429 body's `retry_after` and the
//! `Retry-After` header, which the outbox needs to back off correctly. serenity's own rate
//! limiter is off: the core's outbox retries on `RateLimited`, and per-route buckets are
//! honoured by respecting every 429.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, USER_AGENT};
use reqwest::multipart::{Form, Part};
use reqwest::RequestBuilder;
use serde::Deserialize;
use serde_json::Value;
use serenity::http::{LightMethod, Request, Route};
use serenity::model::id::{ChannelId, InteractionId, MessageId};
use switchboard_api::{ConnectorError, Fetched};

use crate::convert::{self, Upload};

/// The connector's name in every error it returns.
pub const CONNECTOR: &str = "discord";

/// How long one REST call may take before it counts as a transient failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// How long an upload or a download may take (files are bigger than messages).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// The host serenity's routes start with, replaced by the proxy for a stand-in.
const DISCORD_HOST: &str = "https://discord.com";

/// Discord's JSON error code for "a thread has already been created for this message".
const THREAD_ALREADY_CREATED: u64 = 160004;

/// A Discord REST client for one bot token.
#[derive(Clone)]
pub struct Rest {
    client: reqwest::Client,
    /// `Bot <token>`, as serenity sends it.
    authorization: String,
    /// The host replacing `https://discord.com`, for a stand-in; `None` talks to Discord.
    proxy: Option<String>,
}

/// The fields of a channel the connector reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelInfo {
    /// The channel's id.
    #[serde(deserialize_with = "snowflake")]
    pub id: u64,
    /// For a thread: the channel it lives in.
    #[serde(default, deserialize_with = "optional_snowflake")]
    pub parent_id: Option<u64>,
}

/// The fields of the bot's own user the connector reads.
#[derive(Debug, Clone, Deserialize)]
pub struct BotUser {
    /// The bot's user id.
    #[serde(deserialize_with = "snowflake")]
    pub id: u64,
    /// The bot's username.
    #[serde(default)]
    pub username: String,
}

impl Rest {
    /// A client for `token`; `api_base` other than Discord's own host is used as a proxy.
    pub fn new(client: reqwest::Client, token: &str, api_base: &str) -> Rest {
        let token = token.trim();
        let authorization = if token.starts_with("Bot ") {
            token.to_string()
        } else {
            format!("Bot {token}")
        };
        let proxy = (api_base != crate::config::DISCORD_API_URL).then(|| api_base.to_string());
        Rest {
            client,
            authorization,
            proxy,
        }
    }

    /// `GET /users/@me`: proves the token works before the gateway connects.
    pub async fn current_user(&self) -> Result<BotUser, ConnectorError> {
        let body = self
            .call(Request::new(Route::UserMe, LightMethod::Get))
            .await?;
        parse(&body, "GET /users/@me")
    }

    /// `GET /channels/{id}`: used to learn whether a channel is a thread of the support channel.
    pub async fn channel(&self, channel: u64) -> Result<ChannelInfo, ConnectorError> {
        let route = Route::Channel {
            channel_id: ChannelId::new(channel),
        };
        let body = self.call(Request::new(route, LightMethod::Get)).await?;
        parse(&body, "GET /channels/{id}")
    }

    /// `POST /channels/{id}/messages`; returns the new message's id.
    pub async fn create_message(&self, channel: u64, body: &Value) -> Result<u64, ConnectorError> {
        let route = Route::ChannelMessages {
            channel_id: ChannelId::new(channel),
        };
        let request = Request::new(route, LightMethod::Post).body(Some(body.to_string().into()));
        let response = self.call(request).await?;
        let message: ChannelInfo = parse(&response, "POST /channels/{id}/messages")?;
        Ok(message.id)
    }

    /// `DELETE /channels/{id}/messages/{id}`: `Ok(true)` once it is gone (a 404 Unknown
    /// Message is a delete done already), `Ok(false)` when Discord refuses (403: an archived
    /// or locked thread, a channel the bot lost access to).
    pub async fn delete_message(&self, channel: u64, message: u64) -> Result<bool, ConnectorError> {
        let route = Route::ChannelMessage {
            channel_id: ChannelId::new(channel),
            message_id: MessageId::new(message),
        };
        match self.call(Request::new(route, LightMethod::Delete)).await {
            Ok(_) => Ok(true),
            Err(ConnectorError::Permanent { detail, .. }) if detail.starts_with("HTTP 404") => {
                Ok(true)
            }
            Err(ConnectorError::Permanent { detail, .. }) if detail.starts_with("HTTP 403") => {
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// `POST /channels/{id}/messages/{id}/threads`; returns the thread's id. A thread that
    /// already exists (a replayed starter message) is no error: its id is the message's.
    pub async fn start_thread(
        &self,
        channel: u64,
        message: u64,
        name: &str,
    ) -> Result<u64, ConnectorError> {
        let route = Route::ChannelMessageThreads {
            channel_id: ChannelId::new(channel),
            message_id: MessageId::new(message),
        };
        // 1440 minutes: a quiet customer's thread stays open for a day.
        let body = serde_json::json!({"name": name, "auto_archive_duration": 1440});
        let request = Request::new(route, LightMethod::Post).body(Some(body.to_string().into()));
        match self.call(request).await {
            Ok(response) => Ok(parse::<ChannelInfo>(&response, "POST .../threads")?.id),
            Err(ConnectorError::Permanent { detail, .. })
                if detail.contains(&THREAD_ALREADY_CREATED.to_string()) =>
            {
                Ok(message)
            }
            Err(error) => Err(error),
        }
    }

    /// `POST /interactions/{id}/{token}/callback` with type 6 (DEFERRED_UPDATE_MESSAGE): the
    /// click is acknowledged without changing the message; the answer comes as a message.
    pub async fn ack_interaction(&self, id: u64, token: &str) -> Result<(), ConnectorError> {
        let route = Route::InteractionResponse {
            interaction_id: InteractionId::new(id),
            token,
        };
        let body = serde_json::json!({"type": 6});
        let request = Request::new(route, LightMethod::Post).body(Some(body.to_string().into()));
        self.call(request).await.map(|_| ())
    }

    /// `POST /channels/{id}/messages` with files, as Discord takes them: `multipart/form-data`
    /// with the JSON body as `payload_json` and each file as `files[n]` (announced in the
    /// body's `attachments` by the same `n`); returns the new message's id.
    pub async fn create_message_with_files(
        &self,
        channel: u64,
        body: &Value,
        uploads: &[Upload],
    ) -> Result<u64, ConnectorError> {
        if uploads.is_empty() {
            return self.create_message(channel, body).await;
        }
        // serenity's `CreateAttachment` numbers its files only inside serenity's own `Http`,
        // which would hide the 429 details; the form is built here the way it builds it.
        let mut form = Form::new().text("payload_json", body.to_string());
        for (index, upload) in uploads.iter().enumerate() {
            let part = Part::bytes(upload.bytes.to_vec())
                .file_name(upload.name.clone())
                .mime_str(&upload.content_type)
                .or_else(|_| {
                    Part::bytes(upload.bytes.to_vec())
                        .file_name(upload.name.clone())
                        .mime_str("application/octet-stream")
                })
                .map_err(|error| ConnectorError::Permanent {
                    connector: CONNECTOR,
                    detail: format!("cannot attach {}: {error}", upload.name),
                })?;
            form = form.part(format!("files[{index}]"), part);
        }
        let route = Route::ChannelMessages {
            channel_id: ChannelId::new(channel),
        };
        let mut url = route.path().to_string();
        if let Some(proxy) = &self.proxy {
            url = url.replace(DISCORD_HOST, proxy.trim_end_matches('/'));
        }
        let request = self
            .client
            .post(url)
            .header(AUTHORIZATION, &self.authorization)
            .header(USER_AGENT, serenity::constants::USER_AGENT)
            .multipart(form)
            .timeout(UPLOAD_TIMEOUT);
        let response = self.execute(request).await?;
        let message: ChannelInfo = parse(&response, "POST /channels/{id}/messages (files)")?;
        Ok(message.id)
    }

    /// Downloads a customer's attachment from Discord's CDN (the signed URL needs no token,
    /// and none is sent), refusing more than `max_bytes`, announced or counted.
    pub async fn download(&self, url: &str, max_bytes: u64) -> Result<Fetched, ConnectorError> {
        let transient = |detail: String| ConnectorError::Transient {
            connector: CONNECTOR,
            detail,
        };
        let mut response = self
            .client
            .get(url)
            .timeout(UPLOAD_TIMEOUT)
            .send()
            .await
            .map_err(|error| transient(format!("attachment download failed: {error}")))?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(status_error(status, b"", None));
        }
        if let Some(length) = response
            .content_length()
            .filter(|length| *length > max_bytes)
        {
            return Ok(Fetched::TooLarge(length));
        }
        let mut data: Vec<u8> = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| transient(format!("attachment download failed: {error}")))?
        {
            let total = data.len() as u64 + chunk.len() as u64;
            if total > max_bytes {
                return Ok(Fetched::TooLarge(total));
            }
            data.extend_from_slice(&chunk);
        }
        Ok(Fetched::Bytes(Bytes::from(data)))
    }

    async fn call(&self, request: Request<'_>) -> Result<Vec<u8>, ConnectorError> {
        let request = request
            .build(&self.client, &self.authorization, self.proxy.as_deref())
            .map_err(|error| ConnectorError::Permanent {
                connector: CONNECTOR,
                detail: format!("cannot build request: {error}"),
            })?
            .timeout(REQUEST_TIMEOUT);
        self.execute(request).await
    }

    async fn execute(&self, request: RequestBuilder) -> Result<Vec<u8>, ConnectorError> {
        let response = request
            .send()
            .await
            .map_err(|error| ConnectorError::Transient {
                connector: CONNECTOR,
                detail: format!("request failed: {error}"),
            })?;
        let status = response.status().as_u16();
        let retry_header = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body = response
            .bytes()
            .await
            .map_err(|error| ConnectorError::Transient {
                connector: CONNECTOR,
                detail: format!("reading the response failed: {error}"),
            })?
            .to_vec();
        match status {
            200..=299 => Ok(body),
            _ => Err(status_error(status, &body, retry_header.as_deref())),
        }
    }
}

/// Maps a failed HTTP status to whether and when to retry.
pub fn status_error(status: u16, body: &[u8], retry_after: Option<&str>) -> ConnectorError {
    let detail = || {
        let text = String::from_utf8_lossy(body);
        let text: String = text.chars().take(300).collect();
        format!("HTTP {status}: {text}")
    };
    match status {
        429 => ConnectorError::RateLimited {
            connector: CONNECTOR,
            retry_after: convert::retry_after(body, retry_after),
        },
        401 => ConnectorError::Auth {
            connector: CONNECTOR,
            detail: "discord: bot token rejected (401)".to_string(),
        },
        500..=599 | 408 => ConnectorError::Transient {
            connector: CONNECTOR,
            detail: detail(),
        },
        // 400/403/404...: a missing permission, a deleted channel, a bad payload.
        _ => ConnectorError::Permanent {
            connector: CONNECTOR,
            detail: detail(),
        },
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8], what: &str) -> Result<T, ConnectorError> {
    serde_json::from_slice(body).map_err(|error| ConnectorError::Transient {
        connector: CONNECTOR,
        detail: format!("unexpected response to {what}: {error}"),
    })
}

/// Discord sends ids as strings (they exceed JavaScript's integers); accept numbers too.
fn snowflake<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    match Id::deserialize(deserializer)? {
        Id::Number(id) => Ok(id),
        Id::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

fn optional_snowflake<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => snowflake(value).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_say_whether_to_retry() {
        let limited = status_error(
            429,
            br#"{"message":"slow","retry_after":0.25,"global":false}"#,
            Some("1"),
        );
        assert!(
            matches!(limited, ConnectorError::RateLimited { retry_after, .. } if retry_after == Duration::from_millis(250))
        );
        let header_only = status_error(429, b"", Some("3"));
        assert!(
            matches!(header_only, ConnectorError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(3))
        );
        let auth = status_error(401, b"{}", None);
        assert!(matches!(auth, ConnectorError::Auth { .. }));
        assert!(auth
            .to_string()
            .contains("discord: bot token rejected (401)"));
        assert!(matches!(
            status_error(403, b"{}", None),
            ConnectorError::Permanent { .. }
        ));
        assert!(matches!(
            status_error(404, b"{}", None),
            ConnectorError::Permanent { .. }
        ));
        assert!(status_error(502, b"bad gateway", None).is_retryable());
    }

    #[test]
    fn ids_parse_from_strings_or_numbers() {
        let info: ChannelInfo =
            serde_json::from_str(r#"{"id":"41771983423143937","parent_id":null}"#).unwrap();
        assert_eq!((info.id, info.parent_id), (41771983423143937, None));
        let info: ChannelInfo = serde_json::from_str(r#"{"id":7,"parent_id":"9"}"#).unwrap();
        assert_eq!((info.id, info.parent_id), (7, Some(9)));
    }
}
