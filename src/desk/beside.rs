//! Desks side by side: one desk opens the threads (Slack, whose platform picks thread ids),
//! the others follow them under its references (the web desk), so an escalation shows on
//! every desk and an agent's action on any of them reaches the core as the same thread.
//!
//! The core refreshes a briefing after every action, through here, so a claim on one desk
//! shows on the others. Only the leading desk's failures are returned: the outbox retries
//! those, and a retry must not post twice on the lead because a follower failed. A follower
//! that missed a post is caught up by the next briefing refresh, which recreates a thread
//! it lost.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_api::{
    Briefing, ConnectorError, Desk, DeskSink, FileRef, ForgottenPosts, Health, ThreadPost,
    ThreadRef,
};
use tracing::warn;

/// A leading desk and the desks following its threads.
pub struct DesksBeside {
    lead: Arc<dyn Desk>,
    followers: Vec<Arc<dyn Desk>>,
}

impl DesksBeside {
    /// `lead` opens threads; each of `followers` shows them.
    pub fn new(lead: Arc<dyn Desk>, followers: Vec<Arc<dyn Desk>>) -> DesksBeside {
        DesksBeside { lead, followers }
    }

    fn missed(what: &str, thread: &ThreadRef, error: &ConnectorError) {
        warn!(%error, channel = %thread.channel, ts = %thread.ts, "a following desk missed {what}; the next briefing refresh catches it up");
    }
}

#[async_trait]
impl Desk for DesksBeside {
    fn routes(&self, sink: Arc<dyn DeskSink>) -> Option<axum::Router> {
        std::iter::once(&self.lead)
            .chain(&self.followers)
            .filter_map(|desk| desk.routes(sink.clone()))
            .reduce(axum::Router::merge)
    }

    async fn run(&self, sink: Arc<dyn DeskSink>) -> Result<(), ConnectorError> {
        let runs = std::iter::once(&self.lead)
            .chain(&self.followers)
            .map(|desk| desk.run(sink.clone()));
        futures_util::future::join_all(runs)
            .await
            .into_iter()
            .collect()
    }

    async fn open_thread(
        &self,
        channel: &str,
        briefing: &Briefing,
    ) -> Result<ThreadRef, ConnectorError> {
        let thread = self.lead.open_thread(channel, briefing).await?;
        for follower in &self.followers {
            if let Err(error) = follower.follow_thread(&thread, briefing).await {
                Self::missed("a briefing", &thread, &error);
            }
        }
        Ok(thread)
    }

    async fn update_briefing(
        &self,
        thread: &ThreadRef,
        briefing: &Briefing,
    ) -> Result<(), ConnectorError> {
        self.lead.update_briefing(thread, briefing).await?;
        for follower in &self.followers {
            if let Err(error) = follower.update_briefing(thread, briefing).await {
                Self::missed("a briefing update", thread, &error);
            }
        }
        Ok(())
    }

    async fn post_in_thread(
        &self,
        thread: &ThreadRef,
        post: &ThreadPost,
    ) -> Result<String, ConnectorError> {
        let id = self.lead.post_in_thread(thread, post).await?;
        for follower in &self.followers {
            if let Err(error) = follower.post_in_thread(thread, post).await {
                Self::missed("a thread post", thread, &error);
            }
        }
        Ok(id)
    }

    async fn upload_in_thread(
        &self,
        thread: &ThreadRef,
        author: &str,
        file: &FileRef,
    ) -> Result<String, ConnectorError> {
        let id = self.lead.upload_in_thread(thread, author, file).await?;
        for follower in &self.followers {
            if let Err(error) = follower.upload_in_thread(thread, author, file).await {
                Self::missed("a file", thread, &error);
            }
        }
        Ok(id)
    }

    async fn health(&self) -> Health {
        let mut down = Vec::new();
        for desk in std::iter::once(&self.lead).chain(&self.followers) {
            if let Health::Down(why) = desk.health().await {
                down.push(why);
            }
        }
        if down.is_empty() {
            Health::Up
        } else {
            Health::Down(down.join("; "))
        }
    }

    async fn check_setup(&self) -> Result<Vec<String>, ConnectorError> {
        let mut problems = Vec::new();
        for desk in std::iter::once(&self.lead).chain(&self.followers) {
            problems.extend(desk.check_setup().await?);
        }
        Ok(problems)
    }

    async fn check_channel(&self, channel: &str) -> Result<(), ConnectorError> {
        self.lead.check_channel(channel).await
    }

    /// Every desk erases its own copy; an error from any is returned, so the erasure is run
    /// again (forgetting twice finds nothing left where it already worked).
    async fn forget_thread(&self, thread: &ThreadRef) -> Result<ForgottenPosts, ConnectorError> {
        let mut total = ForgottenPosts::default();
        for desk in std::iter::once(&self.lead).chain(&self.followers) {
            let forgotten = desk.forget_thread(thread).await?;
            total.deleted += forgotten.deleted;
            total.redacted += forgotten.redacted;
            total.files_deleted += forgotten.files_deleted;
            total.left_by_people += forgotten.left_by_people;
        }
        Ok(total)
    }
}
