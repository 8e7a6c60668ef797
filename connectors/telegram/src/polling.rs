//! Long polling: `getUpdates` with an offset that only moves past an update once the
//! gateway has stored it, under a lease so one gateway instance polls at a time.
//!
//! Telegram keeps the confirmed offset on its side (calling `getUpdates` with `offset = n`
//! confirms everything below `n`), so the offset in memory here is enough: a crash or a new
//! lease holder starts without one and Telegram hands out every unconfirmed update again;
//! the gateway's dedupe on `tg:<update_id>` stores each once. When storage is down the
//! batch stops at the failing update and the next poll asks for it again.

use std::sync::Arc;
use std::time::Duration;

use switchboard_api::{Backoff, ConnectorError, Gateway, Health};
use tracing::{info, warn};

use crate::client::BotAccount;
use crate::connector::Shared;
use crate::convert;

/// The first wait before retrying a failing poll or getMe.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between retries of a failing poll or getMe.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often an instance without the lease asks for it again: a released lease (a rolling
/// restart) is taken over within this, for the price of one small Redis call a second.
const LEASE_RETRY: Duration = Duration::from_secs(1);
/// How long the polling lease outlives the poll it was renewed for.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Checks the token with `getMe`, retrying transient failures; a rejected token is final.
pub(crate) async fn check_token(shared: &Shared) -> Result<BotAccount, ConnectorError> {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        match shared.client.get_me().await {
            Ok(account) => {
                shared.set_health(Health::Up);
                return Ok(account);
            }
            Err(error @ ConnectorError::Auth { .. }) => {
                warn!(%error, "telegram connector stopped");
                shared.set_health(Health::Down(error.to_string()));
                return Err(error);
            }
            Err(error) => {
                warn!(%error, "getMe failed; retrying");
                shared.set_health(Health::Down(error.to_string()));
                tokio::time::sleep(retry_delay(&mut backoff, &error)).await;
            }
        }
    }
}

/// Polls until the token is rejected; every other failure is retried with backoff.
pub(crate) async fn poll(
    shared: Arc<Shared>,
    gateway: Arc<dyn Gateway>,
    account: BotAccount,
) -> Result<(), ConnectorError> {
    let timeout = Duration::from_secs(shared.config.poll_timeout_secs);
    let lease_name = format!("telegram:poll:{}", account.id);
    // Renewed before every poll, so it must outlast one poll plus storing its batch. The TTL is
    // also how long Telegram goes unpolled after the holder crashes, so the margin stays
    // small: a live holder that overruns it costs one 409 and a handover, never an update
    // (the offset lives at Telegram and ingest dedupes).
    let lease_ttl = timeout + LEASE_MARGIN;
    let mut holding = false;
    let mut webhook_cleared = false;
    let mut offset: Option<i64> = None;
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        if let Some(lease) = shared.lease.get() {
            let held = if holding {
                lease.renew(&lease_name, lease_ttl).await
            } else {
                lease.acquire(&lease_name, lease_ttl).await
            };
            if held != holding {
                info!(lease = %lease_name, held, "telegram polling lease changed hands");
                // A new holder starts from Telegram's confirmed offset.
                offset = None;
            }
            holding = held;
            if !held {
                tokio::time::sleep(LEASE_RETRY).await;
                continue;
            }
        }
        let result = match webhook_cleared {
            true => shared.client.get_updates(offset, timeout).await,
            // A webhook left set (an earlier webhook-mode deployment) makes getUpdates 409.
            false => match shared.client.delete_webhook().await {
                Ok(()) => {
                    webhook_cleared = true;
                    continue;
                }
                Err(error) => Err(error),
            },
        };
        let updates = match result {
            Ok(updates) => updates,
            Err(error @ ConnectorError::Auth { .. }) => {
                warn!(%error, "telegram connector stopped");
                shared.set_health(Health::Down(error.to_string()));
                if let Some(lease) = shared.lease.get().filter(|_| holding) {
                    lease.release(&lease_name).await;
                }
                return Err(error);
            }
            Err(error) => {
                warn!(%error, "telegram poll failed; retrying");
                shared.set_health(Health::Down(error.to_string()));
                tokio::time::sleep(retry_delay(&mut backoff, &error)).await;
                continue;
            }
        };
        backoff.reset();
        shared.set_health(Health::Up);
        for raw in &updates {
            let Some(update_id) = convert::update_id(raw) else {
                warn!("update without an update_id skipped");
                continue;
            };
            if let Err(error) = shared.handle_update(gateway.as_ref(), raw).await {
                // Not confirmed: the next poll starts at this update again.
                warn!(%error, update_id, "update not stored; will read it again");
                shared.set_health(Health::Down(format!("storage: {error}")));
                tokio::time::sleep(backoff.next_delay()).await;
                break;
            }
            // Replays (ids below the offset) are handled again but never move it back.
            offset = Some(offset.map_or(update_id + 1, |current| current.max(update_id + 1)));
        }
    }
}

/// The next wait of `backoff`; a 429 waits as long as Telegram asks instead.
fn retry_delay(backoff: &mut Backoff, error: &ConnectorError) -> Duration {
    match error {
        ConnectorError::RateLimited { retry_after, .. } => *retry_after,
        _ => backoff.next_delay(),
    }
}
