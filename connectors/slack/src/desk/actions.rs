//! Buttons and modals on the desk (pure): the buttons under a briefing and under a
//! knowledge-base candidate, the edit modals, and Slack's `block_actions` / `view_submission`
//! payloads mapped to what the desk does next.
//!
//! Works on Slack's JSON, like [`super::convert`], so the Events API route and Socket Mode
//! (whose typed payload is serialised back) share one mapping.
//!
//! Rules:
//! - a press is identified by its `trigger_id` (the same on Slack's retries, new on each
//!   click), a modal submission by its view id: the core acts once per id;
//! - the thread is the pressed message's thread (`message.thread_ts`), else the message
//!   itself (the briefing is the thread's parent);
//! - Edit & send and the candidate's Edit open a modal prefilled with the text the button
//!   carries; the modal's `private_metadata` says which thread its submission is for.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchboard_api::{suggestion_fingerprint, AgentAction, AgentCommand, Briefing, ThreadRef};

use super::blocks::truncate;

/// Claims the conversation.
pub const CLAIM: &str = "sb_claim";
/// Resolves it.
pub const RESOLVE: &str = "sb_resolve";
/// Hands it back to the AI.
pub const HAND_BACK: &str = "sb_hand_back";
/// Sends the AI's suggestion as it is; the value is its fingerprint.
pub const SEND_SUGGESTION: &str = "sb_send_suggestion";
/// Opens the Edit & send modal; the value is the suggestion.
pub const EDIT_SUGGESTION: &str = "sb_edit_suggestion";
/// Approves the knowledge-base candidate.
pub const KB_APPROVE: &str = "sb_kb_approve";
/// Opens the candidate's edit modal; the value is the proposed answer.
pub const KB_EDIT: &str = "sb_kb_edit";
/// Rejects the candidate.
pub const KB_REJECT: &str = "sb_kb_reject";
/// Shows the pressing agent alone what the redaction hid (and logs that they looked); the
/// value is the mirrored message's id, or [`REVEAL_BRIEFING`].
pub const REVEAL: &str = "sb_reveal";
/// The Reveal value on a briefing: the customer's messages it shows.
const REVEAL_BRIEFING: &str = "briefing";
/// The Edit & send modal's `callback_id`.
pub const EDIT_SEND_VIEW: &str = "sb_edit_send";
/// The candidate edit modal's `callback_id`.
pub const KB_EDIT_VIEW: &str = "sb_kb_edit";
/// The modal's text input block and element.
const TEXT_BLOCK: &str = "sb_text";
const TEXT_INPUT: &str = "sb_text_input";
/// Slack's limit for a button's `value`: a longer text cannot ride on the button, so its Edit
/// button is left out (agents reply in the thread instead).
const VALUE_CHARS: usize = 2000;
/// Slack's limit for a `plain_text_input`.
const INPUT_CHARS: usize = 3000;

fn button(text: &str, action_id: &str, value: &str, style: Option<&str>) -> Value {
    let mut button = json!({
        "type": "button", "action_id": action_id, "value": value,
        "text": {"type": "plain_text", "text": text, "emoji": true},
    });
    if let Some(style) = style {
        button["style"] = json!(style);
    }
    button
}

/// The buttons under a briefing: the state changes until it is resolved, and Reveal while
/// the redaction hid something in it.
pub fn briefing_actions(briefing: &Briefing, revealable: bool) -> Option<Value> {
    let mut elements = if briefing.status == "resolved" {
        Vec::new()
    } else {
        state_buttons(briefing)
    };
    if revealable {
        elements.push(button("Reveal original", REVEAL, REVEAL_BRIEFING, None));
    }
    (!elements.is_empty()).then(
        || json!({"type": "actions", "block_id": "sb_briefing_actions", "elements": elements}),
    )
}

