//! Slack JSON <-> the neutral model for the customer channel: pure, so every rule is
//! unit-tested on Slack-shaped payloads.
//!
//! Inbound rules:
//! - a `message` in a configured channel by a person starts (top level) or continues (in a
//!   thread) a conversation keyed `"<channel>:<thread parent ts>"`; its id is
//!   `"slack:<channel>:<ts>"`, so Slack's retries and Socket Mode redeliveries dedupe in the core;
//! - plain messages, `thread_broadcast` and `file_share` (its text and its files, which the
//!   connector downloads with its own bot token) count; every other subtype
//!   is ignored: edits (`message_changed`: the customer's first words were already answered,
//!   and storing an edit as a new message would make the AI answer twice), deletions, joins,
//!   topic changes, `message_replied`;
//! - anything written by a bot (this bot's user id, any `bot_id`, subtype `bot_message`) is
//!   ignored, so our own answers never echo back;
//! - a `block_actions` press of the `sb_human` button becomes a `HumanRequest` in the thread
//!   the button's message lives in, with id `"slack:i:<trigger_id>"`; a press of a rating
//!   button `sb_rate_<n>` becomes the customer's text message `"<n>"` there, with the same id.
//!
//! Outbound: the speaker in bold first (agents by name, the AI as the assistant), the text
//! escaped so a reply can never ping `@channel`, and the "Talk to a human" button and the 1-5
//! rating buttons as Block Kit. Files are uploaded into the thread after the text.

use serde_json::{json, Value};
use switchboard_api::{Author, CustomerAction, Outbound};

use crate::convert::{shared_files, SharedFile};

/// The `action_id` of the "Talk to a human" button.
pub const HUMAN_ACTION_ID: &str = "sb_human";
/// The prefix of a rating button's `action_id`: `sb_rate_<n>` for a rating of 1 to 5.
pub const RATE_ACTION_PREFIX: &str = "sb_rate_";

/// Slack's limit for a section block's text.
const SECTION_MAX_CHARS: usize = 3000;

/// A customer's message, read out of a Slack event; the author's name is still to be looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerMessage {
    /// The conversation key, `"<channel>:<thread parent ts>"`.
    pub conversation_key: String,
    /// The inbound id, `"slack:<channel>:<ts>"`.
    pub message_id: String,
    /// The Slack user id of the author.
    pub user: String,
    /// The text, with Slack's `&amp;`/`&lt;`/`&gt;` undone.
    pub text: String,
    /// The channel.
    pub channel: String,
    /// The message's own ts.
    pub ts: String,
    /// The files shared with the message, to download.
    pub files: Vec<SharedFile>,
}

/// A press of one of our buttons: where and by whom ("Talk to a human" alone in
/// [`from_interaction`], any of them in [`ButtonPress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanPress {
    /// The conversation key of the thread the button is in.
    pub conversation_key: String,
    /// The inbound id, `"slack:i:<trigger_id>"`.
    pub message_id: String,
    /// Who pressed it.
    pub user: String,
}

/// Which of our buttons was pressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonPress {
    /// "Talk to a human".
    Human(HumanPress),
    /// A rating button; the rating (1 to 5) is stored as the customer's text.
    Rating {
        /// Where and by whom.
        press: HumanPress,
        /// The rating, 1 to 5.
        rating: u8,
    },
}

/// What one Slack payload means for the customer channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerOutcome<T> {
    /// Something for the gateway.
    Accepted(T),
    /// Not for the gateway, with the reason for the debug log.
    Ignored(String),
}

