//! The agent desk: where escalated conversations are shown to people and answered.
//!
//! The boundary is neutral both ways: the core hands a desk data (a [`Briefing`], a
//! [`ThreadPost`]) and each desk words and formats it (Block Kit and mrkdwn on Slack); each
//! desk maps its agents' gestures (thread replies, commands, reactions, buttons) onto
//! [`AgentAction`]s and hands them back as [`DeskEvent`]s through a [`DeskSink`].

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Attachment, ChannelKind, ConnectorError, FileRef, Health, IngestError};

/// Where a conversation's thread lives on the desk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ThreadRef {
    /// The desk channel id (Slack channel id).
    pub channel: String,
    /// The thread's parent message id (Slack `ts` of the briefing).
    pub ts: String,
}

/// One line of the transcript shown in a briefing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BriefingLine {
    /// `customer`, `ai`, `agent` or `system`.
    pub role: String,
    /// A name to show (customer or agent name, "AI").
    pub author: String,
    /// The text.
    pub text: String,
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// Files sent with the message, with their signed links when the gateway has a public
    /// URL (agents open them from the briefing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
}

/// Everything an agent needs to take over without the customer repeating a word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Briefing {
    /// The gateway's conversation id.
    pub conversation_id: String,
    /// The customer's name, or their id when no name is known.
    pub customer_name: String,
    /// The customer's id on their channel.
    pub customer_id: String,
    /// True when the channel verified the id.
    pub verified: bool,
    /// The customer's email, when known.
    pub email: Option<String>,
    /// The customer's channel.
    pub channel: ChannelKind,
    /// The customer's tier, when known.
    pub tier: Option<String>,
    /// The page the customer was on (web chat).
    pub page_url: Option<String>,
    /// That page's title.
    pub page_title: Option<String>,
    /// Other attributes the site sent (plan, ...).
    pub attributes: Vec<(String, String)>,
    /// Why it escalated, as a stable reason (`human_requested`, `low_confidence`, ...).
    pub reason: String,
    /// The reason in words, with the evidence.
    pub reason_detail: String,
    /// The AI's confidence in its best answer, 0..1.
    pub confidence: f32,
    /// A two-line summary of what the customer wants.
    pub summary: String,
    /// Who wrote the summary and the suggested reply when a model was asked to: "written by
    /// the model", or "heuristic (model timed out after 4000 ms)" when its draft could not be
    /// used. `None`: no model is configured and both are the built-in heuristic's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_source: Option<String>,
    /// The knowledge-base entries the model's summary and suggested reply rest on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub citations: Vec<Citation>,
    /// The transcript so far, oldest first.
    pub transcript: Vec<BriefingLine>,
    /// A reply the agent may send or adapt.
    pub suggested_reply: Option<String>,
    /// The agent who claimed the conversation.
    pub claimed_by: Option<String>,
    /// `escalated`, `human` or `resolved`.
    pub status: String,
    /// The customer's previous support case, when they had one with a thread: a new case
    /// gets a new thread, and the desk links the old one from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_case: Option<PreviousCase>,
}

/// A customer's previous support case, as a new case's briefing links it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousCase {
    /// The previous case's id (`<conversation id>:<number>`).
    pub case_id: String,
    /// Its desk thread.
    pub thread: ThreadRef,
}

/// A knowledge-base entry a model-written briefing cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    /// The entry's id (its file and heading, e.g. `password-reset`).
    pub id: String,
    /// The entry's question, as its title.
    pub title: String,
}

/// What an agent did, in the core's terms; each desk maps its own gestures (a thread reply, a
/// `!claim` command, a reaction, a button) onto these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentAction {
    /// A reply for the customer, signed with the agent's name.
    Reply {
        /// The text as written (may be empty when only files are sent).
        text: String,
        /// Files attached to it (over-limit ones without their bytes).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<Attachment>,
    },
    /// An internal note: kept on the desk, never sent.
    Note {
        /// The note.
        text: String,
    },
    /// A command about the conversation.
    Command(AgentCommand),
    /// The AI's suggested reply, sent to the customer in the agent's name and marked in the
    /// transcript as the AI's draft the agent approved (one click, or edited first).
    SendSuggestion {
        /// Which suggestion the agent saw ([`suggestion_fingerprint`]): a suggestion that
        /// changed since is not sent unseen.
        fingerprint: String,
        /// The text as the agent edited it; `None` sends the suggestion unchanged.
        edited: Option<String>,
    },
}

