//! Files both ways against the Bot API stand-in, through the real teloxide client: a
//! customer's photo, document, voice message or track reaches the gateway with its exact
//! bytes; an agent's files reach the chat as `sendPhoto`/`sendDocument` uploads; a file over
//! the limit is refused before it is downloaded, and the customer is told.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use switchboard_api::{Author, Connector, ConnectorError, FileRef, Gateway, Outbound};
use tokio::task::JoinHandle;

use crate::config::{Secret, TelegramConfig};
use crate::standin::TelegramStandIn;
use crate::TelegramConnector;
use switchboard_api::MemoryGateway;

const WAIT: Duration = Duration::from_secs(10);
const ADA: i64 = 4242;

fn config(standin: &TelegramStandIn) -> TelegramConfig {
    TelegramConfig {
        enabled: true,
        api_url: Some(standin.api_url()),
        poll_timeout_secs: 1,
        bot_token: Some(Secret::new(standin.token())),
        ..TelegramConfig::default()
    }
}

/// Bytes that are not valid UTF-8, so nothing can pass them along as text.
fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 0x80)
        .collect()
}

async fn running(
    max_file_bytes: u64,
) -> (
    TelegramStandIn,
    Arc<MemoryGateway>,
    JoinHandle<Result<(), ConnectorError>>,
) {
    let standin = TelegramStandIn::start().await;
    let connector = Arc::new(
        TelegramConnector::new(config(&standin))
            .expect("builds")
            .with_max_file_bytes(max_file_bytes),
    );
    let gateway = Arc::new(MemoryGateway::default());
    let run_gateway: Arc<dyn Gateway> = gateway.clone();
    let task = tokio::spawn(async move { connector.run(run_gateway).await });
    (standin, gateway, task)
}

#[tokio::test]
async fn a_customers_photo_and_document_reach_the_gateway_with_their_bytes() {
    let (standin, gateway, task) = running(1024 * 1024).await;
    let photo = binary(40_000, 1);
    let pdf = binary(7_000, 2);
    standin.push_photo(ADA, "Ada", &photo, "the error I get");
    standin.push_document(ADA, "Ada", "invoice.pdf", "application/pdf", &pdf);
    let stored = gateway.wait_for_accepted(2, WAIT).await;
    assert_eq!(stored.len(), 2);

    assert_eq!(stored[0].text, "the error I get", "the caption is the text");
    let [shot] = &stored[0].files[..] else {
        panic!("one file: {:?}", stored[0].files);
    };
    assert_eq!(
        (shot.name.as_str(), shot.content_type.as_str()),
        ("photo.jpg", "image/jpeg")
    );
    assert_eq!(
        shot.bytes.as_deref(),
        Some(&photo[..]),
        "the full size, not the thumbnail"
    );

    assert_eq!(stored[1].text, "");
    let [invoice] = &stored[1].files[..] else {
        panic!("one file: {:?}", stored[1].files);
    };
    assert_eq!(invoice.name, "invoice.pdf");
    assert_eq!(invoice.content_type, "application/pdf");
    assert_eq!(invoice.size, pdf.len() as u64);
    assert_eq!(invoice.bytes.as_deref(), Some(&pdf[..]));
    assert_eq!(standin.file_downloads(), 2);
    task.abort();
}

