//! What agents' actions on the desk mean for the conversation: replies relayed to the
//! customer, internal notes, claims, resolutions, hand-backs and knowledge reviews.
//!
//! Each desk maps its own gestures (Slack thread replies, `!commands`, reactions) onto neutral
//! [`AgentAction`]s; this inbox turns them into commits. An edit is sent to the customer as a
//! correction; a deletion cannot unsend, so the thread is told the customer already has it.
//!
//! Every action is one commit deduplicated on the desk's action id, so a retried event
//! (Slack's `X-Slack-Retry-Num`) is never relayed twice.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_api::{
    suggestion_fingerprint, ActionOutcome, ActionRefusal, AgentAction, AgentCommand, Attachment,
    Author, CustomerAction, DeskEvent, DeskNotice, DeskSink, FileRef, IngestError, Outbound,
    RevealRequest, RevealedMessage, ThreadRef,
};
use tracing::{info, warn};

use crate::desk::briefing::{self, AI_DRAFT, AI_DRAFT_EDITED};
use crate::desk::BRIEFING_ENTRIES;
use crate::files::Files;
use crate::learning::{candidate_from, KnowledgeLoop, LearningError};
use crate::metrics::Metrics;
use crate::model::{
    case_field, field, now_ms, Conversation, Delivery, DeskAction, DeskPost, Role, Status,
};
use crate::store::{Commit, ReplyToQueue, RevealLook, Store, StoreError};

/// Told to the customer when an agent resolves the conversation.
pub const RESOLVED_NOTICE: &str =
    "This conversation has been marked as resolved. If you need anything else, just reply here.";
/// Asked right after the resolution; the answer is stored and never goes to triage.
pub const CSAT_QUESTION: &str = "How did we do? Reply with a number from 1 (poor) to 5 (great).";
/// Told to the customer when an agent hands the conversation back to the AI.
pub const HANDBACK_NOTICE: &str =
    "You're chatting with our AI assistant again. You can ask for a person at any time.";

/// The core's side of the desk: turns agents' actions into commits.
pub struct DeskInbox {
    store: Store,
    metrics: Arc<Metrics>,
    learning: Option<Arc<KnowledgeLoop>>,
    files: Option<Arc<Files>>,
    refresh_on_reply: bool,
}

impl DeskInbox {
    /// An inbox writing to `store`, counting into `metrics`.
    pub fn new(store: Store, metrics: Arc<Metrics>) -> Self {
        DeskInbox {
            store,
            metrics,
            learning: None,
            files: None,
            refresh_on_reply: false,
        }
    }

    /// Refreshes the briefing after every agent reply, for desks running side by side: each
    /// shows the replies written on the others in the briefing's transcript.
    pub fn with_briefing_refresh_on_reply(mut self) -> Self {
        self.refresh_on_reply = true;
        self
    }

    /// Relays agents' files to customers (without it, the thread is told files are off).
    pub fn with_files(mut self, files: Arc<Files>) -> Self {
        self.files = Some(files);
        self
    }

    /// A reply with files: the accepted files are stored, then sent with the text in one
    /// commit; each refused file is reported in the thread and never reaches the customer.
    async fn reply_with_files(
        &self,
        conversation: &Conversation,
        agent: &str,
        text: &str,
        files: Vec<Attachment>,
        dedupe: String,
    ) -> Result<Option<Commit>, StoreError> {
        let (stored, refused) = match &self.files {
            Some(service) => {
                let taken = service.take(&dedupe, files);
                service.put(&conversation.id, &taken.stored).await?;
                (taken.stored, taken.refused)
            }
            None => {
                let refused = files
                    .iter()
                    .map(|file| format!("{}: files are not enabled on this gateway.", file.name))
                    .collect();
                (Vec::new(), refused)
            }
        };
        if !refused.is_empty() {
            let notice = DeskNotice::AgentFilesNotSent { problems: refused };
            let notice = notice_commit(conversation, notice, format!("{dedupe}:files"));
            self.store.commit(&notice).await?;
        }
        let refs: Vec<FileRef> = stored.into_iter().map(|file| file.file).collect();
        if text.is_empty() && refs.is_empty() {
            return Ok(None);
        }
        let mut commit = reply_commit(conversation, agent, text, "", &refs);
        commit.dedupe = Some(dedupe);
        Ok(Some(commit))
    }

