//! Button presses and modal submissions on the desk, carried out after the ack.
//!
//! Slack wants an interaction acknowledged within 3 seconds, and acting (a Redis commit, a
//! `users.info`, a `views.open`) can take longer, so [`Relay::interaction`] only maps the
//! payload and remembers its press id, and the work runs in the background: Socket Mode acks
//! and the Events API answers 200 at once. What cannot be done is told to the agent alone
//! (`chat.postEphemeral`), since nothing waits on the ack any more.
//!
//! A press acts once: Slack's retry of a press carries the same `trigger_id`, which is dropped
//! here while remembered and deduplicated by the core after a restart; a double click (two
//! presses) is serialised per thread, and the second finds the state the first left (already
//! claimed by you, resolved, suggestion already sent) and is refused. Only members of the
//! thread's channel may act.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_api::{
    ActionOutcome, ActionRefusal, ConnectorError, DeskEvent, RevealRequest, ThreadRef,
};
use tracing::{debug, info, warn};

use super::actions::{self, Interaction};
use super::blocks::{escape, truncate};
use super::{Relay, Shared};

/// Press ids remembered for dropping Slack's retries.
const REMEMBERED_PRESSES: usize = 10_000;
/// Slack's advised ceiling for a message's text.
const REVEAL_CHARS: usize = 3900;
/// How long a channel's member list is trusted before it is read again.
const MEMBERS_FRESH: Duration = Duration::from_secs(30);

/// What the desk keeps about presses between them.
#[derive(Default)]
pub(crate) struct Presses {
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
    members: Mutex<HashMap<String, (Instant, HashSet<String>)>>,
    threads: Mutex<HashMap<ThreadRef, Arc<tokio::sync::Mutex<()>>>>,
}

impl Presses {
    /// True the first time `press_id` is seen (bounded memory: the oldest are forgotten).
    fn first_time(&self, press_id: &str) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        let (set, order) = &mut *seen;
        if !set.insert(press_id.to_owned()) {
            return false;
        }
        order.push_back(press_id.to_owned());
        if order.len() > REMEMBERED_PRESSES {
            if let Some(oldest) = order.pop_front() {
                set.remove(&oldest);
            }
        }
        true
    }

    /// The lock that keeps two presses on one thread from acting at the same time.
    fn thread_lock(&self, thread: &ThreadRef) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut threads) = self.threads.lock() else {
            return Arc::default();
        };
        if threads.len() > REMEMBERED_PRESSES {
            threads.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        threads.entry(thread.clone()).or_default().clone()
    }
}

impl Shared {
    /// Whether `user` is a member of the desk channel `channel` (`conversations.members`,
    /// read again after [`MEMBERS_FRESH`]).
    async fn is_member(&self, channel: &str, user: &str) -> Result<bool, ConnectorError> {
        let cached = self.presses.members.lock().ok().and_then(|members| {
            let (read_at, members) = members.get(channel)?;
            (read_at.elapsed() < MEMBERS_FRESH).then(|| members.contains(user))
        });
        if let Some(member) = cached {
            return Ok(member);
        }
        let members: HashSet<String> = self
            .app
            .web()
            .channel_members(channel)
            .await
            .map_err(|error| self.app.named(error))?
            .into_iter()
            .collect();
        let member = members.contains(user);
        if let Ok(mut cache) = self.presses.members.lock() {
            cache.insert(channel.to_owned(), (Instant::now(), members));
        }
        Ok(member)
    }

    /// Tells `user` alone; a failure is only logged (the press was already acked).
    async fn tell(&self, channel: &str, user: &str, text: &str) {
        if let Err(error) = self.app.web().post_ephemeral(channel, user, text).await {
            warn!(%error, channel, user, "ephemeral answer to a button press not posted");
        }
    }
}

/// What an agent is told when the core refuses their press.
pub fn refusal_text(refusal: &ActionRefusal) -> String {
    match refusal {
        ActionRefusal::Resolved { by: Some(agent) } => {
            format!("This conversation was already resolved by {agent}; nothing was changed.")
        }
        ActionRefusal::Resolved { by: None } => {
            "This conversation is already resolved; nothing was changed.".to_owned()
        }
        ActionRefusal::ClaimedByOther { agent } => format!(
            "{agent} has claimed this conversation, so the button did nothing. Write `!claim` in the thread to take it over."
        ),
        ActionRefusal::AlreadyYours => "You already have this conversation.".to_owned(),
        ActionRefusal::AlreadyWithAi => "This conversation is already back with the AI.".to_owned(),
        ActionRefusal::NoSuggestion => "There is no suggested reply to send.".to_owned(),
        ActionRefusal::SuggestionChanged => {
            "The AI's suggestion changed since this briefing was posted, so nothing was sent; reply in the thread instead.".to_owned()
        }
        ActionRefusal::SuggestionAlreadySent => {
            "This suggested reply was already sent to the customer.".to_owned()
        }
        ActionRefusal::LearningDisabled => {
            "The learning loop is not enabled on this gateway.".to_owned()
        }
        ActionRefusal::NoPendingCandidate => {
            "This knowledge-base candidate was already reviewed.".to_owned()
        }
    }
}

/// What an agent is told when a modal cannot open.
fn modal_failure_text(error: &ConnectorError) -> String {
    let detail = error.to_string();
    if detail.contains("expired_trigger_id") || detail.contains("exchanged_trigger_id") {
        "The editor could not open: Slack's trigger for that click expired (it lasts 3 seconds, once). Click the button again.".to_owned()
    } else {
        format!(
            "The editor could not open ({detail}). Click the button again, or reply in the thread."
        )
    }
}

