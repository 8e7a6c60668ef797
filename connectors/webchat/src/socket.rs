//! One widget WebSocket: `hello` first, then messages in and pushed frames out.
//!
//! The socket joins the hub *before* history is read, so a message sent between the read
//! and the join can not be lost; at worst it arrives twice and the widget dedupes by id.
//! A bad frame gets an `error` frame and the socket stays open for the next good one; only
//! a refused identity (or a missing hello) ends the socket.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use switchboard_api::{ConversationView, Gateway, InboundKind, IngestError};
use tokio::time::{interval, timeout, MissedTickBehavior};

use crate::client_ip::ClientKey;
use crate::connector::Shared;
use crate::convert::{self, ClientFrame, ErrorCode, Hello, Refusal, ServerFrame, VisitorContext};
use crate::identity::{Claims, Visitor};

/// How long a new socket may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Pings keep proxies from closing idle chats and reveal dead peers.
const PING_EVERY: Duration = Duration::from_secs(25);
/// Close code for a refused identity (RFC 6455 "policy violation").
const CLOSE_POLICY: u16 = 1008;
/// Close code asking the client to come back later (RFC 6455 "try again later").
const CLOSE_TRY_AGAIN: u16 = 1013;
/// Close code for an instance shutting down (RFC 6455 registry "service restart").
const CLOSE_SERVICE_RESTART: u16 = 1012;

/// Serves one upgraded socket until either side leaves.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    gateway: Arc<dyn Gateway>,
    client: Option<ClientKey>,
    mut socket: WebSocket,
) {
    let mut restarting = shared.hub.restarting();
    if *restarting.borrow() {
        restart_elsewhere(&mut socket).await;
        return;
    }
    let hello = match timeout(HELLO_TIMEOUT, wait_for_hello(&mut socket)).await {
        Ok(Some(hello)) => hello,
        Ok(None) => return,
        Err(_) => {
            let refusal = Refusal::new(ErrorCode::Invalid, "no hello received");
            refuse_and_close(&mut socket, refusal, CLOSE_POLICY).await;
            return;
        }
    };
    let claims = Claims {
        session: &hello.session,
        user_id: hello.user_id.as_deref(),
        user_claims: hello.user_claims.as_deref(),
        user_sig: hello.user_sig.as_deref(),
    };
    let visitor = match shared.resolve(claims) {
        Ok(visitor) => visitor,
        Err(refusal) => {
            tracing::info!(reason = %refusal.message, "webchat visitor refused");
            refuse_and_close(&mut socket, refusal, CLOSE_POLICY).await;
            return;
        }
    };
    let context = VisitorContext::from_widget(&hello.page, &hello.attributes);
    let mut subscription = shared.hub.subscribe(&visitor.conversation_key);

    let history = history_after(gateway.as_ref(), &visitor, hello.after.as_deref()).await;
    let view = match history {
        Ok(view) => view,
        Err(error) => {
            tracing::warn!(%error, "webchat history unavailable");
            let refusal = Refusal::new(ErrorCode::Unavailable, "chat history is unavailable");
            refuse_and_close(&mut socket, refusal, CLOSE_TRY_AGAIN).await;
            return;
        }
    };
    if send(&mut socket, &ServerFrame::welcome(view, shared.limits()))
        .await
        .is_err()
    {
        return;
    }

    let mut ping = interval(PING_EVERY);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping.reset();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let client = client.as_ref();
                        on_text(&shared, gateway.as_ref(), client, &visitor, &context, text.as_str()).await
                    }
                    Some(Ok(Message::Binary(_))) => Some(ServerFrame::error(
                        Refusal::new(ErrorCode::Invalid, "binary frames are not supported"),
                        None,
                    )),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                if let Some(reply) = reply {
                    if send(&mut socket, &reply).await.is_err() {
                        break;
                    }
                }
            }
            pushed = subscription.frames.recv() => {
                // `None`: the hub dropped this socket as stuck; closing makes the widget catch up.
                let Some(frame) = pushed else { break };
                if socket.send(Message::Text(frame.as_ref().into())).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            // The flag only ever turns true, so any change is the restart.
            Ok(()) = restarting.changed() => {
                restart_elsewhere(&mut socket).await;
                break;
            }
        }
    }
}

