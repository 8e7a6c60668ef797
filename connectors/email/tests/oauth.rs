//! OAuth 2.0 (SASL XOAUTH2) against real servers: Dovecot's IMAP and Postfix's submission over TLS,
//! its `oauth2` passdb checking every token at a loopback introspection endpoint, and a loopback
//! token endpoint that issues, expires, rotates and revokes tokens (see `oauth_standin.rs`).
//! SMTP goes through a private Postfix whose SASL is Dovecot's (the same `oauth2` passdb),
//! relayed to smtp-sink.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_api::{Author, Connector, MemoryGateway, Outbound};
use switchboard_email::oauth::{authorize, Authorize, TokenSource};
use switchboard_email::{EmailConfig, EmailConnector, OAuthConfig};

use crate::harness::eventually;
use crate::mailservers::{Dovecot, DovecotSetup, SmtpSink};
use crate::postfix::Postfix;
use crate::test_ca::TestCa;

#[path = "oauth_standin.rs"]
mod oauth_standin;
use oauth_standin::{OAuthStandIn, GOOD_CODE};

struct Servers {
    ca: TestCa,
    dovecot: Dovecot,
    postfix: Postfix,
    sink: SmtpSink,
    provider: OAuthStandIn,
}

async fn servers() -> Servers {
    let provider = OAuthStandIn::start("agent").await;
    let mut ca = TestCa::new("Switchboard test CA");
    let cert = ca.server_cert(&["localhost", "127.0.0.1"]);
    let cert = (cert.cert_file, cert.key_file);
    let sink = SmtpSink::start();
    let dovecot = Dovecot::start_with(DovecotSetup {
        tls: Some(cert.clone()),
        oauth2_introspection_url: Some(provider.introspection_url()),
    });
    let postfix = Postfix::start(&cert, &dovecot, sink.port);
    Servers {
        ca,
        dovecot,
        postfix,
        sink,
        provider,
    }
}

/// The `[connectors.email]` TOML for `auth = "oauth2"` against `servers`; the secrets are in
/// the variables `<prefix>_CLIENT_ID`, `_CLIENT_SECRET`, `_REFRESH`, `_USER`.
fn oauth_toml(servers: &Servers, prefix: &str, header: &str) -> String {
    std::env::set_var(format!("{prefix}_USER"), &servers.dovecot.user);
    std::env::set_var(format!("{prefix}_CLIENT_ID"), "switchboard-test-client");
    std::env::set_var(format!("{prefix}_CLIENT_SECRET"), "test-client-secret");
    std::env::set_var(format!("{prefix}_REFRESH"), OAuthStandIn::FIRST_REFRESH);
    let ca = servers.ca.ca_file.display().to_string();
    format!(
        r#"
{header}
address = "support@example.com"
display_name = "Example Support"
auth = "oauth2"
[{section}oauth2]
provider = "custom"
token_url = "{token_url}"
scopes = ["mail"]
client_id_env = "{prefix}_CLIENT_ID"
client_secret_env = "{prefix}_CLIENT_SECRET"
refresh_token_env = "{prefix}_REFRESH"
[{section}imap]
host = "127.0.0.1"
port = {imaps}
tls = "tls"
tls_ca_file = {ca:?}
username_env = "{prefix}_USER"
poll_interval_secs = 1
[{section}smtp]
host = "127.0.0.1"
port = {submission}
tls = "starttls"
tls_ca_file = {ca:?}
"#,
        section = if header.is_empty() {
            ""
        } else {
            "connectors.email."
        },
        token_url = servers.provider.token_url(),
        imaps = servers.dovecot.imaps_port,
        submission = servers.postfix.submission_port,
    )
}

