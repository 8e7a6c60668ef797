//! [`EmailConnector`]: the mailbox loop (IMAP in) and delivery (SMTP out).
//!
//! The order that makes a crash harmless: fetch (peek) -> `gateway.accept` -> mark processed.
//! A crash between accept and mark re-reads the mail on restart; the gateway's dedupe on
//! Message-ID stores it once. A disconnect anywhere reconnects with backoff and starts over
//! from the server's list of unprocessed mails, so nothing is lost or doubled.
//!
//! With several gateway instances, one reads the mailbox: the holder of a [`PollLease`]
//! (`with_lease`). The others stay logged out and ask for the lease every few seconds; one
//! takes over within [`LEASE_MARGIN`] plus one wait after the holder dies. A handover in the
//! middle of a mail is harmless for the same reason a crash is.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchboard_api::{
    too_large_message, Author, Backoff, Capabilities, ChannelKind, Connector, ConnectorError,
    DeliveryReceipt, Gateway, Health, Inbound, IngestError, Outbound, PollLease,
};
use tracing::{error, info, warn};

use crate::compose::{self, ComposeError};
use crate::config::EmailConfig;
use crate::convert::{self, ConvertSettings, Converted};
use crate::imap::{self, ImapError, Login, Session};
use crate::noise::{SenderRateLimit, SkipReason};
use crate::oauth::{TokenError, TokenSource};
use crate::smtp::Smtp;

pub(crate) const NAME: &str = "email";
/// First wait before reconnecting to the mailbox; it doubles with each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Under a lease, the longest IDLE (or poll) wait before the lease is renewed: it bounds how
/// long the mailbox goes unread after the holder dies.
const LEASED_WAIT: Duration = Duration::from_secs(20);
/// How long the lease outlives a wait, for the mails handled after it (each renews it).
pub const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// How often an instance without the lease asks for it again: a released lease (a rolling
/// restart) is taken over within this.
const LEASE_RETRY: Duration = Duration::from_secs(1);

/// The email channel. Building it opens no connection; `run` and `send` do.
pub struct EmailConnector {
    config: EmailConfig,
    settings: ConvertSettings,
    rate_limit: Mutex<SenderRateLimit>,
    health: Mutex<Health>,
    smtp: OnceLock<Result<Smtp, String>>,
    /// With `auth = "oauth2"`: access tokens for IMAP and SMTP (or why none can be had).
    tokens: Option<Result<TokenSource, String>>,
    lease: Option<Arc<dyn PollLease>>,
}

/// What to do with a mail on the server after handling it.
enum Outcome {
    /// Stored or deliberately skipped: mark it processed.
    Done,
    /// Storage is down: leave it unread and back off.
    Retry(String),
}

impl EmailConnector {
    /// Builds the connector from validated config (with secrets resolved).
    pub fn new(config: EmailConfig) -> EmailConnector {
        let settings = ConvertSettings {
            support_address: config.address.to_lowercase(),
            max_attachment_bytes: config.max_attachment_bytes,
            token_key: config.token_key(),
        };
        EmailConnector {
            rate_limit: Mutex::new(SenderRateLimit::new(config.max_mails_per_sender_per_hour)),
            health: Mutex::new(Health::Down("not connected yet".into())),
            smtp: OnceLock::new(),
            tokens: config.oauth2.as_ref().map(TokenSource::new),
            lease: None,
            settings,
            config,
        }
    }

    /// Reads the mailbox only while `lease` is held, so one of several gateway instances
    /// reads it. Without a lease the connector always reads (one instance).
    pub fn with_lease(mut self, lease: Arc<dyn PollLease>) -> EmailConnector {
        self.lease = Some(lease);
        self
    }

    /// The lease's name: one per mailbox, whichever instance config names it.
    fn lease_name(&self) -> String {
        let imap = &self.config.imap;
        format!(
            "email:poll:{}@{}:{}/{}",
            imap.username, imap.host, imap.port, imap.mailbox
        )
    }

