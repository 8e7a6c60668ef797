//! The desk's HTTP routes: sign-in, the page, its JSON API and its WebSocket. Every route but
//! the sign-in form and the static script needs a session; every state change also needs the
//! session's CSRF token and a same-origin request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_api::{AgentAction, AgentCommand, DeskEvent, DeskSink, ThreadRef};

use crate::auth::{self, Session, CSRF_HEADER, LOGIN_COOKIE, SESSION_COOKIE};
use crate::pages;
use crate::threads::Post;
use crate::DeskInner;

#[derive(Clone)]
struct DeskState {
    desk: Arc<DeskInner>,
    sink: Arc<dyn DeskSink>,
}

/// The desk's routes, under `/desk`.
pub fn router(desk: Arc<DeskInner>, sink: Arc<dyn DeskSink>) -> Router {
    Router::new()
        .route("/desk", get(page))
        .route("/desk/login", post(login))
        .route("/desk/logout", post(logout))
        .route("/desk/desk.js", get(|| async { pages::script() }))
        .route("/desk/desk.css", get(|| async { pages::style() }))
        .route("/desk/api/queue", get(queue))
        .route("/desk/api/threads/{id}", get(thread))
        .route("/desk/api/threads/{id}/actions", post(act))
        .route("/desk/ws", get(live))
        .with_state(DeskState { desk, sink })
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn unavailable(error: String) -> Response {
    tracing::warn!(%error, "web desk: shared state unavailable");
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "the desk's storage is unavailable; try again",
    )
}

