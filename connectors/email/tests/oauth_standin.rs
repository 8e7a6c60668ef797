//! A loopback OAuth 2.0 provider for the email tests: a token endpoint that issues access
//! tokens for a refresh token (rotating the refresh token each time, as Microsoft does) or for
//! an authorization code, and the RFC 7662 introspection endpoint Dovecot's `oauth2` passdb asks
//! whether a token is valid. The test expires access tokens and revokes refresh tokens at will.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

/// The code the stand-in's consent page would have redirected with.
pub const GOOD_CODE: &str = "code-granted";

#[derive(Default)]
struct Provider {
    /// Refresh tokens that are still valid.
    refresh_tokens: HashSet<String>,
    /// Access token -> still active.
    access_tokens: HashMap<String, bool>,
    issued: u64,
    token_requests: u64,
    /// Seconds each access token is said to live.
    expires_in: u64,
    /// The user every token belongs to.
    user: String,
}

/// The running stand-in; stops with the test's runtime.
#[derive(Clone)]
pub struct OAuthStandIn {
    pub addr: SocketAddr,
    provider: Arc<Mutex<Provider>>,
}

impl OAuthStandIn {
    /// Serves tokens for `user`; the first refresh token is [`OAuthStandIn::FIRST_REFRESH`].
    pub async fn start(user: &str) -> OAuthStandIn {
        let provider = Arc::new(Mutex::new(Provider {
            refresh_tokens: HashSet::from([Self::FIRST_REFRESH.to_owned()]),
            expires_in: 3600,
            user: user.to_owned(),
            ..Provider::default()
        }));
        let app = Router::new()
            .route("/token", post(token))
            .route("/introspect", post(introspect))
            .with_state(provider.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OAuth stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OAuthStandIn { addr, provider }
    }

    pub const FIRST_REFRESH: &'static str = "refresh-0";

    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn introspection_url(&self) -> String {
        format!("http://{}/introspect", self.addr)
    }

    fn with<T>(&self, change: impl FnOnce(&mut Provider) -> T) -> T {
        change(&mut self.provider.lock().expect("stand-in state"))
    }

    /// How many token requests were answered with a token.
    pub fn tokens_issued(&self) -> u64 {
        self.with(|p| p.issued)
    }

    /// How many token requests came in (granted or refused).
    pub fn token_requests(&self) -> u64 {
        self.with(|p| p.token_requests)
    }

    /// Every access token issued so far stops being valid (its server-side lifetime ended).
    pub fn expire_access_tokens(&self) {
        self.with(|p| p.access_tokens.values_mut().for_each(|active| *active = false));
    }

    /// The user withdrew the consent: no refresh token is valid any more.
    pub fn revoke_refresh_tokens(&self) {
        self.with(|p| p.refresh_tokens.clear());
    }

    /// The lifetime stated for tokens issued from now on.
    pub fn set_expires_in(&self, seconds: u64) {
        self.with(|p| p.expires_in = seconds);
    }
}

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), decode(value)))
        .collect()
}

/// Percent-decoding for the stand-in's own tokens and codes (`+` is a space in forms).
fn decode(value: &str) -> String {
    let bytes = value.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn token(State(provider): State<Arc<Mutex<Provider>>>, body: String) -> impl IntoResponse {
    let params = form(&body);
    let mut p = provider.lock().expect("stand-in state");
    p.token_requests += 1;
    let granted = match params.get("grant_type").map(String::as_str) {
        Some("refresh_token") => params
            .get("refresh_token")
            .is_some_and(|token| p.refresh_tokens.remove(token)),
        Some("authorization_code") => {
            params.get("code").map(String::as_str) == Some(GOOD_CODE)
                && params.contains_key("code_verifier")
        }
        _ => false,
    };
    if !granted {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})),
        );
    }
    p.issued += 1;
    let access = format!("access-{}", p.issued);
    let refresh = format!("refresh-{}", p.issued);
    p.access_tokens.insert(access.clone(), true);
    p.refresh_tokens.insert(refresh.clone());
    (
        StatusCode::OK,
        Json(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": p.expires_in,
            "refresh_token": refresh,
        })),
    )
}

async fn introspect(State(provider): State<Arc<Mutex<Provider>>>, body: String) -> impl IntoResponse {
    let params = form(&body);
    let p = provider.lock().expect("stand-in state");
    let active = params
        .get("token")
        .and_then(|token| p.access_tokens.get(token))
        .copied()
        .unwrap_or(false);
    if active {
        Json(json!({"active": true, "username": p.user}))
    } else {
        Json(json!({"active": false}))
    }
}