    /// How long one wait for new mail lasts, and the lease that covers it plus the handling.
    fn wait_and_lease_ttl(&self) -> (Duration, Duration) {
        let interval = Duration::from_secs(self.config.imap.poll_interval_secs);
        match self.lease {
            Some(_) => {
                let wait = interval.min(LEASED_WAIT);
                (wait, wait + LEASE_MARGIN)
            }
            None => (interval, Duration::ZERO),
        }
    }

    /// Takes or extends the mailbox lease; always true without one.
    async fn hold_lease(&self, held: bool) -> bool {
        let Some(lease) = &self.lease else {
            return true;
        };
        let (_, ttl) = self.wait_and_lease_ttl();
        let name = self.lease_name();
        match held {
            true => lease.renew(&name, ttl).await,
            false => lease.acquire(&name, ttl).await,
        }
    }

    /// Keeps customers' attachments over `max_bytes` (the gateway's `files.max_bytes`) out,
    /// when that is below the connector's own `max_attachment_bytes`.
    pub fn with_max_file_bytes(mut self, max_bytes: u64) -> EmailConnector {
        let max = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        self.settings.max_attachment_bytes = self.settings.max_attachment_bytes.min(max);
        self
    }

    fn set_health(&self, health: Health) {
        if let Ok(mut slot) = self.health.lock() {
            *slot = health;
        }
    }

    /// One connection's life: log in, then process and wait until something breaks or the
    /// lease is lost (`Ok`).
    async fn session(
        &self,
        gateway: &Arc<dyn Gateway>,
        backoff: &mut Backoff,
    ) -> Result<(), ImapError> {
        let imap = &self.config.imap;
        let mut session = self.login().await?;
        imap::timed("SELECT", session.select(&imap.mailbox)).await?;
        let can_idle = imap.idle
            && imap::timed("CAPABILITY", session.capabilities())
                .await?
                .has_str("IDLE");
        info!(mailbox = %imap.mailbox, idle = can_idle, "mailbox connected");
        self.set_health(Health::Up);
        backoff.reset();
        let (wait, _) = self.wait_and_lease_ttl();
        loop {
            if !self.process_pending(&mut session, gateway).await? {
                info!(mailbox = %imap.mailbox, "mailbox lease lost to another instance; logging out");
                let _ = imap::timed("LOGOUT", session.logout()).await;
                return Ok(());
            }
            session = if can_idle {
                imap::idle(session, wait).await?
            } else {
                tokio::time::sleep(wait).await;
                imap::timed("NOOP", session.noop()).await?;
                session
            };
        }
    }

    /// Handles every unprocessed mail, oldest first, renewing the lease before the list and
    /// each mail; false when the lease was lost.
    async fn process_pending(
        &self,
        session: &mut Session,
        gateway: &Arc<dyn Gateway>,
    ) -> Result<bool, ImapError> {
        let imap = &self.config.imap;
        if !self.hold_lease(true).await {
            return Ok(false);
        }
        for uid in imap::pending(session, imap.processed).await? {
            if !self.hold_lease(true).await {
                return Ok(false);
            }
            let Some(raw) = self.fetch(session, uid).await? else {
                continue; // expunged by someone else meanwhile
            };
            match self.handle(&raw, gateway).await {
                Outcome::Done => {
                    imap::mark_processed(
                        session,
                        uid,
                        imap.processed,
                        imap.processed_mailbox.as_deref(),
                    )
                    .await?
                }
                Outcome::Retry(why) => {
                    return Err(ImapError::Io(format!("storage unavailable: {why}")))
                }
            }
        }
        Ok(true)
    }

