//! The stand-in's Socket Mode websocket: `hello` on connect, then the queued envelopes,
//! recording the acks the client sends back.

use super::*;

pub(super) async fn socket(State(inner): State<Arc<Inner>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |ws| serve_socket(inner, ws))
}

async fn serve_socket(inner: Arc<Inner>, mut ws: WebSocket) {
    let hello = json!({
        "type": "hello", "num_connections": 1,
        "debug_info": {"host": "standin", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": APP_ID},
    });
    if ws
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (sender, mut envelopes) = mpsc::unbounded_channel();
    {
        let mut recorded = inner.lock();
        while let Some(queued) = recorded.queued.pop_front() {
            let _ = sender.send(queued);
        }
        recorded.sockets.push(sender);
        recorded.socket_connections_opened += 1;
    }
    let mut closed = inner.closed.subscribe();
    loop {
        tokio::select! {
            Some(envelope) = envelopes.recv() => {
                if ws.send(Message::Text(envelope.into())).await.is_err() {
                    break;
                }
            }
            incoming = ws.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let ack = serde_json::from_str::<Value>(text.as_str()).ok();
                    if let Some(id) = ack.as_ref().and_then(|a| a.get("envelope_id")).and_then(Value::as_str) {
                        inner.lock().acks.insert(id.to_string());
                        inner.changed.notify_waiters();
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = closed.changed() => break,
            _ = inner.refresh.notified() => {
                let disconnect = json!({
                    "type": "disconnect", "reason": "refresh_requested",
                    "debug_info": {"host": "standin"},
                });
                let _ = ws.send(Message::Text(disconnect.to_string().into())).await;
                let _ = ws.send(Message::Close(None)).await;
                break;
            }
        }
    }
}
