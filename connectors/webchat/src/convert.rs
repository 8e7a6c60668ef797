//! The widget's JSON frames and their mapping to and from the neutral message model.
//!
//! Pure functions only: parsing, the text rules (size, emptiness), and building
//! [`Inbound`] and server frames. The I/O around them lives in `socket.rs` and `http.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_api::{
    Author, ConversationView, CustomerAction, CustomerContext, Inbound, InboundKind, Outbound,
    StoredMessage,
};

use crate::identity::Visitor;

/// Longest page URL or title kept; a page can not make us store megabytes of context.
const MAX_PAGE_FIELD_BYTES: usize = 2048;
/// Most custom attributes kept per visitor.
const MAX_ATTRIBUTES: usize = 32;
/// Longest attribute name kept.
const MAX_ATTRIBUTE_KEY_BYTES: usize = 64;
/// Longest attribute value kept.
const MAX_ATTRIBUTE_VALUE_BYTES: usize = 512;
/// Longest client id accepted (the widget sends a UUID).
const MAX_CLIENT_ID_LEN: usize = 64;
/// What a "Talk to a human" press is stored as, so the transcript shows it.
pub const HUMAN_REQUEST_TEXT: &str = "Talk to a human";

/// The page the visitor is on, as the widget reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Page {
    /// `location.href`.
    #[serde(default)]
    pub url: Option<String>,
    /// `document.title`.
    #[serde(default)]
    pub title: Option<String>,
}

/// The first frame of every socket: who the visitor is and where they are.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hello {
    /// The widget's random session token.
    pub session: String,
    /// A user id the site claims, proven by `user_sig`.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The site's signed claims (`data-user-claims`, see `claims.rs`).
    #[serde(default)]
    pub user_claims: Option<String>,
    /// `hex(HMAC-SHA256(secret, user_claims))`, or of `user_id` in the id-only form.
    #[serde(default)]
    pub user_sig: Option<String>,
    /// The page the widget is on.
    #[serde(default)]
    pub page: Page,
    /// The site's unsigned `data-attributes` (plan, name, ...): shown to agents as unverified.
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The last message id the widget has shown; history starts after it.
    #[serde(default)]
    pub after: Option<String>,
}

/// A frame the widget sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Opens the session.
    Hello(Hello),
    /// A text message.
    Message {
        /// The widget's id for the message; resends reuse it, so they never duplicate.
        client_id: String,
        /// What the visitor typed.
        text: String,
    },
    /// The visitor pressed "Talk to a human".
    TalkToHuman {
        /// The widget's id for the press.
        client_id: String,
    },
}

/// The error codes the widget understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is over `max_message_bytes`.
    TooLarge,
    /// The message is empty or only whitespace.
    Empty,
    /// The frame is not one we understand.
    Invalid,
    /// The identity claim was not proven.
    Unauthorized,
    /// The visitor sends too fast.
    RateLimited,
    /// Storage is down; try again later.
    Unavailable,
    /// File storage is full: files are refused, messages still go through.
    StorageFull,
}

impl ErrorCode {
    /// The status the HTTP variant answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::TooLarge => 413,
            ErrorCode::Empty | ErrorCode::Invalid => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            // "Insufficient Storage": not the visitor's fault, and not over in a moment.
            ErrorCode::StorageFull => 507,
        }
    }
}

/// A refusal to send back to the visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What kind of refusal.
    pub code: ErrorCode,
    /// A sentence the widget may show.
    pub message: String,
    /// When trying again makes sense (rate limits): HTTP `Retry-After`, `retry_after_ms`.
    pub retry_after: Option<Duration>,
}

impl Refusal {
    /// A refusal with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A `rate_limited` refusal; the client may try again after `wait`.
    pub fn rate_limited(message: impl Into<String>, wait: Duration) -> Self {
        Refusal {
            retry_after: Some(wait),
            ..Refusal::new(ErrorCode::RateLimited, message)
        }
    }
}

/// A frame the gateway sends to the widget.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The answer to `hello`: the conversation so far.
    Welcome {
        /// The gateway's conversation id, once one exists.
        conversation_id: Option<String>,
        /// `bot`, `escalated`, `human` or `resolved`.
        status: String,
        /// Messages after the widget's `after`, oldest first.
        messages: Vec<StoredMessage>,
        /// Limits the widget enforces before sending.
        limits: Limits,
    },
    /// The message with this client id is stored.
    Ack {
        /// The widget's id.
        client_id: String,
        /// The stored message's id.
        message_id: String,
    },
    /// A message to show.
    Message {
        /// The message.
        message: StoredMessage,
        /// Buttons to offer under it.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        actions: Vec<CustomerAction>,
    },
    /// Something was refused.
    Error {
        /// What kind of refusal.
        code: ErrorCode,
        /// A sentence the widget may show.
        message: String,
        /// The refused message's client id, when the refusal is about one.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// How long to wait before trying again, for `rate_limited`.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// This gateway instance is shutting down: reconnect now (a load balancer sends the new
    /// socket to another instance) and ask for what was missed with `after`.
    Reconnect,
}

