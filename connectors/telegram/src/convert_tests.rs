//! Unit tests for [`crate::convert`]: every example payload Telegram publishes parses, and
//! each kind of message becomes what a support agent would expect to read.

use bytes::Bytes;
use serde_json::json;
use switchboard_api::{Author, CustomerAction, FileRef, Outbound};

use super::*;

fn payload(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
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
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
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
    assert_eq!(inbound.channel, crate::CHANNEL);
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
fn files_keep_their_caption_as_text_and_are_listed_for_fetching() {
    const LIMIT: u64 = 10 * 1024 * 1024;
    let audio = payload("07_message_with_audio.json");
    assert_eq!(stored(&audio).text, "");
    assert_eq!(
        remote_files(&audio, LIMIT),
        [RemoteFile {
            file_id: "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX".into(),
            name: "Test music file.mp3".into(),
            content_type: "audio/mpeg".into(),
            size: Some(3897500),
        }]
    );
    let voice = remote_files(&payload("08_voice_message.json"), LIMIT);
    assert_eq!(
        (
            voice[0].name.as_str(),
            voice[0].content_type.as_str(),
            voice[0].size
        ),
        ("voice.ogg", "audio/ogg", Some(23000))
    );
    let document = payload("09_message_with_a_document.json");
    assert_eq!(stored(&document).text, "");
    let document = remote_files(&document, LIMIT);
    assert_eq!(
        (document[0].name.as_str(), document[0].content_type.as_str()),
        ("Testfile.pdf", "application/pdf")
    );

    // Of a photo's sizes, the largest within the limit; when none fits, the smallest, so
    // the customer hears how far over the limit it is.
    let photo = private_message(json!({
        "photo": [
            {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 1500},
            {"file_id": "medium", "file_unique_id": "m", "width": 800, "height": 533, "file_size": 60000},
            {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 853, "file_size": 200000}
        ],
        "caption": "the error I get"
    }));
    assert_eq!(stored(&photo).text, "the error I get");
    let chosen = |limit: u64| remote_files(&photo, limit)[0].clone();
    assert_eq!(chosen(LIMIT).file_id, "large");
    assert_eq!(chosen(100_000).file_id, "medium");
    let none_fits = chosen(1000);
    assert_eq!(
        (none_fits.file_id.as_str(), none_fits.size),
        ("small", Some(1500))
    );
    assert_eq!(
        (none_fits.name.as_str(), none_fits.content_type.as_str()),
        ("photo.jpg", "image/jpeg")
    );

    // A file name from the customer cannot smuggle a path.
    let sneaky = private_message(json!({
        "document": {"file_id": "d", "file_name": "../../etc/passwd", "mime_type": "text/plain"}
    }));
    assert_eq!(remote_files(&sneaky, LIMIT)[0].name, "passwd");
    // Edits repeat the original's media, already fetched: nothing to fetch again.
    let edited = json!({"update_id": 9, "edited_message": photo["message"].clone()});
    assert!(remote_files(&edited, LIMIT).is_empty());
}

#[test]
fn other_media_become_placeholders() {
    let sticker = private_message(json!({"sticker": {"file_id": "s", "emoji": "😀"}}));
    assert_eq!(stored(&sticker).text, "[sticker 😀]");
    assert!(remote_files(&sticker, u64::MAX).is_empty());
    let venue = private_message(json!({
        "location": {"latitude": 52.5, "longitude": 13.4},
        "venue": {"title": "Shop", "address": "Main St 1",
                  "location": {"latitude": 52.5, "longitude": 13.4}}
    }));
    assert_eq!(stored(&venue).text, "[venue: Shop]");
    let gif = private_message(json!({"animation": {"file_id": "g"}, "document": {"file_id": "g"}}));
    let files = remote_files(&gif, u64::MAX);
    assert_eq!(
        files.len(),
        1,
        "the animation once, not again as its document"
    );
    assert_eq!(files[0].name, "animation.mp4");
}

#[test]
fn a_short_text_becomes_the_first_files_caption_with_the_agent_named() {
    let file = |name: &str, content_type: &str| FileRef {
        id: name.into(),
        name: name.into(),
        content_type: content_type.into(),
        size: 3,
        url: Some(format!("https://gw/files/c/{name}")),
        bytes: Some(Bytes::from_static(b"abc")),
    };
    let outbound = Outbound {
        id: "o1".into(),
        conversation_id: "c".into(),
        channel: crate::CHANNEL,
        conversation_key: "42".into(),
        author: Author::Agent { name: "Sam".into() },
        text: "Here you go".into(),
        actions: vec![CustomerAction::RateService],
        reply_context: Default::default(),
        files: vec![
            file("shot.png", "image/png"),
            file("invoice.pdf", "application/pdf"),
        ],
        maybe_sent: false,
    };
    let rendered = render_with_files(&outbound).expect("renders");
    assert!(rendered.parts.is_empty(), "{rendered:?}");
    let [shot, invoice] = &rendered.files[..] else {
        panic!("two files: {rendered:?}");
    };
    assert!(shot.as_photo && !invoice.as_photo);
    assert_eq!(shot.caption.text, "Sam (support team): Here you go");
    assert_eq!(
        shot.caption.bold_prefix_utf16,
        Some("Sam (support team):".len())
    );
    assert_eq!(invoice.caption.text, "");
    assert!(!shot.caption.rate_buttons && invoice.caption.rate_buttons);

    // Too long for a caption: the text goes first as a message, the files after it.
    let long = Outbound {
        text: "word ".repeat(300),
        ..outbound.clone()
    };
    let rendered = render_with_files(&long).expect("renders");
    assert_eq!(rendered.parts.len(), 1);
    assert!(rendered.parts[0]
        .text
        .starts_with("Sam (support team): word"));
    assert!(
        !rendered.parts[0].rate_buttons,
        "buttons go under the last message"
    );
    assert_eq!(rendered.files[0].caption.text, "");

    // A file whose bytes expired from the store goes as its link.
    let mut expired = outbound.clone();
    expired.files[1].bytes = None;
    let rendered = render_with_files(&expired).expect("renders");
    assert_eq!(rendered.files.len(), 1);
    assert!(
        rendered.files[0]
            .caption
            .text
            .ends_with("invoice.pdf (3 bytes): https://gw/files/c/invoice.pdf"),
        "{:?}",
        rendered.files[0].caption.text
    );
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
        channel: crate::CHANNEL,
        conversation_key: "42".into(),
        author,
        text: text.into(),
        actions,
        reply_context: Default::default(),
        files: Vec::new(),
        maybe_sent: false,
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
