//! Who may use the desk: argon2 password checks, sessions kept in shared state (so any
//! instance behind a load balancer knows them), CSRF tokens, same-origin checks and sign-in
//! throttling.

use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use axum::http::{header, HeaderMap};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sb_desk";
/// The cookie binding the sign-in form's CSRF token to the browser that loaded it.
pub const LOGIN_COOKIE: &str = "sb_desk_login";
/// The header every state-changing API call carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in agent, as kept in shared state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The account id (or `token` for the one-time token's agent).
    pub agent_id: String,
    /// The name customers see.
    pub agent_name: String,
    /// The queues the agent works; empty = every queue.
    pub teams: Vec<String>,
    /// The CSRF token every state-changing request must carry.
    pub csrf: String,
}

impl Session {
    /// Whether the agent works the queue `channel`.
    pub fn sees(&self, channel: &str) -> bool {
        self.teams.is_empty() || self.teams.iter().any(|team| team == channel)
    }
}

/// 32 random bytes, hex: session ids, CSRF tokens, one-time tokens.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Hashes a password for `[[desk.web.agents]] password_hash` (argon2id, random salt).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| error.to_string())
}

/// A hash of no one's password, checked when a sign-in names an unknown account.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

/// Whether `hash` is a PHC string this desk can check passwords against.
pub fn hash_is_valid(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| parsed.algorithm.as_str().starts_with("argon2"))
}

/// Checks `password` against `hash`; slow on purpose (run it off the async threads).
pub fn password_matches(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// The shared-state key of a session: the cookie's hash, so reading Redis gives no one a
/// session they could present.
pub fn session_key(cookie: &str) -> String {
    format!(
        "webdesk:session:{}",
        hex::encode(Sha256::digest(cookie.as_bytes()))
    )
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value: HttpOnly and SameSite=Strict always, Secure over HTTPS.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/desk; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        max_age.as_secs()
    )
}

/// Whether the browser reached us over HTTPS (directly, or through a proxy saying so).
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// Refuses requests a page on another site made: a browser names the page's origin (and
/// says `cross-site`); a request with neither header is not from a browser page.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|value| value.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, host)| host);
    matches!((origin_host, host), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
}

/// Compares two tokens in constant time.
pub fn tokens_match(presented: &str, expected: &str) -> bool {
    !expected.is_empty()
        && subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_hash_checks_its_own_password_only() {
        let hash = hash_password("correct horse").expect("hashes");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(hash_is_valid(&hash));
        assert!(password_matches("correct horse", &hash));
        assert!(!password_matches("correct horse ", &hash));
        assert!(!hash_is_valid("plaintext"));
        assert!(!password_matches("plaintext", "plaintext"));
    }

    #[test]
    fn cross_site_requests_are_told_apart() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("desk.example:8080"));
        assert!(same_origin(&headers), "no Origin: not a browser page");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://desk.example:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.remove(header::ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn cookies_are_read_and_set_strictly() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sb_desk=abc; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        let set = set_cookie(SESSION_COOKIE, "abc", Duration::from_secs(60), true);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure")
        );
        assert!(!set_cookie("x", "y", Duration::from_secs(1), false).contains("Secure"));
        assert!(tokens_match("abc", "abc") && !tokens_match("abd", "abc") && !tokens_match("", ""));
    }
}
