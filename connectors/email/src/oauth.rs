//! OAuth 2.0 for IMAP and SMTP: access tokens from a refresh token, and the one-time consent
//! flow that yields the refresh token (`switchboard email authorize`).
//!
//! The `oauth2` crate speaks the protocol; its HTTP requests go over the hyper client (and
//! rustls) the workspace already builds, not the crate's optional reqwest, which would add a
//! second HTTP stack. Tokens are never logged: errors carry the endpoint and the server's
//! error code, never a token.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use tracing::info;

use crate::config::{OAuthConfig, OAuthProvider};

/// A token is refreshed when it has less than this left, so it never expires mid-login.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Longest a token request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The provider refused the refresh token or the client: a person must authorize again.
    #[error("{0}")]
    Refused(String),
    /// Network trouble or a provider outage: retry later.
    #[error("{0}")]
    Unavailable(String),
}

#[cfg(feature = "tls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "tls"))]
type Connector = HttpConnector;

/// The hyper client as the `oauth2` crate's HTTP client.
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
}

/// A failed token request (network, or a response that could not be read).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl HttpClient {
    pub fn new() -> Result<HttpClient, String> {
        #[cfg(feature = "tls")]
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|error| format!("cannot load the system's root certificates: {error}"))?
            .https_or_http()
            .enable_http1()
            .build();
        #[cfg(not(feature = "tls"))]
        let connector = HttpConnector::new();
        Ok(HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let request = hyper::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| HttpError(format!("no answer within {REQUEST_TIMEOUT:?}")))?
            .map_err(|error| HttpError(format!("unreachable: {error}")))?;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(REQUEST_TIMEOUT, body.collect())
            .await
            .map_err(|_| HttpError("response body timed out".into()))?
            .map_err(|error| HttpError(format!("response body: {error}")))?
            .to_bytes()
            .to_vec();
        Ok(HttpResponse::from_parts(parts, body))
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

struct Cached {
    access_token: String,
    refresh_at: Option<Instant>,
}

/// Hands out access tokens, refreshing them before they expire and when a server refused one.
pub struct TokenSource {
    oauth: OAuthConfig,
    token_url: String,
    http: HttpClient,
    /// The refresh token in use: providers may rotate it with each refresh.
    refresh_token: Mutex<String>,
    cached: tokio::sync::Mutex<Option<Cached>>,
    refreshes: AtomicU64,
}

impl TokenSource {
    /// From validated config with its secrets resolved.
    pub fn new(oauth: &OAuthConfig) -> Result<TokenSource, String> {
        let token_url = oauth
            .token_endpoint()
            .ok_or("oauth2.token_url is required with provider = \"custom\"")?;
        Ok(TokenSource {
            refresh_token: Mutex::new(oauth.refresh_token.clone()),
            oauth: oauth.clone(),
            token_url,
            http: HttpClient::new()?,
            cached: tokio::sync::Mutex::new(None),
            refreshes: AtomicU64::new(0),
        })
    }

    /// How many times a token was fetched from the token endpoint.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// A token with at least [`REFRESH_MARGIN`] left (or with no stated lifetime).
    pub async fn access_token(&self) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref() {
            if token.refresh_at.is_none_or(|at| Instant::now() < at) {
                return Ok(token.access_token.clone());
            }
        }
        let fresh = self.refresh().await?;
        let token = fresh.access_token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// A new token after a server refused `rejected` (revoked or expired early), unless another
    /// task already replaced it.
    pub async fn replace_rejected(&self, rejected: &str) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref() {
            if token.access_token != rejected {
                return Ok(token.access_token.clone());
            }
        }
        let fresh = self.refresh().await?;
        let token = fresh.access_token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    async fn refresh(&self) -> Result<Cached, TokenError> {
        let refresh_token = self
            .refresh_token
            .lock()
            .map(|token| token.clone())
            .unwrap_or_default();
        let token_url = TokenUrl::new(self.token_url.clone()).map_err(|error| {
            TokenError::Refused(format!("token_url {:?}: {error}", self.token_url))
        })?;
        let mut client = BasicClient::new(ClientId::new(self.oauth.client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url);
        if let Some(secret) = &self.oauth.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        let refresh_token = RefreshToken::new(refresh_token);
        let scopes = self.oauth.scope_list().into_iter().map(Scope::new);
        let response = client
            .exchange_refresh_token(&refresh_token)
            .add_scopes(scopes)
            .request_async(&self.http)
            .await
            .map_err(|error| self.token_error(error))?;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        if let Some(rotated) = response.refresh_token() {
            if let Ok(mut current) = self.refresh_token.lock() {
                if *current != *rotated.secret() {
                    // Kept in memory only: the stored one stays valid where providers rotate
                    // (Microsoft) until it expires unused; a restart uses it again.
                    info!("oauth2 refresh token rotated by the provider");
                    *current = rotated.secret().clone();
                }
            }
        }
        let refresh_at = response
            .expires_in()
            .map(|lifetime| Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN));
        Ok(Cached {
            access_token: response.access_token().secret().clone(),
            refresh_at,
        })
    }