    /// Turns resolutions into knowledge-base candidates and handles `!kb` commands.
    pub fn with_learning(mut self, learning: Arc<KnowledgeLoop>) -> Self {
        self.learning = Some(learning);
        self
    }

    /// After a resolution: keep the question and the agent's answer as a candidate, tell the thread.
    async fn propose_candidate(
        &self,
        conversation: &Conversation,
        dedupe: &str,
    ) -> Result<(), StoreError> {
        let Some(learning) = &self.learning else {
            return Ok(());
        };
        let Some((_, transcript)) = self
            .store
            .conversation_with_recent(&conversation.id, 200)
            .await?
        else {
            return Ok(());
        };
        let Some(candidate) = candidate_from(&conversation.id, &transcript, dedupe) else {
            return Ok(());
        };
        if learning.propose(&candidate).await? {
            let notice = DeskNotice::KnowledgeCandidate {
                id: candidate.id.clone(),
                question: briefing::shorten(&candidate.question, 120),
                answer: candidate.answer.clone(),
            };
            let notice = notice_commit(conversation, notice, format!("kb:{}", candidate.id));
            self.store.commit(&notice).await?;
        }
        Ok(())
    }

    /// Approves (`Some(edited answer)`) or rejects (`None`) the conversation's pending
    /// knowledge-base candidate, and tells the thread how it went.
    async fn review_candidate(
        &self,
        conversation: &Conversation,
        approve: Option<Option<String>>,
        dedupe: String,
    ) -> Result<(), StoreError> {
        let notice = match &self.learning {
            None => DeskNotice::LearningDisabled,
            Some(learning) => match learning.pending_for(&conversation.id).await? {
                None => DeskNotice::NoPendingCandidate,
                Some(candidate) => {
                    let outcome = match &approve {
                        Some(edited) => learning.approve(&candidate.id, edited.as_deref()).await,
                        None => learning.reject(&candidate.id).await,
                    };
                    match outcome {
                        Ok(decided) if decided.status == "approved" => {
                            DeskNotice::KnowledgeApproved { id: decided.id }
                        }
                        Ok(decided) => DeskNotice::KnowledgeRejected { id: decided.id },
                        Err(LearningError::Store(error)) => return Err(error),
                        Err(error) => DeskNotice::KnowledgeReviewFailed {
                            problem: error.to_string(),
                        },
                    }
                }
            },
        };
        self.store
            .commit(&notice_commit(conversation, notice, dedupe))
            .await
            .map(|_| ())
    }

    fn count(&self, conversation: &Conversation, commit: &Commit) {
        let set = |field: &str| commit.fields.iter().any(|(name, _)| name == field);
        let relayed_agent_reply = commit
            .reply
            .as_ref()
            .is_some_and(|reply| reply.role == Role::Agent && !reply.payload.is_empty());
        if relayed_agent_reply {
            self.metrics.agent_replies.inc();
        }
        if set("first_human_reply_ms") {
            if let Some(escalated_ms) = conversation.escalated_ms {
                let waited = now_ms().saturating_sub(escalated_ms) as f64 / 1000.0;
                self.metrics.time_to_human.observe(waited);
            }
        }
        if set("resolved_ms") {
            self.metrics.resolutions.inc();
        }
        // Claimed: a person took a conversation that was waiting for one.
        let taken = conversation.status == Status::Escalated
            && commit
                .fields
                .iter()
                .any(|(name, value)| name == "status" && value == Status::Human.as_str());
        if let (true, Some(escalated_ms)) = (taken, conversation.escalated_ms) {
            let waited = now_ms().saturating_sub(escalated_ms) as f64 / 1000.0;
            self.metrics.time_to_claim.observe(waited);
        }
    }

    async fn conversation_for(
        &self,
        thread: &ThreadRef,
    ) -> Result<Option<Conversation>, StoreError> {
        let Some(id) = self.store.conversation_for_thread(thread).await? else {
            return Ok(None);
        };
        self.store.conversation(&id).await
    }