/// A short stable id of a suggested reply's text, so a desk can say which suggestion an
/// agent approved without carrying the whole text (FNV-1a: an identity, not a secret).
pub fn suggestion_fingerprint(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// What became of an agent's one-click action ([`DeskSink::act`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionOutcome {
    /// Carried out (or already carried out: a repeat acts once).
    Done,
    /// Not carried out; the desk tells that agent alone why.
    Refused(ActionRefusal),
}

/// Why a one-click action was not carried out: a button must not undo what someone else did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum ActionRefusal {
    /// The conversation is resolved.
    Resolved {
        /// Who resolved it, when known.
        by: Option<String>,
    },
    /// Another agent has the conversation.
    ClaimedByOther {
        /// Their name.
        agent: String,
    },
    /// The agent already has the conversation.
    AlreadyYours,
    /// The conversation is already back with the AI.
    AlreadyWithAi,
    /// There is no suggested reply to send.
    NoSuggestion,
    /// The suggestion changed since the agent saw it.
    SuggestionChanged,
    /// This suggestion was already sent.
    SuggestionAlreadySent,
    /// The learning loop is off on this gateway.
    LearningDisabled,
    /// There is no pending knowledge-base candidate (already reviewed).
    NoPendingCandidate,
}

/// A command an agent gives about a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum AgentCommand {
    /// Take the conversation.
    Claim,
    /// Mark it resolved and tell the customer.
    Resolve,
    /// Give it back to the AI.
    HandBack,
    /// Teach the AI this conversation's knowledge-base candidate, optionally with an edited answer.
    ApproveKnowledge {
        /// The answer as the agent edited it; `None` keeps the candidate's.
        edited_answer: Option<String>,
    },
    /// Drop this conversation's knowledge-base candidate.
    RejectKnowledge,
    /// Something that looked like a command but is not one; the desk is told what exists.
    Unknown {
        /// The word as the agent wrote it.
        word: String,
    },
}

impl AgentAction {
    /// Reads a chat desk's message by the conventions every text-based desk shares: `//` opens
    /// an internal note; `!claim`, `!resolve`, `!ai`, `!kb approve [answer]`, `!kb reject` are
    /// commands; anything else is a reply.
    pub fn from_text(text: &str, files: Vec<Attachment>) -> AgentAction {
        let trimmed = text.trim();
        if let Some(note) = trimmed.strip_prefix("//") {
            return AgentAction::Note {
                text: note.trim().to_owned(),
            };
        }
        let Some(command) = trimmed.strip_prefix('!') else {
            return AgentAction::Reply {
                text: trimmed.to_owned(),
                files,
            };
        };
        let mut words = command.split_whitespace();
        let word = words.next().unwrap_or("").to_lowercase();
        let command = if word == "kb" {
            let action = words.next().unwrap_or("").to_lowercase();
            // The edited answer keeps its line breaks: take the text after the action word.
            let rest = command
                .splitn(3, char::is_whitespace)
                .nth(2)
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty());
            match action.as_str() {
                "approve" | "ok" | "yes" => AgentCommand::ApproveKnowledge {
                    edited_answer: rest,
                },
                "reject" | "no" => AgentCommand::RejectKnowledge,
                _ => AgentCommand::Unknown {
                    word: format!("kb {action}"),
                },
            }
        } else {
            match word.as_str() {
                "claim" | "take" => AgentCommand::Claim,
                "resolve" | "resolved" | "close" | "done" => AgentCommand::Resolve,
                "ai" | "bot" | "handback" | "hand-back" => AgentCommand::HandBack,
                _ => AgentCommand::Unknown { word },
            }
        };
        AgentAction::Command(command)
    }
}

