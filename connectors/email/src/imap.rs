//! The IMAP side: connect (plain, TLS or STARTTLS), log in, list, fetch and mark mails, wait.
//!
//! Every function returns [`ImapError`]; the connector reconnects on `Io` and stops on
//! `Auth`. Mails are fetched with `BODY.PEEK[]`, so reading never marks them seen: only
//! [`mark_processed`], called after the gateway stored the mail, does.

use std::fmt::Debug;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::{ImapConfig, ProcessedAction, TlsMode};

/// Longest a connect, login or single command may take before the connection counts as dead.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A byte stream IMAP can run over (plain TCP or TLS).
pub trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapIo for T {}

/// A logged-in IMAP session.
pub type Session = async_imap::Session<Box<dyn ImapIo>>;

/// Why talking to the IMAP server failed.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The server refused our credentials: retrying will not help.
    #[error("imap login refused: {0}")]
    Auth(String),
    /// Network, protocol or timeout trouble: reconnect with backoff.
    #[error("imap: {0}")]
    Io(String),
    /// The server's certificate was refused (or TLS could not be set up): never retried in
    /// plain text; reconnects with backoff, since the server's certificate may be fixed.
    #[error("imap: {0}")]
    Tls(String),
}

impl From<async_imap::error::Error> for ImapError {
    fn from(error: async_imap::error::Error) -> Self {
        ImapError::Io(error.to_string())
    }
}

/// Runs `future` with [`COMMAND_TIMEOUT`], so a silent server cannot hang the connector.
pub async fn timed<T, E: Into<ImapError>>(
    what: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, future).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(ImapError::Io(format!(
            "{what} timed out after {COMMAND_TIMEOUT:?}"
        ))),
    }
}

/// Connects, reads the greeting, secures the connection as configured and logs in.
pub async fn connect(config: &ImapConfig, login: &Login<'_>) -> Result<Session, ImapError> {
    let ca = config.tls_ca_pem.as_deref();
    let address = (config.host.as_str(), config.port);
    let tcp = timed("connect", async {
        TcpStream::connect(address).await.map_err(|error| {
            ImapError::Io(format!("connect {}:{}: {error}", config.host, config.port))
        })
    })
    .await?;
    let client = match config.tls {
        TlsMode::Plain => {
            greeted(async_imap::Client::new(Box::new(tcp) as Box<dyn ImapIo>)).await?
        }
        TlsMode::Tls => {
            let tls = wrap_imap(tcp, &config.host, config.port, ca).await?;
            greeted(async_imap::Client::new(tls)).await?
        }
        TlsMode::Starttls => {
            let mut plain = greeted(async_imap::Client::new(tcp)).await?;
            // A server refusing STARTTLS ends the connection here: no login in plain text.
            timed("STARTTLS", plain.run_command_and_check_ok("STARTTLS", None))
                .await
                .map_err(|error| {
                    ImapError::Tls(format!(
                        "STARTTLS refused by {}:{}: {error}",
                        config.host, config.port
                    ))
                })?;
            let tls = wrap_imap(plain.into_inner(), &config.host, config.port, ca).await?;
            // No second greeting after STARTTLS (RFC 3501 6.2.1).
            async_imap::Client::new(tls)
        }
    };
    let login = match login {
        Login::Password { user, password } => {
            tokio::time::timeout(COMMAND_TIMEOUT, client.login(user, password)).await
        }
        Login::Xoauth2 { user, access_token } => {
            let answer = Xoauth2 {
                response: Some(crate::oauth::xoauth2_response(user, access_token)),
            };
            tokio::time::timeout(COMMAND_TIMEOUT, client.authenticate("XOAUTH2", answer)).await
        }
    };
    match login {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((async_imap::error::Error::No(why), _)))
        | Ok(Err((async_imap::error::Error::Bad(why), _))) => Err(ImapError::Auth(why)),
        Ok(Err((error, _))) => Err(error.into()),
        Err(_) => Err(ImapError::Io("login timed out".into())),
    }
}

/// How to log in.
pub enum Login<'a> {
    /// LOGIN with a password.
    Password { user: &'a str, password: &'a str },
    /// AUTHENTICATE XOAUTH2 with an OAuth 2.0 access token.
    Xoauth2 {
        user: &'a str,
        access_token: &'a str,
    },
}

/// Sends the XOAUTH2 response first; answers a failure's JSON challenge with the empty line
/// the mechanism asks for, so the server sends its tagged NO.
struct Xoauth2 {
    response: Option<String>,
}

impl async_imap::Authenticator for Xoauth2 {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        self.response.take().unwrap_or_default()
    }
}

