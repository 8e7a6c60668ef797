//! Slack `event_callback` JSON -> neutral [`DeskEvent`]s: pure, so every official payload is
//! unit-tested here.
//!
//! Works on `serde_json::Value` rather than slack-morphism's typed events so the Events API
//! route and Socket Mode (whose typed payload is serialised back to JSON) share one mapping,
//! and a payload field slack-morphism does not model is never lost.
//!
//! Rules:
//! - a `message` in a thread (`thread_ts` present and != `ts`) -> `Agent`, read by the chat
//!   conventions ([`AgentAction::from_text`]: `//` notes, `!commands`, replies); Slack's page
//!   warns `subtype` may be missing, so threads are detected by `thread_ts`, never by subtype;
//! - `message_changed` of a thread reply that is still a reply -> `AgentEdited` (a change
//!   that keeps the text, such as a link unfurl, is ignored); `message_deleted` of a thread
//!   reply -> `AgentDeleted`;
//! - `reaction_added` of a command emoji on a message -> `Agent` with that command and the
//!   reacted message as the thread (:eyes: claims, :white_check_mark: resolves, :robot_face:
//!   hands back); the core ignores it when that message is not a briefing;
//! - anything written by the bot itself (its user id, a `bot_id`, subtype `bot_message`) is
//!   ignored, so our own posts never echo back; top-level messages, hidden messages
//!   (`message_replied`), joins and other events are ignored with the reason.

use serde_json::Value;
use switchboard_api::{AgentAction, AgentCommand, DeskEvent, ThreadRef};

/// What one Slack event means for the desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A desk event; `name_of` is the user whose display name still has to be looked up.
    Event {
        /// The event, with the user id as a placeholder agent name.
        event: DeskEvent,
        /// The Slack user id whose name belongs in the event, if it has a name.
        name_of: Option<String>,
    },
    /// Not for the desk, with the reason for the debug log.
    Ignored(String),
}

fn ignored(reason: impl Into<String>) -> Outcome {
    Outcome::Ignored(reason.into())
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// Maps an `event_callback` body to a desk event, ignoring the bot's own messages.
pub fn from_callback(callback: &Value, bot_user_id: &str) -> Outcome {
    if text(callback, "type") != Some("event_callback") {
        return ignored(format!(
            "not an event_callback (type {:?})",
            text(callback, "type").unwrap_or("none")
        ));
    }
    let Some(event_id) = text(callback, "event_id") else {
        return ignored("event_callback without event_id");
    };
    let Some(event) = callback.get("event") else {
        return ignored("event_callback without event");
    };
    from_event(event_id, event, bot_user_id)
}

/// Maps one inner event (the `event` of an `event_callback`).
pub fn from_event(event_id: &str, event: &Value, bot_user_id: &str) -> Outcome {
    match text(event, "type") {
        Some("message") => from_message(event_id, event, bot_user_id),
        Some("reaction_added") => from_reaction(event_id, event, bot_user_id),
        other => ignored(format!(
            "event type {:?} is not for the desk",
            other.unwrap_or("none")
        )),
    }
}

/// Why a message (or an edited/deleted message's body) came from a bot, if it did.
fn written_by_bot(message: &Value, bot_user_id: &str) -> Option<&'static str> {
    if message.get("bot_id").is_some_and(|id| !id.is_null()) {
        Some("written by a bot (bot_id)")
    } else if text(message, "subtype") == Some("bot_message") {
        Some("written by a bot (bot_message)")
    } else if text(message, "user") == Some(bot_user_id) {
        Some("written by this desk's bot user")
    } else {
        None
    }
}

/// The thread a message belongs to, when it is a reply (not a parent, not top-level).
fn reply_thread(message: &Value, channel: &str) -> Option<ThreadRef> {
    let ts = text(message, "ts")?;
    let thread_ts = text(message, "thread_ts")?;
    (thread_ts != ts).then(|| ThreadRef {
        channel: channel.to_string(),
        ts: thread_ts.to_string(),
    })
}