    async fn apply(&self, event: DeskEvent) -> Result<(), StoreError> {
        let thread = event.thread().clone();
        let Some(conversation) = self.conversation_for(&thread).await? else {
            info!(channel = %thread.channel, ts = %thread.ts, "desk event for an unknown thread; ignored");
            return Ok(());
        };
        let commit = match event {
            DeskEvent::Agent {
                action_id,
                agent_name,
                action,
                ..
            } => {
                let dedupe = format!("desk:{action_id}");
                match action {
                    AgentAction::Reply { text, files } if !files.is_empty() => {
                        let commit = self
                            .reply_with_files(&conversation, &agent_name, &text, files, dedupe)
                            .await?;
                        match commit {
                            Some(commit) => commit,
                            None => return Ok(()),
                        }
                    }
                    AgentAction::Command(AgentCommand::ApproveKnowledge { edited_answer }) => {
                        return self
                            .review_candidate(&conversation, Some(edited_answer), dedupe)
                            .await
                    }
                    AgentAction::Command(AgentCommand::RejectKnowledge) => {
                        return self.review_candidate(&conversation, None, dedupe).await
                    }
                    AgentAction::SendSuggestion {
                        fingerprint,
                        edited,
                    } => {
                        return self
                            .send_suggestion(
                                &conversation,
                                &agent_name,
                                &fingerprint,
                                edited,
                                dedupe,
                            )
                            .await
                    }
                    action => action_commit(&conversation, action, &agent_name, dedupe),
                }
            }
            DeskEvent::AgentEdited {
                event_id,
                agent_name,
                text,
                ..
            } => {
                let mut commit = reply_commit(&conversation, &agent_name, &text, "edit", &[]);
                commit.dedupe = Some(format!("desk:{event_id}"));
                commit
            }
            DeskEvent::AgentDeleted {
                event_id,
                message_ts,
                ..
            } => {
                let relayed = self
                    .store
                    .seen_entry(&conversation.id, &format!("desk:{message_ts}"))
                    .await?;
                if relayed.is_none() {
                    return Ok(());
                }
                notice_commit(
                    &conversation,
                    DeskNotice::DeletedAfterDelivery,
                    format!("desk:{event_id}"),
                )
            }
        };
        self.commit_counted(&conversation, &commit)
            .await
            .map(|_| ())
    }

    /// Commits, counts what it changed and, after a resolution, proposes a knowledge-base
    /// candidate; true when the commit applied (false: a repeat).
    async fn commit_counted(
        &self,
        conversation: &Conversation,
        commit: &Commit,
    ) -> Result<bool, StoreError> {
        let with_refresh;
        let commit = if self.refresh_on_reply
            && commit.desk_payload.is_none()
            && commit
                .reply
                .as_ref()
                .is_some_and(|reply| reply.role == Role::Agent)
        {
            // Desks side by side: the reply was written on one of them, and the others show
            // it in the briefing's transcript.
            with_refresh = Commit {
                desk_payload: desk_payload(conversation, DeskAction::RefreshBriefing),
                ..commit.clone()
            };
            &with_refresh
        } else {
            commit
        };
        let resolved = commit
            .fields
            .iter()
            .any(|(field, _)| field == "resolved_ms");
        if resolved {
            // Before the resolve's commit, so a customer message arriving after the customer
            // was told it is resolved never continues the closed case. Closing twice does
            // nothing, so a redelivered resolve is harmless.
            if let Some(closed) = self
                .store
                .close_case(&conversation.id, Some("resolved"), now_ms())
                .await?
            {
                crate::cases::count_close(&self.metrics, &closed);
            }
        }
        if !self.store.commit(commit).await?.applied {
            return Ok(false);
        }
        self.count(conversation, commit);
        if resolved {
            let dedupe = commit.dedupe.clone().unwrap_or_default();
            self.propose_candidate(conversation, &dedupe).await?;
        }
        Ok(true)
    }