/// Something an agent did on the desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeskEvent {
    /// An agent acted on a conversation: a reply, a note or a command.
    Agent {
        /// The platform's event id (Slack `event_id`), for logs.
        event_id: String,
        /// The thread of the conversation it is about.
        thread: ThreadRef,
        /// Unique per action and the same on every redelivery (a message's id, or the event id
        /// of a reaction or button press): the core acts once per id.
        action_id: String,
        /// The agent's platform user id.
        agent_id: String,
        /// The agent's display name, shown to the customer.
        agent_name: String,
        /// What the agent did.
        action: AgentAction,
    },
    /// An agent edited a reply they had sent; the customer gets the new text as a correction.
    AgentEdited {
        /// The platform's event id.
        event_id: String,
        /// The thread.
        thread: ThreadRef,
        /// The edited message's id.
        message_ts: String,
        /// The agent's display name.
        agent_name: String,
        /// The new text.
        text: String,
    },
    /// An agent deleted a message in a thread.
    AgentDeleted {
        /// The platform's event id.
        event_id: String,
        /// The thread.
        thread: ThreadRef,
        /// The deleted message's id.
        message_ts: String,
    },
}

impl DeskEvent {
    /// The thread the event is about.
    pub fn thread(&self) -> &ThreadRef {
        match self {
            DeskEvent::Agent { thread, .. }
            | DeskEvent::AgentEdited { thread, .. }
            | DeskEvent::AgentDeleted { thread, .. } => thread,
        }
    }
}

/// What the core posts into a conversation's thread, besides the briefing; each desk words
/// and formats it in its own way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ThreadPost {
    /// A later message from the customer.
    CustomerMessage {
        /// The customer's name as the briefing shows it.
        author: String,
        /// The text.
        text: String,
        /// The transcript entry it mirrors, so a desk that hides parts of it can ask for the
        /// original ([`DeskSink::reveal`]); absent on posts queued by earlier versions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// A file the customer sent that is no longer stored, so only its name can be shown.
    CustomerFileGone {
        /// The customer's name.
        author: String,
        /// The file's name.
        file_name: String,
    },
    /// The conversation escalated again while its thread was open.
    EscalatedAgain {
        /// The stable reason (`human_requested`, ...).
        reason: String,
        /// The reason in words.
        in_words: String,
    },
    /// A notice from the gateway.
    Notice(DeskNotice),
}

/// A notice from the gateway to the agents in a thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum DeskNotice {
    /// Files an agent attached did not reach the customer; one problem per file.
    AgentFilesNotSent {
        /// Each refused file with why.
        problems: Vec<String>,
    },
    /// The customer tried to send a file the gateway refused; they were told why.
    CustomerFileRefused {
        /// The file and why.
        problem: String,
    },
    /// A resolution was kept as a knowledge-base candidate for the agents to review.
    KnowledgeCandidate {
        /// The candidate's id.
        id: String,
        /// The customer's question, shortened.
        question: String,
        /// The proposed answer, for a desk that lets agents edit it before approving
        /// (empty when queued by an earlier version).
        #[serde(default)]
        answer: String,
    },
    /// A candidate is now in the knowledge base.
    KnowledgeApproved {
        /// The candidate's id.
        id: String,
    },
    /// A candidate was dropped.
    KnowledgeRejected {
        /// The candidate's id.
        id: String,
    },
    /// A review could not be carried out.
    KnowledgeReviewFailed {
        /// Why.
        problem: String,
    },
    /// An agent sent the AI's suggested reply (as it was, or edited).
    SuggestionSent {
        /// The agent's name.
        agent: String,
        /// The text the customer got.
        text: String,
        /// True when the agent edited the suggestion first.
        edited: bool,
    },
    /// A knowledge command came but the learning loop is off on this gateway.
    LearningDisabled,
    /// A knowledge command came but the conversation has no pending candidate.
    NoPendingCandidate,
    /// An agent gave a command that does not exist.
    UnknownCommand {
        /// The word as written.
        word: String,
    },
    /// An agent deleted a reply the customer had already received.
    DeletedAfterDelivery,
    /// Someone has waited on a person longer than the route allows.
    Reminder {
        /// What they wait for.
        waiting: Waiting,
        /// How long they have waited, in whole minutes.
        minutes: u64,
        /// Whom to call, as the desk's config names them (`@here`, a user group id, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mention: Option<String>,
        /// Also show it to the whole channel, not only the thread.
        #[serde(default)]
        broadcast: bool,
    },
    /// A notice queued as text by an earlier version and still waiting in the outbox.
    Text {
        /// The text as it was queued.
        text: String,
    },
}

