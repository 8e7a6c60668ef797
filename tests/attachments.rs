//! Files both ways, end to end: a web chat visitor's upload lands in the Slack stand-in's
//! thread through Slack's external upload flow; an agent's file in the thread reaches the
//! visitor as a signed link the gateway serves; oversized files are refused with their size
//! and the limit, and nothing else is lost.

use std::net::SocketAddr;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use redis::Commands;
use serde_json::{json, Value};
use sha2::Sha256;
use switchboard::config::Config;
use switchboard_slack::standin::SlackStandIn;

use crate::harness::{config_dir, eventually, http, start_gateway, test_config, RedisServer};
use crate::slack_desk::{agent_reply, briefing, desk_config, AGENT};
use crate::webchat::Widget;

const SUPPORT: &str = "C0SUPPORT";

/// A PNG header and some bytes that are not valid UTF-8, so nothing can pass them as text.
fn image_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    bytes.extend((0..len.saturating_sub(8)).map(|i| (i * 7 % 256) as u8));
    bytes
}

/// One raw HTTP/1.1 request with a binary body; returns status, headers and body bytes.
async fn raw_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let headers = [("Content-Type", content_type)];
    raw_http_over(stream, addr, method, path, &headers, body).await
}

/// [`raw_http`] over a connection the caller opened (from a chosen source address, say),
/// with the given headers.
pub(crate) async fn raw_http_over(
    mut stream: tokio::net::TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.expect("send head");
    // The server may answer (413) before reading the body and close; that is fine.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete HTTP response");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, head, response[split + 4..].to_vec())
}

async fn upload(
    addr: SocketAddr,
    session: &str,
    client_id: &str,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let path = format!("/webchat/files?session={session}&client_id={client_id}&name={name}");
    let (status, _, body) = raw_http(addr, "POST", &path, content_type, bytes).await;
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, value)
}

async fn escalated_visitor(addr: SocketAddr, session: &str) -> Widget {
    let (mut widget, _) = Widget::connect(addr, session, None).await;
    widget
        .send(json!({"type": "talk_to_human", "client_id": "h1"}))
        .await;
    widget.message_from("system").await;
    widget
}

/// An agent's thread message sharing `files`, shaped like Slack's `file_share` message event.
fn agent_file_share(thread_ts: &str, ts: &str, text: &str, files: Vec<Value>) -> Value {
    let mut event = agent_reply(thread_ts, ts, text);
    event["subtype"] = json!("file_share");
    event["files"] = json!(files);
    event["upload"] = json!(false);
    event
}

fn files_config(max_bytes: u64) -> String {
    format!("[files]\nmax_bytes = {max_bytes}\nretention_days = 7\n")
}