/// A mirrored customer message whose text the redaction changed, with its Reveal button.
pub fn revealable_blocks(text: &str, message_id: &str) -> Vec<Value> {
    vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}}),
        json!({"type": "actions", "block_id": "sb_reveal_actions",
            "elements": [button("Reveal original", REVEAL, message_id, None)]}),
    ]
}

fn state_buttons(briefing: &Briefing) -> Vec<Value> {
    let id = briefing.conversation_id.as_str();
    let mut elements = Vec::new();
    if briefing.claimed_by.is_none() {
        elements.push(button("Claim", CLAIM, id, Some("primary")));
    }
    if let Some(suggestion) = briefing.suggested_reply.as_deref() {
        let fingerprint = suggestion_fingerprint(suggestion);
        elements.push(button(
            "Send suggested reply",
            SEND_SUGGESTION,
            &fingerprint,
            None,
        ));
        if suggestion.chars().count() <= VALUE_CHARS {
            elements.push(button("Edit & send", EDIT_SUGGESTION, suggestion, None));
        }
    }
    elements.push(button("Resolve", RESOLVE, id, None));
    if briefing.status != "bot" {
        elements.push(button("Hand back to AI", HAND_BACK, id, Some("danger")));
    }
    elements
}

/// A knowledge-base candidate notice with its Approve, Edit and Reject buttons.
pub fn candidate_blocks(text: &str, id: &str, answer: &str) -> Vec<Value> {
    let mut elements = vec![button("Approve", KB_APPROVE, id, Some("primary"))];
    if !answer.is_empty() && answer.chars().count() <= VALUE_CHARS {
        elements.push(button("Edit", KB_EDIT, answer, None));
    }
    elements.push(button("Reject", KB_REJECT, id, Some("danger")));
    let mut blocks =
        vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}})];
    if !answer.is_empty() {
        let quoted: Vec<String> = answer
            .lines()
            .map(|line| format!(">{}", super::blocks::escape(line)))
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": truncate(&format!("*Proposed answer*\n{}", quoted.join("\n")), 3000)}}));
    }
    blocks.push(json!({"type": "actions", "block_id": "sb_kb_actions", "elements": elements}));
    blocks
}

/// What a modal's submission is for, carried in its `private_metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ModalContext {
    channel: String,
    ts: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    fingerprint: String,
}

/// A modal with one multi-line input prefilled with `text`.
fn edit_modal(
    callback_id: &str,
    title: &str,
    submit: &str,
    label: &str,
    text: &str,
    context: &ModalContext,
) -> Value {
    json!({
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": serde_json::to_string(context).unwrap_or_default(),
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input", "block_id": TEXT_BLOCK,
            "label": {"type": "plain_text", "text": label},
            "element": {"type": "plain_text_input", "action_id": TEXT_INPUT, "multiline": true,
                        "initial_value": truncate(text, INPUT_CHARS), "max_length": INPUT_CHARS},
        }],
    })
}