impl DeskInner {
    /// The session the request's cookie names, if it is live.
    async fn session(&self, headers: &HeaderMap) -> Result<Option<Session>, String> {
        let Some(cookie) = auth::cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let Some(json) = self.shared.get(&auth::session_key(&cookie)).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_str(&json).ok())
    }

    /// The session, refusing the request without one (401) or a failing store (503).
    async fn require_session(&self, headers: &HeaderMap) -> Result<Session, Response> {
        match self.session(headers).await {
            Ok(Some(session)) => Ok(session),
            Ok(None) => Err(refuse(StatusCode::UNAUTHORIZED, "sign in at /desk")),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Like [`DeskInner::require_session`], for a state change: same origin and CSRF token too.
    async fn require_change(&self, headers: &HeaderMap) -> Result<Session, Response> {
        if !auth::same_origin(headers) {
            return Err(refuse(StatusCode::FORBIDDEN, "cross-site request refused"));
        }
        let session = self.require_session(headers).await?;
        let presented = headers
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !auth::tokens_match(presented, &session.csrf) {
            return Err(refuse(StatusCode::FORBIDDEN, "missing or wrong CSRF token"));
        }
        Ok(session)
    }

    fn secure(&self, headers: &HeaderMap) -> bool {
        self.config.secure_cookie || auth::over_https(headers)
    }
}

fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Not `no-referrer`: under it Chromium sends `Origin: null` on the page's own POSTs,
        // which the same-origin check must refuse.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data: https:; frame-ancestors 'none'; \
             form-action 'self'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

/// The sign-in form, with a CSRF token bound to this browser by a cookie.
fn login_page(
    desk: &DeskInner,
    headers: &HeaderMap,
    status: StatusCode,
    problem: &str,
) -> Response {
    let csrf = auth::new_token();
    let cookie = auth::set_cookie(
        LOGIN_COOKIE,
        &csrf,
        Duration::from_secs(3600),
        desk.secure(headers),
    );
    let token_login = desk
        .login_token
        .lock()
        .map(|token| token.is_some())
        .unwrap_or(false);
    let html = pages::login(&csrf, problem, token_login);
    security_headers((status, [(header::SET_COOKIE, cookie)], html).into_response())
}

async fn page(State(state): State<DeskState>, headers: HeaderMap) -> Response {
    match state.desk.session(&headers).await {
        Ok(Some(session)) => security_headers(pages::desk(&session).into_response()),
        Ok(None) => login_page(&state.desk, &headers, StatusCode::OK, ""),
        Err(error) => unavailable(error),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
}

async fn login(
    State(state): State<DeskState>,
    extensions: Extensions,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let desk = &state.desk;
    let expected = auth::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !auth::same_origin(&headers) || !auth::tokens_match(&form.csrf, &expected) {
        return login_page(
            desk,
            &headers,
            StatusCode::FORBIDDEN,
            "The form expired or came from another site. Please sign in again.",
        );
    }
    let window = Duration::from_secs(desk.config.login_window_secs);
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default();
    let account = if form.token.is_empty() {
        form.user.trim().to_lowercase()
    } else {
        "token".to_owned()
    };
    let throttles = [
        format!("webdesk:login-failures:account:{account}"),
        format!("webdesk:login-failures:address:{peer}"),
    ];
    for key in &throttles {
        match desk.shared.get(key).await {
            Ok(failures) => {
                let failures: u64 = failures.and_then(|n| n.parse().ok()).unwrap_or(0);
                if failures >= desk.config.login_attempts {
                    tracing::warn!(account, peer, "web desk: sign-in attempts throttled");
                    return login_page(
                        desk,
                        &headers,
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many failed sign-ins. Wait a few minutes and try again.",
                    );
                }
            }
            Err(error) => return unavailable(error),
        }
    }
    let session = if form.token.is_empty() {
        check_password(desk, &form.user, form.password).await
    } else {
        check_token(desk, &form.token)
    };
    let Some(session) = session else {
        tracing::info!(account, peer, "web desk: sign-in refused");
        for key in &throttles {
            if let Err(error) = desk.shared.count(key, window).await {
                return unavailable(error);
            }
        }
        return login_page(
            desk,
            &headers,
            StatusCode::UNAUTHORIZED,
            "Wrong name, password or token.",
        );
    };
    let cookie = auth::new_token();
    let ttl = Duration::from_secs(desk.config.session_ttl_secs);
    let json = serde_json::to_string(&session).unwrap_or_default();
    if let Err(error) = desk
        .shared
        .set(&auth::session_key(&cookie), &json, Some(ttl))
        .await
    {
        return unavailable(error);
    }
    tracing::info!(agent = %session.agent_id, "web desk: agent signed in");
    let set = auth::set_cookie(SESSION_COOKIE, &cookie, ttl, desk.secure(&headers));
    ([(header::SET_COOKIE, set)], Redirect::to("/desk")).into_response()
}

async fn check_password(desk: &DeskInner, user: &str, password: String) -> Option<Session> {
    let account = desk
        .config
        .agents
        .iter()
        .find(|agent| agent.id.eq_ignore_ascii_case(user.trim()))
        .cloned();
    // An unknown name costs the same hash as a known one, so timing tells no names.
    let hash = account
        .as_ref()
        .map(|account| account.password_hash.clone())
        .unwrap_or_else(|| auth::decoy_hash().to_owned());
    let matches = tokio::task::spawn_blocking(move || auth::password_matches(&password, &hash))
        .await
        .unwrap_or(false);
    let account = account.filter(|_| matches)?;
    Some(Session {
        agent_id: account.id,
        agent_name: account.name,
        teams: account.teams,
        csrf: auth::new_token(),
    })
}

fn check_token(desk: &DeskInner, presented: &str) -> Option<Session> {
    let mut token = desk.login_token.lock().ok()?;
    let matches = token
        .as_deref()
        .is_some_and(|expected| auth::tokens_match(presented.trim(), expected));
    if !matches {
        return None;
    }
    *token = None;
    Some(Session {
        agent_id: "token".into(),
        agent_name: desk.config.login_token_name.clone(),
        teams: Vec::new(),
        csrf: auth::new_token(),
    })
}

async fn logout(State(state): State<DeskState>, headers: HeaderMap) -> Response {
    if let Err(refused) = state.desk.require_change(&headers).await {
        return refused;
    }
    if let Some(cookie) = auth::cookie(&headers, SESSION_COOKIE) {
        if let Err(error) = state.desk.shared.take(&auth::session_key(&cookie)).await {
            return unavailable(error);
        }
    }
    let expired = auth::set_cookie(SESSION_COOKIE, "", Duration::ZERO, true);
    ([(header::SET_COOKIE, expired)], Json(json!({"ok": true}))).into_response()
}

async fn queue(State(state): State<DeskState>, headers: HeaderMap) -> Response {
    let session = match state.desk.require_session(&headers).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    match state
        .desk
        .threads
        .queue(|record| session.sees(&record.channel))
        .await
    {
        Ok(threads) => {
            let items: Vec<_> = threads
                .iter()
                .map(|record| {
                    let briefing = &record.briefing;
                    json!({
                        "id": record.id,
                        "channel": record.channel,
                        "opened_ms": record.opened_ms,
                        "customer": briefing.customer_name,
                        "customer_channel": briefing.channel.as_str(),
                        "reason": briefing.reason,
                        "summary": briefing.summary,
                        "status": briefing.status,
                        "claimed_by": briefing.claimed_by,
                        "tier": briefing.tier,
                    })
                })
                .collect();
            Json(json!({"agent": session.agent_name, "threads": items})).into_response()
        }
        Err(error) => unavailable(error),
    }
}

async fn thread(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = match state.desk.require_session(&headers).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let record = match state.desk.threads.get(&id).await {
        Ok(Some(record)) if session.sees(&record.channel) => record,
        // Another team's thread is as absent as a made-up one.
        Ok(_) => return refuse(StatusCode::NOT_FOUND, "no such conversation"),
        Err(error) => return unavailable(error),
    };
    match state.desk.threads.posts(&id).await {
        Ok(posts) => Json(json!({"thread": record, "posts": posts})).into_response(),
        Err(error) => unavailable(error),
    }
}

#[derive(Deserialize)]
struct ActionRequest {
    kind: String,
    #[serde(default)]
    text: String,
    /// The page's id for this click, so a retried request acts once.
    #[serde(default)]
    action_id: String,
}

fn agent_action(request: &ActionRequest) -> Result<AgentAction, &'static str> {
    let text = request.text.trim();
    let command = |command| Ok(AgentAction::Command(command));
    match request.kind.as_str() {
        "reply" if text.is_empty() => Err("a reply needs text"),
        "reply" => Ok(AgentAction::Reply {
            text: text.to_owned(),
            files: Vec::new(),
        }),
        "note" if text.is_empty() => Err("a note needs text"),
        "note" => Ok(AgentAction::Note {
            text: text.to_owned(),
        }),
        "claim" => command(AgentCommand::Claim),
        "resolve" => command(AgentCommand::Resolve),
        "hand_back" => command(AgentCommand::HandBack),
        "approve_knowledge" => command(AgentCommand::ApproveKnowledge {
            edited_answer: (!text.is_empty()).then(|| text.to_owned()),
        }),
        "reject_knowledge" => command(AgentCommand::RejectKnowledge),
        _ => Err("unknown action"),
    }
}

fn valid_action_id(id: &str) -> bool {
    (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

async fn act(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(request): Json<ActionRequest>,
) -> Response {
    let desk = &state.desk;
    let session = match desk.require_change(&headers).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let record = match desk.threads.get(&id).await {
        Ok(Some(record)) if session.sees(&record.channel) => record,
        Ok(_) => return refuse(StatusCode::NOT_FOUND, "no such conversation"),
        Err(error) => return unavailable(error),
    };
    let action = match agent_action(&request) {
        Ok(action) => action,
        Err(problem) => return refuse(StatusCode::BAD_REQUEST, problem),
    };
    let action_id = if valid_action_id(&request.action_id) {
        format!("web:{}", request.action_id)
    } else {
        format!("web:{}", auth::new_token())
    };
    let thread = ThreadRef {
        channel: record.channel.clone(),
        ts: record.id.clone(),
    };
    let shown = match &action {
        AgentAction::Reply { text, .. } => Some(Post::new("agent", &session.agent_name, text)),
        AgentAction::Note { text } => Some(Post::new("note", &session.agent_name, text)),
        // The core posts what was sent (`DeskNotice::SuggestionSent`) once it is sent.
        AgentAction::Command(_) | AgentAction::SendSuggestion { .. } => None,
    };
    let event = DeskEvent::Agent {
        event_id: action_id.clone(),
        thread: thread.clone(),
        action_id,
        agent_id: format!("web:{}", session.agent_id),
        agent_name: session.agent_name.clone(),
        action,
    };
    if let Err(error) = state.sink.handle(event).await {
        tracing::warn!(%error, "web desk: the gateway did not take an agent's action");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway could not take that just now; try again",
        );
    }
    if let Some(post) = shown {
        if let Err(error) = desk.threads.post(&thread, post).await {
            return unavailable(error);
        }
        desk.changed(&thread).await;
    }
    Json(json!({"ok": true})).into_response()
}

async fn live(
    State(state): State<DeskState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !auth::same_origin(&headers) {
        return refuse(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    let session = match state.desk.require_session(&headers).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let frames = state.desk.live.subscribe();
    upgrade.on_upgrade(move |socket| push_changes(socket, session, frames))
}

async fn push_changes(
    mut socket: WebSocket,
    session: Session,
    mut frames: tokio::sync::broadcast::Receiver<String>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let frame = match frame {
                    Ok(frame) => frame,
                    // Fell behind: the page refetches everything.
                    Err(RecvError::Lagged(_)) => json!({"type": "resync"}).to_string(),
                    Err(RecvError::Closed) => return,
                };
                let channel = serde_json::from_str::<serde_json::Value>(&frame)
                    .ok()
                    .and_then(|value| value["channel"].as_str().map(str::to_owned));
                if channel.is_some_and(|channel| !session.sees(&channel)) {
                    continue;
                }
                if socket.send(Message::Text(frame.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str, text: &str) -> ActionRequest {
        ActionRequest {
            kind: kind.into(),
            text: text.into(),
            action_id: String::new(),
        }
    }

    #[test]
    fn each_button_maps_to_the_cores_action() {
        assert_eq!(
            agent_action(&request("reply", " Hi ")),
            Ok(AgentAction::Reply {
                text: "Hi".into(),
                files: Vec::new()
            })
        );
        assert!(agent_action(&request("reply", "  ")).is_err());
        assert_eq!(
            agent_action(&request("hand_back", "")),
            Ok(AgentAction::Command(AgentCommand::HandBack))
        );
        assert_eq!(
            agent_action(&request("approve_knowledge", "Open Settings.")),
            Ok(AgentAction::Command(AgentCommand::ApproveKnowledge {
                edited_answer: Some("Open Settings.".into())
            }))
        );
        assert!(agent_action(&request("delete_everything", "")).is_err());
        assert!(
            valid_action_id("0123abcd-ef")
                && !valid_action_id("short")
                && !valid_action_id("a b c d e f g h")
        );
    }
}
