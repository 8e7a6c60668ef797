//! inbound -> store -> route by status -> triage -> outbox.
//!
//! Connectors hand messages to [`Intake`], which stores them durably in one step and queues
//! them on the inbound stream. [`TriageWorker`]s read that stream through a consumer group, so
//! several gateway instances share the work and a dead instance's items are taken over.
//! A decision, its reply and the ack of the work item are written in one script: a crash
//! before it means the item is redone, after it the reply is safe in the outbox.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_api::{
    Accepted, Author, Backoff, ChannelKind, ConversationView, CustomerAction, Gateway, Inbound,
    InboundKind, IngestError, Outbound,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::files::Files;
use crate::metrics::Metrics;
use crate::model::{
    case_field, field, now_ms, Conversation, Delivery, DeskAction, DeskPost, Role, Status,
};
use crate::periodic::Periodic;
use crate::store::{
    keys, ClosedCase, Commit, ReplyToQueue, Store, StoreError, TranscriptEntry, Work, WorkItem,
};
use crate::triage::{Decision, DecisionRecord, TranscriptLine, Triage, TriageInput};

/// What the customer is told when a person takes over.
pub const ESCALATION_NOTICE: &str =
    "Thanks for your patience. I'm bringing in a person from our support team; they'll reply right here.";

/// What a customer who needs a person is told when no desk is enabled: nothing is promised
/// that cannot happen, and the AI keeps helping.
pub const UNSTAFFED_NOTICE: &str = "I can't bring a person into this chat: no one from our \
support team is connected here right now. I'll keep helping as best I can.";

/// Who takes over a conversation the AI escalates.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Handoff {
    /// Agents at the desk: the AI falls silent and the desk gets a briefing.
    Desk,
    /// Nobody: the escalation is recorded, the customer is told `notice`, the AI stays on.
    Unstaffed {
        /// What the customer is told.
        notice: String,
    },
}

/// How many earlier messages triage sees (repetition and bot-loop checks).
const TRIAGE_HISTORY: usize = 20;

/// Work items read per round; their reads and their writes are one round trip each.
const BATCH: usize = 64;

/// What one work item needs written.
enum Step {
    /// Nothing but its ack (handled, or cannot be).
    Ack,
    /// A commit (which acks the item), and what to do once it is written.
    Commit(Box<Commit>, Option<Box<Decided>>),
}

/// What follows a written commit.
enum Decided {
    /// A triage decision, counted in the metrics.
    Triaged(Box<Triaged>),
    /// A satisfaction rating, counted.
    Rated(u8),
    /// The customer confirmed the AI's answer, which closed the case.
    Closed(Box<ClosedCase>),
}

/// A triage decision, counted in the metrics after its commit succeeded.
struct Triaged {
    conversation: Conversation,
    record: DecisionRecord,
    asked_ms: Option<u64>,
}

/// The gateway as connectors see it: validation and durable intake.
pub struct Intake {
    store: Store,
    max_message_bytes: usize,
    metrics: Arc<Metrics>,
    files: Option<Arc<Files>>,
}

impl Intake {
    /// Intake over `store`, refusing messages longer than `max_message_bytes`.
    pub fn new(store: Store, max_message_bytes: usize) -> Intake {
        Intake {
            store,
            max_message_bytes,
            metrics: Arc::default(),
            files: None,
        }
    }

    /// Accepts files with messages (without it, files are refused).
    pub fn with_files(mut self, files: Arc<Files>) -> Self {
        self.files = Some(files);
        self
    }

    /// Counts into `metrics` (shared with the rest of the gateway).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }
}

fn unavailable(error: StoreError) -> IngestError {
    IngestError::Unavailable(error.to_string())
}