fn from_message(event_id: &str, event: &Value, bot_user_id: &str) -> Outcome {
    let Some(channel) = text(event, "channel") else {
        return ignored("message without channel");
    };
    match text(event, "subtype") {
        Some("message_changed") => return from_changed(event_id, event, channel, bot_user_id),
        Some("message_deleted") => return from_deleted(event_id, event, channel, bot_user_id),
        // Plain replies, files with a caption, and replies also sent to the channel.
        None | Some("file_share" | "thread_broadcast" | "me_message") => {}
        Some(other) => return ignored(format!("message subtype {other} is not for the desk")),
    }
    if event.get("hidden").and_then(Value::as_bool) == Some(true) {
        return ignored("hidden message (e.g. message_replied without its subtype)");
    }
    if let Some(why) = written_by_bot(event, bot_user_id) {
        return ignored(why);
    }
    let Some(thread) = reply_thread(event, channel) else {
        return ignored("top-level message, not in a thread");
    };
    let (Some(ts), Some(user)) = (text(event, "ts"), text(event, "user")) else {
        return ignored("thread message without ts or user");
    };
    Outcome::Event {
        event: DeskEvent::Agent {
            event_id: event_id.to_string(),
            thread,
            action_id: ts.to_string(),
            agent_id: user.to_string(),
            agent_name: user.to_string(),
            action: AgentAction::from_text(text(event, "text").unwrap_or_default(), Vec::new()),
        },
        name_of: Some(user.to_string()),
    }
}

fn from_changed(event_id: &str, event: &Value, channel: &str, bot_user_id: &str) -> Outcome {
    let Some(message) = event.get("message") else {
        return ignored("message_changed without message");
    };
    if let Some(why) = written_by_bot(message, bot_user_id) {
        // Includes our own chat.update of a briefing.
        return ignored(why);
    }
    let Some(thread) = reply_thread(message, channel) else {
        return ignored("edit of a message that is not a thread reply");
    };
    let new_text = text(message, "text").unwrap_or_default();
    let old_text = event.get("previous_message").and_then(|m| text(m, "text"));
    if old_text == Some(new_text) {
        return ignored("message_changed without a text change (unfurl or reaction)");
    }
    let (Some(ts), Some(user)) = (text(message, "ts"), text(message, "user")) else {
        return ignored("edited message without ts or user");
    };
    let AgentAction::Reply { text: new_text, .. } = AgentAction::from_text(new_text, Vec::new())
    else {
        return ignored("an edit that makes a note or a command is not sent to the customer");
    };
    Outcome::Event {
        event: DeskEvent::AgentEdited {
            event_id: event_id.to_string(),
            thread,
            message_ts: ts.to_string(),
            agent_name: user.to_string(),
            text: new_text,
        },
        name_of: Some(user.to_string()),
    }
}

fn from_deleted(event_id: &str, event: &Value, channel: &str, bot_user_id: &str) -> Outcome {
    let Some(previous) = event.get("previous_message") else {
        return ignored("message_deleted without previous_message");
    };
    if let Some(why) = written_by_bot(previous, bot_user_id) {
        return ignored(why);
    }
    let Some(thread) = reply_thread(previous, channel) else {
        return ignored("deletion of a message that is not a thread reply");
    };
    let Some(ts) = text(event, "deleted_ts").or_else(|| text(previous, "ts")) else {
        return ignored("message_deleted without deleted_ts");
    };
    Outcome::Event {
        event: DeskEvent::AgentDeleted {
            event_id: event_id.to_string(),
            thread,
            message_ts: ts.to_string(),
        },
        name_of: None,
    }
}

fn from_reaction(event_id: &str, event: &Value, bot_user_id: &str) -> Outcome {
    let Some(item) = event.get("item") else {
        return ignored("reaction_added without item");
    };
    if text(item, "type") != Some("message") {
        return ignored("reaction on something other than a message");
    }
    let (Some(channel), Some(ts)) = (text(item, "channel"), text(item, "ts")) else {
        return ignored("reaction item without channel or ts");
    };
    let (Some(user), Some(reaction)) = (text(event, "user"), text(event, "reaction")) else {
        return ignored("reaction_added without user or reaction");
    };
    if user == bot_user_id {
        return ignored("reaction by this desk's bot user");
    }
    let Some(command) = reaction_command(reaction) else {
        return ignored(format!("reaction :{reaction}: is not a command"));
    };
    Outcome::Event {
        event: DeskEvent::Agent {
            event_id: event_id.to_string(),
            thread: ThreadRef {
                channel: channel.to_string(),
                ts: ts.to_string(),
            },
            action_id: event_id.to_string(),
            agent_id: user.to_string(),
            agent_name: user.to_string(),
            action: AgentAction::Command(command),
        },
        name_of: Some(user.to_string()),
    }
}