#[tokio::test]
async fn telegrams_own_voice_and_audio_examples_are_fetched() {
    let (standin, gateway, task) = running(1024 * 1024).await;
    let mut sent = Vec::new();
    for (example, field) in [
        ("08_voice_message.json", "voice"),
        ("07_message_with_audio.json", "audio"),
    ] {
        let path = format!("{}/tests/fixtures/{example}", env!("CARGO_MANIFEST_DIR"));
        let mut update: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect("json");
        // The example's file, with the example's other fields, hosted by the stand-in.
        let bytes = binary(3_000 + sent.len(), 3);
        let file_id = standin.host_file(&bytes);
        let media = &mut update["message"][field];
        media["file_id"] = json!(file_id);
        media["file_size"] = json!(bytes.len());
        standin.push_update(update);
        sent.push(bytes);
    }
    let stored = gateway.wait_for_accepted(2, WAIT).await;
    let received: Vec<(&str, &str, Option<&[u8]>)> = stored
        .iter()
        .map(|inbound| {
            let file = &inbound.files[0];
            (
                file.name.as_str(),
                file.content_type.as_str(),
                file.bytes.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        received,
        [
            ("voice.ogg", "audio/ogg", Some(&sent[0][..])),
            ("Test music file.mp3", "audio/mpeg", Some(&sent[1][..])),
        ]
    );
    task.abort();
}

#[tokio::test]
async fn an_oversized_file_is_refused_before_download_and_the_customer_told() {
    let (standin, gateway, task) = running(4 * 1024).await;
    standin.push_document(
        ADA,
        "Ada",
        "backup.zip",
        "application/zip",
        &binary(6 * 1024, 4),
    );
    let stored = gateway.wait_for_accepted(1, WAIT).await;
    let file = &stored[0].files[0];
    assert_eq!(
        (file.name.as_str(), file.size, file.bytes.is_none()),
        ("backup.zip", 6 * 1024, true),
        "kept without bytes, so the gateway names it"
    );
    assert_eq!(standin.file_downloads(), 0, "never downloaded");
    assert!(
        !standin.calls().iter().any(|call| call == "GetFile"),
        "the announced size was enough: {:?}",
        standin.calls()
    );
    let notices = standin.wait_for_sent(1, WAIT).await;
    assert_eq!(
        notices[0].text,
        "Not received: backup.zip is 6 KB; the limit is 4 KB."
    );

    // A file that announces no size is cut off once it passes the limit.
    let silent = standin.host_file_announcing(&binary(9 * 1024, 5), None);
    let document = standin.media_json(&silent, json!({"file_name": "dump.bin"}));
    standin.push_message(
        ADA,
        "Ada",
        json!({ "document": document, "caption": "see this" }),
    );
    let stored = gateway.wait_for_accepted(2, WAIT).await;
    assert_eq!(stored[1].text, "see this");
    let file = &stored[1].files[0];
    assert!(file.bytes.is_none() && file.size > 4 * 1024, "{file:?}");
    task.abort();
}

fn file(name: &str, content_type: &str, bytes: &[u8]) -> FileRef {
    FileRef {
        id: format!("f-{name}"),
        name: name.into(),
        content_type: content_type.into(),
        size: bytes.len() as u64,
        url: Some(format!("https://support.example.com/files/c/{name}")),
        bytes: Some(Bytes::copy_from_slice(bytes)),
    }
}

#[tokio::test]
async fn an_agents_files_are_uploaded_with_their_names_and_bytes() {
    let standin = TelegramStandIn::start().await;
    let connector = TelegramConnector::new(config(&standin)).expect("builds");
    assert!(
        connector.capabilities().files,
        "the outbox hands it the bytes"
    );
    let screenshot = binary(2_000, 6);
    let invoice = binary(5_000, 7);
    let receipt = connector
        .send(&Outbound {
            id: "out-1".into(),
            conversation_id: "conv-1".into(),
            channel: crate::CHANNEL,
            conversation_key: ADA.to_string(),
            author: Author::Agent { name: "Sam".into() },
            text: "Here is what I see".into(),
            actions: Vec::new(),
            reply_context: Default::default(),
            files: vec![
                file("screenshot.png", "image/png", &screenshot),
                file("invoice.pdf", "application/pdf", &invoice),
            ],
            maybe_sent: false,
        })
        .await
        .expect("sent");
    let sent = standin.sent_files();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(
        (sent[0].method.as_str(), sent[0].file_name.as_str()),
        ("sendPhoto", "screenshot.png")
    );
    assert_eq!(sent[0].bytes, screenshot);
    assert_eq!(sent[0].chat_id, ADA);
    assert_eq!(sent[0].caption, "Sam (support team): Here is what I see");
    assert_eq!(sent[0].caption_entities[0]["type"], "bold");
    assert_eq!(
        (sent[1].method.as_str(), sent[1].file_name.as_str()),
        ("sendDocument", "invoice.pdf")
    );
    assert_eq!(sent[1].bytes, invoice);
    assert!(
        standin.sent().is_empty(),
        "the text travelled as the caption"
    );
    assert_eq!(
        receipt.platform_message_id,
        Some(sent[1].message_id.to_string())
    );
}