#[async_trait]
impl Gateway for Intake {
    async fn accept(&self, mut inbound: Inbound) -> Result<Accepted, IngestError> {
        if inbound.message_id.is_empty() || inbound.conversation_key.is_empty() {
            return Err(IngestError::Rejected(
                "a message needs a channel message id and a conversation key".into(),
            ));
        }
        if inbound.kind == InboundKind::Text
            && inbound.text.trim().is_empty()
            && inbound.files.is_empty()
        {
            return Err(IngestError::Rejected("the message is empty".into()));
        }
        if inbound.text.len() > self.max_message_bytes {
            return Err(IngestError::Rejected(format!(
                "the message is {} bytes; the limit is {}",
                inbound.text.len(),
                self.max_message_bytes
            )));
        }
        let taken =
            crate::files::take_inbound(self.files.as_deref(), &self.store, &mut inbound).await?;
        let retention = self
            .files
            .as_ref()
            .map(|f| f.retention())
            .unwrap_or_default();
        let ingested = self
            .store
            .ingest_with_files(&inbound, &taken.stored, retention)
            .await
            .map_err(unavailable)?;
        let channel = inbound.channel.as_str();
        let replay = if ingested.is_new { "new" } else { "replay" };
        self.metrics
            .inbound_messages
            .get_or_create(&vec![
                ("channel", channel.into()),
                ("delivery", replay.into()),
            ])
            .inc();
        if ingested.is_new {
            crate::cases::count_event(&self.metrics, ingested.case_event, channel);
        }
        if ingested.created {
            self.metrics
                .conversations_started
                .get_or_create(&Metrics::label("channel", channel))
                .inc();
        }
        Ok(Accepted {
            conversation_id: ingested.conversation_id,
            message_id: ingested.message_id,
            is_new: ingested.is_new,
        })
    }

    async fn history(
        &self,
        channel: ChannelKind,
        conversation_key: &str,
        after: Option<&str>,
    ) -> Result<Option<ConversationView>, IngestError> {
        let mut view = self
            .store
            .customer_view(channel, conversation_key, after)
            .await
            .map_err(unavailable)?;
        if let (Some(view), Some(files)) = (view.as_mut(), &self.files) {
            for message in &mut view.messages {
                files.with_links(&view.conversation_id, &mut message.files);
            }
        }
        Ok(view)
    }
}

/// Reads the inbound stream and decides who answers each message.
pub struct TriageWorker {
    store: Store,
    triage: Arc<Triage>,
    consumer: String,
    /// The partitions this worker decides (see `keys::partitions_of_worker`).
    partitions: Vec<usize>,
    claim_idle: Duration,
    handoff: Handoff,
    metrics: Arc<Metrics>,
    claim_chore: Periodic,
}

impl TriageWorker {
    /// A worker named `consumer` in the pipeline group; `store` should be a dedicated connection.
    pub fn new(store: Store, triage: Arc<Triage>, consumer: String, claim_idle: Duration) -> Self {
        TriageWorker {
            store,
            triage,
            consumer,
            partitions: keys::partitions().collect(),
            claim_idle,
            handoff: Handoff::Unstaffed {
                notice: UNSTAFFED_NOTICE.to_owned(),
            },
            metrics: Arc::default(),
            claim_chore: Periodic::for_claims(claim_idle),
        }
    }

    /// Counts into `metrics` (shared with the rest of the gateway).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Decides only `partitions` (every one by default): one of several workers.
    pub fn with_partitions(mut self, partitions: Vec<usize>) -> Self {
        self.partitions = partitions;
        self
    }

    /// Mirrors escalations and later customer messages to the agent desk.
    pub fn with_desk(mut self) -> Self {
        self.handoff = Handoff::Desk;
        self
    }

    /// Without a desk, tells a customer who needs a person `notice` instead of the default.
    pub fn with_unstaffed_notice(mut self, notice: String) -> Self {
        if let Handoff::Unstaffed { .. } = self.handoff {
            self.handoff = Handoff::Unstaffed { notice };
        }
        self
    }