    /// The raw mail; a mail far over the attachment limit is read as header plus a notice.
    async fn fetch(&self, session: &mut Session, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let limit = self
            .settings
            .max_attachment_bytes
            .saturating_mul(2)
            .saturating_add(1 << 20);
        let size = imap::size_of(session, uid).await?.unwrap_or(0) as usize;
        if size <= limit {
            return imap::fetch(session, uid, true).await;
        }
        let Some(mut raw) = imap::fetch(session, uid, false).await? else {
            return Ok(None);
        };
        // The header keeps sender and threading; the body says what happened.
        let header_end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 2);
        raw.truncate(header_end.unwrap_or(raw.len()));
        raw.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n\r\n");
        raw.extend_from_slice(
            format!(
                "(This mail was {} MB, over the size limit; its text and attachments are in the support mailbox.)\r\n",
                size / (1024 * 1024)
            )
            .as_bytes(),
        );
        Ok(Some(raw))
    }

    /// Converts and stores one mail.
    async fn handle(&self, raw: &[u8], gateway: &Arc<dyn Gateway>) -> Outcome {
        let inbound = match convert::convert(raw, &self.settings) {
            Converted::Inbound(inbound) => inbound,
            Converted::Skip { reason, sender } => {
                log_skip(&reason, sender.as_deref());
                return Outcome::Done;
            }
        };
        let allowed = self
            .rate_limit
            .lock()
            .map(|mut limit| limit.allow(&inbound.conversation_key, Instant::now()))
            .unwrap_or(true);
        if !allowed {
            log_skip(&SkipReason::RateLimited, Some(&inbound.conversation_key));
            return Outcome::Done;
        }
        let message_id = inbound.message_id.clone();
        let refusal = self.refusal_notice(&inbound);
        match gateway.accept(*inbound).await {
            Ok(accepted) => {
                info!(
                    conversation = %accepted.conversation_id,
                    message_id = %message_id,
                    new = accepted.is_new,
                    "mail stored"
                );
                if let Some(notice) = refusal.filter(|_| accepted.is_new) {
                    self.send_notice(&notice).await;
                }
                Outcome::Done
            }
            Err(IngestError::Rejected(why)) => {
                warn!(message_id = %message_id, %why, "mail rejected by the gateway; marking it processed");
                if let Some(mut notice) = refusal {
                    notice.text = format!("Your mail could not be accepted: {why}");
                    self.send_notice(&notice).await;
                }
                Outcome::Done
            }
            Err(IngestError::Unavailable(why)) => Outcome::Retry(why),
        }
    }

    /// A reply telling the customer which attachments were too large to be taken, if any.
    fn refusal_notice(&self, inbound: &Inbound) -> Option<Outbound> {
        let limit = self.settings.max_attachment_bytes as u64;
        let refused: Vec<String> = inbound
            .files
            .iter()
            .filter(|file| file.bytes.is_none())
            .map(|file| too_large_message(&file.name, file.size, limit))
            .collect();
        if refused.is_empty() {
            return None;
        }
        Some(Outbound {
            // Derived from the mail, so a notice about the same mail has the same Message-ID.
            id: format!("refused.{}", inbound.message_id),
            conversation_id: String::new(),
            channel: crate::CHANNEL,
            conversation_key: inbound.conversation_key.clone(),
            author: Author::System,
            text: format!(
                "We received your mail, but not all of its attachments: {} Please send a \
                 smaller file or a link to it.",
                refused.join(" ")
            ),
            actions: Vec::new(),
            reply_context: inbound.context.attributes.clone(),
            files: Vec::new(),
            maybe_sent: false,
        })
    }

    /// Best effort: the mail itself is handled either way.
    async fn send_notice(&self, notice: &Outbound) {
        if let Err(error) = self.send(notice).await {
            warn!(%error, to = %notice.conversation_key, "attachment refusal not sent");
        }
    }

    /// The SMTP sender, set up on first use (loads TLS roots, never connects).
    fn smtp(&self) -> Result<&Smtp, ConnectorError> {
        let built = self.smtp.get_or_init(|| Smtp::new(&self.config));
        built.as_ref().map_err(|detail| ConnectorError::Permanent {
            connector: NAME,
            detail: detail.clone(),
        })
    }

    /// The token source with `auth = "oauth2"`, `None` with passwords.
    fn tokens(&self) -> Result<Option<&TokenSource>, String> {
        match &self.tokens {
            None => Ok(None),
            Some(Ok(tokens)) => Ok(Some(tokens)),
            Some(Err(why)) => Err(why.clone()),
        }
    }

    /// Logs in to IMAP: with a password, or with an access token that, when refused, is
    /// refreshed and tried once more before the refusal counts.
    async fn login(&self) -> Result<Session, ImapError> {
        let imap = &self.config.imap;
        let tokens = self.tokens().map_err(ImapError::Auth)?;
        let Some(tokens) = tokens else {
            let login = Login::Password {
                user: &imap.username,
                password: &imap.password,
            };
            return imap::connect(imap, &login).await;
        };
        let access_token = tokens.access_token().await.map_err(token_to_imap)?;
        let login = Login::Xoauth2 {
            user: &imap.username,
            access_token: &access_token,
        };
        match imap::connect(imap, &login).await {
            Err(ImapError::Auth(why)) => {
                warn!(%why, "IMAP refused the access token; refreshing it once");
                let access_token = tokens
                    .replace_rejected(&access_token)
                    .await
                    .map_err(token_to_imap)?;
                let login = Login::Xoauth2 {
                    user: &imap.username,
                    access_token: &access_token,
                };
                imap::connect(imap, &login).await
            }
            other => other,
        }
    }
}

