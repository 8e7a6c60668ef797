//! The email channel against real servers: Dovecot for IMAP, smtp-sink for SMTP. First the
//! connector alone in front of the api crate's in-memory gateway, then the whole gateway.
//!
//! Included into the root crate's integration binary (see the root `build.rs`), so `crate::`
//! is that binary: its harness and mail servers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_api::{Author, Connector, MemoryGateway, MemoryLease, Outbound};
use switchboard_email::{EmailConfig, EmailConnector};

use crate::harness::eventually;

// TLS and STARTTLS against Dovecot (IMAP) and Postfix (SMTP), with a CA made at test time.
#[path = "tls.rs"]
mod tls;

// OAuth 2.0 (XOAUTH2) against Dovecot's oauth2 passdb and a loopback token endpoint.
#[path = "oauth.rs"]
mod oauth;
use crate::mailservers::{Dovecot, SmtpSink};

fn config(imap: &Dovecot, smtp_port: u16) -> EmailConfig {
    let mut config: EmailConfig = toml::from_str(&format!(
        r#"
        address = "support@example.com"
        display_name = "Example Support"
        max_mails_per_sender_per_hour = 50
        [imap]
        host = "127.0.0.1"
        port = {}
        tls = "plain"
        username_env = "UNUSED_IMAP_USER"
        password_env = "UNUSED_IMAP_PASSWORD"
        poll_interval_secs = 1
        [smtp]
        host = "127.0.0.1"
        port = {smtp_port}
        tls = "plain"
        "#,
        imap.port
    ))
    .expect("email config");
    config.imap.username = imap.user.clone();
    config.imap.password = imap.password.clone();
    let mut problems = Vec::new();
    config.validate("connectors.email", &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    config
}

fn start(
    connector: Arc<EmailConnector>,
    gateway: Arc<MemoryGateway>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = connector.run(gateway).await;
    })
}

const FIRST_MAIL: &str = "From: Alice Doe <alice@example.org>
To: support@example.com
Subject: Password help
Message-ID: <first@example.org>
Date: Mon, 6 Jan 2025 10:00:00 +0000

How do I reset my password?

-- 
Alice
";

const REPLY_MAIL: &str = "From: Alice Doe <ALICE@example.org>
To: support@example.com
Subject: Re: Password help
Message-ID: <second@example.org>
In-Reply-To: <switchboard.out-1@example.com>
References: <first@example.org> <switchboard.out-1@example.com>
Date: Mon, 6 Jan 2025 10:05:00 +0000

It still does not work.

On Mon, 6 Jan 2025 at 10:01, Example Support <support@example.com> wrote:
> Go to Settings, then Security.
";

const AUTO_REPLY: &str = "From: bob@example.net
To: support@example.com
Subject: Out of office
Message-ID: <ooo@example.net>
Auto-Submitted: auto-replied