/// Reads the server greeting that opens every IMAP connection.
async fn greeted<T: ImapIo>(
    mut client: async_imap::Client<T>,
) -> Result<async_imap::Client<T>, ImapError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, client.read_response()).await {
        Ok(Some(Ok(_))) => Ok(client),
        Ok(Some(Err(error))) => Err(ImapError::Io(format!("greeting: {error}"))),
        Ok(None) => Err(ImapError::Io(
            "server closed the connection before its greeting".into(),
        )),
        Err(_) => Err(ImapError::Io("no greeting from the server".into())),
    }
}

/// UIDs of the mails still to process, oldest first.
pub async fn pending(
    session: &mut Session,
    action: ProcessedAction,
) -> Result<Vec<u32>, ImapError> {
    // With `move`, everything still in the mailbox is unprocessed; with `flag`, the unseen.
    let query = match action {
        ProcessedAction::Flag => "UNSEEN",
        ProcessedAction::Move => "ALL",
    };
    let mut uids: Vec<u32> = timed("UID SEARCH", session.uid_search(query))
        .await?
        .into_iter()
        .collect();
    uids.sort_unstable();
    Ok(uids)
}

/// The mail's size in bytes, or `None` when it vanished meanwhile.
pub async fn size_of(session: &mut Session, uid: u32) -> Result<Option<u32>, ImapError> {
    timed("UID FETCH size", async {
        let mut stream = session.uid_fetch(uid.to_string(), "RFC822.SIZE").await?;
        let mut size = None;
        while let Some(item) = stream.next().await {
            let fetch = item?;
            if fetch.uid.is_none_or(|u| u == uid) {
                size = size.or(fetch.size);
            }
        }
        Ok::<_, ImapError>(size)
    })
    .await
}

/// The whole raw mail (`whole = true`) or only its header, without setting `\Seen`.
pub async fn fetch(
    session: &mut Session,
    uid: u32,
    whole: bool,
) -> Result<Option<Vec<u8>>, ImapError> {
    let item = if whole {
        "BODY.PEEK[]"
    } else {
        "BODY.PEEK[HEADER]"
    };
    timed("UID FETCH", async {
        let mut stream = session.uid_fetch(uid.to_string(), item).await?;
        let mut raw = None;
        while let Some(item) = stream.next().await {
            let fetch = item?;
            if fetch.uid.is_none_or(|u| u == uid) && raw.is_none() {
                let bytes = if whole { fetch.body() } else { fetch.header() };
                raw = bytes.map(<[u8]>::to_vec);
            }
        }
        Ok::<_, ImapError>(raw)
    })
    .await
}

/// Marks a stored (or deliberately skipped) mail as processed: `\Seen`, or moved away.
pub async fn mark_processed(
    session: &mut Session,
    uid: u32,
    action: ProcessedAction,
    target: Option<&str>,
) -> Result<(), ImapError> {
    match (action, target) {
        (ProcessedAction::Move, Some(target)) => {
            timed("UID MOVE", session.uid_mv(uid.to_string(), target)).await
        }
        _ => {
            timed("UID STORE", async {
                let mut stream = session
                    .uid_store(uid.to_string(), "+FLAGS (\\Seen)")
                    .await?;
                while let Some(item) = stream.next().await {
                    item?;
                }
                Ok::<_, ImapError>(())
            })
            .await
        }
    }
}

/// Waits for new mail: IDLE until the server reports something or `limit` passes.
pub async fn idle(session: Session, limit: Duration) -> Result<Session, ImapError> {
    let mut handle = session.idle();
    timed("IDLE", handle.init()).await?;
    {
        let (wait, _stop) = handle.wait_with_timeout(limit);
        // A server that stays silent past `limit` plus slack is treated as gone.
        timed("IDLE wait", async {
            tokio::time::timeout(limit + Duration::from_secs(5), wait)
                .await
                .map_err(|_| ImapError::Io("IDLE wait overran".into()))?
                .map_err(ImapError::from)
        })
        .await?;
    }
    timed("IDLE DONE", handle.done()).await
}

#[cfg(feature = "tls")]
use crate::tls::wrap_imap;

/// This build has no TLS; config validation already reports it.
#[cfg(not(feature = "tls"))]
async fn wrap_imap<S: ImapIo + 'static>(
    _stream: S,
    host: &str,
    port: u16,
    _extra_ca_pem: Option<&[u8]>,
) -> Result<Box<dyn ImapIo>, ImapError> {
    Err(ImapError::Tls(format!(
        "TLS to {host}:{port} requested but this build lacks the `tls` feature"
    )))
}
