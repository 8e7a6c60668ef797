//! The desk's threads in shared state: a record per thread (its queue and latest briefing),
//! a log of what was posted in it, and the set of open threads ordered by when they opened.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard_api::{Briefing, DeskNotice, FileRef, SharedState, ThreadPost, ThreadRef, Waiting};

/// Threads kept open in the queue at most (the oldest waiting are shown first).
const QUEUE_LIMIT: usize = 500;
/// Posts shown per thread.
const POSTS_SHOWN: usize = 500;
/// The scored set of open threads, by the time they opened.
const OPEN: &str = "webdesk:open";

/// One conversation's thread on the web desk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadRecord {
    /// The thread's id (its `ThreadRef::ts`).
    pub id: String,
    /// Its queue (the routing channel).
    pub channel: String,
    /// When it opened, in milliseconds since the epoch.
    pub opened_ms: u64,
    /// The latest briefing the core sent.
    pub briefing: Briefing,
}

/// Something posted in a thread after its briefing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// The post's id.
    #[serde(default)]
    pub id: String,
    /// `customer`, `agent`, `note`, `file` or `notice`.
    pub kind: String,
    /// Who wrote it (empty for the gateway's notices).
    pub author: String,
    /// The text.
    pub text: String,
    /// A link to a file, when the post is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When it was posted, in milliseconds since the epoch.
    #[serde(default)]
    pub at_ms: u64,
}

impl Post {
    /// A post by `author` of `kind`.
    pub fn new(kind: &str, author: &str, text: &str) -> Post {
        Post {
            id: String::new(),
            kind: kind.to_owned(),
            author: author.to_owned(),
            text: text.to_owned(),
            url: None,
            at_ms: 0,
        }
    }

    /// What the core posts, in the desk's words.
    pub fn from_thread_post(post: &ThreadPost) -> Post {
        match post {
            ThreadPost::CustomerMessage { author, text, .. } => Post::new("customer", author, text),
            ThreadPost::CustomerFileGone { author, file_name } => Post::new(
                "notice",
                "",
                &format!("{author} sent {file_name}, which is no longer stored."),
            ),
            ThreadPost::EscalatedAgain { in_words, .. } => {
                Post::new("notice", "", &format!("Escalated again: {in_words}"))
            }
            ThreadPost::Notice(notice) => Post::new("notice", "", &notice_in_words(notice)),
        }
    }

    /// A file the customer sent, with its link when the gateway has one.
    pub fn file(author: &str, file: &FileRef) -> Post {
        Post {
            url: file.url.clone(),
            ..Post::new("file", author, &file.name)
        }
    }
}