I am away until Monday.
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mail_and_reply_join_one_conversation_auto_reply_ignored() {
    let dovecot = Dovecot::start();
    let connector = Arc::new(EmailConnector::new(config(&dovecot, 1)));
    let gateway = Arc::new(MemoryGateway::default());
    dovecot.deliver(FIRST_MAIL);
    dovecot.deliver(AUTO_REPLY);
    let task = start(connector.clone(), gateway.clone());

    eventually(
        Duration::from_secs(20),
        "both mails marked seen",
        || async { (dovecot.seen_unseen() == (2, 0)).then_some(()) },
    )
    .await;
    {
        let stored = gateway.accepted();
        assert_eq!(stored.len(), 1, "the auto-reply must not be stored");
        let first = &stored[0];
        assert_eq!(first.conversation_key, "alice@example.org");
        assert_eq!(first.text, "How do I reset my password?");
        assert_eq!(
            first.context.attributes["email.message_id"],
            "<first@example.org>"
        );
    }

    // The reply arrives while the connector idles; it joins the same conversation.
    dovecot.deliver(REPLY_MAIL);
    eventually(Duration::from_secs(20), "the reply stored", || async {
        (gateway.accepted().len() == 2).then_some(())
    })
    .await;
    let stored = gateway.accepted();
    let reply = &stored[1];
    assert_eq!(reply.conversation_key, "alice@example.org");
    assert_eq!(reply.text, "It still does not work.");
    assert_eq!(gateway.conversations(), 1);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_flagging_rereads_once_and_stores_once() {
    let dovecot = Dovecot::start();
    let gateway = Arc::new(MemoryGateway::default());
    gateway.set_crash_after_store(true);
    dovecot.deliver(FIRST_MAIL);
    let crashed = start(
        Arc::new(EmailConnector::new(config(&dovecot, 1))),
        gateway.clone(),
    );
    // The task dies inside accept, after the store and before the flag.
    let outcome = tokio::time::timeout(Duration::from_secs(20), crashed).await;
    assert!(
        matches!(outcome, Ok(Err(ref e)) if e.is_panic()),
        "{outcome:?}"
    );
    assert_eq!(
        dovecot.seen_unseen(),
        (0, 1),
        "the mail must still be unread"
    );

    // The restarted process reads it again; the dedupe keeps one copy; now it is flagged.
    gateway.set_crash_after_store(false);
    let task = start(
        Arc::new(EmailConnector::new(config(&dovecot, 1))),
        gateway.clone(),
    );
    eventually(Duration::from_secs(20), "the mail marked seen", || async {
        (dovecot.seen_unseen() == (1, 0)).then_some(())
    })
    .await;
    assert_eq!(gateway.accepted().len(), 1);
    assert_eq!(gateway.replays(), 1);
    task.abort();
}

/// Two gateway instances configured with one mailbox: only the lease holder logs in and
/// reads it; when the holder dies without letting go, the other takes over and reads what
/// arrived meanwhile. Each mail is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_instances_one_reads_the_mailbox_and_the_other_takes_over_when_it_dies() {
    let dovecot = Dovecot::start();
    let lease = MemoryLease::default();
    let gateway = Arc::new(MemoryGateway::default());
    let instance = |lease: MemoryLease| {
        Arc::new(EmailConnector::new(config(&dovecot, 1)).with_lease(Arc::new(lease)))
    };
    let holder = start(instance(lease.clone()), gateway.clone());
    eventually(
        Duration::from_secs(20),
        "the first instance logged in",
        || async { (dovecot.logins() == 1).then_some(()) },
    )
    .await;
    let other_lease = lease.another_instance();
    let other = start(instance(other_lease.clone()), gateway.clone());
    dovecot.deliver(FIRST_MAIL);
    eventually(Duration::from_secs(20), "the mail marked seen", || async {
        (dovecot.seen_unseen() == (1, 0)).then_some(())
    })
    .await;
    // The other instance asks for the lease every 3 s: once it was turned away twice, it had
    // two chances to log in.
    eventually(
        Duration::from_secs(20),
        "the other instance asking twice",
        || async { (other_lease.refused() >= 2).then_some(()) },
    )
    .await;
    assert_eq!(dovecot.logins(), 1, "only the lease holder logs in");

    holder.abort();
    dovecot.deliver(REPLY_MAIL);
    eventually(
        Duration::from_secs(40),
        "the other instance took over and stored the reply",
        || async { (gateway.accepted().len() == 2).then_some(()) },
    )
    .await;
    assert_eq!(dovecot.logins(), 2);
    assert_eq!(gateway.replays(), 0, "no mail read twice");
    assert_eq!(gateway.accepted()[1].text, "It still does not work.");
    other.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_server_restart_reconnects_without_loss_or_doubles() {
    let mut dovecot = Dovecot::start();
    let gateway = Arc::new(MemoryGateway::default());
    dovecot.deliver(FIRST_MAIL);
    let task = start(
        Arc::new(EmailConnector::new(config(&dovecot, 1))),
        gateway.clone(),
    );
    eventually(Duration::from_secs(20), "first mail stored", || async {
        (gateway.accepted().len() == 1).then_some(())
    })
    .await;
    dovecot.kill();
    dovecot.deliver(REPLY_MAIL);
    dovecot.restart();
    eventually(
        Duration::from_secs(40),
        "reply stored after reconnect",
        || async { (gateway.accepted().len() == 2).then_some(()) },
    )
    .await;
    eventually(Duration::from_secs(20), "all mails seen", || async {
        (dovecot.seen_unseen() == (2, 0)).then_some(())
    })
    .await;
    assert_eq!(gateway.accepted().len(), 2);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reply_is_sent_as_a_threaded_mail() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let connector = Arc::new(EmailConnector::new(config(&dovecot, sink.port)));
    let gateway = Arc::new(MemoryGateway::default());
    dovecot.deliver(FIRST_MAIL);
    let task = start(connector.clone(), gateway.clone());
    let inbound = eventually(Duration::from_secs(20), "mail stored", || async {
        gateway.accepted().first().cloned()
    })
    .await;
    task.abort();

    let reply_context: BTreeMap<String, String> = inbound.context.attributes.clone();
    let outbound = Outbound {
        id: "1736157600000-0".into(),
        conversation_id: "c1".into(),
        channel: switchboard_email::CHANNEL,
        conversation_key: inbound.conversation_key.clone(),
        author: Author::Agent {
            name: "Dana".into(),
        },
        text: "I reset it for you; check your inbox.".into(),
        actions: Vec::new(),
        reply_context,
        files: Vec::new(),
        maybe_sent: false,
    };
    let receipt = connector
        .send(&outbound)
        .await
        .expect("smtp-sink accepts the reply");
    assert_eq!(
        receipt.platform_message_id.as_deref(),
        Some("<switchboard.1736157600000-0@example.com>")
    );
    let mail = eventually(Duration::from_secs(10), "captured mail", || async {
        sink.mails().into_iter().next()
    })
    .await;
    for expected in [
        "X-Rcpt-Args: <alice@example.org>",
        "Subject: Re: Password help",
        "In-Reply-To: <first@example.org>",
        "References: <first@example.org>",
        "Message-ID: <switchboard.1736157600000-0@example.com>",
        "From: \"Example Support\" <support@example.com>",
        "Dana",
    ] {
        assert!(mail.contains(expected), "missing {expected:?} in:\n{mail}");
    }
    assert!(
        !mail.contains("Auto-Submitted"),
        "agent replies are not auto-submitted:\n{mail}"
    );

    // AI answers are marked, so the customer's own robots do not answer them.
    let ai = Outbound {
        id: "1736157600001-0".into(),
        author: Author::Ai,
        ..outbound
    };
    connector.send(&ai).await.expect("send AI answer");
    let mails = eventually(Duration::from_secs(10), "second captured mail", || async {
        let mails = sink.mails();
        (mails.len() == 2).then_some(mails)
    })
    .await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains("Auto-Submitted: auto-replied")),
        "{mails:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_is_a_transient_error() {
    let dovecot = Dovecot::start();
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let connector = EmailConnector::new(config(&dovecot, port));
    let outbound = Outbound {
        id: "x-1".into(),
        conversation_id: "c1".into(),
        channel: switchboard_email::CHANNEL,
        conversation_key: "alice@example.org".into(),
        author: Author::Ai,
        text: "hi".into(),
        actions: Vec::new(),
        reply_context: BTreeMap::new(),
        files: Vec::new(),
        maybe_sent: false,
    };
    let error = connector.send(&outbound).await.expect_err("no server");
    assert!(error.is_retryable(), "{error}");
}