/// The command a reaction on a briefing gives, if any (skin tones do not matter).
pub fn reaction_command(reaction: &str) -> Option<AgentCommand> {
    match reaction.split("::").next().unwrap_or(reaction) {
        "eyes" | "raising_hand" | "hand" => Some(AgentCommand::Claim),
        "white_check_mark" | "heavy_check_mark" | "ballot_box_with_check" => {
            Some(AgentCommand::Resolve)
        }
        "robot_face" => Some(AgentCommand::HandBack),
        _ => None,
    }
}

/// A file shared with a message, as Slack's `files` array describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    /// The file name.
    pub name: String,
    /// Slack's `mimetype`.
    pub content_type: String,
    /// Slack's `size` in bytes.
    pub size: u64,
    /// `url_private_download` (or `url_private`): fetched with the bot token.
    pub url: String,
}

/// The downloadable files of a `message` event. Entries without a private URL (a file hidden
/// by the workspace's plan limit, a deleted file's tombstone, an external file) are skipped.
pub fn shared_files(event: &Value) -> Vec<SharedFile> {
    let Some(files) = event.get("files").and_then(Value::as_array) else {
        return Vec::new();
    };
    files
        .iter()
        .filter(|file| {
            !matches!(
                text(file, "mode"),
                Some("tombstone" | "hidden_by_limit" | "external")
            )
        })
        .filter_map(|file| {
            let url = text(file, "url_private_download").or_else(|| text(file, "url_private"))?;
            Some(SharedFile {
                name: text(file, "name")
                    .or_else(|| text(file, "title"))
                    .unwrap_or("file")
                    .to_string(),
                content_type: text(file, "mimetype")
                    .unwrap_or("application/octet-stream")
                    .to_string(),
                size: file.get("size").and_then(Value::as_u64).unwrap_or(0),
                url: url.to_string(),
            })
        })
        .collect()
}