impl Relay {
    /// Maps a press and starts acting on it in the background; returns at once so the
    /// caller acks within Slack's 3 seconds.
    pub(crate) fn interaction(&self, payload: &Value) {
        let interaction = actions::from_interaction(payload);
        let press_id = match &interaction {
            Interaction::Ignored(reason) => {
                debug!(%reason, "slack desk interaction ignored");
                return;
            }
            Interaction::Act { press_id, .. }
            | Interaction::OpenModal { press_id, .. }
            | Interaction::Reveal { press_id, .. } => press_id.clone(),
        };
        if !self.shared.presses.first_time(&press_id) {
            debug!(press_id, "repeated slack press dropped");
            return;
        }
        let relay = Relay {
            shared: self.shared.clone(),
            sink: self.sink.clone(),
        };
        tokio::spawn(async move { relay.carry_out(interaction).await });
    }

    async fn carry_out(&self, interaction: Interaction) {
        let (thread, user) = match &interaction {
            Interaction::Act { thread, user, .. }
            | Interaction::OpenModal { thread, user, .. }
            | Interaction::Reveal { thread, user, .. } => (thread.clone(), user.clone()),
            Interaction::Ignored(_) => return,
        };
        let shared = &self.shared;
        match shared.is_member(&thread.channel, &user).await {
            Ok(true) => {}
            Ok(false) => {
                warn!(user, channel = %thread.channel, "button press by someone outside the desk channel refused");
                let text = "Only members of this desk channel can act on its conversations.";
                shared.tell(&thread.channel, &user, text).await;
                return;
            }
            Err(error) => {
                warn!(%error, user, "desk channel membership unknown; press not acted on");
                let text = format!("Switchboard could not check this channel's members ({error}); please try again.");
                shared.tell(&thread.channel, &user, &text).await;
                return;
            }
        }
        if let Interaction::Reveal { message_id, .. } = interaction {
            self.reveal(thread, user, message_id).await;
            return;
        }
        let lock = shared.presses.thread_lock(&thread);
        let _turn = lock.lock().await;
        match interaction {
            Interaction::OpenModal {
                trigger_id, view, ..
            } => {
                if let Err(error) = shared.app.web().open_view(&trigger_id, view).await {
                    warn!(%error, user, "modal not opened");
                    shared
                        .tell(&thread.channel, &user, &modal_failure_text(&error))
                        .await;
                }
            }
            Interaction::Act {
                press_id, action, ..
            } => {
                let agent_name = match shared.agent_name(&user).await {
                    Ok(name) => name,
                    Err(error) => {
                        let text = format!(
                            "Switchboard could not look up your name ({error}); please try again."
                        );
                        shared.tell(&thread.channel, &user, &text).await;
                        return;
                    }
                };
                let event = DeskEvent::Agent {
                    event_id: press_id.clone(),
                    thread: thread.clone(),
                    action_id: press_id,
                    agent_id: user.clone(),
                    agent_name,
                    action,
                };
                match self.sink.act(event).await {
                    Ok(ActionOutcome::Done) => debug!(user, "slack press acted on"),
                    Ok(ActionOutcome::Refused(refusal)) => {
                        info!(user, ?refusal, "slack press refused");
                        shared
                            .tell(&thread.channel, &user, &refusal_text(&refusal))
                            .await;
                    }
                    Err(error) => {
                        warn!(%error, user, "slack press not stored");
                        let text = format!("Switchboard could not record that just now ({error}); please try again.");
                        shared.tell(&thread.channel, &user, &text).await;
                    }
                }
            }
            Interaction::Ignored(_) | Interaction::Reveal { .. } => {}
        }
    }

    /// Tells the agent alone what the customer wrote where the redaction hid something; the
    /// core logs who looked before anything is shown.
    async fn reveal(&self, thread: ThreadRef, user: String, message_id: Option<String>) {
        let shared = &self.shared;
        let agent_name = match shared.agent_name(&user).await {
            Ok(name) => name,
            Err(error) => {
                let text =
                    format!("Switchboard could not look up your name ({error}); please try again.");
                shared.tell(&thread.channel, &user, &text).await;
                return;
            }
        };
        let request = RevealRequest {
            thread: thread.clone(),
            agent_id: user.clone(),
            agent_name,
            message_id,
        };
        let text = match self.sink.reveal(request).await {
            Ok(originals) => {
                let hidden: Vec<String> = originals
                    .into_iter()
                    .filter(|message| shared.redactor.redact(&message.text).changed())
                    .map(|message| {
                        let quoted: Vec<String> = message
                            .text
                            .lines()
                            .map(|line| format!(">{}", escape(line)))
                            .collect();
                        quoted.join("\n")
                    })
                    .collect();
                if hidden.is_empty() {
                    "Nothing hidden to reveal: the message is no longer stored.".to_owned()
                } else {
                    info!(user, channel = %thread.channel, "redacted text revealed to an agent");
                    truncate(
                        &format!(
                            "Only you can see this, and your look was logged. As the customer wrote it:\n{}",
                            hidden.join("\n\n")
                        ),
                        REVEAL_CHARS,
                    )
                }
            }
            Err(error) => {
                warn!(%error, user, "reveal not logged, so nothing was shown");
                format!("Switchboard could not log this look just now ({error}), so nothing is shown; please try again.")
            }
        };
        shared.tell(&thread.channel, &user, &text).await;
    }
}