/// What one interaction payload asks of the desk.
#[derive(Debug, Clone, PartialEq)]
pub enum Interaction {
    /// An action on a conversation, for the core.
    Act {
        /// The conversation's thread.
        thread: ThreadRef,
        /// Who pressed or submitted.
        user: String,
        /// Unique per press and the same on Slack's retries.
        press_id: String,
        /// What to do.
        action: AgentAction,
    },
    /// A modal to open (`views.open` with the press's `trigger_id`).
    OpenModal {
        /// The conversation's thread.
        thread: ThreadRef,
        /// Who pressed.
        user: String,
        /// Unique per press.
        press_id: String,
        /// Valid for 3 seconds, once.
        trigger_id: String,
        /// The modal.
        view: Value,
    },
    /// An agent asking to see what the redaction hid.
    Reveal {
        /// The conversation's thread.
        thread: ThreadRef,
        /// Who pressed.
        user: String,
        /// Unique per press.
        press_id: String,
        /// The mirrored message; `None` for the briefing's transcript.
        message_id: Option<String>,
    },
    /// Not for the desk, with the reason for the debug log.
    Ignored(String),
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Maps an interaction payload (`block_actions` or `view_submission`).
pub fn from_interaction(payload: &Value) -> Interaction {
    match text(payload, "/type") {
        Some("block_actions") => from_block_actions(payload),
        Some("view_submission") => from_view_submission(payload),
        other => Interaction::Ignored(format!(
            "interaction {:?} is not for the desk",
            other.unwrap_or("none")
        )),
    }
}

fn from_block_actions(payload: &Value) -> Interaction {
    let Some(user) = text(payload, "/user/id") else {
        return Interaction::Ignored("block_actions without user".into());
    };
    let Some(action) = payload.pointer("/actions/0") else {
        return Interaction::Ignored("block_actions without actions".into());
    };
    let Some(trigger_id) = text(payload, "/trigger_id") else {
        return Interaction::Ignored("block_actions without trigger_id".into());
    };
    let channel = text(payload, "/container/channel_id").or_else(|| text(payload, "/channel/id"));
    let thread_ts = text(payload, "/message/thread_ts")
        .or_else(|| text(payload, "/container/message_ts"))
        .or_else(|| text(payload, "/message/ts"));
    let (Some(channel), Some(ts)) = (channel, thread_ts) else {
        return Interaction::Ignored("button press outside a message".into());
    };
    let thread = ThreadRef {
        channel: channel.to_owned(),
        ts: ts.to_owned(),
    };
    let value = text(action, "/value").unwrap_or_default();
    let press_id = format!("i:{trigger_id}");
    let command = |command| Some(AgentAction::Command(command));
    let action = match text(action, "/action_id").unwrap_or_default() {
        CLAIM => command(AgentCommand::Claim),
        RESOLVE => command(AgentCommand::Resolve),
        HAND_BACK => command(AgentCommand::HandBack),
        KB_APPROVE => command(AgentCommand::ApproveKnowledge {
            edited_answer: None,
        }),
        KB_REJECT => command(AgentCommand::RejectKnowledge),
        REVEAL => {
            return Interaction::Reveal {
                thread,
                user: user.to_owned(),
                press_id,
                message_id: (value != REVEAL_BRIEFING && !value.is_empty())
                    .then(|| value.to_owned()),
            }
        }
        SEND_SUGGESTION => Some(AgentAction::SendSuggestion {
            fingerprint: value.to_owned(),
            edited: None,
        }),
        EDIT_SUGGESTION | KB_EDIT => {
            let edit_send = text(action, "/action_id") == Some(EDIT_SUGGESTION);
            let context = ModalContext {
                channel: thread.channel.clone(),
                ts: thread.ts.clone(),
                fingerprint: if edit_send {
                    suggestion_fingerprint(value)
                } else {
                    String::new()
                },
            };
            let view = if edit_send {
                edit_modal(
                    EDIT_SEND_VIEW,
                    "Edit & send",
                    "Send",
                    "Reply to the customer",
                    value,
                    &context,
                )
            } else {
                edit_modal(
                    KB_EDIT_VIEW,
                    "Edit the answer",
                    "Approve",
                    "Answer the AI learns",
                    value,
                    &context,
                )
            };
            return Interaction::OpenModal {
                thread,
                user: user.to_owned(),
                press_id,
                trigger_id: trigger_id.to_owned(),
                view,
            };
        }
        other => {
            return Interaction::Ignored(format!("button {other:?} is not the desk's"));
        }
    };
    match action {
        Some(action) => Interaction::Act {
            thread,
            user: user.to_owned(),
            press_id,
            action,
        },
        None => Interaction::Ignored("no action".into()),
    }
}

fn from_view_submission(payload: &Value) -> Interaction {
    let Some(user) = text(payload, "/user/id") else {
        return Interaction::Ignored("view_submission without user".into());
    };
    let Some(view_id) = text(payload, "/view/id") else {
        return Interaction::Ignored("view_submission without view id".into());
    };
    let Some(context) = text(payload, "/view/private_metadata")
        .and_then(|metadata| serde_json::from_str::<ModalContext>(metadata).ok())
    else {
        return Interaction::Ignored("view_submission without the desk's private_metadata".into());
    };
    let submitted = text(
        payload,
        &format!("/view/state/values/{TEXT_BLOCK}/{TEXT_INPUT}/value"),
    )
    .unwrap_or_default()
    .trim()
    .to_owned();
    if submitted.is_empty() {
        return Interaction::Ignored("modal submitted without text".into());
    }
    let action = match text(payload, "/view/callback_id") {
        Some(EDIT_SEND_VIEW) => AgentAction::SendSuggestion {
            fingerprint: context.fingerprint.clone(),
            edited: Some(submitted),
        },
        Some(KB_EDIT_VIEW) => AgentAction::Command(AgentCommand::ApproveKnowledge {
            edited_answer: Some(submitted),
        }),
        other => {
            return Interaction::Ignored(format!("modal {other:?} is not the desk's"));
        }
    };
    Interaction::Act {
        thread: ThreadRef {
            channel: context.channel,
            ts: context.ts,
        },
        user: user.to_owned(),
        press_id: format!("v:{view_id}"),
        action,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::tests::sample_briefing;

    fn press(action_id: &str, value: &str, thread_ts: Option<&str>) -> Value {
        let mut message = json!({"type": "message", "user": "U0BOT", "bot_id": "B0BOT",
                                 "text": "briefing", "ts": "1700000001.000100"});
        if let Some(thread_ts) = thread_ts {
            message["thread_ts"] = json!(thread_ts);
            message["ts"] = json!("1700000009.000900");
        }
        json!({
            "type": "block_actions", "trigger_id": "13345224609.738474920.8088930838d88f008e0",
            "user": {"id": "U1", "username": "dana", "name": "dana", "team_id": "T1"},
            "api_app_id": "A1", "team": {"id": "T1", "domain": "acme"},
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": "C1", "is_ephemeral": false},
            "channel": {"id": "C1", "name": "support"},
            "message": message,
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value,
                         "text": {"type": "plain_text", "text": "x"}, "action_ts": "1700000010.000100"}],
        })
    }