    /// Sends the AI's suggestion (or the agent's edit of it) as the agent's reply, marked as
    /// the AI's draft, and shows the thread what the customer got. The unedited suggestion is
    /// deduplicated on its fingerprint, so two clicks on the same button send it once.
    async fn send_suggestion(
        &self,
        conversation: &Conversation,
        agent: &str,
        fingerprint: &str,
        edited: Option<String>,
        dedupe: String,
    ) -> Result<(), StoreError> {
        let (text, kind, dedupe) = match edited {
            Some(text) => (text, AI_DRAFT_EDITED, dedupe),
            None => match briefing::suggested_reply(conversation) {
                Some(text) => (text, AI_DRAFT, suggestion_dedupe(conversation, fingerprint)),
                None => return Ok(()),
            },
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        let mut commit = reply_commit(conversation, agent, &text, kind, &[]);
        commit.dedupe = Some(dedupe.clone());
        if self.commit_counted(conversation, &commit).await? {
            let sent = DeskNotice::SuggestionSent {
                agent: agent.to_owned(),
                text,
                edited: kind == AI_DRAFT_EDITED,
            };
            let notice = notice_commit(conversation, sent, format!("{dedupe}:shown"));
            self.store.commit(&notice).await?;
        }
        Ok(())
    }

    /// Why a one-click action must not be carried out, if it must not: a button never
    /// overrides a resolution or another agent's claim (a typed `!claim` still takes over).
    async fn refusal(
        &self,
        conversation: &Conversation,
        agent: &str,
        action: &AgentAction,
    ) -> Result<Option<ActionRefusal>, StoreError> {
        let command = match action {
            AgentAction::Note { .. } | AgentAction::Command(AgentCommand::Unknown { .. }) => {
                return Ok(None)
            }
            // Candidates are proposed once the conversation is resolved, so only whether one
            // is still pending matters.
            AgentAction::Command(
                AgentCommand::ApproveKnowledge { .. } | AgentCommand::RejectKnowledge,
            ) => {
                let Some(learning) = &self.learning else {
                    return Ok(Some(ActionRefusal::LearningDisabled));
                };
                let pending = learning.pending_for(&conversation.id).await?;
                return Ok(pending
                    .is_none()
                    .then_some(ActionRefusal::NoPendingCandidate));
            }
            AgentAction::Command(command) => Some(command),
            AgentAction::Reply { .. } | AgentAction::SendSuggestion { .. } => None,
        };
        if conversation.status == Status::Resolved {
            return Ok(Some(ActionRefusal::Resolved {
                by: conversation.claimed_by.clone(),
            }));
        }
        match conversation.claimed_by.as_deref() {
            Some(other) if other != agent => {
                return Ok(Some(ActionRefusal::ClaimedByOther {
                    agent: other.to_owned(),
                }))
            }
            Some(_) if command == Some(&AgentCommand::Claim) => {
                return Ok(Some(ActionRefusal::AlreadyYours))
            }
            _ => {}
        }
        if command == Some(&AgentCommand::HandBack) && conversation.status == Status::Bot {
            return Ok(Some(ActionRefusal::AlreadyWithAi));
        }
        if let AgentAction::SendSuggestion {
            fingerprint,
            edited: None,
        } = action
        {
            let Some(current) = briefing::suggested_reply(conversation) else {
                return Ok(Some(ActionRefusal::NoSuggestion));
            };
            if suggestion_fingerprint(&current) != *fingerprint {
                return Ok(Some(ActionRefusal::SuggestionChanged));
            }
            let dedupe = suggestion_dedupe(conversation, fingerprint);
            if self
                .store
                .seen_entry(&conversation.id, &dedupe)
                .await?
                .is_some()
            {
                return Ok(Some(ActionRefusal::SuggestionAlreadySent));
            }
        }
        Ok(None)
    }

    async fn act_once(&self, event: DeskEvent) -> Result<ActionOutcome, StoreError> {
        let DeskEvent::Agent {
            thread,
            action_id,
            agent_name,
            action,
            ..
        } = &event
        else {
            return self.apply(event).await.map(|()| ActionOutcome::Done);
        };
        let Some(conversation) = self.conversation_for(thread).await? else {
            return Ok(ActionOutcome::Done);
        };
        // A redelivered press that already acted is done, not refused.
        let repeat = self
            .store
            .seen_entry(&conversation.id, &format!("desk:{action_id}"))
            .await?;
        if repeat.is_none() {
            if let Some(refusal) = self.refusal(&conversation, agent_name, action).await? {
                info!(conversation = %conversation.id, ?refusal, "desk action refused");
                return Ok(ActionOutcome::Refused(refusal));
            }
        }
        self.apply(event).await.map(|()| ActionOutcome::Done)
    }
}

/// The dedupe id of sending a suggestion as it was: one per suggestion per escalation.
fn suggestion_dedupe(conversation: &Conversation, fingerprint: &str) -> String {
    format!(
        "desk:suggestion:{}:{fingerprint}",
        conversation.escalated_ms.unwrap_or(0)
    )
}

#[async_trait]
impl DeskSink for DeskInbox {
    async fn handle(&self, event: DeskEvent) -> Result<(), IngestError> {
        self.apply(event).await.map_err(|error| {
            warn!(%error, "desk event not stored; the platform will redeliver it");
            IngestError::Unavailable(error.to_string())
        })
    }

