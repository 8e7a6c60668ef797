//! The web desk: agents answer escalations in a browser, at `/desk` on the gateway itself.
//!
//! It is a [`Desk`] like Slack's: the core hands it briefings and thread posts, which it keeps
//! in the gateway's shared state (so every instance shows the same queue); agents' clicks
//! come back to the core as [`DeskEvent::Agent`](switchboard_api::DeskEvent). Open pages
//! hear of changes over a WebSocket, fed on every instance through the gateway's broadcast.

mod auth;
mod config;
mod live;
mod pages;
mod routes;
mod threads;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use switchboard_api::{
    Briefing, BuildContext, ConnectorError, Desk, DeskSink, FileRef, ForgottenPosts, Health,
    ThreadPost, ThreadRef,
};

pub use auth::hash_password;
pub use config::{AgentAccount, WebDeskConfig};
pub use threads::{notice_in_words, Post, ThreadRecord};

use live::Live;
use threads::Threads;

/// The desk's `[desk.<name>]` name.
pub const DESK: &str = "web";

/// The web desk.
pub struct WebDesk(Arc<DeskInner>);

impl std::ops::Deref for WebDesk {
    type Target = DeskInner;

    fn deref(&self) -> &DeskInner {
        &self.0
    }
}

/// What the desk's routes and its [`Desk`] side share.
pub struct DeskInner {
    config: WebDeskConfig,
    threads: Threads,
    live: Live,
    /// The one-time sign-in token printed at start, until it is used.
    login_token: Mutex<Option<String>>,
    shared: Arc<dyn switchboard_api::SharedState>,
}

impl WebDesk {
    fn new(config: WebDeskConfig, cx: &BuildContext, token: Option<String>) -> WebDesk {
        let live = Live::join(cx.broadcast.as_ref());
        WebDesk(Arc::new(DeskInner {
            threads: Threads::new(cx.shared.clone()),
            config,
            live,
            login_token: Mutex::new(token),
            shared: cx.shared.clone(),
        }))
    }
}

impl DeskInner {
    fn unavailable(error: String) -> ConnectorError {
        ConnectorError::Transient {
            connector: "webdesk",
            detail: format!("shared state: {error}"),
        }
    }

    async fn changed(&self, thread: &ThreadRef) {
        self.live.announce(&thread.channel, &thread.ts).await;
    }
}

#[async_trait]
impl Desk for WebDesk {
    fn routes(&self, sink: Arc<dyn DeskSink>) -> Option<axum::Router> {
        Some(routes::router(self.0.clone(), sink))
    }

    async fn run(&self, _sink: Arc<dyn DeskSink>) -> Result<(), ConnectorError> {
        let token = self
            .login_token
            .lock()
            .map(|token| token.clone())
            .unwrap_or_default();
        if let Some(token) = token {
            tracing::warn!(
                "web desk: open /desk and sign in with the one-time token {token} \
                 (it works once; restart for another, or add [[desk.web.agents]])"
            );
        }
        Ok(())
    }

    async fn open_thread(
        &self,
        channel: &str,
        briefing: &Briefing,
    ) -> Result<ThreadRef, ConnectorError> {
        let thread = self
            .threads
            .open(channel, briefing)
            .await
            .map_err(DeskInner::unavailable)?;
        self.changed(&thread).await;
        Ok(thread)
    }

    async fn update_briefing(
        &self,
        thread: &ThreadRef,
        briefing: &Briefing,
    ) -> Result<(), ConnectorError> {
        self.threads
            .update(thread, briefing)
            .await
            .map_err(DeskInner::unavailable)?;
        self.changed(thread).await;
        Ok(())
    }

    async fn follow_thread(
        &self,
        thread: &ThreadRef,
        briefing: &Briefing,
    ) -> Result<(), ConnectorError> {
        // A thread record is keyed by the reference's `ts`, so the followed desk's reference
        // is this desk's too, and agents' actions here name the thread the core knows.
        self.update_briefing(thread, briefing).await
    }

    async fn post_in_thread(
        &self,
        thread: &ThreadRef,
        post: &ThreadPost,
    ) -> Result<String, ConnectorError> {
        let id = self
            .threads
            .post(thread, Post::from_thread_post(post))
            .await
            .map_err(DeskInner::unavailable)?;
        self.changed(thread).await;
        Ok(id)
    }

    async fn upload_in_thread(
        &self,
        thread: &ThreadRef,
        author: &str,
        file: &FileRef,
    ) -> Result<String, ConnectorError> {
        let id = self
            .threads
            .post(thread, Post::file(author, file))
            .await
            .map_err(DeskInner::unavailable)?;
        self.changed(thread).await;
        Ok(id)
    }

    async fn forget_thread(&self, thread: &ThreadRef) -> Result<ForgottenPosts, ConnectorError> {
        let deleted = (self.threads.forget(&thread.ts).await).map_err(DeskInner::unavailable)?;
        self.changed(thread).await;
        Ok(ForgottenPosts {
            deleted,
            ..ForgottenPosts::default()
        })
    }

    async fn health(&self) -> Health {
        match self.shared.get("webdesk:health").await {
            Ok(_) => Health::Up,
            Err(error) => Health::Down(format!("shared state: {error}")),
        }
    }
}