/// A gateway notice as the web desk words it.
pub fn notice_in_words(notice: &DeskNotice) -> String {
    match notice {
        DeskNotice::AgentFilesNotSent { problems } => {
            format!("Not sent to the customer: {}", problems.join("; "))
        }
        DeskNotice::CustomerFileRefused { problem } => {
            format!("The customer's file was refused (they were told): {problem}")
        }
        DeskNotice::KnowledgeCandidate {
            id,
            question,
            answer,
        } => format!(
            "Knowledge candidate {id} kept from this resolution (\u{201c}{question}\u{201d} \
             \u{2192} \u{201c}{answer}\u{201d}): approve or reject it."
        ),
        DeskNotice::KnowledgeApproved { id } => {
            format!("Knowledge candidate {id} is now in the knowledge base.")
        }
        DeskNotice::KnowledgeRejected { id } => format!("Knowledge candidate {id} was dropped."),
        DeskNotice::KnowledgeReviewFailed { problem } => {
            format!("The knowledge review failed: {problem}")
        }
        DeskNotice::LearningDisabled => "Learning is off on this gateway.".into(),
        DeskNotice::NoPendingCandidate => "This conversation has no knowledge candidate.".into(),
        DeskNotice::UnknownCommand { word } => format!("Unknown command: {word}"),
        DeskNotice::DeletedAfterDelivery => {
            "That reply was deleted here, but the customer already has it.".into()
        }
        DeskNotice::SuggestionSent {
            agent,
            text,
            edited,
        } => match edited {
            true => format!("{agent} edited the AI's suggested reply and sent it: {text}"),
            false => format!("{agent} sent the AI's suggested reply: {text}"),
        },
        DeskNotice::Reminder {
            waiting, minutes, ..
        } => match waiting {
            Waiting::ForClaim => format!("Nobody has claimed this for {minutes} min."),
            Waiting::ForReply => format!("The customer has waited {minutes} min for a reply."),
        },
        DeskNotice::Text { text } => text.clone(),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn record_key(id: &str) -> String {
    format!("webdesk:thread:{id}")
}

fn posts_key(id: &str) -> String {
    format!("webdesk:posts:{id}")
}

/// Whether a conversation in this status waits for an agent.
fn is_open(status: &str) -> bool {
    matches!(status, "escalated" | "human")
}

/// The desk's threads.
pub struct Threads {
    shared: Arc<dyn SharedState>,
}

impl Threads {
    /// Threads kept in `shared`.
    pub fn new(shared: Arc<dyn SharedState>) -> Threads {
        Threads { shared }
    }

    /// Opens a thread in queue `channel` and puts it in the queue.
    pub async fn open(&self, channel: &str, briefing: &Briefing) -> Result<ThreadRef, String> {
        let record = ThreadRecord {
            id: crate::auth::new_token()[..24].to_owned(),
            channel: channel.to_owned(),
            opened_ms: now_ms(),
            briefing: briefing.clone(),
        };
        self.save(&record).await?;
        self.shared
            .set_add(OPEN, &record.id, record.opened_ms as f64)
            .await?;
        Ok(ThreadRef {
            channel: record.channel,
            ts: record.id,
        })
    }

    async fn save(&self, record: &ThreadRecord) -> Result<(), String> {
        let json = serde_json::to_string(record).map_err(|error| error.to_string())?;
        self.shared.set(&record_key(&record.id), &json, None).await
    }

    /// Replaces a thread's briefing; a resolved or handed-back conversation leaves the queue,
    /// an escalated one comes back to it.
    pub async fn update(&self, thread: &ThreadRef, briefing: &Briefing) -> Result<(), String> {
        let mut record = match self.get(&thread.ts).await? {
            Some(record) => record,
            // The record was lost (Redis flushed): the core's briefing brings the thread back.
            None => ThreadRecord {
                id: thread.ts.clone(),
                channel: thread.channel.clone(),
                opened_ms: now_ms(),
                briefing: briefing.clone(),
            },
        };
        let reopened = !is_open(&record.briefing.status) && is_open(&briefing.status);
        if reopened {
            record.opened_ms = now_ms();
        }
        record.briefing = briefing.clone();
        self.save(&record).await?;
        if is_open(&briefing.status) {
            self.shared
                .set_add(OPEN, &record.id, record.opened_ms as f64)
                .await
        } else {
            self.shared.set_remove(OPEN, &record.id).await
        }
    }

    /// Appends a post to a thread; returns its id.
    pub async fn post(&self, thread: &ThreadRef, mut post: Post) -> Result<String, String> {
        post.id = crate::auth::new_token()[..16].to_owned();
        post.at_ms = now_ms();
        let json = serde_json::to_string(&post).map_err(|error| error.to_string())?;
        self.shared.append(&posts_key(&thread.ts), &json).await?;
        Ok(post.id)
    }

    /// Deletes a thread's record and posts and takes it off the queue; returns how many posts
    /// (the briefing counted as one) it held.
    pub async fn forget(&self, id: &str) -> Result<u64, String> {
        let posts = self.shared.tail(&posts_key(id), usize::MAX).await?.len() as u64;
        let had_record = self.shared.take(&record_key(id)).await?;
        self.shared.take(&posts_key(id)).await?;
        self.shared.set_remove(OPEN, id).await?;
        Ok(posts + u64::from(had_record))
    }

    /// A thread's record.
    pub async fn get(&self, id: &str) -> Result<Option<ThreadRecord>, String> {
        let Some(json) = self.shared.get(&record_key(id)).await? else {
            return Ok(None);
        };
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|error| format!("thread {id}: {error}"))
    }

    /// A thread's posts, oldest first.
    pub async fn posts(&self, id: &str) -> Result<Vec<Post>, String> {
        let lines = self.shared.tail(&posts_key(id), POSTS_SHOWN).await?;
        Ok(lines
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }

    /// The open threads `visible` lets through, oldest waiting first.
    pub async fn queue(
        &self,
        visible: impl Fn(&ThreadRecord) -> bool,
    ) -> Result<Vec<ThreadRecord>, String> {
        let mut queue = Vec::new();
        for (id, _) in self.shared.set_members(OPEN, QUEUE_LIMIT).await? {
            if let Some(record) = self.get(&id).await? {
                if visible(&record) {
                    queue.push(record);
                }
            }
        }
        Ok(queue)
    }
}

#[cfg(test)]
mod tests {
    use switchboard_api::MemoryState;

    use super::*;

    fn briefing(status: &str) -> Briefing {
        serde_json::from_value(serde_json::json!({
            "conversation_id": "c1", "customer_name": "Dana", "customer_id": "s:1",
            "verified": false, "email": null, "channel": "webchat", "tier": null,
            "page_url": null, "page_title": null, "attributes": [], "reason": "human_requested",
            "reason_detail": "", "confidence": 0.2, "summary": "", "transcript": [],
            "suggested_reply": null, "claimed_by": null, "status": status
        }))
        .expect("a briefing")
    }

    #[tokio::test]
    async fn the_queue_holds_open_threads_oldest_first_and_lets_resolved_ones_go() {
        let threads = Threads::new(Arc::new(MemoryState::default()));
        let first = threads
            .open("support", &briefing("escalated"))
            .await
            .unwrap();
        let second = threads
            .open("billing", &briefing("escalated"))
            .await
            .unwrap();
        let ids = |queue: Vec<ThreadRecord>| queue.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = threads.queue(|_| true).await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].opened_ms <= all[1].opened_ms, "oldest waiting first");
        let billing = ids(threads.queue(|r| r.channel == "billing").await.unwrap());
        assert_eq!(billing, std::slice::from_ref(&second.ts));

        threads.update(&first, &briefing("resolved")).await.unwrap();
        assert_eq!(
            ids(threads.queue(|_| true).await.unwrap()),
            std::slice::from_ref(&second.ts)
        );
        threads
            .update(&first, &briefing("escalated"))
            .await
            .unwrap();
        assert_eq!(threads.queue(|_| true).await.unwrap().len(), 2);

        let notice = ThreadPost::Notice(DeskNotice::NoPendingCandidate);
        threads
            .post(&first, Post::from_thread_post(&notice))
            .await
            .unwrap();
        let posts = threads.posts(&first.ts).await.unwrap();
        assert_eq!(posts[0].kind, "notice");
        assert!(posts[0].text.contains("no knowledge candidate"));
    }

    #[tokio::test]
    async fn a_forgotten_thread_leaves_no_record_posts_or_queue_entry() {
        let threads = Threads::new(Arc::new(MemoryState::default()));
        let thread = threads
            .open("support", &briefing("escalated"))
            .await
            .unwrap();
        let post = Post::new("customer", "Dana", "my order QX-5521");
        threads.post(&thread, post).await.unwrap();

        assert_eq!(threads.forget(&thread.ts).await.unwrap(), 2);
        assert!(threads.get(&thread.ts).await.unwrap().is_none());
        assert!(threads.posts(&thread.ts).await.unwrap().is_empty());
        assert!(threads.queue(|_| true).await.unwrap().is_empty());
        assert_eq!(threads.forget(&thread.ts).await.unwrap(), 0);
    }
}
