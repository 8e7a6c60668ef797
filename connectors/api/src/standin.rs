//! The loopback server every platform stand-in runs on (feature `standin`): bound to
//! `127.0.0.1:0` so parallel tests never share a port, serving an axum router until dropped.
//!
//! Binding and serving are two steps because a stand-in hands out URLs pointing back at
//! itself (a websocket, a file download), so its state needs the address before its router
//! exists. Test support only: a port that cannot be bound is a broken test machine, so it
//! panics with the platform's name rather than returning an error every test would unwrap.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A free loopback port, bound and not yet served.
pub struct LoopbackListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl LoopbackListener {
    /// Binds a free port on 127.0.0.1 for the `platform` stand-in.
    pub async fn bind(platform: &str) -> LoopbackListener {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| {
                panic!("bind a loopback port for the {platform} stand-in: {error}")
            });
        let addr = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("the {platform} stand-in's address: {error}"));
        LoopbackListener { listener, addr }
    }

    /// The address it is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `app` in a task of its own until the returned server is dropped.
    pub fn serve(self, app: Router) -> LoopbackServer {
        let LoopbackListener { listener, addr } = self;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LoopbackServer { addr, server }
    }
}

/// A platform stand-in's HTTP server on a loopback port; stops when dropped.
pub struct LoopbackServer {
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl LoopbackServer {
    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