    #[test]
    fn reveal_on_a_mirrored_message_names_it_and_on_the_briefing_names_none() {
        let briefing = sample_briefing(1);
        let resolved = Briefing {
            status: "resolved".into(),
            ..briefing.clone()
        };
        let only_reveal = briefing_actions(&resolved, true).expect("Reveal stays");
        assert_eq!(only_reveal["elements"].as_array().map(Vec::len), Some(1));
        assert_eq!(only_reveal["elements"][0]["value"], "briefing");
        assert!(briefing_actions(&resolved, false).is_none());
        let Interaction::Reveal { message_id, .. } =
            from_interaction(&press(REVEAL, "briefing", None))
        else {
            panic!("a reveal");
        };
        assert_eq!(message_id, None);
        let post = revealable_blocks("*Ada:* [card •••• 4242]", "1700000000000-0");
        let value = post[1]["elements"][0]["value"].as_str().unwrap_or_default();
        let Interaction::Reveal {
            message_id, thread, ..
        } = from_interaction(&press(REVEAL, value, Some("1700000001.000100")))
        else {
            panic!("a reveal");
        };
        assert_eq!(message_id.as_deref(), Some("1700000000000-0"));
        assert_eq!(thread.ts, "1700000001.000100", "the thread, not the reply");
    }

