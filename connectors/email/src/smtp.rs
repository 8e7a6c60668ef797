//! The SMTP side: one transport setup (TLS as configured, never opportunistic), a login with a
//! password or an OAuth 2.0 access token, and failures sorted by whether a retry can help.

use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[cfg(feature = "tls")]
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use switchboard_api::ConnectorError;
use tracing::warn;

use crate::config::{AuthMethod, EmailConfig, SmtpConfig, TlsMode};
use crate::connector::NAME;
use crate::oauth::{TokenError, TokenSource};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Sends mails through the configured server.
pub(crate) struct Smtp {
    config: SmtpConfig,
    /// Host, port, TLS and timeouts; the login is added per send (tokens change).
    builder: AsyncSmtpTransportBuilder,
    /// The XOAUTH2 login name with `auth = "oauth2"`.
    oauth2_user: Option<String>,
}

impl Smtp {
    pub(crate) fn new(config: &EmailConfig) -> Result<Smtp, String> {
        let oauth2_user = (config.auth == AuthMethod::Oauth2).then(|| {
            config
                .smtp
                .oauth2_user
                .clone()
                .unwrap_or_else(|| config.imap.username.clone())
        });
        Ok(Smtp {
            builder: transport_builder(config)?,
            config: config.smtp.clone(),
            oauth2_user,
        })
    }

    /// Sends `message`; with OAuth 2.0 a refused access token is refreshed and the mail sent
    /// once more before the refusal counts.
    pub(crate) async fn send(
        &self,
        message: Message,
        tokens: Option<&TokenSource>,
    ) -> Result<(), ConnectorError> {
        let (Some(tokens), Some(user)) = (tokens, &self.oauth2_user) else {
            let mut builder = self.builder.clone();
            if let Some((user, password)) = &self.config.credentials {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            return self.deliver(builder.build(), message).await;
        };
        let access_token = tokens.access_token().await.map_err(token_error)?;
        match self
            .deliver(self.with_token(user, &access_token), message.clone())
            .await
        {
            Err(ConnectorError::Auth { detail, .. }) => {
                warn!(error = %detail, "SMTP refused the access token; refreshing it once");
                let access_token = tokens
                    .replace_rejected(&access_token)
                    .await
                    .map_err(token_error)?;
                self.deliver(self.with_token(user, &access_token), message)
                    .await
            }
            other => other,
        }
    }

    fn with_token(&self, user: &str, access_token: &str) -> Transport {
        self.builder
            .clone()
            .credentials(Credentials::new(user.to_owned(), access_token.to_owned()))
            .authentication(vec![Mechanism::Xoauth2])
            .build()
    }

    async fn deliver(&self, transport: Transport, message: Message) -> Result<(), ConnectorError> {
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|error| smtp_error(&self.config, error))
    }
}

fn token_error(error: TokenError) -> ConnectorError {
    match error {
        TokenError::Refused(detail) => ConnectorError::Auth {
            connector: NAME,
            detail,
        },
        TokenError::Unavailable(detail) => ConnectorError::Transient {
            connector: NAME,
            detail,
        },
    }
}

fn transport_builder(config: &EmailConfig) -> Result<AsyncSmtpTransportBuilder, String> {
    let smtp = &config.smtp;
    let builder = Transport::builder_dangerous(smtp.host.clone());
    let builder = match smtp.tls {
        TlsMode::Plain => builder,
        #[cfg(feature = "tls")]
        TlsMode::Tls => builder.tls(Tls::Wrapper(smtp_tls_parameters(config)?)),
        // `Required`, never `Opportunistic`: a server without STARTTLS fails the send.
        #[cfg(feature = "tls")]
        TlsMode::Starttls => builder.tls(Tls::Required(smtp_tls_parameters(config)?)),
        #[cfg(not(feature = "tls"))]
        _ => return Err("smtp TLS requested but this build lacks the `tls` feature".into()),
    };
    Ok(builder
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
        .hello_name(ClientId::Domain(config.domain().to_owned())))
}

/// The system's roots plus `smtp.tls_ca_file`'s certificates, checked against `smtp.host`.
#[cfg(feature = "tls")]
fn smtp_tls_parameters(config: &EmailConfig) -> Result<TlsParameters, String> {
    let smtp = &config.smtp;
    let mut parameters = TlsParameters::builder(smtp.host.clone());
    if let Some(pem) = &smtp.tls_ca_pem {
        let certificate = Certificate::from_pem(pem)
            .map_err(|error| format!("smtp.tls_ca_file not usable: {error}"))?;
        parameters = parameters.add_root_certificate(certificate);
    }
    parameters
        .build_rustls()
        .map_err(|error| format!("smtp tls setup: {error}"))
}

/// SMTP failures by whether retrying can help: 4xx, network and TLS trouble can (the reply
/// waits in the outbox while the server or its certificate is fixed), 5xx cannot, refused
/// credentials stop the connector. Every detail names the server.
fn smtp_error(config: &SmtpConfig, error: lettre::transport::smtp::Error) -> ConnectorError {
    let server = format!("{}:{}", config.host, config.port);
    #[cfg(feature = "tls")]
    {
        let explained = crate::tls::explain(&config.host, config.port, &error);
        if explained.starts_with("TLS certificate") {
            return ConnectorError::Transient {
                connector: NAME,
                detail: format!("smtp: {explained}"),
            };
        }
        // A server that stops offering STARTTLS is a server problem, not a bad reply.
        if error.is_tls() || (error.is_client() && error.to_string().contains("STARTTLS")) {
            return ConnectorError::Transient {
                connector: NAME,
                detail: format!("smtp {server}: {error}"),
            };
        }
    }
    let detail = format!("smtp {server}: {error}");
    // lettre's XOAUTH2 cannot answer the error challenge a server sends before refusing a
    // token (RFC 7628 3.2.2); that challenge is the refusal.
    if error.is_client() && error.to_string().contains("does not expect a challenge") {
        return ConnectorError::Auth {
            connector: NAME,
            detail: format!("smtp {server}: the server refused the login (an error challenge)"),
        };
    }
    let code = error.status().map(|code| code.to_string());
    if code
        .as_deref()
        .is_some_and(|c| ["530", "534", "535", "454"].contains(&c))
        && detail.to_ascii_lowercase().contains("auth")
    {
        return ConnectorError::Auth {
            connector: NAME,
            detail,
        };
    }
    // 5xx replies and errors on our side (a malformed envelope) will fail the same way again.
    if error.is_permanent() || error.is_client() {
        ConnectorError::Permanent {
            connector: NAME,
            detail,
        }
    } else {
        ConnectorError::Transient {
            connector: NAME,
            detail,
        }
    }
}