    fn token_error(
        &self,
        error: RequestTokenError<HttpError, oauth2::basic::BasicErrorResponse>,
    ) -> TokenError {
        let endpoint = &self.token_url;
        match error {
            RequestTokenError::ServerResponse(response) => {
                let code = response.error().as_ref().to_owned();
                let description = response
                    .error_description()
                    .map(|text| format!(" ({text})"))
                    .unwrap_or_default();
                match response.error() {
                    BasicErrorResponseType::InvalidGrant => TokenError::Refused(format!(
                        "the refresh token in {} (oauth2.refresh_token_env) was refused by {endpoint}: \
                         {code}{description}; run `switchboard email authorize` again",
                        self.oauth.refresh_token_env
                    )),
                    BasicErrorResponseType::InvalidClient
                    | BasicErrorResponseType::UnauthorizedClient => TokenError::Refused(format!(
                        "the OAuth client in {} (oauth2.client_id_env) was refused by {endpoint}: \
                         {code}{description}",
                        self.oauth.client_id_env
                    )),
                    _ => TokenError::Unavailable(format!(
                        "token endpoint {endpoint}: {code}{description}"
                    )),
                }
            }
            RequestTokenError::Request(error) => {
                TokenError::Unavailable(format!("token endpoint {endpoint}: {error}"))
            }
            RequestTokenError::Parse(error, _) => TokenError::Unavailable(format!(
                "token endpoint {endpoint}: unreadable response: {error}"
            )),
            RequestTokenError::Other(why) => {
                TokenError::Unavailable(format!("token endpoint {endpoint}: {why}"))
            }
        }
    }
}

/// The SASL XOAUTH2 initial response (Google's and Microsoft's IMAP and SMTP).
pub fn xoauth2_response(user: &str, access_token: &str) -> String {
    format!("user={user}\x01auth=Bearer {access_token}\x01\x01")
}

/// The consent flow's settings: the provider's pages, the client, and the loopback port.
pub struct Authorize<'a> {
    pub oauth: &'a OAuthConfig,
    /// The port of the loopback redirect on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

/// Runs the consent flow once: listens on 127.0.0.1, hands the URL to open to `show_url`,
/// waits for the provider's redirect, and trades the code for a refresh token (PKCE and a
/// random state guard the exchange).
pub async fn authorize(
    settings: Authorize<'_>,
    show_url: impl FnOnce(&str),
) -> Result<String, String> {
    let oauth = settings.oauth;
    let authorize_url = oauth
        .authorize_endpoint()
        .ok_or("--authorize-url is required with --provider custom")?;
    let token_url = oauth
        .token_endpoint()
        .ok_or("--token-url is required with --provider custom")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", settings.port))
        .await
        .map_err(|error| format!("cannot listen on 127.0.0.1:{}: {error}", settings.port))?;
    let port = listener
        .local_addr()
        .map_err(|error| error.to_string())?
        .port();
    let redirect = format!("http://127.0.0.1:{port}/");
    let mut client = BasicClient::new(ClientId::new(oauth.client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::new(authorize_url).map_err(|e| format!("authorize url: {e}"))?)
        .set_token_uri(TokenUrl::new(token_url).map_err(|e| format!("token url: {e}"))?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(|e| e.to_string())?);
    if let Some(secret) = &oauth.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.clone()));
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(oauth.scope_list().into_iter().map(Scope::new))
        .set_pkce_challenge(challenge);
    if oauth.provider == OAuthProvider::Google {
        // Without these Google issues no refresh token (or none on a second consent).
        request = request
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent");
    }
    let (url, state) = request.url();
    show_url(url.as_str());
    let code = wait_for_redirect(&listener, state.secret()).await?;
    let http = HttpClient::new()?;
    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .map_err(|error| match error {
            RequestTokenError::ServerResponse(response) => format!(
                "the token endpoint refused the code: {}{}",
                response.error().as_ref(),
                response
                    .error_description()
                    .map(|text| format!(" ({text})"))
                    .unwrap_or_default()
            ),
            other => format!("token endpoint: {other}"),
        })?;
    response
        .refresh_token()
        .map(|token| token.secret().clone())
        .ok_or_else(|| {
            "the provider returned no refresh token (Microsoft needs the offline_access scope; \
             Google issues one only with access_type=offline on consent)"
                .to_owned()
        })
}

/// Serves the loopback redirect until one carries our `state`; returns its `code`.
async fn wait_for_redirect(
    listener: &tokio::net::TcpListener,
    state: &str,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|error| format!("loopback redirect: {error}"))?;
        let mut buffer = vec![0u8; 8192];
        let read = stream.read(&mut buffer).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&buffer[..read]);
        let target = request.split_whitespace().nth(1).unwrap_or("");
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let param = |name: &str| -> Option<String> {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        let (status, text, outcome) = match (param("state"), param("code"), param("error")) {
            (Some(got), _, _) if got != state => {
                ("400 Bad Request", "State mismatch; ignored.", None)
            }
            (Some(_), Some(code), _) => (
                "200 OK",
                "Authorized. You can close this tab and return to the terminal.",
                Some(Ok(code)),
            ),
            (Some(_), None, Some(error)) => (
                "400 Bad Request",
                "Authorization was not granted.",
                Some(Err(format!("the provider answered: {error}"))),
            ),
            _ => ("404 Not Found", "Not the authorization redirect.", None),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        if let Some(outcome) = outcome {
            return outcome;
        }
    }
}