fn config(servers: &Servers, prefix: &str) -> EmailConfig {
    let mut config: EmailConfig =
        toml::from_str(&oauth_toml(servers, prefix, "")).expect("email config");
    let mut problems = Vec::new();
    config.resolve_secrets("connectors.email", &mut problems);
    config.validate("connectors.email", &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    config
}

fn reply(id: &str, key: &str, context: BTreeMap<String, String>) -> Outbound {
    Outbound {
        id: id.into(),
        conversation_id: "c1".into(),
        channel: switchboard_email::CHANNEL,
        conversation_key: key.into(),
        author: Author::Agent {
            name: "Dana".into(),
        },
        text: format!("Reply {id}: your password is reset."),
        actions: Vec::new(),
        reply_context: context,
        files: Vec::new(),
        maybe_sent: false,
    }
}

fn dovecot_log(dovecot: &Dovecot) -> String {
    std::fs::read_to_string(dovecot.dir.0.join("dovecot.log")).unwrap_or_default()
}

fn xoauth2_logins(dovecot: &Dovecot, service: &str) -> usize {
    std::fs::read_to_string(dovecot.dir.0.join("dovecot.log"))
        .unwrap_or_default()
        .lines()
        .filter(|line| {
            line.contains(service)
                && line.contains("Login: user=<agent>, method=XOAUTH2")
                && line.contains(", TLS")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xoauth2_carries_mail_in_and_out_and_an_expired_token_is_refreshed_once() {
    let servers = servers().await;
    let connector = Arc::new(EmailConnector::new(config(&servers, "SB_TEST_OAUTH_FLOW")));
    let gateway = Arc::new(MemoryGateway::default());
    servers.dovecot.deliver(super::FIRST_MAIL);
    let task = tokio::spawn({
        let (connector, gateway) = (connector.clone(), gateway.clone());
        async move { connector.run(gateway).await }
    });
    eventually(Duration::from_secs(20), "the first mail stored", || async {
        (servers.dovecot.seen_unseen() == (1, 0)).then_some(())
    })
    .await;
    assert_eq!(gateway.accepted().len(), 1);
    assert_eq!(servers.provider.tokens_issued(), 1);
    assert_eq!(xoauth2_logins(&servers.dovecot, "imap-login:"), 1);

    // The provider ends the token's life early; the next login is refused, and the connector
    // refreshes once (the refresh token rotates) and logs in again.
    servers.provider.expire_access_tokens();
    servers.dovecot.kick();
    servers.dovecot.deliver(super::REPLY_MAIL);
    eventually(Duration::from_secs(30), "the second mail stored", || async {
        (gateway.accepted().len() == 2).then_some(())
    })
    .await;
    assert_eq!(
        servers.provider.tokens_issued(),
        2,
        "refreshed exactly once:\n{}",
        dovecot_log(&servers.dovecot)
    );
    assert_eq!(xoauth2_logins(&servers.dovecot, "imap-login:"), 2);

    // Same for SMTP: the token expires, the send is refused, refreshed once, and goes.
    servers.provider.expire_access_tokens();
    let first = gateway.accepted()[0].clone();
    connector
        .send(&reply(
            "1736157600000-1",
            &first.conversation_key,
            first.context.attributes.clone(),
        ))
        .await
        .expect("the reply goes after one refresh");
    assert_eq!(servers.provider.tokens_issued(), 3, "refreshed exactly once");
    let mail = eventually(Duration::from_secs(20), "the relayed reply", || async {
        servers.sink.mails().into_iter().next()
    })
    .await;
    assert!(mail.contains("Subject: Re: Password help"), "{mail}");
    assert!(mail.contains("Reply 1736157600000-1"), "{mail}");
    assert_eq!(
        servers.postfix.logins("XOAUTH2", "agent"),
        1,
        "{}",
        servers.postfix.log()
    );
    assert_eq!(
        servers.provider.token_requests(),
        3,
        "no refresh without need"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_is_refreshed_before_it_expires() {
    let servers = servers().await;
    let config = config(&servers, "SB_TEST_OAUTH_EXPIRY");
    let tokens = TokenSource::new(config.oauth2.as_ref().expect("oauth2")).expect("token source");
    // A token said to live one second past the refresh margin.
    servers
        .provider
        .set_expires_in(switchboard_email::oauth::REFRESH_MARGIN.as_secs() + 1);
    let first = tokens.access_token().await.expect("first token");
    assert_eq!(tokens.access_token().await.expect("cached"), first);
    assert_eq!(servers.provider.token_requests(), 1, "served from the cache");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = tokens.access_token().await.expect("second token");
    assert_ne!(second, first, "refreshed ahead of its expiry");
    assert_eq!(servers.provider.token_requests(), 2);
    // The provider rotated the refresh token; the next refresh used the new one.
    assert_eq!(servers.provider.tokens_issued(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_stops_the_connector_and_readyz_names_it() {
    use crate::desk::{start_with_fake_desk, FakeDesk};
    use crate::harness::{http, test_config, RedisServer};

    let redis = RedisServer::start();
    let servers = servers().await;
    servers.provider.revoke_refresh_tokens();
    let toml = oauth_toml(&servers, "SB_TEST_OAUTH_REVOKED", "[connectors.email]\nenabled = true");
    let gateway =
        start_with_fake_desk(test_config(&redis, &toml), Arc::new(FakeDesk::default())).await;
    let admin = gateway.admin_addr;
    let email = eventually(Duration::from_secs(20), "email reported down", || async move {
        let (status, body) = http(admin, "GET", "/readyz", None).await;
        let ready: serde_json::Value = serde_json::from_str(&body).ok()?;
        let email = ready["email"].as_str()?.to_owned();
        (status == 503 && email.contains("stopped")).then_some(email)
    })
    .await;
    assert!(
        email.contains("refresh token in SB_TEST_OAUTH_REVOKED_REFRESH")
            && email.contains("invalid_grant"),
        "{email}"
    );
    assert!(
        !email.contains(OAuthStandIn::FIRST_REFRESH),
        "the token itself is never shown: {email}"
    );
    assert_eq!(servers.provider.tokens_issued(), 0);
    assert_eq!(servers.dovecot.logins(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_trades_the_loopback_redirect_for_a_refresh_token() {
    let provider = OAuthStandIn::start("agent").await;
    let oauth: OAuthConfig = toml::from_str(&format!(
        r#"
        provider = "custom"
        client_id_env = "UNUSED"
        refresh_token_env = "UNUSED"
        token_url = "{}"
        authorize_url = "https://login.example.test/authorize"
        scopes = ["mail", "offline_access"]
        "#,
        provider.token_url()
    ))
    .expect("oauth config");
    let oauth = OAuthConfig {
        client_id: "switchboard-test-client".into(),
        ..oauth
    };
    let (url_tx, url_rx) = tokio::sync::oneshot::channel::<String>();
    let flow = tokio::spawn(async move {
        authorize(Authorize { oauth: &oauth, port: 0 }, |url| {
            let _ = url_tx.send(url.to_owned());
        })
        .await
    });
    let url = url_rx.await.expect("the URL to open");
    assert!(url.starts_with("https://login.example.test/authorize?"), "{url}");
    let query: BTreeMap<String, String> = url
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.replace("%3A", ":").replace("%2F", "/")))
        .collect();
    assert_eq!(query["client_id"], "switchboard-test-client");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["scope"], "mail+offline_access");
    let redirect = query["redirect_uri"].clone();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    let addr: std::net::SocketAddr = redirect
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("loopback address");

    // A redirect with another state (a forged request) is refused and the flow keeps waiting.
    let (status, _) = http_get(addr, &format!("/?code={GOOD_CODE}&state=forged")).await;
    assert_eq!(status, 400);
    let (status, body) =
        http_get(addr, &format!("/?code={GOOD_CODE}&state={}", query["state"])).await;
    assert_eq!(status, 200, "{body}");
    let refresh_token = flow.await.expect("flow task").expect("refresh token");
    assert_eq!(refresh_token, "refresh-1");
    assert_eq!(provider.tokens_issued(), 1);
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    crate::harness::http_with_headers(addr, "GET", path, &[], None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_smtp_token_with_a_revoked_refresh_token_is_an_auth_error() {
    let servers = servers().await;
    let connector = EmailConnector::new(config(&servers, "SB_TEST_OAUTH_SMTP_REVOKED"));
    // One good token first, then the provider withdraws everything.
    connector
        .send(&reply("1736157600000-2", "alice@example.org", BTreeMap::new()))
        .await
        .expect("first reply");
    servers.provider.expire_access_tokens();
    servers.provider.revoke_refresh_tokens();
    let error = connector
        .send(&reply("1736157600000-3", "alice@example.org", BTreeMap::new()))
        .await
        .expect_err("no valid token left");
    assert!(
        matches!(error, switchboard_api::ConnectorError::Auth { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("refresh token in SB_TEST_OAUTH_SMTP_REVOKED_REFRESH"),
        "{error}"
    );
    assert_eq!(servers.sink.mails().len(), 1, "only the first reply went");
}