#[tokio::test]
async fn a_visitors_image_is_uploaded_into_the_thread_and_an_agents_file_reaches_the_visitor() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let extra = format!(
        "{}{}",
        desk_config(&standin, "socket"),
        files_config(1024 * 1024)
    );
    let gateway = start_gateway(test_config(&redis, &extra)).await;
    let addr = gateway.local_addr;
    let session = "files-visitor-000000001";
    let mut widget = escalated_visitor(addr, session).await;
    let parent = briefing(&standin).await;

    // The visitor attaches a screenshot.
    let image = image_bytes(40_000);
    let (status, accepted) =
        upload(addr, session, "f1", "screenshot.png", "image/png", &image).await;
    assert_eq!(status, 200, "{accepted}");
    let shared = standin.wait_for_files(1, Duration::from_secs(15)).await;
    assert_eq!(shared.len(), 1, "one file shared into Slack");
    let file = &shared[0];
    assert_eq!(file.name, "screenshot.png");
    assert_eq!(file.content_type, "image/png");
    assert_eq!(file.bytes, image, "Slack got the visitor's exact bytes");
    assert_eq!(file.channel, SUPPORT);
    assert_eq!(file.thread_ts.as_deref(), Some(parent.ts.as_str()));
    assert!(
        file.initial_comment
            .as_deref()
            .unwrap_or("")
            .contains("Dana"),
        "the thread says who sent it: {file:?}"
    );
    // A retried upload (same client id) is stored once and shared once.
    let (status, again) = upload(addr, session, "f1", "screenshot.png", "image/png", &image).await;
    assert_eq!(status, 200);
    assert_eq!(again["message_id"], accepted["message_id"]);

    // An agent shares an invoice in the thread with a line of text.
    let invoice = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".repeat(50);
    let hosted = standin.host_file("invoice.pdf", "application/pdf", &invoice);
    standin.send_event(agent_file_share(
        &parent.ts,
        "1800000000.000500",
        "Here is your invoice.",
        vec![hosted],
    ));
    let message = widget.message_from("agent").await;
    assert_eq!(message["author"]["name"], "Sam Rivera");
    assert_eq!(message["text"], "Here is your invoice.");
    let files = message["files"]
        .as_array()
        .expect("the message carries its file");
    assert_eq!(files.len(), 1, "{message}");
    assert_eq!(files[0]["name"], "invoice.pdf");
    assert_eq!(files[0]["size"], invoice.len());
    let url = files[0]["url"].as_str().expect("a signed link").to_owned();
    assert!(
        url.starts_with("/files/"),
        "relative without public_base_url: {url}"
    );
    assert_eq!(
        standin.file_downloads(),
        1,
        "downloaded with the bot token once"
    );

    // The link returns the same bytes, as a download (not rendered on our origin).
    let (status, head, body) = raw_http(addr, "GET", &url, "text/plain", b"").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, invoice);
    let head = head.to_lowercase();
    assert!(head.contains("content-disposition: attachment"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");

    // A forged signature, a link for another file, and an expired link are refused.
    let forged = format!("{}0", &url[..url.len() - 1]);
    let forged = if forged == url {
        format!("{}1", &url[..url.len() - 1])
    } else {
        forged
    };
    assert_eq!(http(addr, "GET", &forged, None).await.0, 403);
    let other_file = url.replacen("/files/", "/files/0", 1);
    assert_eq!(http(addr, "GET", &other_file, None).await.0, 403);
    let unsigned = url.split('?').next().unwrap().to_owned();
    assert_eq!(http(addr, "GET", &unsigned, None).await.0, 403);
    let mut client = redis.client();
    let secret: String = client.get("sb:files:link_secret").unwrap();
    let path = unsigned.trim_start_matches("/files/").to_owned();
    let expired = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
        - 60;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{path}/{expired}").as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    let (status, body) = http(
        addr,
        "GET",
        &format!("{unsigned}?exp={expired}&sig={sig}"),
        None,
    )
    .await;
    assert_eq!(status, 403, "a correctly signed but expired link: {body}");

    // Reconnecting, the visitor's history still shows both files with fresh links.
    drop(widget);
    let (_, welcome) = Widget::connect(addr, session, None).await;
    let with_files: Vec<&Value> = welcome["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["files"].as_array().is_some_and(|f| !f.is_empty()))
        .collect();
    assert_eq!(with_files.len(), 2, "{welcome}");
    assert!(with_files.iter().all(|m| m["files"][0]["url"].is_string()));
}

#[tokio::test]
async fn oversized_files_are_refused_with_their_size_and_nothing_else_is_lost() {
    let redis = RedisServer::start();
    let standin = SlackStandIn::start().await;
    standin.set_user(AGENT, "Sam Rivera");
    let extra = format!(
        "{}{}",
        desk_config(&standin, "socket"),
        files_config(10 * 1024)
    );
    let gateway = start_gateway(test_config(&redis, &extra)).await;
    let addr = gateway.local_addr;
    let session = "files-visitor-000000002";
    let mut widget = escalated_visitor(addr, session).await;
    let parent = briefing(&standin).await;

    // The visitor's 14 KB photo is over the 10 KB limit: a clear 413, nothing stored.
    let (status, refusal) = upload(
        addr,
        session,
        "big1",
        "photo.png",
        "image/png",
        &image_bytes(14 * 1024),
    )
    .await;
    assert_eq!(status, 413, "{refusal}");
    assert_eq!(refusal["code"], "too_large");
    assert_eq!(
        refusal["message"],
        "photo.png is 14 KB; the limit is 10 KB."
    );
    let mut client = redis.client();
    let file_keys: Vec<String> = client.keys("sb:{*}:c:*:f:*").unwrap();
    assert!(file_keys.is_empty(), "nothing stored: {file_keys:?}");

    // The conversation goes on: the next message reaches the thread.
    widget
        .send(
            json!({"type": "message", "client_id": "m2", "text": "It's a screenshot of the error"}),
        )
        .await;
    widget.next_of("ack").await;
    eventually(
        Duration::from_secs(15),
        "the message in the thread",
        || async {
            standin.posts().into_iter().find(|post| {
                post.thread_ts.as_deref() == Some(parent.ts.as_str())
                    && post.text.contains("screenshot of the error")
            })
        },
    )
    .await;

    // An agent's oversized file: the thread is told, the text still reaches the visitor.
    let hosted = standin.host_file("huge.zip", "application/zip", &vec![7u8; 20 * 1024]);
    standin.send_event(agent_file_share(
        &parent.ts,
        "1800000000.000900",
        "Try the attached fix.",
        vec![hosted],
    ));
    let message = widget.message_from("agent").await;
    assert_eq!(message["text"], "Try the attached fix.");
    assert!(message.get("files").is_none(), "no file sent: {message}");
    let notice = eventually(
        Duration::from_secs(15),
        "the refusal in the thread",
        || async {
            standin.posts().into_iter().find(|post| {
                post.thread_ts.as_deref() == Some(parent.ts.as_str())
                    && post.text.contains("huge.zip")
            })
        },
    )
    .await;
    assert!(
        notice
            .text
            .contains("huge.zip is 20 KB; the limit is 10 KB."),
        "{}",
        notice.text
    );
    assert!(standin.files().is_empty(), "nothing was uploaded to Slack");
}

#[test]
fn files_config_is_validated_with_key_paths() {
    let problems = Config::parse(
        "[files]\nmax_bytes = 0\nretention_days = 0\npublic_base_url = \"support.example.com\"\nlink_secret_env = \"SB_TEST_UNSET_FILE_SECRET\"\nmax_size = 3\n",
        config_dir(),
    )
    .expect_err("every mistake is reported");
    let keys: Vec<&str> = problems
        .iter()
        .map(|problem| problem.key.as_str())
        .collect();
    assert_eq!(keys, ["files.max_size"], "unknown keys first: {problems:?}");
    let problems = Config::parse(
        "[files]\nmax_bytes = 0\nretention_days = 0\npublic_base_url = \"support.example.com\"\nlink_secret_env = \"SB_TEST_UNSET_FILE_SECRET\"\n",
        config_dir(),
    )
    .expect_err("every mistake is reported");
    let keys: Vec<&str> = problems
        .iter()
        .map(|problem| problem.key.as_str())
        .collect();
    for key in [
        "files.max_bytes",
        "files.retention_days",
        "files.public_base_url",
        "files.link_secret_env",
    ] {
        assert!(keys.contains(&key), "{key} missing from {problems:?}");
    }
    let problems = Config::parse(
        "[files]\nmax_bytes = 1000\nmax_bytes_per_conversation = 999\nmax_bytes_per_address_per_day = 10\nmax_bytes_total = 0\nmax_redis_memory_fraction = 1.5\n",
        config_dir(),
    )
    .expect_err("quotas below one file and a fraction above 1 are mistakes");
    let keys: Vec<&str> = problems
        .iter()
        .map(|problem| problem.key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "files.max_bytes_per_conversation",
            "files.max_bytes_per_address_per_day",
            "files.max_bytes_total",
            "files.max_redis_memory_fraction",
        ],
        "{problems:?}"
    );
    let config = Config::parse(
        "[files]\nmax_bytes = 5242880\npublic_base_url = \"https://support.example.com/\"\n",
        config_dir(),
    )
    .expect("a good [files] section");
    assert_eq!(config.files.max_bytes_per_conversation, 50 * 1024 * 1024);
    assert_eq!(
        config.files.max_bytes_per_address_per_day,
        100 * 1024 * 1024
    );
    assert_eq!(config.files.max_bytes_total, 1024 * 1024 * 1024);
    assert_eq!(config.files.max_redis_memory_fraction, 0.9);
    assert_eq!(config.files.max_bytes, 5 * 1024 * 1024);
    assert_eq!(config.files.retention_days, 30);
    assert_eq!(
        Config::parse("", config_dir()).unwrap().files.max_bytes,
        10 * 1024 * 1024
    );
}

