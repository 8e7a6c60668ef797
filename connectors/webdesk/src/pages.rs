//! The desk's page, sign-in form, script and style: plain files in `assets/`, compiled in,
//! so the desk needs no build step and nothing fetched at run time.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::Session;

const LOGIN: &str = include_str!("assets/login.html");
const DESK: &str = include_str!("assets/desk.html");
const SCRIPT: &str = include_str!("assets/desk.js");
const STYLE: &str = include_str!("assets/desk.css");

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The sign-in form; `problem` is shown above it when set.
pub fn login(csrf: &str, problem: &str, token_login: bool) -> Html<String> {
    let problem = if problem.is_empty() {
        String::new()
    } else {
        format!(r#"<p class="problem" role="alert">{}</p>"#, escape(problem))
    };
    let token = if token_login {
        r#"<details open><summary>Sign in with the one-time token</summary>
<label for="token">Token printed by the gateway at start</label>
<input id="token" name="token" autocomplete="off" spellcheck="false"></details>"#
    } else {
        ""
    };
    Html(
        LOGIN
            .replace("{{csrf}}", &escape(csrf))
            .replace("{{problem}}", &problem)
            .replace("{{token}}", token),
    )
}

/// The desk page for a signed-in agent.
pub fn desk(session: &Session) -> Html<String> {
    Html(
        DESK.replace("{{csrf}}", &escape(&session.csrf))
            .replace("{{agent}}", &escape(&session.agent_name)),
    )
}

/// The desk's script.
pub fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

/// The desk's style sheet.
pub fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_problems_are_escaped() {
        let session = Session {
            agent_id: "x".into(),
            agent_name: "<script>alert(1)</script>".into(),
            teams: Vec::new(),
            csrf: "tok\"en".into(),
        };
        let page = desk(&session).0;
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("tok&quot;en"));
        let form = login("c", "<b>no</b>", false).0;
        assert!(form.contains("&lt;b&gt;no") && !form.contains("name=\"token\""));
        assert!(login("c", "", true).0.contains("name=\"token\""));
    }
}
