//! Files both ways against the Discord stand-in, through the real clients: a customer's
//! attachment reaches the gateway with its exact bytes; an agent's files go out as
//! `files[n]` parts of the message create; a file over the limit is refused before download
//! and the customer is told.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use switchboard_api::{Author, Connector, FileRef, Gateway, Outbound};

use crate::config::Secret;
use crate::standin::DiscordStandIn;
use crate::{DiscordConfig, DiscordConnector};
use switchboard_api::MemoryGateway;

const WAIT: Duration = Duration::from_secs(10);

fn config(standin: &DiscordStandIn) -> DiscordConfig {
    DiscordConfig {
        enabled: true,
        api_url: Some(standin.api_url()),
        bot_token: Some(Secret::new("standin-token")),
        ..DiscordConfig::default()
    }
}

/// Bytes that are not valid UTF-8, so nothing can pass them along as text.
fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) | 0x80)
        .collect()
}

async fn running(
    max_file_bytes: u64,
) -> (
    DiscordStandIn,
    Arc<MemoryGateway>,
    tokio::task::JoinHandle<()>,
) {
    let standin = DiscordStandIn::start().await;
    let connector =
        Arc::new(DiscordConnector::new(config(&standin)).with_max_file_bytes(max_file_bytes));
    let gateway = Arc::new(MemoryGateway::default());
    let run_gateway = Arc::clone(&gateway) as Arc<dyn Gateway>;
    let run = tokio::spawn(async move {
        let _ = connector.run(run_gateway).await;
    });
    assert!(standin.wait_for_ready(WAIT).await, "the client identified");
    (standin, gateway, run)
}

#[tokio::test]
async fn a_customers_attachments_reach_the_gateway_with_their_bytes() {
    let (standin, gateway, run) = running(1024 * 1024).await;
    let photo = binary(30_000, 1);
    let log = binary(3_000, 2);
    let mut message = standin.message(None, "Ada", "it crashes like this");
    message["attachments"] = json!([
        standin.host_attachment("crash.png", "image/png", &photo, photo.len()),
        standin.host_attachment("app.log", "text/plain; charset=utf-8", &log, log.len()),
    ]);
    standin.push_message(message);
    let accepted = gateway.wait_for_accepted(1, WAIT).await;
    let inbound = &accepted[0];
    assert_eq!(inbound.text, "it crashes like this");
    let files: Vec<(&str, &str, Option<&[u8]>)> = inbound
        .files
        .iter()
        .map(|file| {
            (
                file.name.as_str(),
                file.content_type.as_str(),
                file.bytes.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("crash.png", "image/png", Some(&photo[..])),
            ("app.log", "text/plain", Some(&log[..])),
        ]
    );
    run.abort();
}

#[tokio::test]
async fn an_oversized_attachment_is_refused_before_download_and_the_customer_told() {
    let (standin, gateway, run) = running(4 * 1024).await;
    let channel = standin.dm_channel("Ada");
    let mut message = standin.message(None, "Ada", "");
    let big = binary(6 * 1024, 3);
    message["attachments"] =
        json!([standin.host_attachment("backup.zip", "application/zip", &big, big.len())]);
    standin.push_message(message);
    let accepted = gateway.wait_for_accepted(1, WAIT).await;
    let file = &accepted[0].files[0];
    assert_eq!(
        (file.name.as_str(), file.size, file.bytes.is_none()),
        ("backup.zip", 6 * 1024, true)
    );
    assert_eq!(standin.attachment_downloads(), 0, "never downloaded");
    let sent = standin.wait_for_sent(1, WAIT).await;
    assert_eq!(sent[0].channel_id, channel);
    assert_eq!(
        sent[0].content,
        "Not received: backup.zip is 6 KB; the limit is 4 KB."
    );

    // An attachment that understates its size is cut off once it passes the limit.
    let mut message = standin.message(None, "Ada", "and this");
    message["attachments"] = json!([standin.host_attachment(
        "dump.bin",
        "application/octet-stream",
        &binary(9 * 1024, 4),
        100
    )]);
    standin.push_message(message);
    let accepted = gateway.wait_for_accepted(2, WAIT).await;
    let file = &accepted[1].files[0];
    assert!(file.bytes.is_none() && file.size > 4 * 1024, "{file:?}");
    run.abort();
}

#[tokio::test]
async fn an_agents_files_are_uploaded_as_parts_of_the_message() {
    let standin = DiscordStandIn::start().await;
    let connector = DiscordConnector::new(config(&standin));
    assert!(
        connector.capabilities().files,
        "the outbox hands it the bytes"
    );
    let channel = standin.dm_channel("Ada");
    let invoice = binary(5_000, 5);
    let screenshot = binary(1_500, 6);
    let file = |name: &str, content_type: &str, bytes: &[u8]| FileRef {
        id: format!("f-{name}"),
        name: name.into(),
        content_type: content_type.into(),
        size: bytes.len() as u64,
        url: Some(format!("https://support.example.com/files/c/{name}")),
        bytes: Some(Bytes::copy_from_slice(bytes)),
    };
    let receipt = connector
        .send(&Outbound {
            id: "out-1".into(),
            conversation_id: "conv-1".into(),
            channel: crate::CHANNEL,
            conversation_key: format!("dm:{channel}"),
            author: Author::Agent { name: "Sam".into() },
            text: "Here you go".into(),
            actions: Vec::new(),
            reply_context: Default::default(),
            files: vec![
                file("invoice.pdf", "application/pdf", &invoice),
                file("screen.png", "image/png", &screenshot),
            ],
            maybe_sent: false,
        })
        .await
        .expect("sent");
    let sent = standin.sent();
    assert_eq!(sent.len(), 1, "one message with both files");
    assert_eq!(sent[0].content, "**Sam** (support team): Here you go");
    let uploaded = standin.uploaded_files();
    let received: Vec<(&str, Option<&str>, &[u8])> = uploaded
        .iter()
        .map(|file| {
            (
                file.filename.as_str(),
                file.announced_filename.as_deref(),
                &file.bytes[..],
            )
        })
        .collect();
    assert_eq!(
        received,
        [
            ("invoice.pdf", Some("invoice.pdf"), &invoice[..]),
            ("screen.png", Some("screen.png"), &screenshot[..]),
        ]
    );
    assert!(uploaded
        .iter()
        .all(|file| file.message_id == sent[0].id && file.channel_id == channel));
    assert_eq!(receipt.platform_message_id, Some(sent[0].id.to_string()));
}