/// A Telegram customer's photo lands in the Slack thread; an agent's file reaches the chat as
/// a `sendDocument` upload; a file sent before the escalation is listed in the briefing.
mod telegram {
    use super::*;
    use switchboard_telegram::standin::{TelegramStandIn, TOKEN};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_customers_photo_reaches_the_thread_and_an_agents_file_reaches_the_chat() {
        let redis = RedisServer::start();
        let slack = SlackStandIn::start().await;
        slack.set_user(AGENT, "Sam Rivera");
        let telegram = TelegramStandIn::start().await;
        std::env::set_var("SB_TEST_TELEGRAM_FILES_TOKEN", TOKEN);
        let extra = format!(
            "{}[files]\nmax_bytes = 1048576\npublic_base_url = \"https://support.example.com\"\n\
             [connectors.telegram]\nenabled = true\nbot_token_env = \"SB_TEST_TELEGRAM_FILES_TOKEN\"\napi_url = \"{}\"\npoll_timeout_secs = 1\n",
            desk_config(&slack, "socket"),
            telegram.api_url()
        );
        let _gateway = start_gateway(test_config(&redis, &extra)).await;
        let chat = 5151;

        // Before anyone escalates, the customer sends their invoice; then asks for a person.
        let invoice = b"%PDF-1.4\n\xff\xfe not text\n%%EOF\n".repeat(40);
        telegram.push_document(
            chat,
            "Alice",
            "invoice-march.pdf",
            "application/pdf",
            &invoice,
        );
        eventually(Duration::from_secs(20), "the AI's reply", || async {
            telegram.sent().into_iter().find(|m| m.chat_id == chat)
        })
        .await;
        telegram.push_callback(chat, "Alice", "sb:human");
        let parent = briefing(&slack).await;
        let blocks = parent.blocks.to_string();
        assert!(
            blocks.contains("invoice-march.pdf")
                && blocks.contains("https://support.example.com/files/"),
            "the briefing lists the earlier file with its link: {blocks}"
        );

        // The customer sends a photo of the error: it is uploaded into the thread.
        let photo = image_bytes(30_000);
        telegram.push_photo(chat, "Alice", &photo, "this is what I see");
        let shared = slack.wait_for_files(1, Duration::from_secs(20)).await;
        assert_eq!(shared.len(), 1, "one file shared into Slack");
        assert_eq!(shared[0].name, "photo.jpg");
        assert_eq!(
            shared[0].bytes, photo,
            "Slack got the customer's exact bytes"
        );
        assert_eq!(shared[0].thread_ts.as_deref(), Some(parent.ts.as_str()));
        eventually(
            Duration::from_secs(15),
            "the caption in the thread",
            || async {
                slack.posts().into_iter().find(|post| {
                    post.thread_ts.as_deref() == Some(parent.ts.as_str())
                        && post.text.contains("this is what I see")
                })
            },
        )
        .await;

        // An agent shares a file in the thread: the customer gets it as a document.
        let fix = b"step 1\x00\xff\nstep 2\n".repeat(100);
        let hosted = slack.host_file("fix-steps.txt", "text/plain", &fix);
        slack.send_event(agent_file_share(
            &parent.ts,
            "1800000000.000700",
            "Here are the steps.",
            vec![hosted],
        ));
        let sent = telegram
            .wait_for_sent_files(1, Duration::from_secs(20))
            .await;
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].method, "sendDocument");
        assert_eq!(sent[0].chat_id, chat);
        assert_eq!(sent[0].file_name, "fix-steps.txt");
        assert_eq!(
            sent[0].bytes, fix,
            "the customer got the agent's exact bytes"
        );
        assert_eq!(
            sent[0].caption,
            "Sam Rivera (support team): Here are the steps."
        );
    }
}

