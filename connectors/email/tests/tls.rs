//! TLS against real servers: Dovecot's IMAP (STARTTLS and IMAPS) and a private Postfix's
//! submission (STARTTLS, 587-style, and implicit TLS, 465-style) with Dovecot SASL, which relays
//! what it accepts to smtp-sink. Certificates come from a CA made at test time; both servers
//! refuse any login before TLS (`ssl = required`, `smtpd_tls_auth_only`), so a plain-text
//! fallback could not log in at all.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard_api::{Author, Connector, ConnectorError, Health, MemoryGateway, Outbound};
use switchboard_email::{EmailConfig, EmailConnector};

use crate::harness::eventually;
use crate::mailservers::{Dovecot, DovecotSetup, SmtpSink};
use crate::postfix::Postfix;
use crate::test_ca::TestCa;

struct Servers {
    // Kept for their files (the CA and server certificate) until the test ends.
    ca: TestCa,
    dovecot: Dovecot,
    postfix: Postfix,
    sink: SmtpSink,
}

/// Dovecot and Postfix with TLS, their certificate for `names`, signed by a fresh test CA.
fn servers(names: &[&str]) -> Servers {
    let mut ca = TestCa::new("Switchboard test CA");
    let cert = ca.server_cert(names);
    let cert = (cert.cert_file, cert.key_file);
    let sink = SmtpSink::start();
    let dovecot = Dovecot::start_with(DovecotSetup {
        tls: Some(cert.clone()),
        oauth2_introspection_url: None,
    });
    let postfix = Postfix::start(&cert, &dovecot, sink.port);
    Servers {
        ca,
        dovecot,
        postfix,
        sink,
    }
}