/// The whole gateway with the email channel enabled, talking to real Dovecot and smtp-sink.
pub(crate) mod through_the_gateway {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::desk::{reply, start_with_fake_desk, FakeDesk};
    use crate::harness::{eventually, test_config, RedisServer};
    use crate::mailservers::{Dovecot, SmtpSink};

    pub(crate) fn email_toml(dovecot: &Dovecot, smtp: &SmtpSink) -> String {
        std::env::set_var("SB_TEST_IMAP_USER", &dovecot.user);
        std::env::set_var("SB_TEST_IMAP_PASSWORD", &dovecot.password);
        format!(
            r#"
[connectors.email]
enabled = true
address = "support@example.com"
display_name = "Example Support"
[connectors.email.imap]
host = "127.0.0.1"
port = {}
tls = "plain"
username_env = "SB_TEST_IMAP_USER"
password_env = "SB_TEST_IMAP_PASSWORD"
poll_interval_secs = 1
[connectors.email.smtp]
host = "127.0.0.1"
port = {}
tls = "plain"
"#,
            dovecot.port, smtp.port
        )
    }

    /// A captured mail with its quoted-printable soft line breaks and spaces decoded.
    fn readable(mail: &str) -> String {
        mail.replace("=\n", "")
            .replace("=20", " ")
            .replace("=3D", "=")
    }