/// An email customer's attachment appears in the thread; an agent's file arrives as a MIME
/// attachment in the reply mail.
mod email {
    use super::*;
    use crate::email_gateway::through_the_gateway::email_toml;
    use crate::mailservers::{Dovecot, SmtpSink};
    use mail_parser::{MessageParser, MimeHeaders};

    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out.as_bytes()
            .chunks(76)
            .map(|line| String::from_utf8_lossy(line).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_mailed_screenshot_reaches_the_thread_and_an_agents_file_is_attached_to_the_reply() {
        let redis = RedisServer::start();
        let slack = SlackStandIn::start().await;
        slack.set_user(AGENT, "Sam Rivera");
        let dovecot = Dovecot::start();
        let smtp = SmtpSink::start();
        let extra = format!(
            "{}[files]\nmax_bytes = 1048576\npublic_base_url = \"https://support.example.com\"\n{}",
            desk_config(&slack, "socket"),
            email_toml(&dovecot, &smtp)
        );
        let _gateway = start_gateway(test_config(&redis, &extra)).await;

        dovecot.deliver(
            "From: Alice Doe <alice@example.org>\nTo: support@example.com\nSubject: Broken checkout\n\
             Message-ID: <files-1@example.org>\n\n\
             I want to talk to a real person please.\n",
        );
        let parent = briefing(&slack).await;

        // A follow-up mail with a screenshot: uploaded into the thread with its bytes.
        let screenshot = image_bytes(20_000);
        dovecot.deliver(&format!(
            "From: Alice Doe <alice@example.org>\nTo: support@example.com\nSubject: Re: Broken checkout\n\
             Message-ID: <files-2@example.org>\nIn-Reply-To: <files-1@example.org>\n\
             MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n\
             --b1\nContent-Type: text/plain; charset=utf-8\n\nHere is the error.\n\
             --b1\nContent-Type: image/png; name=\"checkout.png\"\nContent-Disposition: attachment; filename=\"checkout.png\"\n\
             Content-Transfer-Encoding: base64\n\n{}\n--b1--\n",
            base64(&screenshot)
        ));
        let shared = slack.wait_for_files(1, Duration::from_secs(30)).await;
        assert_eq!(shared.len(), 1, "one file shared into Slack");
        assert_eq!(shared[0].name, "checkout.png");
        assert_eq!(shared[0].bytes, screenshot);
        assert_eq!(shared[0].thread_ts.as_deref(), Some(parent.ts.as_str()));

        // The agent answers with a PDF: the reply mail carries it as an attachment.
        let guide = b"%PDF-1.4\n\x00\xff guide\n%%EOF\n".repeat(60);
        let hosted = slack.host_file("checkout-guide.pdf", "application/pdf", &guide);
        slack.send_event(agent_file_share(
            &parent.ts,
            "1800000000.000800",
            "This guide walks you through it.",
            vec![hosted],
        ));
        let mail = eventually(Duration::from_secs(30), "the reply mail", || async {
            smtp.mails()
                .into_iter()
                .find(|mail| mail.contains("checkout-guide.pdf"))
        })
        .await;
        let parsed = MessageParser::default()
            .parse(mail.as_bytes())
            .expect("a parsable mail");
        let attachments: Vec<(Option<&str>, &[u8])> = parsed
            .attachments()
            .map(|part| (part.attachment_name(), part.contents()))
            .collect();
        assert_eq!(attachments, [(Some("checkout-guide.pdf"), &guide[..])]);
        let text = parsed.body_text(0).unwrap_or_default();
        assert!(text.contains("This guide walks you through it."), "{text}");
        assert!(text.contains("Sam Rivera"), "signed by the agent: {text}");
        assert!(
            parsed
                .in_reply_to()
                .as_text()
                .is_some_and(|id| id.contains("files-2@example.org")),
            "threaded under the customer's mail"
        );
    }
}
