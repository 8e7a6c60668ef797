//! Slack's Web API errors mapped to [`ConnectorError`]s: which mean a refused token, which are
//! worth retrying, and which are final.

use std::time::Duration;

use slack_morphism::errors::SlackClientError;
use switchboard_api::ConnectorError;
use tracing::debug;

use super::client::CONNECTOR;

/// API error codes that mean the token itself is refused.
const AUTH_CODES: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "missing_scope",
    "not_allowed_token_type",
];

/// API error codes worth retrying.
const TRANSIENT_CODES: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "ratelimited",
];

/// Maps a slack-morphism error of `method` (called with `token`) to a [`ConnectorError`].
pub fn map_error(token: &str, method: &str, error: SlackClientError) -> ConnectorError {
    match error {
        SlackClientError::RateLimitError(limit) => ConnectorError::RateLimited {
            connector: CONNECTOR,
            // Slack always sends Retry-After with a 429; one second is its usual floor.
            retry_after: limit.retry_after.unwrap_or(Duration::from_secs(1)),
        },
        SlackClientError::ApiError(api) => api_error(token, method, &api.code),
        SlackClientError::HttpError(http) => {
            let status = http.status_code;
            if status.as_u16() == 401 || status.as_u16() == 403 {
                ConnectorError::Auth {
                    connector: CONNECTOR,
                    detail: format!("{token} rejected by {method} (HTTP {status})"),
                }
            } else if status.is_server_error() || status.as_u16() == 408 {
                ConnectorError::Transient {
                    connector: CONNECTOR,
                    detail: format!("{method} answered HTTP {status}"),
                }
            } else {
                ConnectorError::Permanent {
                    connector: CONNECTOR,
                    detail: format!("{method} answered HTTP {status}"),
                }
            }
        }
        // Network trouble, a dropped connection, or a response we could not read: the
        // message may still go through later, and the outbox never drops it.
        other => {
            debug!(error = %other, method, "slack call failed");
            ConnectorError::Transient {
                connector: CONNECTOR,
                detail: format!("{method} failed: {}", first_line(&other.to_string())),
            }
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

fn api_error(token: &str, method: &str, code: &str) -> ConnectorError {
    if AUTH_CODES.contains(&code) {
        ConnectorError::Auth {
            connector: CONNECTOR,
            detail: format!("{token} rejected by {method} ({code})"),
        }
    } else if TRANSIENT_CODES.contains(&code) {
        ConnectorError::Transient {
            connector: CONNECTOR,
            detail: format!("{method} failed ({code})"),
        }
    } else {
        // channel_not_found, not_in_channel, is_archived, msg_too_long, invalid_blocks, ...
        ConnectorError::Permanent {
            connector: CONNECTOR,
            detail: format!("{method} refused ({code})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_say_whether_to_retry() {
        let auth = api_error("bot token", "auth.test", "invalid_auth");
        assert_eq!(
            auth.to_string(),
            "slack desk: credentials rejected: bot token rejected by auth.test (invalid_auth)"
        );
        assert!(matches!(
            api_error("bot token", "chat.postMessage", "channel_not_found"),
            ConnectorError::Permanent { .. }
        ));
        assert!(matches!(
            api_error("bot token", "chat.postMessage", "not_in_channel"),
            ConnectorError::Permanent { .. }
        ));
        assert!(api_error("bot token", "chat.postMessage", "internal_error").is_retryable());
    }
}