/// What a [`DeskNotice::Reminder`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Waiting {
    /// An escalation nobody has claimed.
    ForClaim,
    /// A customer whose latest message no agent has answered.
    ForReply,
}

/// An agent asking to see what a desk's redaction hid in a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealRequest {
    /// The conversation's thread.
    pub thread: ThreadRef,
    /// The agent's id on the desk (kept in the audit log).
    pub agent_id: String,
    /// The agent's name (kept in the audit log).
    pub agent_name: String,
    /// One mirrored message; `None` asks for the customer's messages the briefing shows.
    pub message_id: Option<String>,
}

/// A customer's message as they wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealedMessage {
    /// The transcript entry's id.
    pub message_id: String,
    /// The text, unredacted.
    pub text: String,
}

/// Where a desk sends agents' actions; the core implements it.
#[async_trait]
pub trait DeskSink: Send + Sync {
    /// Handles one event durably; an error asks the platform to redeliver (HTTP 503 / no ack).
    async fn handle(&self, event: DeskEvent) -> Result<(), IngestError>;

    /// Handles a one-click action (a button): like [`DeskSink::handle`], but refused instead
    /// of carried out when it would override the conversation's state (resolved, claimed by
    /// someone else, suggestion already sent), so the desk can tell the agent privately.
    async fn act(&self, event: DeskEvent) -> Result<ActionOutcome, IngestError> {
        self.handle(event).await.map(|()| ActionOutcome::Done)
    }

    /// The originals of what a desk hid, for that agent alone; every call is written to the
    /// audit log (who, which conversation and messages, never the text). A sink that keeps no
    /// originals reveals nothing.
    async fn reveal(&self, _request: RevealRequest) -> Result<Vec<RevealedMessage>, IngestError> {
        Ok(Vec::new())
    }
}

/// The agent desk: renders briefings and thread messages, and reports agents' actions.
#[async_trait]
pub trait Desk: Send + Sync {
    /// HTTP routes the desk serves (the Events API endpoint), if any.
    fn routes(&self, _sink: Arc<dyn DeskSink>) -> Option<axum::Router> {
        None
    }

    /// Receives agents' actions until the connection ends (Socket Mode); network work starts here.
    async fn run(&self, sink: Arc<dyn DeskSink>) -> Result<(), ConnectorError>;

    /// Posts a briefing as the parent of a new thread in `channel` (the routed desk channel).
    async fn open_thread(
        &self,
        channel: &str,
        briefing: &Briefing,
    ) -> Result<ThreadRef, ConnectorError>;

    /// Re-renders a thread's briefing (claimed, resolved).
    async fn update_briefing(
        &self,
        thread: &ThreadRef,
        briefing: &Briefing,
    ) -> Result<(), ConnectorError>;

    /// Posts into a thread, worded and formatted the desk's way; returns the post's id.
    async fn post_in_thread(
        &self,
        thread: &ThreadRef,
        post: &ThreadPost,
    ) -> Result<String, ConnectorError>;

    /// Puts a file `author` (the customer) sent into a thread, bytes filled in; returns the
    /// post's id.
    async fn upload_in_thread(
        &self,
        thread: &ThreadRef,
        author: &str,
        file: &FileRef,
    ) -> Result<String, ConnectorError>;

    /// Tells whether the desk currently works.
    async fn health(&self) -> Health;