    #[test]
    fn briefing_buttons_map_to_neutral_actions_on_the_briefings_thread() {
        let Interaction::Act {
            thread,
            user,
            press_id,
            action,
        } = from_interaction(&press(RESOLVE, "conv-42", None))
        else {
            panic!("not an action")
        };
        assert_eq!(
            thread,
            ThreadRef {
                channel: "C1".into(),
                ts: "1700000001.000100".into()
            }
        );
        assert_eq!(user, "U1");
        assert_eq!(press_id, "i:13345224609.738474920.8088930838d88f008e0");
        assert_eq!(action, AgentAction::Command(AgentCommand::Resolve));
        let Interaction::Act { action, .. } =
            from_interaction(&press(SEND_SUGGESTION, "abc", None))
        else {
            panic!("not an action")
        };
        assert_eq!(
            action,
            AgentAction::SendSuggestion {
                fingerprint: "abc".into(),
                edited: None
            }
        );
        // A candidate's buttons sit on a reply: the thread is its parent.
        let Interaction::Act { thread, action, .. } =
            from_interaction(&press(KB_REJECT, "kb-1", Some("1700000001.000100")))
        else {
            panic!("not an action")
        };
        assert_eq!(thread.ts, "1700000001.000100");
        assert_eq!(action, AgentAction::Command(AgentCommand::RejectKnowledge));
        assert!(matches!(
            from_interaction(&press("other_app", "", None)),
            Interaction::Ignored(_)
        ));
    }

    #[test]
    fn edit_and_send_opens_a_prefilled_modal_whose_submission_sends_the_edit() {
        let Interaction::OpenModal {
            view, trigger_id, ..
        } = from_interaction(&press(EDIT_SUGGESTION, "Sorry!\nRefunded.", None))
        else {
            panic!("no modal")
        };
        assert_eq!(trigger_id, "13345224609.738474920.8088930838d88f008e0");
        assert_eq!(
            view["blocks"][0]["element"]["initial_value"],
            "Sorry!\nRefunded."
        );
        let parsed: Result<slack_morphism::prelude::SlackView, _> =
            serde_json::from_value(view.clone());
        assert!(parsed.is_ok(), "{parsed:?}");
        let mut stateful = view.clone();
        stateful["id"] = json!("V1");
        stateful["state"] = json!({"values": {TEXT_BLOCK: {TEXT_INPUT: {"type": "plain_text_input", "value": " Sorry, refunded. "}}}});
        let submission = json!({"type": "view_submission", "user": {"id": "U1"}, "view": stateful});
        let Interaction::Act {
            thread,
            press_id,
            action,
            ..
        } = from_interaction(&submission)
        else {
            panic!("not an action")
        };
        assert_eq!(
            thread,
            ThreadRef {
                channel: "C1".into(),
                ts: "1700000001.000100".into()
            }
        );
        assert_eq!(press_id, "v:V1");
        assert_eq!(
            action,
            AgentAction::SendSuggestion {
                fingerprint: suggestion_fingerprint("Sorry!\nRefunded."),
                edited: Some("Sorry, refunded.".into())
            }
        );
    }

    #[test]
    fn buttons_follow_the_state_and_parse_as_slack_morphism_blocks() {
        let mut briefing = sample_briefing(2);
        let actions = briefing_actions(&briefing, false).expect("buttons");
        let ids = actions.to_string();
        assert!(!ids.contains(CLAIM) && ids.contains(SEND_SUGGESTION) && ids.contains(HAND_BACK));
        briefing.claimed_by = None;
        assert!(briefing_actions(&briefing, false)
            .unwrap()
            .to_string()
            .contains(CLAIM));
        let parsed: Result<Vec<slack_morphism::prelude::SlackBlock>, _> =
            serde_json::from_value(json!([actions]));
        assert!(parsed.is_ok(), "{parsed:?}");
        let candidate = candidate_blocks("saved", "kb-1", "Billing > Export");
        let parsed: Result<Vec<slack_morphism::prelude::SlackBlock>, _> =
            serde_json::from_value(Value::Array(candidate));
        assert!(parsed.is_ok(), "{parsed:?}");
        briefing.status = "resolved".into();
        assert!(briefing_actions(&briefing, false).is_none());
    }
}