/// Limits announced in `welcome`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    /// Largest message in UTF-8 bytes.
    pub max_message_bytes: usize,
    /// Largest file upload in bytes.
    pub max_file_bytes: u64,
}

impl ServerFrame {
    /// The JSON text of the frame.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs can not fail; fall back to a generic error anyway.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"unavailable","message":"internal error"}"#.to_owned()
        })
    }

    /// An error frame from a refusal.
    pub fn error(refusal: Refusal, client_id: Option<String>) -> Self {
        ServerFrame::Error {
            code: refusal.code,
            message: refusal.message,
            client_id,
            retry_after_ms: refusal
                .retry_after
                .map(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// The welcome frame for a conversation view (or a conversation that does not exist yet).
    pub fn welcome(view: Option<ConversationView>, limits: Limits) -> Self {
        match view {
            Some(view) => ServerFrame::Welcome {
                conversation_id: Some(view.conversation_id),
                status: view.status,
                messages: view.messages,
                limits,
            },
            None => ServerFrame::Welcome {
                conversation_id: None,
                status: "bot".to_owned(),
                messages: Vec::new(),
                limits,
            },
        }
    }

    /// The frame pushed for an outbound message; its id is the stored message's id.
    pub fn from_outbound(outbound: &Outbound, at_ms: u64) -> Self {
        ServerFrame::Message {
            message: StoredMessage {
                id: outbound.id.clone(),
                author: outbound.author.clone(),
                text: outbound.text.clone(),
                at_ms,
                channel_message_id: None,
                files: outbound.files.clone(),
            },
            actions: outbound.actions.clone(),
        }
    }
}

/// Parses one text frame from the widget.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, Refusal> {
    serde_json::from_str(text).map_err(|error| {
        Refusal::new(
            ErrorCode::Invalid,
            format!("not a frame this gateway understands: {error}"),
        )
    })
}

/// Checks a client id: the widget sends a UUID; anything odd is refused before storage.
pub fn check_client_id(client_id: &str) -> Result<(), Refusal> {
    let ok = !client_id.is_empty()
        && client_id.len() <= MAX_CLIENT_ID_LEN
        && client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::Invalid,
            "client_id must be 1 to 64 characters of A-Z a-z 0-9 - _",
        ))
    }
}

/// Applies the text rules and returns the text to store (trimmed).
pub fn check_text(text: &str, max_bytes: usize) -> Result<&str, Refusal> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Refusal::new(ErrorCode::Empty, "the message is empty"));
    }
    if trimmed.len() > max_bytes {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "the message is {} bytes; the limit is {max_bytes}",
                trimmed.len()
            ),
        ));
    }
    Ok(trimmed)
}

/// What the widget told us about the page and the visitor, cleaned and bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitorContext {
    /// The page URL.
    pub page_url: Option<String>,
    /// The page title.
    pub page_title: Option<String>,
    /// Custom attributes as strings.
    pub attributes: BTreeMap<String, String>,
}

impl VisitorContext {
    /// Cleans the page and attributes a widget sent.
    pub fn from_widget(
        page: &Page,
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        VisitorContext {
            page_url: page.url.as_deref().and_then(bounded),
            page_title: page.title.as_deref().and_then(bounded),
            attributes: clean_attributes(attributes),
        }
    }
}

/// Keeps scalar attributes as strings; drops nested values, control characters and excess.
fn clean_attributes(
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter(|(key, _)| {
            !key.is_empty()
                && key.len() <= MAX_ATTRIBUTE_KEY_BYTES
                && !key.chars().any(char::is_control)
        })
        .filter_map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(text) => text.trim().to_owned(),
                serde_json::Value::Number(number) => number.to_string(),
                serde_json::Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            let value: String = value.chars().filter(|c| !c.is_control()).collect();
            (!value.is_empty() && value.len() <= MAX_ATTRIBUTE_VALUE_BYTES)
                .then(|| (key.clone(), value))
        })
        .take(MAX_ATTRIBUTES)
        .collect()
}

/// Trims and bounds a page field, cutting on a character boundary.
fn bounded(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut end = text.len().min(MAX_PAGE_FIELD_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].chars().filter(|c| !c.is_control()).collect())
}