    /// Asks the platform what of the desk's own set-up is missing (permissions the app was not
    /// granted), one line per problem with what it breaks; empty when nothing is, or when the
    /// platform cannot tell.
    async fn check_setup(&self) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }

    /// Shows a thread another desk opened, under that desk's reference, so agents on either
    /// desk act on one conversation (the core maps both desks' events through `thread`).
    /// Only desks whose config says they follow others ([`DeskConfig::follows`]) are asked.
    ///
    /// [`DeskConfig::follows`]: crate::DeskConfig::follows
    async fn follow_thread(
        &self,
        _thread: &ThreadRef,
        _briefing: &Briefing,
    ) -> Result<(), ConnectorError> {
        Err(ConnectorError::Permanent {
            connector: "desk",
            detail: "this desk opens its own threads and cannot follow another desk's".into(),
        })
    }

    /// Checks the desk can post in `channel` (a routing rule's target): an error says why not.
    async fn check_channel(&self, _channel: &str) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Erases what the desk itself posted in a thread (a customer asked to be forgotten):
    /// deletes the desk's own posts, or overwrites them with a redaction where the platform
    /// refuses a deletion. What agents wrote under their own accounts is the platform's to
    /// erase and is only counted. A desk that keeps nothing of its own (or only in the
    /// gateway's Redis, which the core erases) does nothing.
    async fn forget_thread(&self, _thread: &ThreadRef) -> Result<ForgottenPosts, ConnectorError> {
        Ok(ForgottenPosts::default())
    }
}

/// What [`Desk::forget_thread`] did, in counts (never content), for the erasure audit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgottenPosts {
    /// The desk's own posts deleted.
    pub deleted: u64,
    /// The desk's own posts the platform would not delete, overwritten with a redaction.
    pub redacted: u64,
    /// Files the desk had uploaded into the thread, deleted.
    pub files_deleted: u64,
    /// Posts by people (agents' replies and notes) the desk cannot erase.
    pub left_by_people: u64,
}

#[cfg(test)]
mod tests {
    use super::{AgentAction, AgentCommand};

    fn command(text: &str) -> AgentCommand {
        match AgentAction::from_text(text, Vec::new()) {
            AgentAction::Command(command) => command,
            other => panic!("{text:?} read as {other:?}"),
        }
    }

    #[test]
    fn chat_conventions_tell_replies_notes_and_commands_apart() {
        assert_eq!(
            AgentAction::from_text("  Try again now. ", Vec::new()),
            AgentAction::Reply {
                text: "Try again now.".into(),
                files: Vec::new()
            }
        );
        assert_eq!(
            AgentAction::from_text("// customer is on the legacy plan", Vec::new()),
            AgentAction::Note {
                text: "customer is on the legacy plan".into()
            }
        );
        assert_eq!(command("!claim"), AgentCommand::Claim);
        assert_eq!(command("!Resolve please"), AgentCommand::Resolve);
        assert_eq!(command("!ai"), AgentCommand::HandBack);
        assert_eq!(command("!kb reject"), AgentCommand::RejectKnowledge);
        assert_eq!(
            command("!frobnicate"),
            AgentCommand::Unknown {
                word: "frobnicate".into()
            }
        );
        assert_eq!(
            command("!kb maybe"),
            AgentCommand::Unknown {
                word: "kb maybe".into()
            }
        );
    }

    #[test]
    fn an_approved_answer_keeps_its_line_breaks() {
        assert_eq!(
            command("!kb approve"),
            AgentCommand::ApproveKnowledge {
                edited_answer: None
            }
        );
        assert_eq!(
            command("!kb approve Open Settings.\nThen Billing."),
            AgentCommand::ApproveKnowledge {
                edited_answer: Some("Open Settings.\nThen Billing.".into())
            }
        );
    }

    #[test]
    fn a_text_reply_keeps_its_files() {
        let file = crate::Attachment::new("log.txt", "text/plain", "boot ok".into());
        let action = AgentAction::from_text("", vec![file.clone()]);
        assert_eq!(
            action,
            AgentAction::Reply {
                text: String::new(),
                files: vec![file]
            }
        );
    }
}
