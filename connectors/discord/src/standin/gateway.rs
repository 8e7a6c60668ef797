//! The stand-in's gateway websocket: HELLO, IDENTIFY -> READY, heartbeats, and the events
//! tests dispatch.

use super::*;

pub(super) async fn gateway_socket(
    State(inner): State<Arc<Inner>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |ws| serve_gateway(inner, ws))
}

pub(super) async fn serve_gateway(inner: Arc<Inner>, mut ws: WebSocket) {
    let hello = json!({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": null,
                       "t": null});
    if ws.send(text(hello)).await.is_err() {
        return;
    }
    let (sender, mut commands) = mpsc::unbounded_channel();
    let mut closed = inner.closed.subscribe();
    loop {
        tokio::select! {
            Some(command) = commands.recv() => match command {
                SocketCommand::Frame(frame) => {
                    if ws.send(WsMessage::Text(frame.into())).await.is_err() {
                        break;
                    }
                }
                SocketCommand::Close(code, reason) => {
                    let frame = CloseFrame { code, reason: reason.into() };
                    let _ = ws.send(WsMessage::Close(Some(frame))).await;
                    break;
                }
            },
            incoming = ws.recv() => match incoming {
                Some(Ok(WsMessage::Text(frame))) => {
                    let frame: Value = serde_json::from_str(frame.as_str()).unwrap_or_default();
                    if !on_client_frame(&inner, &mut ws, &sender, &frame).await {
                        break;
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = closed.changed() => break,
        }
    }
}

/// Handles one client frame; false ends the session.
pub(super) async fn on_client_frame(
    inner: &Inner,
    ws: &mut WebSocket,
    sender: &mpsc::UnboundedSender<SocketCommand>,
    frame: &Value,
) -> bool {
    let token_of = |frame: &Value| {
        let token = frame["d"]["token"].as_str().unwrap_or_default();
        !token.is_empty() && !inner.lock().revoked
    };
    match frame["op"].as_u64() {
        Some(1) => {
            inner.lock().heartbeats_acked += 1;
            inner.changed.notify_waiters();
            ws.send(text(json!({"op": 11}))).await.is_ok()
        }
        Some(2) => {
            if !token_of(frame) {
                let _ = ws.send(close(4004, "Authentication failed.")).await;
                return false;
            }
            let (ready, queued) = {
                let mut recorded = inner.lock();
                recorded.seq += 1;
                recorded.identifies += 1;
                let ready = json!({"op": 0, "t": "READY", "s": recorded.seq, "d": {
                    "v": 10, "user": user_json(BOT_USER_ID, "switchboard", true),
                    "guilds": [], "session_id": format!("standin-session-{}", recorded.identifies),
                    "resume_gateway_url": format!("ws://{}/gateway", inner.addr),
                    "shard": [0, 1],
                    "application": {"id": APPLICATION_ID.to_string(), "flags": 0},
                }});
                recorded.sockets.push(sender.clone());
                (ready, recorded.queued.drain(..).collect::<Vec<_>>())
            };
            inner.changed.notify_waiters();
            if ws.send(text(ready)).await.is_err() {
                return false;
            }
            for frame in queued {
                if ws.send(WsMessage::Text(frame.into())).await.is_err() {
                    return false;
                }
            }
            true
        }
        Some(6) => {
            if !token_of(frame) {
                let _ = ws.send(close(4004, "Authentication failed.")).await;
                return false;
            }
            let after = frame["d"]["seq"].as_u64().unwrap_or(0);
            let missed: Vec<String> = {
                let mut recorded = inner.lock();
                recorded.resumes += 1;
                recorded.sockets.push(sender.clone());
                recorded.queued.clear();
                recorded
                    .dispatched
                    .iter()
                    .filter(|(_, _, seq)| *seq > after)
                    .map(|(event, data, seq)| {
                        json!({"op": 0, "t": event, "s": seq, "d": data}).to_string()
                    })
                    .collect()
            };
            for frame in missed {
                if ws.send(WsMessage::Text(frame.into())).await.is_err() {
                    return false;
                }
            }
            let seq = inner.lock().seq;
            ws.send(text(json!({"op": 0, "t": "RESUMED", "s": seq, "d": {}})))
                .await
                .is_ok()
        }
        _ => true,
    }
}

pub(super) fn text(value: Value) -> WsMessage {
    WsMessage::Text(value.to_string().into())
}

pub(super) fn close(code: u16, reason: &'static str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}