fn ignored<T>(reason: impl Into<String>) -> CustomerOutcome<T> {
    CustomerOutcome::Ignored(reason.into())
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// The conversation key of a thread: `"<channel>:<parent ts>"`.
pub fn conversation_key(channel: &str, thread_ts: &str) -> String {
    format!("{channel}:{thread_ts}")
}

/// True for a channel id or a ts as Slack writes them (`C0123ABC`, `1700000000.000100`): the
/// conversation key joins the two with `:`, so an empty or odd one could not be split back
/// into where the replies go (found by fuzzing).
fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

/// Splits a conversation key into the channel and the thread's parent ts.
pub fn thread_of(conversation_key: &str) -> Option<(&str, &str)> {
    let (channel, ts) = conversation_key.split_once(':')?;
    (!channel.is_empty() && !ts.is_empty()).then_some((channel, ts))
}

/// Maps an `event_callback` body; `answers_in` says whether a channel is configured.
pub fn from_callback(
    callback: &Value,
    bot_user_id: &str,
    answers_in: impl Fn(&str) -> bool,
) -> CustomerOutcome<CustomerMessage> {
    if text(callback, "type") != Some("event_callback") {
        return ignored(format!(
            "not an event_callback (type {:?})",
            text(callback, "type").unwrap_or("none")
        ));
    }
    match callback.get("event") {
        Some(event) => from_event(event, bot_user_id, answers_in),
        None => ignored("event_callback without event"),
    }
}

/// Maps one inner event (the `event` of an `event_callback`).
pub fn from_event(
    event: &Value,
    bot_user_id: &str,
    answers_in: impl Fn(&str) -> bool,
) -> CustomerOutcome<CustomerMessage> {
    if text(event, "type") != Some("message") {
        return ignored(format!(
            "event type {:?} is not a customer message",
            text(event, "type").unwrap_or("none")
        ));
    }
    let Some(channel) = text(event, "channel").filter(|id| is_plain_id(id)) else {
        return ignored("message without channel");
    };
    if !answers_in(channel) {
        return ignored(format!("channel {channel} is not a customer channel"));
    }
    match text(event, "subtype") {
        None | Some("thread_broadcast") | Some("file_share") => {}
        Some(subtype) => return ignored(format!("message subtype {subtype} is ignored")),
    }
    if event.get("bot_id").is_some_and(|id| !id.is_null()) {
        return ignored("written by a bot (bot_id)");
    }
    let Some(user) = text(event, "user") else {
        return ignored("message without user");
    };
    if user == bot_user_id {
        return ignored("written by this bot's user");
    }
    let Some(ts) = text(event, "ts").filter(|ts| is_plain_id(ts)) else {
        return ignored("message without ts");
    };
    let body = unescape(text(event, "text").unwrap_or_default());
    let files = shared_files(event);
    if body.trim().is_empty() && files.is_empty() {
        return ignored("message without text or files (an attachment only)");
    }
    let parent = match text(event, "thread_ts") {
        None => ts,
        Some(parent) if is_plain_id(parent) => parent,
        Some(_) => return ignored("message with an unusable thread_ts"),
    };
    CustomerOutcome::Accepted(CustomerMessage {
        conversation_key: conversation_key(channel, parent),
        message_id: format!("slack:{channel}:{ts}"),
        user: user.to_string(),
        text: body.trim().to_string(),
        channel: channel.to_string(),
        ts: ts.to_string(),
        files,
    })
}

/// Maps an interaction payload; only a `block_actions` press of [`HUMAN_ACTION_ID`] counts.
pub fn from_interaction(
    payload: &Value,
    answers_in: impl Fn(&str) -> bool,
) -> CustomerOutcome<HumanPress> {
    match button_press(payload, answers_in) {
        CustomerOutcome::Accepted(ButtonPress::Human(press)) => CustomerOutcome::Accepted(press),
        CustomerOutcome::Accepted(ButtonPress::Rating { .. }) => {
            ignored("block_actions without the sb_human button")
        }
        CustomerOutcome::Ignored(reason) => CustomerOutcome::Ignored(reason),
    }
}

/// The rating a rating button's `action_id` carries; `None` for anything else.
fn rating_of(action_id: &str) -> Option<u8> {
    // Exactly one digit: "sb_rate_04" or "sb_rate_+4" are not ours.
    match action_id.strip_prefix(RATE_ACTION_PREFIX)?.as_bytes() {
        [digit @ b'1'..=b'5'] => Some(digit - b'0'),
        _ => None,
    }
}

/// Maps an interaction payload; a `block_actions` press of [`HUMAN_ACTION_ID`] or of a rating
/// button (`sb_rate_1` .. `sb_rate_5`) counts.
pub fn button_press(
    payload: &Value,
    answers_in: impl Fn(&str) -> bool,
) -> CustomerOutcome<ButtonPress> {
    if text(payload, "type") != Some("block_actions") {
        return ignored(format!(
            "interaction {:?} is not a button press",
            text(payload, "type").unwrap_or("none")
        ));
    }
    let action_ids = || {
        payload
            .get("actions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|action| text(action, "action_id"))
    };
    // None: the human button; Some(n): a rating.
    let pressed: Option<Option<u8>> = if action_ids().any(|id| id == HUMAN_ACTION_ID) {
        Some(None)
    } else {
        action_ids().find_map(rating_of).map(Some)
    };
    let Some(rating) = pressed else {
        return ignored("block_actions without the sb_human button");
    };
    let container = payload.get("container").unwrap_or(&Value::Null);
    let channel = text(container, "channel_id")
        .or_else(|| payload.get("channel").and_then(|c| text(c, "id")));
    let Some(channel) = channel else {
        return ignored("button press without a channel");
    };
    if !answers_in(channel) {
        return ignored(format!("channel {channel} is not a customer channel"));
    }
    let message = payload.get("message").unwrap_or(&Value::Null);
    // The button sits on a reply in the thread; the thread's parent ts is the key.
    let parent = text(message, "thread_ts")
        .or_else(|| text(container, "thread_ts"))
        .or_else(|| text(container, "message_ts"))
        .or_else(|| text(message, "ts"));
    let Some(parent) = parent else {
        return ignored("button press without a message ts");
    };
    let Some(user) = payload.get("user").and_then(|user| text(user, "id")) else {
        return ignored("button press without a user");
    };
    let press_id = text(payload, "trigger_id").or_else(|| {
        payload
            .get("actions")
            .and_then(Value::as_array)
            .and_then(|actions| actions.first())
            .and_then(|action| text(action, "action_ts"))
    });
    let Some(press_id) = press_id else {
        return ignored("button press without trigger_id or action_ts");
    };
    let press = HumanPress {
        conversation_key: conversation_key(channel, parent),
        message_id: format!("slack:i:{press_id}"),
        user: user.to_string(),
    };
    CustomerOutcome::Accepted(match rating {
        None => ButtonPress::Human(press),
        Some(rating) => ButtonPress::Rating { press, rating },
    })
}

/// Undoes Slack's three HTML escapes in message text (`&amp;` last, so `&amp;lt;` stays `&lt;`).
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Escapes text so Slack shows it literally (`<!channel>` never pings anyone).
pub fn escape(text: &str) -> String {
    crate::blocks::escape(text)
}

/// What to post for an outbound message: the mrkdwn text and, for a button, the blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The message text (also the notification fallback when there are blocks).
    pub text: String,
    /// Block Kit blocks, when the message carries the "Talk to a human" or the rating buttons.
    pub blocks: Option<Vec<Value>>,
}

/// Renders an outbound message for a customer thread.
pub fn render(outbound: &Outbound) -> Rendered {
    let body = escape(outbound.text.trim());
    let speaker = match &outbound.author {
        Author::Agent { name } => Some(format!("*{} (support team):*", escape(name.trim()))),
        Author::Ai => Some("*AI assistant:*".to_string()),
        Author::System | Author::Customer => None,
    };
    let text = match speaker {
        Some(speaker) => format!("{speaker} {body}"),
        None => body,
    };
    let human = outbound.actions.contains(&CustomerAction::TalkToHuman);
    let rate = outbound.actions.contains(&CustomerAction::RateService);
    let blocks = (human || rate).then(|| with_buttons(&text, human, rate));
    Rendered { text, blocks }
}

/// The text as section blocks (Slack caps each at 3000 characters), then the buttons.
fn with_buttons(text: &str, human: bool, rate: bool) -> Vec<Value> {
    let chars: Vec<char> = text.chars().collect();
    let mut blocks: Vec<Value> = chars
        .chunks(SECTION_MAX_CHARS)
        .map(|chunk| {
            json!({"type": "section",
                   "text": {"type": "mrkdwn", "text": chunk.iter().collect::<String>()}})
        })
        .collect();
    if human {
        blocks.push(json!({
            "type": "actions",
            "block_id": "sb_actions",
            "elements": [{
                "type": "button",
                "action_id": HUMAN_ACTION_ID,
                "text": {"type": "plain_text", "text": "Talk to a human"},
                "value": "human",
            }],
        }));
    }
    if rate {
        let buttons: Vec<Value> = (1..=5u8)
            .map(|rating| {
                json!({
                    "type": "button",
                    "action_id": format!("{RATE_ACTION_PREFIX}{rating}"),
                    "text": {"type": "plain_text", "text": rating.to_string()},
                    "value": rating.to_string(),
                })
            })
            .collect();
        // Block ids are unique within a message.
        blocks.push(json!({"type": "actions", "block_id": "sb_rating", "elements": buttons}));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "U0BOT";

    fn official(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).expect("official payload is JSON")
    }

    fn any_channel(_: &str) -> bool {
        true
    }

    fn message(fields: Value) -> Value {
        let mut event = json!({"type": "message", "channel": "C0SHARED", "user": "U0CUST",
                               "text": "hello", "ts": "1700000000.000100"});
        if let (Some(event), Some(fields)) = (event.as_object_mut(), fields.as_object()) {
            event.extend(fields.clone());
        }
        event
    }

    #[test]
    fn slacks_documented_channel_message_starts_a_conversation() {
        let outcome = from_callback(
            &official("message.channels.wrapped.docs.slack.dev.strict.json"),
            BOT,
            |channel| channel == "C123ABC456",
        );
        let CustomerOutcome::Accepted(message) = outcome else {
            panic!("accepted: {outcome:?}");
        };
        assert_eq!(message.conversation_key, "C123ABC456:1355517523.000005");
        assert_eq!(message.message_id, "slack:C123ABC456:1355517523.000005");
        assert_eq!(message.user, "U123ABC456");
        assert_eq!(message.text, "Live long and prospect.");
    }

    #[test]
    fn a_thread_reply_continues_the_parents_conversation() {
        let outcome = from_event(
            &message(
                json!({"ts": "1700000050.000200", "thread_ts": "1700000000.000100",
                            "text": "still broken &amp; &lt;urgent&gt;"}),
            ),
            BOT,
            any_channel,
        );
        let CustomerOutcome::Accepted(message) = outcome else {
            panic!("accepted: {outcome:?}");
        };
        assert_eq!(message.conversation_key, "C0SHARED:1700000000.000100");
        assert_eq!(message.message_id, "slack:C0SHARED:1700000050.000200");
        assert_eq!(message.text, "still broken & <urgent>");
    }

    #[test]
    fn bots_edits_other_channels_and_housekeeping_are_ignored() {
        let cases = [
            message(json!({"user": BOT})),
            message(json!({"bot_id": "B0OTHER"})),
            message(json!({"subtype": "bot_message"})),
            message(json!({"subtype": "message_changed"})),
            message(json!({"subtype": "message_deleted"})),
            message(json!({"subtype": "channel_join"})),
            message(json!({"channel": "C0ELSEWHERE"})),
            message(json!({"text": "   "})),
            json!({"type": "reaction_added", "user": "U0CUST"}),
        ];
        for event in cases {
            let outcome = from_event(&event, BOT, |channel| channel == "C0SHARED");
            assert!(
                matches!(outcome, CustomerOutcome::Ignored(_)),
                "{event} -> {outcome:?}"
            );
        }
        // Found by fuzzing: ids the conversation key could not be split back into.
        for event in [
            message(json!({"channel": ""})),
            message(json!({"channel": "C0:X"})),
            message(json!({"ts": ""})),
            message(json!({"thread_ts": ""})),
            message(json!({"thread_ts": "1700000000.000100:x"})),
        ] {
            let outcome = from_event(&event, BOT, any_channel);
            assert!(
                matches!(outcome, CustomerOutcome::Ignored(_)),
                "{event} -> {outcome:?}"
            );
        }
        let replied = from_callback(
            &official("message_replied.wrapped.docs.slack.dev.strict.json"),
            BOT,
            any_channel,
        );
        assert!(
            matches!(replied, CustomerOutcome::Ignored(_)),
            "{replied:?}"
        );
    }

    #[test]
    fn the_human_button_press_maps_to_the_buttons_thread() {
        let payload = json!({
            "type": "block_actions", "trigger_id": "13345224609.738474920.8088930838d88f008e0",
            "user": {"id": "U0CUST"}, "team": {"id": "T0"}, "api_app_id": "A0",
            "container": {"type": "message", "message_ts": "1700000001.000300",
                          "channel_id": "C0SHARED"},
            "message": {"ts": "1700000001.000300", "thread_ts": "1700000000.000100"},
            "actions": [{"type": "button", "action_id": "sb_human",
                         "action_ts": "1700000002.000400"}],
        });
        let outcome = from_interaction(&payload, any_channel);
        assert_eq!(
            outcome,
            CustomerOutcome::Accepted(HumanPress {
                conversation_key: "C0SHARED:1700000000.000100".into(),
                message_id: "slack:i:13345224609.738474920.8088930838d88f008e0".into(),
                user: "U0CUST".into(),
            })
        );
        let mut other = payload.clone();
        other["actions"][0]["action_id"] = json!("approve");
        assert!(matches!(
            from_interaction(&other, any_channel),
            CustomerOutcome::Ignored(_)
        ));
    }

    fn outbound(author: Author, text: &str, actions: Vec<CustomerAction>) -> Outbound {
        Outbound {
            id: "1-0".into(),
            conversation_id: "c1".into(),
            channel: crate::CHANNEL,
            conversation_key: "C0SHARED:1700000000.000100".into(),
            author,
            text: text.into(),
            actions,
            reply_context: Default::default(),
            files: Vec::new(),
            maybe_sent: false,
        }
    }

    #[test]
    fn speakers_are_named_and_the_ai_offers_a_human() {
        let agent = render(&outbound(
            Author::Agent { name: "Sam".into() },
            "Hi <!channel>",
            vec![],
        ));
        assert_eq!(agent.text, "*Sam (support team):* Hi &lt;!channel&gt;");
        assert_eq!(agent.blocks, None);

        let ai = render(&outbound(
            Author::Ai,
            "Use the reset link.",
            vec![CustomerAction::TalkToHuman],
        ));
        assert_eq!(ai.text, "*AI assistant:* Use the reset link.");
        let blocks = serde_json::to_string(&ai.blocks).expect("json");
        assert!(blocks.contains("\"action_id\":\"sb_human\""), "{blocks}");
        assert!(blocks.contains("Talk to a human"), "{blocks}");

        let system = render(&outbound(Author::System, "A person is joining.", vec![]));
        assert_eq!(system.text, "A person is joining.");
        assert_eq!(
            thread_of("C0SHARED:1700000000.000100"),
            Some(("C0SHARED", "1700000000.000100"))
        );
        assert_eq!(thread_of("nonsense"), None);
    }
}