/// IMAP on `imap_port` and SMTP on `smtp_port` with the given modes, trusting `ca_file`.
fn config(
    dovecot: &Dovecot,
    (imap_port, imap_tls): (u16, &str),
    (smtp_port, smtp_tls): (u16, &str),
    ca_file: Option<&Path>,
) -> EmailConfig {
    let ca_line = ca_file
        .map(|file| format!("tls_ca_file = {:?}", file.display().to_string()))
        .unwrap_or_default();
    let mut config: EmailConfig = toml::from_str(&format!(
        r#"
        address = "support@example.com"
        display_name = "Example Support"
        [imap]
        host = "127.0.0.1"
        port = {imap_port}
        tls = "{imap_tls}"
        {ca_line}
        username_env = "MAIL_USER"
        password_env = "MAIL_PASSWORD"
        poll_interval_secs = 1
        [smtp]
        host = "127.0.0.1"
        port = {smtp_port}
        tls = "{smtp_tls}"
        {ca_line}
        username_env = "MAIL_USER"
        password_env = "MAIL_PASSWORD"
        "#
    ))
    .expect("email config");
    let mut problems = Vec::new();
    config.resolve_secrets_from("connectors.email", &mut problems, |name| match name {
        "MAIL_USER" => Some(dovecot.user.clone()),
        "MAIL_PASSWORD" => Some(dovecot.password.clone()),
        _ => None,
    });
    config.validate("connectors.email", &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    config
}

fn reply_to(key: &str, context: BTreeMap<String, String>) -> Outbound {
    Outbound {
        id: "1736157600000-7".into(),
        conversation_id: "c1".into(),
        channel: switchboard_email::CHANNEL,
        conversation_key: key.into(),
        author: Author::Agent {
            name: "Dana".into(),
        },
        text: "Your password is reset.".into(),
        actions: Vec::new(),
        reply_context: context,
        files: Vec::new(),
        maybe_sent: false,
    }
}

fn dovecot_log(dovecot: &Dovecot) -> String {
    std::fs::read_to_string(dovecot.dir.0.join("dovecot.log")).unwrap_or_default()
}

/// Dovecot logs `<service>: Info: Login: user=<agent>, ..., TLS, ...` for a login over TLS.
fn logged_in_over_tls(log: &str, service: &str) -> bool {
    log.lines().any(|line| {
        line.contains(service) && line.contains("Login: user=<agent>") && line.contains(", TLS")
    })
}

/// A mail in over IMAP with `imap_tls`, stored once; the reply out with `smtp_tls`, received.
async fn mail_in_and_reply_out(imap_tls: &str, smtp_tls: &str) {
    let servers = servers(&["localhost", "127.0.0.1"]);
    let dovecot = &servers.dovecot;
    let imap_port = match imap_tls {
        "tls" => dovecot.imaps_port,
        _ => dovecot.port,
    };
    let smtp_port = match smtp_tls {
        "tls" => servers.postfix.smtps_port,
        _ => servers.postfix.submission_port,
    };
    let connector = Arc::new(EmailConnector::new(config(
        dovecot,
        (imap_port, imap_tls),
        (smtp_port, smtp_tls),
        Some(&servers.ca.ca_file),
    )));
    let gateway = Arc::new(MemoryGateway::default());
    dovecot.deliver(super::FIRST_MAIL);
    let task = tokio::spawn({
        let (connector, gateway) = (connector.clone(), gateway.clone());
        async move { connector.run(gateway).await }
    });
    eventually(Duration::from_secs(20), "the mail stored and seen", || async {
        (dovecot.seen_unseen() == (1, 0)).then_some(())
    })
    .await;
    let stored = gateway.accepted();
    assert_eq!(stored.len(), 1, "stored once");
    assert_eq!(stored[0].text, "How do I reset my password?");
    let log = dovecot_log(dovecot);
    assert!(
        logged_in_over_tls(&log, "imap-login:"),
        "the IMAP login went over TLS:\n{log}"
    );

    let outbound = reply_to(
        &stored[0].conversation_key,
        stored[0].context.attributes.clone(),
    );
    connector
        .send(&outbound)
        .await
        .unwrap_or_else(|error| panic!("reply over SMTP {smtp_tls}: {error}"));
    let mail = eventually(Duration::from_secs(20), "the relayed reply", || async {
        servers.sink.mails().into_iter().next()
    })
    .await;
    for expected in [
        "Subject: Re: Password help",
        "In-Reply-To: <first@example.org>",
        "Your password is reset.",
    ] {
        assert!(mail.contains(expected), "missing {expected:?} in:\n{mail}");
    }
    let postfix = &servers.postfix;
    assert!(
        postfix.logins("PLAIN", "agent") == 1 && postfix.tls_sessions() == 1,
        "one SMTP login, over TLS:\n{}",
        postfix.log()
    );
    assert_eq!(gateway.accepted().len(), 1, "still stored once");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaps_and_smtps_carry_a_mail_in_and_the_reply_out() {
    mail_in_and_reply_out("tls", "tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_on_imap_and_smtp_carries_a_mail_in_and_the_reply_out() {
    mail_in_and_reply_out("starttls", "starttls").await;
}

/// The connector's health once it has given up on a connection, and an SMTP send's error.
async fn failures(config: EmailConfig) -> (String, ConnectorError) {
    let connector = Arc::new(EmailConnector::new(config));
    let gateway = Arc::new(MemoryGateway::default());
    let task = tokio::spawn({
        let (connector, gateway) = (connector.clone(), gateway.clone());
        async move { connector.run(gateway).await }
    });
    let imap = eventually(Duration::from_secs(20), "the IMAP failure", || async {
        match connector.health().await {
            Health::Down(why) if why != "not connected yet" => Some(why),
            _ => None,
        }
    })
    .await;
    task.abort();
    let smtp = connector
        .send(&reply_to("alice@example.org", BTreeMap::new()))
        .await
        .expect_err("the SMTP send must fail");
    assert!(gateway.accepted().is_empty());
    (imap, smtp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_clear_error_naming_the_server() {
    let servers = servers(&["localhost", "127.0.0.1"]);
    let dovecot = &servers.dovecot;
    dovecot.deliver(super::FIRST_MAIL);
    // No tls_ca_file: the test CA is not among the system's roots.
    let (imap, smtp) = failures(config(
        dovecot,
        (dovecot.imaps_port, "tls"),
        (servers.postfix.submission_port, "starttls"),
        None,
    ))
    .await;
    let imap_server = format!("127.0.0.1:{}", dovecot.imaps_port);
    assert!(
        imap.contains(&format!("TLS certificate of {imap_server} is not trusted")),
        "{imap}"
    );
    let smtp_server = format!("127.0.0.1:{}", servers.postfix.submission_port);
    assert!(
        smtp.to_string()
            .contains(&format!("TLS certificate of {smtp_server} is not trusted")),
        "{smtp}"
    );
    assert!(smtp.is_retryable(), "the reply waits in the outbox: {smtp}");
    assert_eq!(dovecot.logins(), 0, "no login without TLS");
    assert_eq!(servers.postfix.logins("PLAIN", "agent"), 0);
    assert!(servers.sink.mails().is_empty());
    assert_eq!(dovecot.seen_unseen(), (0, 1), "the mail stays unread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_name_is_a_clear_error_naming_the_server() {
    // Trusted CA, but the certificate is for another host than the one configured.
    let servers = servers(&["mail.other.example"]);
    let dovecot = &servers.dovecot;
    let (imap, smtp) = failures(config(
        dovecot,
        (dovecot.port, "starttls"),
        (servers.postfix.smtps_port, "tls"),
        Some(&servers.ca.ca_file),
    ))
    .await;
    let imap_server = format!("127.0.0.1:{}", dovecot.port);
    assert!(
        imap.contains(&format!(
            "TLS certificate of {imap_server} is not valid for the host name \"127.0.0.1\""
        )),
        "{imap}"
    );
    let smtp_server = format!("127.0.0.1:{}", servers.postfix.smtps_port);
    assert!(
        smtp.to_string().contains(&format!(
            "TLS certificate of {smtp_server} is not valid for the host name"
        )),
        "{smtp}"
    );
    assert_eq!(dovecot.logins(), 0, "no login without TLS");
    assert_eq!(servers.postfix.logins("PLAIN", "agent"), 0);
    assert!(servers.sink.mails().is_empty());
}