    pub(crate) async fn captured(smtp: &SmtpSink, what: &str, needle: &str) -> String {
        eventually(Duration::from_secs(30), what, || async {
            smtp.mails()
                .into_iter()
                .map(|mail| readable(&mail))
                .find(|mail| mail.contains(needle))
        })
        .await
    }

    fn header<'a>(mail: &'a str, name: &str) -> &'a str {
        mail.lines()
            .find(|line| {
                line.to_lowercase()
                    .starts_with(&format!("{}:", name.to_lowercase()))
            })
            .map(|line| line[name.len() + 1..].trim())
            .unwrap_or("")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_mail_is_answered_by_the_ai_and_an_agents_reply_is_a_threaded_mail() {
        let redis = RedisServer::start();
        let dovecot = Dovecot::start();
        let smtp = SmtpSink::start();
        let desk = Arc::new(FakeDesk::default());
        let config = test_config(&redis, &email_toml(&dovecot, &smtp));
        let _gateway = start_with_fake_desk(config, desk.clone()).await;

        dovecot.deliver(super::FIRST_MAIL);
        let answer = captured(&smtp, "the AI's answer by mail", "Forgot password").await;
        assert!(
            header(&answer, "To").contains("alice@example.org"),
            "{answer}"
        );
        assert_eq!(header(&answer, "Subject"), "Re: Password help");
        assert_eq!(header(&answer, "In-Reply-To"), "<first@example.org>");
        assert!(header(&answer, "Auto-Submitted").contains("auto-replied"));

        dovecot.deliver(
            "From: Alice Doe <alice@example.org>\nTo: support@example.com\nSubject: Re: Password help\n\
             Message-ID: <third@example.org>\nIn-Reply-To: <first@example.org>\nReferences: <first@example.org>\n\n\
             That didn't help. I want to talk to a real person please.\n\n> quoted answer\n",
        );
        let (briefing, thread) = desk.thread().await;
        assert_eq!(briefing.channel, switchboard_email::CHANNEL);
        assert_eq!(briefing.email.as_deref(), Some("alice@example.org"));
        assert!(
            !briefing
                .transcript
                .iter()
                .any(|line| line.text.contains("quoted answer")),
            "quotes are trimmed before the desk sees them"
        );

        desk.agent(reply(
            &thread,
            "1800000005.000100",
            "Sam",
            "Hi Alice, I reset it for you; check your inbox.",
        ))
        .await;
        let agent_mail = captured(&smtp, "the agent's reply by mail", "I reset it for you").await;
        assert!(
            agent_mail.contains("Sam"),
            "signed with the agent's name: {agent_mail}"
        );
        assert_eq!(header(&agent_mail, "In-Reply-To"), "<third@example.org>");
        assert!(
            header(&agent_mail, "References").contains("<first@example.org>"),
            "{agent_mail}"
        );
        assert_eq!(header(&agent_mail, "Subject"), "Re: Password help");
    }
}
