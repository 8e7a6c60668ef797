//! Unit tests of the pure mapping, on Discord's official example payloads.

use serde_json::{json, Value};
use serenity::model::channel::Message;
use switchboard_api::{Author, CustomerAction, InboundKind, Outbound};

use super::*;

fn official(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Discord's docs print JSONC (`//` comments) in places; strip whole-line comments.
fn lenient_json(text: &str) -> Value {
    let cleaned: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect();
    serde_json::from_str(&cleaned.join("\n")).expect("valid JSON once comments are dropped")
}

fn example_message() -> Message {
    serde_json::from_str(&official("example_message.json")).expect("example message parses")
}

fn scope() -> Scope {
    Scope {
        bot_user_id: Some(1),
        support_channel: Some(290926798999357250),
        guild: None,
    }
}

#[test]
fn every_official_example_payload_parses() {
    for name in ["example_message.json", "example_crossposted_message.json"] {
        let message: Message = serde_json::from_str(&official(name)).expect(name);
        assert_eq!(message.author.name, "Mason", "{name}");
    }
    for name in [
        "example_gateway_event_payload.json",
        "example_gateway_invalid_session.json",
        "example_gateway_reconnect.json",
        "example_heartbeat.json",
        "example_hello.json",
        "example_identify.json",
        "example_resume.json",
    ] {
        let frame = lenient_json(&official(name));
        assert!(frame["op"].is_u64(), "{name} has an opcode");
    }
    // The faithful MESSAGE_CREATE: the envelope with the example message as `d`.
    let mut envelope = lenient_json(&official("example_gateway_event_payload.json"));
    envelope["t"] = json!("MESSAGE_CREATE");
    envelope["d"] = lenient_json(&official("example_message.json"));
    let message: Message = serde_json::from_value(envelope["d"].clone()).expect("d is a Message");
    assert_eq!(message.content, "Supa Hot");
}

#[test]
fn a_dm_becomes_a_text_inbound_with_a_verified_identity() {
    let message = example_message();
    assert_eq!(place(&message, &scope()), MessagePlace::Direct);
    let inbound = inbound_from_message(&message, dm_key(message.channel_id.get())).unwrap();
    assert_eq!(inbound.conversation_key, "dm:290926798999357250");
    assert_eq!(inbound.message_id, "dc:334385199974967042");
    assert_eq!(inbound.kind, InboundKind::Text);
    assert_eq!(inbound.text, "Supa Hot");
    assert_eq!(inbound.author.id, "53908099506183680");
    // The example's user predates global names: the username is shown.
    assert_eq!(inbound.author.display_name.as_deref(), Some("Mason"));
    assert!(inbound.author.verified);
}

#[test]
fn guild_messages_are_placed_by_channel() {
    let mut value: Value = serde_json::from_str(&official("example_message.json")).unwrap();
    value["guild_id"] = json!("41771983423143937");
    let message: Message = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(place(&message, &scope()), MessagePlace::SupportChannel);
    value["channel_id"] = json!("5");
    let elsewhere: Message = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(place(&elsewhere, &scope()), MessagePlace::OtherGuildChannel);
    let other_guild = Scope {
        guild: Some(7),
        ..scope()
    };
    assert!(matches!(
        place(&elsewhere, &other_guild),
        MessagePlace::Ignored(_)
    ));
    let no_support = Scope {
        support_channel: None,
        ..scope()
    };
    assert!(matches!(
        place(&message, &no_support),
        MessagePlace::Ignored(_)
    ));
}

#[test]
fn bots_the_bot_itself_and_system_messages_are_ignored() {
    let mut value: Value = serde_json::from_str(&official("example_message.json")).unwrap();
    value["author"]["bot"] = json!(true);
    let bot: Message = serde_json::from_value(value.clone()).unwrap();
    assert!(matches!(place(&bot, &scope()), MessagePlace::Ignored(_)));

    value["author"]["bot"] = json!(false);
    let itself = Scope {
        bot_user_id: Some(53908099506183680),
        ..scope()
    };
    let own: Message = serde_json::from_value(value.clone()).unwrap();
    assert!(matches!(place(&own, &itself), MessagePlace::Ignored(_)));

    value["type"] = json!(18); // THREAD_CREATED
    let notice: Message = serde_json::from_value(value).unwrap();
    assert!(matches!(place(&notice, &scope()), MessagePlace::Ignored(_)));
}

#[test]
fn attachments_and_stickers_are_stored_as_what_they_are() {
    let mut value: Value = serde_json::from_str(&official("example_message.json")).unwrap();
    value["content"] = json!("");
    value["attachments"] = json!([{"id": "1", "filename": "error.png", "size": 1024,
        "url": "https://cdn.discordapp.com/a/error.png", "proxy_url": "https://media/x",
        "content_type": "image/png"}]);
    value["sticker_items"] = json!([{"id": "2", "name": "wave", "format_type": 1}]);
    let message: Message = serde_json::from_value(value.clone()).unwrap();
    let inbound = inbound_from_message(&message, "dm:1".into()).unwrap();
    assert_eq!(
        inbound.text, "[sticker: wave]",
        "the file travels as a file"
    );
    assert_eq!(
        remote_attachments(&message),
        [RemoteAttachment {
            url: "https://cdn.discordapp.com/a/error.png".into(),
            name: "error.png".into(),
            content_type: "image/png".into(),
            size: 1024,
        }]
    );
    value["sticker_items"] = json!([]);
    let only_a_file: Message = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(
        inbound_from_message(&only_a_file, "dm:1".into()).map(|inbound| inbound.text),
        Some(String::new()),
        "a message of only a file is still stored"
    );

    value["attachments"] = json!([]);
    value["sticker_items"] = json!([]);
    let empty: Message = serde_json::from_value(value).unwrap();
    assert!(inbound_from_message(&empty, "dm:1".into()).is_none());
}

#[test]
fn keys_round_trip_to_channels() {
    assert_eq!(channel_of_key(&dm_key(42)), Some(42));
    assert_eq!(channel_of_key(&thread_key(43)), Some(43));
    assert_eq!(channel_of_key("chat:42"), None);
    assert_eq!(channel_of_key("dm:abc"), None);
    assert_eq!(channel_of_key("dm:0"), None);
}

fn outbound(author: Author, actions: Vec<CustomerAction>) -> Outbound {
    Outbound {
        id: "1-0".into(),
        conversation_id: "conv-1".into(),
        channel: crate::CHANNEL,
        conversation_key: "dm:42".into(),
        author,
        text: "Try turning it off and on again.".into(),
        actions,
        reply_context: Default::default(),
        files: Vec::new(),
        maybe_sent: false,
    }
}

#[test]
fn ai_answers_carry_the_human_button_and_agents_are_named() {
    let ai = render_outbound(&outbound(Author::Ai, vec![CustomerAction::TalkToHuman]));
    assert_eq!(
        ai["content"],
        "**AI assistant**: Try turning it off and on again."
    );
    assert_eq!(ai["components"][0]["type"], 1);
    assert_eq!(
        ai["components"][0]["components"][0]["custom_id"],
        HUMAN_BUTTON_ID
    );
    assert_eq!(ai["allowed_mentions"]["parse"], json!([]));

    let agent = render_outbound(&outbound(Author::Agent { name: "Sam".into() }, vec![]));
    assert_eq!(
        agent["content"],
        "**Sam** (support team): Try turning it off and on again."
    );
    assert!(agent.get("components").is_none());
}

#[test]
fn long_texts_fit_discords_limit() {
    let mut long = outbound(Author::Ai, vec![]);
    long.text = "x".repeat(5000);
    let body = render_outbound(&long);
    assert_eq!(
        body["content"].as_str().unwrap().chars().count(),
        MAX_CONTENT_CHARS
    );
}

#[test]
fn retry_after_prefers_the_body_then_the_header() {
    let body = br#"{"message":"You are being rate limited.","retry_after":64.57,"global":false}"#;
    assert_eq!(
        retry_after(body, Some("65")),
        Duration::from_secs_f64(64.57)
    );
    assert_eq!(retry_after(b"", Some("2")), Duration::from_secs(2));
    assert_eq!(retry_after(b"junk", None), Duration::from_secs(1));
    // Found by fuzzing: a number too big for a Duration panicked.
    assert_eq!(
        retry_after(br#"{"retry_after":1e300}"#, None),
        MAX_RETRY_AFTER
    );
    assert_eq!(retry_after(b"", Some("1e+300")), MAX_RETRY_AFTER);
}