fn token_to_imap(error: TokenError) -> ImapError {
    match error {
        TokenError::Refused(why) => ImapError::Auth(why),
        TokenError::Unavailable(why) => ImapError::Io(why),
    }
}

fn log_skip(reason: &SkipReason, sender: Option<&str>) {
    info!(%reason, sender = sender.unwrap_or("(unknown)"), "mail skipped, marked processed");
}

#[async_trait]
impl Connector for EmailConnector {
    fn channel(&self) -> ChannelKind {
        crate::CHANNEL
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            opens_relative_links: false,
            files: true,
        }
    }

    async fn run(&self, gateway: Arc<dyn Gateway>) -> Result<(), ConnectorError> {
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        loop {
            if !self.hold_lease(false).await {
                // Another instance reads the mailbox; sending still works from here.
                self.set_health(Health::Up);
                tokio::time::sleep(LEASE_RETRY).await;
                continue;
            }
            match self.session(&gateway, &mut backoff).await {
                // The lease went to another instance: wait for it like any non-holder.
                Ok(()) => continue,
                Err(ImapError::Auth(detail)) => {
                    self.set_health(Health::Down(format!("login refused: {detail}")));
                    if let Some(lease) = &self.lease {
                        lease.release(&self.lease_name()).await;
                    }
                    return Err(ConnectorError::Auth {
                        connector: NAME,
                        detail,
                    });
                }
                Err(ImapError::Tls(detail)) => {
                    let pause = backoff.next_delay();
                    error!(error = %detail, retry_in = ?pause, "mailbox TLS failed; retrying with TLS only");
                    self.set_health(Health::Down(detail));
                    tokio::time::sleep(pause).await;
                }
                Err(ImapError::Io(detail)) => {
                    let pause = backoff.next_delay();
                    warn!(error = %detail, retry_in = ?pause, "mailbox connection lost; reconnecting");
                    self.set_health(Health::Down(detail));
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    async fn send(&self, outbound: &Outbound) -> Result<DeliveryReceipt, ConnectorError> {
        let message = compose::compose(outbound, &self.config).map_err(|error| match error {
            ComposeError::Sender(_) => ConnectorError::Auth {
                connector: NAME,
                detail: error.to_string(),
            },
            _ => ConnectorError::Permanent {
                connector: NAME,
                detail: error.to_string(),
            },
        })?;
        let message_id = compose::message_id_for(&outbound.id, self.config.domain());
        let tokens = self.tokens().map_err(|detail| ConnectorError::Auth {
            connector: NAME,
            detail,
        })?;
        self.smtp()?.send(message, tokens).await?;
        Ok(DeliveryReceipt {
            platform_message_id: Some(format!("<{message_id}>")),
            ..DeliveryReceipt::default()
        })
    }

    async fn health(&self) -> Health {
        self.health
            .lock()
            .map(|health| health.clone())
            .unwrap_or_else(|_| Health::Down("health state poisoned".into()))
    }
}