    /// Works until `shutdown` is cancelled, then returns after the round in hand (its
    /// decisions written); Redis errors are logged and retried, never fatal.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = redis_outage_backoff();
        while !shutdown.is_cancelled() {
            match self.work_once().await {
                Ok(()) => backoff.reset(),
                Err(error) => {
                    let pause = backoff.next_delay();
                    warn!(%error, retry_in = ?pause, "triage worker: redis unavailable");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    /// One round: take over stale items (when due), then read new ones (waiting up to a
    /// second), and write each batch's decisions in one round trip.
    pub async fn work_once(&self) -> Result<(), StoreError> {
        if self.claim_chore.is_due() {
            let stale = self
                .store
                .claim_stale(
                    Work::Inbound,
                    &self.consumer,
                    &self.partitions,
                    self.claim_idle,
                    BATCH,
                )
                .await?;
            if stale.len() >= BATCH {
                // There may be more; take them on the next round rather than a period later.
                self.claim_chore.again();
            }
            self.handle_all(stale).await?;
            self.store
                .trim_done(Work::Inbound, &self.partitions)
                .await?;
        }
        let fresh = self
            .store
            .read_work(
                Work::Inbound,
                &self.consumer,
                &self.partitions,
                BATCH,
                Duration::from_secs(1),
            )
            .await?;
        self.handle_all(fresh).await
    }

    async fn handle_all(&self, mut items: Vec<WorkItem>) -> Result<(), StoreError> {
        // A conversation's messages are decided in order, each seeing what the one before it
        // changed (an answer, an escalation), so a batch holds one item per conversation.
        while !items.is_empty() {
            let mut taken = std::collections::HashSet::new();
            let (batch, later): (Vec<WorkItem>, Vec<WorkItem>) =
                items
                    .into_iter()
                    .partition(|item| match item.fields.get("conv") {
                        Some(conversation) => taken.insert(conversation.clone()),
                        None => true,
                    });
            self.handle_batch(&batch).await?;
            items = later;
        }
        Ok(())
    }

    /// Reads the batch's conversations in one round trip, decides each item, and writes every
    /// decision and ack in one more.
    async fn handle_batch(&self, items: &[WorkItem]) -> Result<(), StoreError> {
        let conversation_ids: Vec<&str> = items
            .iter()
            .filter_map(|item| item.fields.get("conv").map(String::as_str))
            .collect();
        let mut loaded = self
            .store
            .conversations_with_recent(&conversation_ids, TRIAGE_HISTORY)
            .await?
            .into_iter();
        let found: Vec<_> = items
            .iter()
            .map(|item| match item.fields.get("conv") {
                Some(_) => loaded.next().flatten(),
                None => None,
            })
            .collect();
        // Side by side: with a model behind an API, each decision waits a second or more on
        // the network, and one customer must not wait for the model calls of all the others.
        let steps = futures_util::future::join_all(
            items
                .iter()
                .zip(found)
                .map(|(item, found)| self.plan(item, found)),
        )
        .await;
        let mut commits = Vec::new();
        let mut decisions = Vec::new();
        let mut acks = Vec::new();
        for (item, step) in items.iter().zip(steps) {
            match step? {
                Step::Ack => acks.push((Work::Inbound, item)),
                Step::Commit(commit, decided) => {
                    commits.push(*commit);
                    decisions.push(decided);
                }
            }
        }
        self.store.commit_batch(&commits, &acks).await?;
        for decided in decisions.into_iter().flatten() {
            match *decided {
                Decided::Triaged(triaged) => {
                    let triaged = *triaged;
                    self.count_decision(&triaged.conversation, &triaged.record, triaged.asked_ms)
                }
                Decided::Rated(rating) => {
                    self.metrics
                        .csat_ratings
                        .get_or_create(&Metrics::label("rating", rating.to_string()))
                        .inc();
                }
                Decided::Closed(closed) => crate::cases::count_close(&self.metrics, &closed),
            }
        }
        Ok(())
    }

    /// Decides what one work item needs written; `found` is its conversation and recent entries.
    async fn plan(
        &self,
        item: &WorkItem,
        found: Option<(Conversation, Vec<TranscriptEntry>)>,
    ) -> Result<Step, StoreError> {
        let (Some(conversation_id), Some(message_id)) =
            (item.fields.get("conv"), item.fields.get("msg"))
        else {
            warn!(entry = %item.entry_id, "inbound work item without conversation; dropped");
            return Ok(Step::Ack);
        };
        let Some((conversation, recent)) = found else {
            warn!(conversation = %conversation_id, "work item for a missing conversation; dropped");
            return Ok(Step::Ack);
        };
        let ack = Some((keys::PIPELINE_GROUP.to_owned(), item.entry_id.clone()));
        // Without a desk nobody would read a message waiting for a person (a desk removed from
        // the config leaves such conversations behind): the AI keeps answering them.
        let ai_owns = matches!(conversation.status, Status::Bot | Status::Resolved)
            || self.handoff != Handoff::Desk;
        if ai_owns {
            let Some(position) = recent.iter().position(|entry| &entry.id == message_id) else {
                // Newer messages pushed this one out of the window; each of them has its own
                // work item and gets its answer, so answering this stale one would only repeat.
                return Ok(Step::Ack);
            };
            let rating = csat_rating(&recent[position].text);
            if conversation.csat_pending {
                if let Some(rating) = rating {
                    let commit = commit_for_rating(&conversation, rating, ack);
                    let rated = Some(Box::new(Decided::Rated(rating)));
                    return Ok(Step::Commit(Box::new(commit), rated));
                }
            }
            let answered_by_ai = recent[..position]
                .iter()
                .rev()
                .find(|entry| entry.role != Role::Customer)
                .is_some_and(|entry| entry.role == Role::Ai);
            let phrases = &self.store.case_rules().confirmation_phrases;
            if conversation.status == Status::Bot
                && answered_by_ai
                && crate::cases::is_confirmation(phrases, &recent[position].text)
            {
                // Closed before the thanks is written, so a message arriving after the
                // customer read it never continues the closed case; a redone work item finds
                // it closed and only writes the thanks.
                let closed = self
                    .store
                    .close_case(&conversation.id, Some("confirmed"), now_ms())
                    .await?;
                let commit = crate::cases::commit_for_confirmation(&conversation, ack);
                let closed = closed.map(|closed| Box::new(Decided::Closed(Box::new(closed))));
                return Ok(Step::Commit(Box::new(commit), closed));
            }
            let started = std::time::Instant::now();
            let mut record = self
                .decide(&conversation, &recent[position], &recent[..position])
                .await;
            record.case_id = conversation.case_id();
            self.metrics
                .triage_latency
                .observe(started.elapsed().as_secs_f64());
            if self.handoff == Handoff::Desk {
                // Agents read the briefing, so it is written (by the model, when one is
                // configured) before the escalation is committed.
                let transcript: Vec<TranscriptLine> = recent[..=position]
                    .iter()
                    .filter(|entry| entry.role != Role::Note)
                    .map(|entry| TranscriptLine {
                        role: entry.role.clone(),
                        text: entry.text.clone(),
                    })
                    .collect();
                self.triage.write_briefing(&transcript, &mut record).await;
            }
            let commit = commit_for_decision(
                &conversation,
                &recent[position].text,
                &record,
                ack,
                &self.handoff,
            );
            let first_reply = recent[..position]
                .iter()
                .all(|entry| entry.role == Role::Customer);
            let asked_ms = first_reply.then(|| recent[position].at_ms());
            Ok(Step::Commit(
                Box::new(commit),
                Some(Box::new(Decided::Triaged(Box::new(Triaged {
                    conversation,
                    record,
                    asked_ms,
                })))),
            ))
        } else {
            // A busy conversation may have pushed the message out of the recent window; the
            // agents must still see it.
            let found = recent.iter().find(|entry| &entry.id == message_id).cloned();
            let message = match found {
                Some(message) => message,
                None => match self.store.entry(&conversation.id, message_id).await? {
                    Some(message) => message,
                    None => return Ok(Step::Ack),
                },
            };
            let text = if message.kind.as_deref() == Some("human_request") {
                "(pressed \"Talk to a human\")".to_owned()
            } else {
                message.text.clone()
            };
            let mirror = Delivery::Desk(DeskPost {
                conversation_id: conversation.id.clone(),
                action: DeskAction::Mirror {
                    author: conversation.customer_name(),
                    text,
                    files: message.files.clone(),
                    message_id: Some(message.id.clone()),
                },
            });
            // A customer writing to a conversation a person has taken now waits for them;
            // the earliest unanswered message is when the wait began.
            let starts_wait =
                conversation.status == Status::Human && conversation.customer_waiting_ms.is_none();
            let now = now_ms();
            let commit = Commit {
                conversation_id: conversation.id.clone(),
                fields: if starts_wait {
                    vec![(field::CUSTOMER_WAITING_MS.to_owned(), now.to_string())]
                } else {
                    Vec::new()
                },
                desk_payload: serde_json::to_string(&mirror).ok(),
                ack,
                watch_from_ms: starts_wait.then_some(now),
                ..Default::default()
            };
            Ok(Step::Commit(Box::new(commit), None))
        }
    }

    /// Counts a decision; `first_asked_ms` is set when this is the conversation's first reply.
    fn count_decision(
        &self,
        conversation: &Conversation,
        record: &DecisionRecord,
        first_asked_ms: Option<u64>,
    ) {
        match &record.decision {
            Decision::Answer { .. } => self
                .metrics
                .ai_answers
                .get_or_create(&Metrics::label("channel", conversation.channel.as_str()))
                .inc(),
            Decision::Escalate { reason, .. } => {
                if conversation.escalated_ms.is_none() {
                    self.metrics.conversations_escalated.inc();
                }
                self.metrics
                    .escalations
                    .get_or_create(&Metrics::label("reason", reason.as_str()))
                    .inc()
            }
        };
        if let Some(asked_ms) = first_asked_ms {
            let waited_ms = now_ms().saturating_sub(asked_ms);
            self.metrics
                .time_to_first_response
                .observe(waited_ms as f64 / 1000.0);
        }
    }

    async fn decide(
        &self,
        conversation: &Conversation,
        message: &TranscriptEntry,
        earlier: &[TranscriptEntry],
    ) -> DecisionRecord {
        let history = history_of(earlier);
        let file_only = crate::files::placeholder(&message.text, &message.files);
        let input = triage_input(conversation, message, &history, file_only.as_deref());
        // The first message of a repeat-contact case, before anyone answered in it.
        let opens_repeat_case = conversation.case.repeat
            && conversation.case.first_response_ms.is_none()
            && conversation.case.escalations == 0;
        if opens_repeat_case {
            if let Some(record) = self.triage.repeat_contact(&input) {
                return record;
            }
        }
        self.triage.decide(&input).await
    }
}

/// The transcript lines triage reads as a message's history.
pub(crate) fn history_of(earlier: &[TranscriptEntry]) -> Vec<TranscriptLine> {
    earlier
        .iter()
        .map(|entry| TranscriptLine {
            role: entry.role.clone(),
            text: entry.text.clone(),
        })
        .collect()
}

/// What triage reads about `message`, as the pipeline and replay both ask it. `file_only` is
/// [`crate::files::placeholder`]'s name for a file sent alone (the AI reads no files).
pub(crate) fn triage_input<'a>(
    conversation: &'a Conversation,
    message: &'a TranscriptEntry,
    history: &'a [TranscriptLine],
    file_only: Option<&'a str>,
) -> TriageInput<'a> {
    TriageInput {
        text: file_only.unwrap_or(&message.text),
        kind: match message.kind.as_deref() {
            Some("human_request") => InboundKind::HumanRequest,
            _ => InboundKind::Text,
        },
        channel: conversation.channel,
        // Anyone can type a tier into an anonymous widget's attributes; only a channel-verified
        // identity may claim one that bypasses the AI.
        tier: conversation
            .context
            .tier
            .as_deref()
            .filter(|_| conversation.contact.verified),
        email: conversation.contact.email.as_deref(),
        history,
    }
}

/// Thanks the customer for answering the satisfaction question.
pub const CSAT_THANKS: &str = "Thank you for your feedback!";

/// A 1-5 rating if the message is only that ("4", "5/5", "⭐⭐⭐").
pub fn csat_rating(text: &str) -> Option<u8> {
    let trimmed = text.trim().trim_end_matches(['.', '!']);
    let stars = trimmed.chars().filter(|c| *c == '⭐' || *c == '★').count();
    if stars > 0
        && trimmed
            .chars()
            .all(|c| c == '⭐' || c == '★' || c.is_whitespace())
    {
        return u8::try_from(stars).ok().filter(|n| (1..=5).contains(n));
    }
    let number = trimmed
        .strip_suffix("/5")
        .or_else(|| trimmed.strip_suffix(" out of 5"))
        .unwrap_or(trimmed)
        .trim();
    number.parse::<u8>().ok().filter(|n| (1..=5).contains(n))
}

/// Stores a satisfaction rating; it never reaches triage.
fn commit_for_rating(
    conversation: &Conversation,
    rating: u8,
    ack: Option<(String, String)>,
) -> Commit {
    let thanks = conversation.outbound(Author::System, CSAT_THANKS);
    Commit {
        conversation_id: conversation.id.clone(),
        fields: vec![
            ("csat".into(), rating.to_string()),
            ("csat_ms".into(), now_ms().to_string()),
            ("csat_pending".into(), "0".into()),
            (
                "csat_case".into(),
                conversation.case_id().unwrap_or_default(),
            ),
        ],
        reply: Some(ReplyToQueue {
            role: Role::System,
            text: CSAT_THANKS.into(),
            payload: serde_json::to_string(&Delivery::Customer(thanks)).unwrap_or_default(),
            ..Default::default()
        }),
        ack,
        ..Default::default()
    }
}

/// The commit of the AI's answer to `question`, as the triage worker makes it: what each
/// answered question stores (the pipeline bench measures its memory with it).
pub fn commit_for_answer(
    conversation: &Conversation,
    question: &str,
    record: &DecisionRecord,
) -> Commit {
    commit_for_decision(conversation, question, record, None, &Handoff::Desk)
}

/// The decision as the record keeps it. An answer's text is left out: it is the transcript
/// entry this commit appends, and a second copy would be the largest value of every open
/// conversation's record.
fn stored_decision(record: &DecisionRecord) -> String {
    let stored = match &record.decision {
        Decision::Answer { sources, .. } => &DecisionRecord {
            decision: Decision::Answer {
                text: String::new(),
                sources: sources.clone(),
            },
            ..record.clone()
        },
        Decision::Escalate { .. } => record,
    };
    serde_json::to_string(stored).unwrap_or_default()
}

/// The commit that carries out a triage decision.
fn commit_for_decision(
    conversation: &Conversation,
    question: &str,
    record: &DecisionRecord,
    ack: Option<(String, String)>,
    handoff: &Handoff,
) -> Commit {
    let now = now_ms().to_string();
    let mut fields = vec![
        ("last_decision".to_owned(), stored_decision(record)),
        ("updated_ms".to_owned(), now.clone()),
    ];
    // A message that is not a rating ends the satisfaction question; a conversation never
    // asked one holds no field for it (a field costs an open conversation ~60 B of Redis).
    if conversation.csat_pending {
        fields.push((field::CSAT_PENDING.to_owned(), "0".to_owned()));
    }
    if conversation.case.first_response_ms.is_none() {
        fields.push((case_field::FIRST_RESPONSE_MS.into(), now.clone()));
    }
    let mut desk_payload = None;
    let mut watch_from_ms = None;
    let (role, text, actions, escalation_log) = match &record.decision {
        Decision::Answer { text, .. } => {
            fields.push(("status".into(), Status::Bot.as_str().into()));
            (
                Role::Ai,
                text.clone(),
                vec![CustomerAction::TalkToHuman],
                None,
            )
        }
        Decision::Escalate { reason, .. } => {
            let status = match handoff {
                Handoff::Desk => Status::Escalated,
                Handoff::Unstaffed { .. } => Status::Bot,
            };
            fields.push(("status".into(), status.as_str().into()));
            fields.push(("escalated_ms".into(), now.clone()));
            // Waiting to be claimed now; an older wait for a reply is over.
            fields.push((field::CUSTOMER_WAITING_MS.into(), String::new()));
            if matches!(handoff, Handoff::Desk) {
                watch_from_ms = now.parse().ok();
            }
            fields.push(("escalation_reason".into(), reason.as_str().to_owned()));
            let escalations = conversation.case.escalations + 1;
            fields.push((case_field::ESCALATIONS.into(), escalations.to_string()));
            if matches!(handoff, Handoff::Desk) {
                fields.push((case_field::HUMAN.into(), "1".into()));
            }
            info!(
                conversation = %conversation.id,
                channel = %conversation.channel,
                %reason,
                confidence = record.confidence,
                "conversation escalated"
            );
            let log = serde_json::json!({
                "conversation_id": conversation.id,
                "case_id": conversation.case_id(),
                "channel": conversation.channel,
                "reason": reason,
                "at_ms": now,
                "question": question,
                "decision": record,
            });
            let notice = match handoff {
                Handoff::Desk => {
                    desk_payload = serde_json::to_string(&Delivery::Desk(DeskPost {
                        conversation_id: conversation.id.clone(),
                        action: DeskAction::OpenThread,
                    }))
                    .ok();
                    ESCALATION_NOTICE.to_owned()
                }
                Handoff::Unstaffed { notice } => {
                    warn!(
                        conversation = %conversation.id,
                        %reason,
                        "escalation reaches no one: no agent desk is enabled"
                    );
                    notice.clone()
                }
            };
            (Role::System, notice, vec![], Some(log.to_string()))
        }
    };
    let author = if role == Role::Ai {
        Author::Ai
    } else {
        Author::System
    };
    let outbound = Outbound {
        actions,
        ..conversation.outbound(author, &text)
    };
    Commit {
        conversation_id: conversation.id.clone(),
        fields,
        reply: Some(ReplyToQueue {
            role,
            text,
            payload: serde_json::to_string(&Delivery::Customer(outbound)).unwrap_or_default(),
            case: conversation.case.number,
            ..Default::default()
        }),
        desk_payload,
        ack,
        escalation_log,
        dedupe: None,
        watch_from_ms,
    }
}

/// Exponential backoff from 200 ms capped at 1 s, for workers waiting out a Redis outage:
/// short, so service resumes within a second of Redis coming back; jittered, so the workers
/// of every instance do not all retry at the same moment when it does.
pub(crate) fn redis_outage_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(200), Duration::from_secs(1)).with_jitter(0.5)
}