    async fn act(&self, event: DeskEvent) -> Result<ActionOutcome, IngestError> {
        self.act_once(event).await.map_err(|error| {
            warn!(%error, "desk action not stored; the agent is asked to try again");
            IngestError::Unavailable(error.to_string())
        })
    }

    async fn reveal(&self, request: RevealRequest) -> Result<Vec<RevealedMessage>, IngestError> {
        self.reveal_logged(request).await.map_err(|error| {
            warn!(%error, "reveal not logged; nothing shown");
            IngestError::Unavailable(error.to_string())
        })
    }
}

impl DeskInbox {
    /// The customer's own words, for one agent: the look is logged first, so nothing is
    /// shown that the audit log does not know about.
    async fn reveal_logged(
        &self,
        request: RevealRequest,
    ) -> Result<Vec<RevealedMessage>, StoreError> {
        // Only the id is needed: the record itself is read (with the transcript) only when
        // the briefing's messages are asked for.
        let Some(conversation_id) = self.store.conversation_for_thread(&request.thread).await?
        else {
            return Ok(Vec::new());
        };
        let entries = match &request.message_id {
            Some(id) => (self.store.entry(&conversation_id, id).await?)
                .into_iter()
                .collect(),
            None => self
                .store
                .conversation_with_recent(&conversation_id, BRIEFING_ENTRIES)
                .await?
                .map(|(_, transcript)| transcript)
                .unwrap_or_default(),
        };
        let originals: Vec<RevealedMessage> = entries
            .into_iter()
            .filter(|entry| entry.role == Role::Customer && !entry.text.is_empty())
            .map(|entry| RevealedMessage {
                message_id: entry.id,
                text: entry.text,
            })
            .collect();
        if originals.is_empty() {
            return Ok(originals);
        }
        let look = RevealLook {
            at_ms: now_ms(),
            agent_id: request.agent_id,
            agent_name: request.agent_name,
            conversation_id,
            message_ids: originals.iter().map(|m| m.message_id.clone()).collect(),
        };
        self.store.log_reveal(&look).await?;
        self.metrics.desk_reveals.inc();
        info!(
            target: "switchboard::audit",
            agent = %look.agent_name,
            agent_id = %look.agent_id,
            conversation = %look.conversation_id,
            messages = look.message_ids.len(),
            "redacted text revealed"
        );
        Ok(originals)
    }
}

fn desk_payload(conversation: &Conversation, action: DeskAction) -> Option<String> {
    serde_json::to_string(&Delivery::Desk(DeskPost {
        conversation_id: conversation.id.clone(),
        action,
    }))
    .ok()
}

fn customer_payload(
    conversation: &Conversation,
    author: Author,
    text: &str,
    files: &[FileRef],
) -> String {
    // The satisfaction question offers rating buttons where the channel has buttons.
    let actions = if text.ends_with(CSAT_QUESTION) {
        vec![CustomerAction::RateService]
    } else {
        vec![]
    };
    serde_json::to_string(&Delivery::Customer(Outbound {
        actions,
        files: files.to_vec(),
        ..conversation.outbound(author, text)
    }))
    .unwrap_or_default()
}

fn reply_commit(
    conversation: &Conversation,
    agent: &str,
    text: &str,
    kind: &str,
    files: &[FileRef],
) -> Commit {
    let now = now_ms().to_string();
    let mut fields = vec![
        ("status".to_owned(), Status::Human.as_str().to_owned()),
        ("updated_ms".to_owned(), now.clone()),
    ];
    fields.push((case_field::HUMAN.into(), "1".into()));
    if conversation.case.first_human_ms.is_none() {
        fields.push((case_field::FIRST_HUMAN_MS.into(), now.clone()));
    }
    if conversation.case.first_response_ms.is_none() {
        fields.push((case_field::FIRST_RESPONSE_MS.into(), now.clone()));
    }
    if conversation.first_human_reply_ms.is_none() {
        fields.push(("first_human_reply_ms".into(), now));
    }
    fields.push((field::CUSTOMER_WAITING_MS.into(), String::new()));
    let newly_claimed = conversation.claimed_by.is_none();
    if newly_claimed {
        fields.push(("claimed_by".into(), agent.to_owned()));
    }
    Commit {
        conversation_id: conversation.id.clone(),
        fields,
        reply: Some(ReplyToQueue {
            role: Role::Agent,
            author: agent.to_owned(),
            text: text.to_owned(),
            kind: kind.to_owned(),
            payload: customer_payload(
                conversation,
                Author::Agent {
                    name: agent.to_owned(),
                },
                text,
                files,
            ),
            files: if files.is_empty() {
                String::new()
            } else {
                serde_json::to_string(files).unwrap_or_default()
            },
            case: conversation.case.number,
        }),
        desk_payload: newly_claimed
            .then(|| desk_payload(conversation, DeskAction::RefreshBriefing))
            .flatten(),
        ..Default::default()
    }
}

fn notice_commit(conversation: &Conversation, notice: DeskNotice, dedupe: String) -> Commit {
    Commit {
        conversation_id: conversation.id.clone(),
        desk_payload: desk_payload(conversation, DeskAction::Notify { notice }),
        dedupe: Some(dedupe),
        ..Default::default()
    }
}

fn status_commit(
    conversation: &Conversation,
    status: Status,
    extra: Vec<(String, String)>,
    customer_notice: Option<&str>,
) -> Commit {
    let mut fields = vec![
        ("status".to_owned(), status.as_str().to_owned()),
        ("updated_ms".to_owned(), now_ms().to_string()),
    ];
    if status != Status::Human {
        // Resolved or back with the AI: nobody waits on an agent's reply any more.
        fields.push((field::CUSTOMER_WAITING_MS.into(), String::new()));
    }
    fields.extend(extra);
    Commit {
        conversation_id: conversation.id.clone(),
        fields,
        reply: customer_notice.map(|text| ReplyToQueue {
            role: Role::System,
            text: text.to_owned(),
            payload: customer_payload(conversation, Author::System, text, &[]),
            ..Default::default()
        }),
        desk_payload: desk_payload(conversation, DeskAction::RefreshBriefing),
        ..Default::default()
    }
}

fn action_commit(
    conversation: &Conversation,
    action: AgentAction,
    agent: &str,
    dedupe: String,
) -> Commit {
    let command = match action {
        AgentAction::Reply { text, .. } => {
            let mut commit = reply_commit(conversation, agent, &text, "", &[]);
            commit.dedupe = Some(dedupe);
            return commit;
        }
        AgentAction::Note { text } => {
            return Commit {
                conversation_id: conversation.id.clone(),
                reply: Some(ReplyToQueue {
                    role: Role::Note,
                    author: agent.to_owned(),
                    text,
                    ..Default::default()
                }),
                dedupe: Some(dedupe),
                ..Default::default()
            }
        }
        AgentAction::Command(command) => command,
        // `apply` sends suggestions itself; an edited one reaching here is a marked reply.
        AgentAction::SendSuggestion { edited, .. } => {
            let text = edited.unwrap_or_default();
            let mut commit = reply_commit(conversation, agent, &text, AI_DRAFT_EDITED, &[]);
            commit.dedupe = Some(dedupe);
            return commit;
        }
    };
    let mut commit = match command {
        AgentCommand::Claim => status_commit(
            conversation,
            Status::Human,
            vec![
                ("claimed_by".into(), agent.to_owned()),
                (case_field::HUMAN.into(), "1".into()),
            ],
            None,
        ),
        AgentCommand::Resolve => status_commit(
            conversation,
            Status::Resolved,
            vec![
                ("resolved_ms".into(), now_ms().to_string()),
                ("resolved_by".into(), agent.to_owned()),
                ("csat_pending".into(), "1".into()),
            ],
            Some(&format!("{RESOLVED_NOTICE}\n{CSAT_QUESTION}")),
        ),
        AgentCommand::HandBack => status_commit(
            conversation,
            Status::Bot,
            vec![("handed_back_by".into(), agent.to_owned())],
            Some(HANDBACK_NOTICE),
        ),
        // Reviews need the learning loop, so `apply` handles them before coming here.
        AgentCommand::ApproveKnowledge { .. } | AgentCommand::RejectKnowledge => {
            return notice_commit(conversation, DeskNotice::LearningDisabled, dedupe);
        }
        AgentCommand::Unknown { word } => {
            return notice_commit(conversation, DeskNotice::UnknownCommand { word }, dedupe);
        }
    };
    commit.dedupe = Some(dedupe);
    commit
}
