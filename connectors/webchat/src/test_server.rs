//! Test-only: a helper that serves the web chat router on a free port in front of the api
//! crate's in-memory core, so tests talk to the connector exactly as a browser would.

use std::net::SocketAddr;
use std::sync::Arc;

use switchboard_api::{Connector, Gateway, MemoryGateway};

use crate::{WebchatConfig, WebchatConnector};

/// The web chat router served on a free local port.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The connector, for `send`.
    pub connector: Arc<WebchatConnector>,
    /// The in-memory core behind it.
    pub gateway: Arc<MemoryGateway>,
}

impl TestServer {
    /// Serves a connector built from `config` in front of a fresh in-memory core.
    pub async fn start(config: WebchatConfig) -> TestServer {
        let connector = Arc::new(WebchatConnector::new(config));
        let gateway = Arc::new(MemoryGateway::default());
        let router = connector
            .routes(Arc::clone(&gateway) as Arc<dyn Gateway>)
            .expect("webchat is enabled");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        TestServer {
            addr,
            connector,
            gateway,
        }
    }
}