/// Puts the looked-up display name into an event that shows one.
pub fn with_agent_name(mut event: DeskEvent, name: String) -> DeskEvent {
    match &mut event {
        DeskEvent::Agent { agent_name, .. } | DeskEvent::AgentEdited { agent_name, .. } => {
            *agent_name = name;
        }
        DeskEvent::AgentDeleted { .. } => {}
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BOT: &str = "U0BOT";

    fn payload(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn event_of(outcome: Outcome) -> DeskEvent {
        match outcome {
            Outcome::Event { event, .. } => event,
            Outcome::Ignored(why) => panic!("ignored: {why}"),
        }
    }

    fn assert_ignored(outcome: Outcome, because: &str) {
        match outcome {
            Outcome::Ignored(why) => assert!(why.contains(because), "{why}"),
            Outcome::Event { event, .. } => panic!("expected ignored, got {event:?}"),
        }
    }

    #[test]
    fn shared_files_come_from_the_message_files_array() {
        let event = json!({
            "type": "message", "subtype": "file_share", "channel": "C1", "user": "U1",
            "text": "the invoice", "ts": "2.0", "thread_ts": "1.0",
            "files": [
                {"id": "F1", "name": "invoice.pdf", "title": "Invoice", "mimetype": "application/pdf",
                 "filetype": "pdf", "size": 43518, "mode": "hosted",
                 "url_private": "https://files.slack.com/files-pri/T1-F1/invoice.pdf",
                 "url_private_download": "https://files.slack.com/files-pri/T1-F1/download/invoice.pdf"},
                {"id": "F2", "mode": "hidden_by_limit"},
                {"id": "F3", "mode": "tombstone"}
            ]
        });
        assert_eq!(
            shared_files(&event),
            vec![SharedFile {
                name: "invoice.pdf".into(),
                content_type: "application/pdf".into(),
                size: 43518,
                url: "https://files.slack.com/files-pri/T1-F1/download/invoice.pdf".into(),
            }]
        );
        assert!(shared_files(&json!({"type": "message"})).is_empty());
    }

    #[test]
    fn official_top_level_channel_message_is_ignored() {
        let callback = payload("message.channels.wrapped.docs.slack.dev.strict.json");
        assert_ignored(from_callback(&callback, BOT), "top-level");
    }

    #[test]
    fn official_app_mention_is_ignored_because_the_message_event_carries_it() {
        let callback = payload("app_mention.wrapped.docs.slack.dev.strict.json");
        assert_ignored(from_callback(&callback, BOT), "app_mention");
        let inner = payload("app_mention.inner_event.api.slack.com.json");
        assert_ignored(from_event("Ev1", &inner, BOT), "app_mention");
    }

    #[test]
    fn official_message_replied_is_ignored_even_without_its_subtype() {
        let callback = payload("message_replied.wrapped.docs.slack.dev.strict.json");
        assert_ignored(from_callback(&callback, BOT), "message_replied");
        let mut without_subtype = callback.clone();
        if let Some(event) = without_subtype
            .get_mut("event")
            .and_then(Value::as_object_mut)
        {
            event.remove("subtype");
        }
        assert_ignored(from_callback(&without_subtype, BOT), "hidden");
    }

    #[test]
    fn official_wrapper_and_url_verification_are_not_desk_events() {
        assert_ignored(
            from_callback(&payload("event_wrapper.docs.slack.dev.json"), BOT),
            "name_of_event",
        );
        assert_ignored(
            from_callback(&payload("url_verification.api.slack.com.json"), BOT),
            "url_verification",
        );
    }

    #[test]
    fn official_message_example_becomes_an_agent_message_once_in_a_thread() {
        let reference = payload("slack-api-ref/events/message.json");
        let mut inner = reference["example"].clone();
        assert_ignored(from_event("Ev1", &inner, BOT), "top-level");
        inner["thread_ts"] = json!("1355517000.000001");
        let outcome = from_event("Ev1", &inner, BOT);
        let Outcome::Event { name_of, .. } = &outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(name_of.as_deref(), Some("U123ABC456"));
        assert_eq!(
            event_of(outcome),
            DeskEvent::Agent {
                event_id: "Ev1".into(),
                thread: ThreadRef {
                    channel: "C123ABC456".into(),
                    ts: "1355517000.000001".into()
                },
                action_id: "1355517523.000005".into(),
                agent_id: "U123ABC456".into(),
                agent_name: "U123ABC456".into(),
                action: AgentAction::Reply {
                    text: "Hello world".into(),
                    files: Vec::new()
                },
            }
        );
    }

    #[test]
    fn replies_from_the_conversations_replies_example_map_and_the_parent_does_not() {
        let reference = payload("slack-api-ref/methods/conversations/conversations.replies.json");
        // The scrape stores each response example as a JSON string.
        let example: Value = reference
            .pointer("/response/examples/0")
            .and_then(Value::as_str)
            .and_then(|text| serde_json::from_str(text).ok())
            .expect("replies example is JSON");
        let messages = example["messages"].as_array().cloned().expect("messages");
        let mut replies = 0;
        for mut message in messages {
            message["channel"] = json!("C123ABC456");
            let outcome = from_event("Ev2", &message, BOT);
            if message["thread_ts"] == message["ts"] {
                assert_ignored(outcome, "top-level");
            } else {
                assert!(matches!(event_of(outcome), DeskEvent::Agent { .. }));
                replies += 1;
            }
        }
        assert!(replies > 0);
    }

    fn reply(user: &str) -> Value {
        json!({"type": "message", "channel": "C1", "user": user, "text": "On it",
               "ts": "1700000002.000200", "thread_ts": "1700000001.000100"})
    }

    #[test]
    fn the_bots_own_messages_never_echo() {
        assert_ignored(from_event("Ev", &reply(BOT), BOT), "bot user");
        let mut with_bot_id = reply("U1");
        with_bot_id["bot_id"] = json!("B0BOT");
        assert_ignored(from_event("Ev", &with_bot_id, BOT), "bot_id");
        let mut bot_message = reply("U1");
        bot_message["subtype"] = json!("bot_message");
        assert_ignored(from_event("Ev", &bot_message, BOT), "bot_message");
    }

    #[test]
    fn edits_and_deletions_of_thread_replies_map() {
        let changed = json!({"type": "message", "subtype": "message_changed", "channel": "C1",
            "ts": "1700000003.000300",
            "message": {"type": "message", "user": "U1", "text": "On it now",
                        "ts": "1700000002.000200", "thread_ts": "1700000001.000100"},
            "previous_message": {"type": "message", "user": "U1", "text": "On it",
                        "ts": "1700000002.000200", "thread_ts": "1700000001.000100"}});
        assert!(matches!(
            event_of(from_event("Ev", &changed, BOT)),
            DeskEvent::AgentEdited { ref text, ref message_ts, .. }
                if text == "On it now" && message_ts == "1700000002.000200"
        ));

        let mut into_a_note = changed.clone();
        into_a_note["message"]["text"] = json!("// wrong thread, ignore");
        assert_ignored(from_event("Ev", &into_a_note, BOT), "note or a command");

        let mut unfurl = changed.clone();
        unfurl["message"]["text"] = json!("On it");
        assert_ignored(from_event("Ev", &unfurl, BOT), "without a text change");

        let mut briefing_update = changed.clone();
        briefing_update["message"]["bot_id"] = json!("B0BOT");
        assert_ignored(from_event("Ev", &briefing_update, BOT), "bot_id");

        let deleted = json!({"type": "message", "subtype": "message_deleted", "channel": "C1",
            "ts": "1700000004.000400", "deleted_ts": "1700000002.000200",
            "previous_message": {"type": "message", "user": "U1", "text": "On it",
                        "ts": "1700000002.000200", "thread_ts": "1700000001.000100"}});
        assert_eq!(
            event_of(from_event("Ev", &deleted, BOT)),
            DeskEvent::AgentDeleted {
                event_id: "Ev".into(),
                thread: ThreadRef {
                    channel: "C1".into(),
                    ts: "1700000001.000100".into()
                },
                message_ts: "1700000002.000200".into(),
            }
        );
    }

    #[test]
    fn reactions_name_the_reacted_message_as_the_thread() {
        let reaction = json!({"type": "reaction_added", "user": "U1", "reaction": "white_check_mark",
            "item_user": BOT, "item": {"type": "message", "channel": "C1", "ts": "1700000001.000100"},
            "event_ts": "1700000005.000500"});
        let outcome = from_event("Ev", &reaction, BOT);
        let event = with_agent_name(event_of(outcome), "Dana".into());
        assert_eq!(
            event,
            DeskEvent::Agent {
                event_id: "Ev".into(),
                thread: ThreadRef {
                    channel: "C1".into(),
                    ts: "1700000001.000100".into()
                },
                action_id: "Ev".into(),
                agent_id: "U1".into(),
                agent_name: "Dana".into(),
                action: AgentAction::Command(AgentCommand::Resolve),
            }
        );
        let mut party = reaction.clone();
        party["reaction"] = json!("tada");
        assert_ignored(from_event("Ev", &party, BOT), "not a command");
        assert_eq!(reaction_command("eyes"), Some(AgentCommand::Claim));
        assert_eq!(
            reaction_command("raising_hand::skin-tone-3"),
            Some(AgentCommand::Claim)
        );
        assert_eq!(reaction_command("robot_face"), Some(AgentCommand::HandBack));
        let mut on_file = reaction.clone();
        on_file["item"] = json!({"type": "file", "file": "F1"});
        assert_ignored(from_event("Ev", &on_file, BOT), "other than a message");
    }

    #[test]
    fn joins_and_other_subtypes_are_ignored() {
        let mut join = reply("U1");
        join["subtype"] = json!("channel_join");
        assert_ignored(from_event("Ev", &join, BOT), "channel_join");
    }
}