/// Tells the widget this instance is going away, so it reconnects at once (to another
/// instance) instead of after a dropped connection's backoff.
async fn restart_elsewhere(socket: &mut WebSocket) {
    let _ = send(socket, &ServerFrame::Reconnect).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: CLOSE_SERVICE_RESTART,
            reason: "gateway restarting; reconnect".into(),
        })))
        .await;
}

/// History after the widget's cursor; a cursor the store refuses (stale, malformed) falls
/// back to the whole history, which the widget dedupes by id, instead of failing forever.
pub(crate) async fn history_after(
    gateway: &dyn Gateway,
    visitor: &Visitor,
    after: Option<&str>,
) -> Result<Option<ConversationView>, IngestError> {
    let key = visitor.conversation_key.as_str();
    match gateway.history(crate::CHANNEL, key, after).await {
        Err(IngestError::Rejected(reason)) if after.is_some() => {
            tracing::debug!(%reason, "webchat history cursor refused; sending all");
            gateway.history(crate::CHANNEL, key, None).await
        }
        other => other,
    }
}

/// Reads frames until a hello; anything else before it gets an `invalid` error.
async fn wait_for_hello(socket: &mut WebSocket) -> Option<Hello> {
    loop {
        let text = match socket.recv().await? {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        };
        let refusal = match convert::parse_client_frame(text.as_str()) {
            Ok(ClientFrame::Hello(hello)) => return Some(hello),
            Ok(_) => Refusal::new(ErrorCode::Invalid, "send hello first"),
            Err(refusal) => refusal,
        };
        if send(socket, &ServerFrame::error(refusal, None))
            .await
            .is_err()
        {
            return None;
        }
    }
}

/// Handles one text frame after hello; returns the reply to send.
async fn on_text(
    shared: &Shared,
    gateway: &dyn Gateway,
    client: Option<&ClientKey>,
    visitor: &Visitor,
    context: &VisitorContext,
    text: &str,
) -> Option<ServerFrame> {
    let (client_id, kind, body) = match convert::parse_client_frame(text) {
        Ok(ClientFrame::Message { client_id, text }) => (client_id, InboundKind::Text, text),
        Ok(ClientFrame::TalkToHuman { client_id }) => {
            (client_id, InboundKind::HumanRequest, String::new())
        }
        Ok(ClientFrame::Hello(_)) => {
            let refusal = Refusal::new(ErrorCode::Invalid, "hello was already received");
            return Some(ServerFrame::error(refusal, None));
        }
        Err(refusal) => return Some(ServerFrame::error(refusal, None)),
    };
    let result = shared
        .submit(gateway, client, visitor, context, &client_id, kind, &body)
        .await;
    Some(match result {
        Ok(accepted) => ServerFrame::Ack {
            client_id,
            message_id: accepted.message_id,
        },
        Err(refusal) => ServerFrame::error(refusal, Some(client_id)),
    })
}

/// Turns a socket away before hello: its client address opened too many chats.
pub(crate) async fn refuse_busy(mut socket: WebSocket, refusal: Refusal) {
    refuse_and_close(&mut socket, refusal, CLOSE_TRY_AGAIN).await;
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), axum::Error> {
    socket.send(Message::Text(frame.to_json().into())).await
}

async fn refuse_and_close(socket: &mut WebSocket, refusal: Refusal, code: u16) {
    let reason = refusal.message.clone();
    let _ = send(socket, &ServerFrame::error(refusal, None)).await;
    // Close reasons are limited to 123 bytes; the full text went in the error frame.
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason[..end].into(),
        })))
        .await;
}
