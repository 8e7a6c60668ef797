//! Unit tests for [`crate::convert`]: every example payload Telegram publishes parses, and
//! each kind of message becomes what a support agent would expect to read.

use serde_json::json;

use super::*;

fn payload(name: &str) -> Value {
    let path = format!(
        "{}/../../../shared/data/platform_payloads/telegram/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn stored(raw: &Value) -> Inbound {
    match parse_update(raw).expect("parses").action {
        UpdateAction::Store(inbound) => inbound,
        other => panic!("not stored: {other:?}"),
    }
}

fn private_message(fields: Value) -> Value {
    let mut message = json!({
        "message_id": 7, "date": 1441645532,
        "chat": {"id": 42, "type": "private", "first_name": "Ada"},
        "from": {"id": 42, "is_bot": false, "first_name": "Ada", "last_name": "Lovelace",
                 "username": "ada", "language_code": "en"},
    });
    if let (Some(message), Some(fields)) = (message.as_object_mut(), fields.as_object()) {
        message.extend(fields.clone());
    }
    json!({"update_id": 500, "message": message})
}

#[test]
fn every_official_example_parses() {
    let dir = format!(
        "{}/../../../shared/data/platform_payloads/telegram",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("payload dir")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 13, "{names:?}");
    for name in names {
        let parsed = parse_update(&payload(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.update_id, 10000, "{name}");
    }
}

#[test]
fn start_greets_even_without_a_chat_type() {
    // 00: no chat.type, no is_bot: the positive chat id says it is a private chat.
    for name in [
        "00_message_with_text_using_curl.json",
        "01_message_with_text.json",
    ] {
        let parsed = parse_update(&payload(name)).expect("parses");
        assert_eq!(
            parsed.action,
            UpdateAction::Greet { chat_id: 1111111 },
            "{name}"
        );
    }
}

#[test]
fn a_text_message_becomes_a_verified_inbound() {
    let inbound = stored(&private_message(json!({"text": "  Where is my order?  "})));
    assert_eq!(inbound.channel, ChannelKind::Telegram);
    assert_eq!(inbound.conversation_key, "42");
    assert_eq!(inbound.message_id, "tg:500");
    assert_eq!(inbound.kind, InboundKind::Text);
    assert_eq!(inbound.text, "Where is my order?");
    assert_eq!(inbound.author.id, "42");
    assert!(inbound.author.verified);
    assert_eq!(inbound.author.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(inbound.context.locale.as_deref(), Some("en"));
    assert_eq!(inbound.context.attributes["telegram.username"], "ada");
    assert_eq!(inbound.context.attributes["telegram.message_id"], "7");
}

#[test]
fn forwarded_messages_say_where_they_came_from() {
    let mut user = payload("02_forwarded_message.json");
    user["message"]["text"] = json!("my invoice");
    assert_eq!(
        stored(&user).text,
        "[forwarded from Forward Firstname Forward Lastname] my invoice"
    );
    // 03: a channel Chat where the reference says User.
    let mut channel = payload("03_forwarded_channel_message.json");
    channel["message"]["text"] = json!("this post");
    let inbound = stored(&channel);
    assert_eq!(inbound.text, "[forwarded from Test channel] this post");
    let modern = private_message(json!({
        "text": "hi",
        "forward_origin": {"type": "hidden_user", "sender_user_name": "Bob", "date": 1}
    }));
    assert_eq!(stored(&modern).text, "[forwarded from Bob] hi");
}

#[test]
fn a_reply_keeps_the_message_it_answers() {
    let mut raw = payload("04_message_with_a_reply.json");
    raw["message"]["text"] = json!("yes, that one");
    let inbound = stored(&raw);
    assert_eq!(
        inbound.context.attributes["telegram.reply_to_message_id"],
        "1334"
    );
}

#[test]
fn an_edit_is_stored_as_a_correction() {
    let inbound = stored(&payload("05_edited_message.json"));
    assert_eq!(inbound.text, "(edited) Edited text");
    assert_eq!(inbound.message_id, "tg:10000");
    assert_eq!(inbound.context.attributes["telegram.edit_of"], "1365");
}

#[test]
fn entities_are_dropped_and_the_text_kept() {
    assert_eq!(
        stored(&payload("06_message_with_entities.json")).text,
        "Bold and italics"
    );
}

#[test]
fn media_become_placeholders() {
    assert_eq!(
        stored(&payload("07_message_with_audio.json")).text,
        "[audio: Test music file]"
    );
    assert_eq!(
        stored(&payload("08_voice_message.json")).text,
        "[voice message 0:05]"
    );
    assert_eq!(
        stored(&payload("09_message_with_a_document.json")).text,
        "[document: Testfile.pdf]"
    );
    let photo = private_message(json!({
        "photo": [{"file_id": "a", "file_unique_id": "b", "width": 90, "height": 90}],
        "caption": "the error I get"
    }));
    assert_eq!(stored(&photo).text, "the error I get [photo]");
    let sticker = private_message(json!({"sticker": {"file_id": "s", "emoji": "😀"}}));
    assert_eq!(stored(&sticker).text, "[sticker 😀]");
    let gif = private_message(json!({"animation": {"file_id": "g"}, "document": {"file_id": "g"}}));
    assert_eq!(stored(&gif).text, "[GIF]");
    let venue = private_message(json!({
        "location": {"latitude": 52.5, "longitude": 13.4},
        "venue": {"title": "Shop", "address": "Main St 1",
                  "location": {"latitude": 52.5, "longitude": 13.4}}
    }));
    assert_eq!(stored(&venue).text, "[venue: Shop]");
}

#[test]
fn unreadable_messages_are_declined_and_service_messages_ignored() {
    let game = private_message(json!({"game": {"title": "Snake"}}));
    assert_eq!(
        parse_update(&game).expect("parses").action,
        UpdateAction::Decline {
            chat_id: 42,
            what: "game".to_string()
        }
    );
    let pinned = private_message(json!({"pinned_message": {"message_id": 1}}));
    assert!(matches!(
        parse_update(&pinned).expect("parses").action,
        UpdateAction::Ignore { .. }
    ));
}

#[test]
fn group_messages_are_ignored() {
    let raw = json!({"update_id": 9, "message": {
        "message_id": 1, "date": 1, "text": "hello bot",
        "chat": {"id": -1001234, "type": "supergroup", "title": "Fans"},
        "from": {"id": 42, "is_bot": false, "first_name": "Ada"}
    }});
    match parse_update(&raw).expect("parses").action {
        UpdateAction::Ignore { reason } => assert!(reason.contains("private"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn inline_queries_are_ignored() {
    for (name, kind) in [
        ("10_inline_query.json", "inline_query"),
        ("11_chosen_inline_query.json", "chosen_inline_result"),
    ] {
        match parse_update(&payload(name)).expect("parses").action {
            UpdateAction::Ignore { reason } => assert!(reason.contains(kind), "{reason}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_foreign_button_is_answered_but_not_stored() {
    // 12: no chat_instance, no message, data that is not ours.
    assert_eq!(
        parse_update(&payload("12_callback_query.json"))
            .expect("parses")
            .action,
        UpdateAction::Button {
            callback_query_id: "4382bfdwdsb323b2d9".to_string(),
            inbound: None
        }
    );
}

#[test]
fn our_button_becomes_a_human_request() {
    let mut raw = payload("12_callback_query.json");
    raw["callback_query"]["data"] = json!(HUMAN_BUTTON_DATA);
    raw["callback_query"]["message"] = json!({
        "message_id": 3, "date": 1, "chat": {"id": 1111111, "type": "private"}, "text": "answer"
    });
    match parse_update(&raw).expect("parses").action {
        UpdateAction::Button {
            inbound: Some(inbound),
            ..
        } => {
            assert_eq!(inbound.kind, InboundKind::HumanRequest);
            assert_eq!(inbound.conversation_key, "1111111");
            assert_eq!(inbound.message_id, "tg:10000");
            assert_eq!(inbound.text, HUMAN_BUTTON_LABEL);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for raw in [
        json!(null),
        json!([]),
        json!({"message": {}}),
        json!({"update_id": "x"}),
    ] {
        assert_eq!(parse_update(&raw), Err(ParseError::NoUpdateId), "{raw}");
    }
    let odd = json!({"update_id": 1, "message": {"chat": "nope", "text": 5}});
    assert!(matches!(
        parse_update(&odd).expect("parses").action,
        UpdateAction::Ignore { .. }
    ));
}

fn outbound(author: Author, text: &str, actions: Vec<CustomerAction>) -> Outbound {
    Outbound {
        id: "o1".into(),
        conversation_id: "c1".into(),
        channel: ChannelKind::Telegram,
        conversation_key: "42".into(),
        author,
        text: text.into(),
        actions,
        reply_context: Default::default(),
    }
}

#[test]
fn agents_are_named_and_the_ai_offers_a_human() {
    let agent = render(&outbound(
        Author::Agent { name: "Sam".into() },
        "I'm on it.",
        vec![],
    ))
    .expect("renders");
    assert_eq!(agent.len(), 1);
    assert_eq!(agent[0].text, "Sam (support team): I'm on it.");
    assert_eq!(
        agent[0].bold_prefix_utf16,
        Some("Sam (support team):".len())
    );
    assert!(!agent[0].human_button);

    let ai = render(&outbound(
        Author::Ai,
        "Reset it in Settings.",
        vec![CustomerAction::TalkToHuman],
    ))
    .expect("renders");
    assert_eq!(ai[0].text, "AI assistant: Reset it in Settings.");
    assert!(ai[0].human_button);

    let system = render(&outbound(Author::System, "A person is joining.", vec![])).expect("ok");
    assert_eq!(system[0].text, "A person is joining.");
    assert_eq!(system[0].bold_prefix_utf16, None);
}

#[test]
fn long_answers_are_split_with_the_button_last() {
    let long = "word ".repeat(2000);
    let parts = render(&outbound(
        Author::Ai,
        &long,
        vec![CustomerAction::TalkToHuman],
    ))
    .expect("renders");
    assert_eq!(parts.len(), 3);
    assert!(parts
        .iter()
        .all(|part| part.text.chars().count() <= MAX_MESSAGE_CHARS));
    assert_eq!(
        parts
            .iter()
            .map(|part| part.human_button)
            .collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(parts[1].bold_prefix_utf16.is_none());
}

#[test]
fn bad_outbounds_are_refused() {
    assert_eq!(
        render(&outbound(Author::Ai, "  ", vec![])),
        Err(RenderError::Empty)
    );
    let mut bad = outbound(Author::Ai, "hi", vec![]);
    bad.conversation_key = "room-1".into();
    assert!(matches!(chat_id(&bad), Err(RenderError::BadChatId(_))));
}
