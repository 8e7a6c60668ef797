//! The Acme Cloud demo pages, served only with `connectors.webchat.demo = true`.
//!
//! - `GET /` the help-center page with the anonymous widget;
//! - `GET /webchat/demo/signed` the same page as a signed-in user.
//!
//! The signed demo signs with a random key made when the process starts, never the site's
//! `identity_secret`, and its users get `d:` conversation keys (see `identity.rs`): turning the
//! demo on can not make anyone a real user. Each browser gets its own demo user (a cookie),
//! so demo visitors never share a conversation.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::claims;
use crate::connector::{now_ms, Shared};

const DEMO_HTML: &str = include_str!("../assets/demo.html");
/// Where the script tag's attributes go in `demo.html`.
const DEMO_WIDGET_SLOT: &str = "{{WIDGET_ATTRIBUTES}}";
/// Where the demo's note about the visitor goes in `demo.html`.
const DEMO_NOTE_SLOT: &str = "{{VISITOR_NOTE}}";
/// The cookie naming this browser's demo user.
const DEMO_USER_COOKIE: &str = "sb_demo_user";
/// How long the signed demo's claims hold: a working day on one page.
const DEMO_CLAIMS_SECS: u64 = 8 * 3600;

/// The demo routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(demo_page))
        .route("/webchat/demo/signed", get(signed_demo_page))
        .with_state(shared)
}

async fn demo_page() -> Html<String> {
    Html(demo_html(
        r#"data-attributes='{"plan":"pro","tier":"standard"}'"#,
        "You are an anonymous visitor: your chat is tied to this browser. \
         <a href=\"/webchat/demo/signed\">Try the signed-in demo</a>.",
    ))
}

/// The demo as a logged-in user: the page's server signs the claims, as a real site would.
async fn signed_demo_page(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(secret) = shared.demo_secret() else {
        return Html(demo_html("", "The demo is off.")).into_response();
    };
    let user_id = demo_user_from_cookie(&headers).unwrap_or_else(new_demo_user);
    let exp = now_ms() / 1000 + DEMO_CLAIMS_SECS;
    let (user_claims, user_sig) = claims::sign_user_claims(
        secret,
        &serde_json::json!({
            "user_id": user_id, "exp": exp, "name": "Dana Demo",
            "plan": "enterprise", "tier": "standard",
        }),
    );
    // Base64url and hex need no escaping inside an attribute.
    let attributes = format!(
        r#"data-user-claims="{user_claims}" data-user-sig="{user_sig}" data-attributes='{{"email":"dana@example.com"}}'"#
    );
    let note = format!(
        "You are signed in as <b>Dana Demo</b> (<code>{user_id}</code>): the page carries claims \
         (user id, expiry, plan, tier) signed on the server, <code>data-user-sig = \
         hex(HMAC-SHA256(secret, data-user-claims))</code>. The email is an unsigned attribute: \
         agents see it marked unverified. <a href=\"/\">Back to the anonymous demo</a>."
    );
    let mut response = Html(demo_html(&attributes, &note)).into_response();
    let cookie =
        format!("{DEMO_USER_COOKIE}={user_id}; Path=/; Max-Age=86400; SameSite=Lax; HttpOnly");
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// This browser's demo user, when its cookie holds one the demo could have made.
fn demo_user_from_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == DEMO_USER_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| is_demo_user(value))
}

fn new_demo_user() -> String {
    format!("demo-{}", hex::encode(rand::random::<[u8; 6]>()))
}

fn is_demo_user(value: &str) -> bool {
    value
        .strip_prefix("demo-")
        .is_some_and(|rest| rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn demo_html(widget_attributes: &str, note: &str) -> String {
    DEMO_HTML
        .replacen(DEMO_WIDGET_SLOT, widget_attributes, 1)
        .replacen(DEMO_NOTE_SLOT, note, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_keeps_its_demo_user_and_odd_cookies_are_ignored() {
        let user = new_demo_user();
        assert!(is_demo_user(&user), "{user}");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {DEMO_USER_COOKIE}={user}")).unwrap(),
        );
        assert_eq!(demo_user_from_cookie(&headers), Some(user));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("sb_demo_user=ceo@acme.example"),
        );
        assert_eq!(demo_user_from_cookie(&headers), None);
    }
}