/// Builds the neutral inbound message for an accepted frame.
///
/// Only what the site signed reaches routing and triage: the tier, and the email that links
/// channels and counts for VIP domains. The page's unsigned attributes travel along for the
/// agents, each marked unverified unless a signed claim of the same name replaced it.
pub fn to_inbound(
    visitor: &Visitor,
    context: &VisitorContext,
    client_id: &str,
    kind: InboundKind,
    text: &str,
) -> Inbound {
    let signed = |key: &str| visitor.vouched.get(key).cloned();
    let either = |key: &str| signed(key).or_else(|| context.attributes.get(key).cloned());
    let mut author = visitor.identity.clone();
    // A name only labels the customer for agents; an unsigned one is still better than an id.
    author.display_name = either("name");
    author.email = signed("email");
    author.email_verified = author.email.is_some();
    let mut attributes = context.attributes.clone();
    let unverified = attributes
        .keys()
        .filter(|key| !visitor.vouched.contains_key(*key))
        .cloned()
        .collect();
    attributes.extend(
        visitor
            .vouched
            .iter()
            .take(MAX_ATTRIBUTES)
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    Inbound {
        channel: crate::CHANNEL,
        conversation_key: visitor.conversation_key.clone(),
        message_id: format!("wc:{client_id}"),
        kind,
        author,
        text: text.to_owned(),
        context: CustomerContext {
            page_url: context.page_url.clone(),
            page_title: context.page_title.clone(),
            tier: signed("tier"),
            locale: either("locale"),
            attributes,
            unverified,
        },
        files: Vec::new(),
    }
}

/// The frame echoing a customer's own new message to their other open tabs.
pub fn customer_echo(message_id: &str, client_id: &str, text: &str, at_ms: u64) -> ServerFrame {
    ServerFrame::Message {
        message: StoredMessage {
            id: message_id.to_owned(),
            author: Author::Customer,
            text: text.to_owned(),
            at_ms,
            channel_message_id: Some(format!("wc:{client_id}")),
            files: Vec::new(),
        },
        actions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_api::Identity;

    fn visitor() -> Visitor {
        Visitor {
            conversation_key: "s:abcdefghijklmnopq".to_owned(),
            identity: Identity {
                id: "visitor-1".to_owned(),
                ..Identity::default()
            },
            vouched: BTreeMap::new(),
        }
    }

    #[test]
    fn hello_frame_parses_with_optional_fields() {
        let frame = parse_client_frame(
            r#"{"type":"hello","session":"abcdefghijklmnopq","page":{"url":"https://x/","title":"X"},
                "attributes":{"plan":"pro","seats":5,"beta":true,"nested":{"a":1}},"after":"17-0"}"#,
        )
        .unwrap();
        let ClientFrame::Hello(hello) = frame else {
            panic!("not hello: {frame:?}");
        };
        assert_eq!(hello.after.as_deref(), Some("17-0"));
        let context = VisitorContext::from_widget(&hello.page, &hello.attributes);
        assert_eq!(context.page_url.as_deref(), Some("https://x/"));
        assert_eq!(
            context.attributes,
            BTreeMap::from([
                ("beta".to_owned(), "true".to_owned()),
                ("plan".to_owned(), "pro".to_owned()),
                ("seats".to_owned(), "5".to_owned()),
            ])
        );
        let minimal = parse_client_frame(r#"{"type":"hello","session":"s"}"#).unwrap();
        assert!(matches!(minimal, ClientFrame::Hello(_)));
    }

    #[test]
    fn message_and_human_frames_parse() {
        assert_eq!(
            parse_client_frame(r#"{"type":"message","client_id":"c1","text":"hi"}"#).unwrap(),
            ClientFrame::Message {
                client_id: "c1".to_owned(),
                text: "hi".to_owned()
            }
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"talk_to_human","client_id":"c2"}"#).unwrap(),
            ClientFrame::TalkToHuman {
                client_id: "c2".to_owned()
            }
        );
    }

    #[test]
    fn unknown_or_broken_frames_are_invalid() {
        for text in [
            "not json",
            r#"{"type":"delete_everything"}"#,
            r#"{"type":"message","text":"no client id"}"#,
            r#"{"type":"message","client_id":"c","text":7}"#,
            "[]",
        ] {
            assert_eq!(
                parse_client_frame(text).unwrap_err().code,
                ErrorCode::Invalid,
                "{text}"
            );
        }
    }

    #[test]
    fn text_rules() {
        assert_eq!(check_text("  hello \n", 10).unwrap(), "hello");
        assert_eq!(check_text(" \n\t ", 10).unwrap_err().code, ErrorCode::Empty);
        assert_eq!(check_text("", 10).unwrap_err().code, ErrorCode::Empty);
        assert_eq!(
            check_text(&"a".repeat(11), 10).unwrap_err().code,
            ErrorCode::TooLarge
        );
        // The limit counts UTF-8 bytes, not characters: 4 x 3 bytes > 10.
        assert_eq!(
            check_text("€€€€", 10).unwrap_err().code,
            ErrorCode::TooLarge
        );
        assert!(check_text(&"a".repeat(10), 10).is_ok());
    }

    #[test]
    fn client_ids_are_checked() {
        assert!(check_client_id("6f1c2a9e-8f0b-4c47-9d55-0f3b9f6c2d11").is_ok());
        assert!(check_client_id("").is_err());
        assert!(check_client_id("a b").is_err());
        assert!(check_client_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn unsigned_attributes_travel_marked_unverified_and_never_route() {
        let attributes =
            serde_json::json!({"name":"Dana","email":"dana@example.com","tier":"vip","plan":"pro"});
        let context = VisitorContext::from_widget(
            &Page {
                url: Some("https://acme.example/billing".to_owned()),
                title: Some("Billing".to_owned()),
            },
            attributes.as_object().unwrap(),
        );
        let inbound = to_inbound(&visitor(), &context, "c1", InboundKind::Text, "hi");
        assert_eq!(inbound.channel, crate::CHANNEL);
        assert_eq!(inbound.conversation_key, "s:abcdefghijklmnopq");
        assert_eq!(inbound.message_id, "wc:c1");
        assert_eq!(inbound.author.display_name.as_deref(), Some("Dana"));
        assert_eq!(
            inbound.author.email, None,
            "an unsigned email links nothing"
        );
        assert_eq!(
            inbound.context.tier, None,
            "an unsigned tier routes nothing"
        );
        assert_eq!(inbound.context.page_title.as_deref(), Some("Billing"));
        assert_eq!(inbound.context.attributes.len(), 4);
        assert_eq!(inbound.context.unverified.len(), 4);
    }

    #[test]
    fn signed_claims_route_and_replace_unsigned_ones() {
        let mut visitor = visitor();
        visitor.identity.verified = true;
        visitor.vouched = BTreeMap::from([
            ("tier".to_owned(), "vip".to_owned()),
            ("email".to_owned(), "dana@example.com".to_owned()),
        ]);
        let attributes = serde_json::json!({"tier":"standard","plan":"pro"});
        let context =
            VisitorContext::from_widget(&Page::default(), attributes.as_object().unwrap());
        let inbound = to_inbound(&visitor, &context, "c1", InboundKind::Text, "hi");
        assert_eq!(inbound.context.tier.as_deref(), Some("vip"));
        assert_eq!(inbound.author.email.as_deref(), Some("dana@example.com"));
        assert_eq!(inbound.context.attributes["tier"], "vip");
        assert_eq!(
            inbound.context.unverified,
            std::collections::BTreeSet::from(["plan".to_owned()])
        );
    }

    #[test]
    fn page_fields_are_bounded_on_char_boundaries() {
        let long = "é".repeat(2000);
        let context = VisitorContext::from_widget(
            &Page {
                url: Some(long),
                title: Some("  ".to_owned()),
            },
            &serde_json::Map::new(),
        );
        assert!(context.page_url.unwrap().len() <= MAX_PAGE_FIELD_BYTES);
        assert_eq!(context.page_title, None);
    }

    #[test]
    fn outbound_becomes_message_frame_with_actions() {
        let outbound = Outbound {
            id: "1700-0".to_owned(),
            conversation_id: "c-1".to_owned(),
            channel: crate::CHANNEL,
            conversation_key: "s:abc".to_owned(),
            author: Author::Agent {
                name: "Sam".to_owned(),
            },
            text: "Hello".to_owned(),
            actions: vec![CustomerAction::TalkToHuman],
            reply_context: Default::default(),
            files: Vec::new(),
            maybe_sent: false,
        };
        let json: serde_json::Value =
            serde_json::from_str(&ServerFrame::from_outbound(&outbound, 5).to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "message",
                "message": {"id": "1700-0", "author": {"kind": "agent", "name": "Sam"}, "text": "Hello", "at_ms": 5},
                "actions": ["talk_to_human"]
            })
        );
        let error = ServerFrame::error(Refusal::new(ErrorCode::TooLarge, "big"), Some("c".into()));
        let json: serde_json::Value = serde_json::from_str(&error.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"error","code":"too_large","message":"big","client_id":"c"})
        );
    }
}
