//! Reminders: an escalation nobody claims, or a customer nobody answers, is brought back to
//! the desk's attention in its thread, calling whom the route names.
//!
//! Waits are found through the desk watch list (`store::keys::desk_watch`), which the commit
//! that starts a wait fills in the same step, so no wait is missed across restarts. Every
//! instance sweeps; a reminder is a commit deduplicated on the wait it is about, so however
//! many instances see it due, it is posted once.

use std::sync::Arc;
use std::time::Duration;

use switchboard_api::{DeskNotice, Waiting};
use tracing::{info, warn};

use crate::config::{DeskRoute, Reminders};
use crate::metrics::Metrics;
use crate::model::{now_ms, Conversation, Delivery, DeskAction, DeskPost, Status};
use crate::store::{keys, Commit, Store, StoreError};

/// Conversations looked at per partition and sweep; the rest wait for the next sweep.
const SWEEP_BATCH: usize = 200;

/// When and whom to remind, for one route (or the desk's default).
#[derive(Debug, Clone, PartialEq)]
struct RouteReminder {
    claim_after: Option<Duration>,
    mention: Option<String>,
    broadcast: bool,
}

/// The desk's reminder settings, resolved per desk channel.
#[derive(Debug, Clone)]
pub struct ReminderPolicy {
    default: RouteReminder,
    /// By desk channel: the first route naming a channel decides for its threads.
    routes: Vec<(String, RouteReminder)>,
    reply_after: Option<Duration>,
}

fn minutes(value: f64) -> Option<Duration> {
    (value > 0.0).then(|| Duration::from_secs_f64(value * 60.0))
}

impl ReminderPolicy {
    pub fn new(reminders: &Reminders, routes: &[DeskRoute]) -> ReminderPolicy {
        let default = RouteReminder {
            claim_after: minutes(reminders.remind_after_minutes),
            mention: reminders.mention.clone(),
            broadcast: reminders.broadcast_reminders,
        };
        let routes = routes
            .iter()
            .map(|route| {
                let reminder = RouteReminder {
                    claim_after: route
                        .remind_after_minutes
                        .map_or(default.claim_after, minutes),
                    mention: route.mention.clone().or_else(|| default.mention.clone()),
                    broadcast: route.broadcast_reminders.unwrap_or(default.broadcast),
                };
                (route.channel.clone(), reminder)
            })
            .collect();
        ReminderPolicy {
            default,
            routes,
            reply_after: minutes(reminders.remind_waiting_customer_minutes),
        }
    }

    fn for_channel(&self, channel: &str) -> &RouteReminder {
        self.routes
            .iter()
            .find(|(route_channel, _)| route_channel == channel)
            .map_or(&self.default, |(_, reminder)| reminder)
    }

    /// The shortest wait anything is reminded after; `None` when reminders are all off.
    fn shortest(&self) -> Option<Duration> {
        std::iter::once(self.default.claim_after)
            .chain(self.routes.iter().map(|(_, route)| route.claim_after))
            .chain(std::iter::once(self.reply_after))
            .flatten()
            .min()
    }
}

/// Sweeps the desk watch list and posts reminders that are due.
pub struct DeskReminders {
    store: Store,
    metrics: Arc<Metrics>,
    policy: ReminderPolicy,
}

impl DeskReminders {
    pub fn new(store: Store, metrics: Arc<Metrics>, policy: ReminderPolicy) -> DeskReminders {
        DeskReminders {
            store,
            metrics,
            policy,
        }
    }

    /// Sweeps for as long as the gateway runs; a quarter of the shortest wait apart, so a
    /// reminder is at most that late.
    pub async fn run(self) {
        let Some(shortest) = self.policy.shortest() else {
            return std::future::pending().await;
        };
        let period = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
        loop {
            if let Err(error) = self.sweep().await {
                warn!(%error, "desk reminders: sweep failed; trying again");
            }
            tokio::time::sleep(period).await;
        }
    }

    /// Looks at every wait due by now; returns how many reminders it posted.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        self.sweep_as_of(now_ms()).await
    }

    /// [`DeskReminders::sweep`] as if the clock read `now` (ms since the epoch).
    pub async fn sweep_as_of(&self, now: u64) -> Result<usize, StoreError> {
        let mut posted = 0;
        for partition in keys::partitions() {
            for id in self.store.watched_due(partition, now, SWEEP_BATCH).await? {
                if self.look_at(&id, now).await? {
                    posted += 1;
                }
            }
        }
        Ok(posted)
    }

    async fn look_at(&self, id: &str, now: u64) -> Result<bool, StoreError> {
        let Some(conversation) = self.store.conversation(id).await? else {
            self.store.settle_watch(id).await?;
            return Ok(false);
        };
        let recheck = self.policy.shortest().unwrap_or(Duration::from_secs(60));
        let Some(thread) = &conversation.desk_thread else {
            // The briefing is still on its way to the desk (or the desk is down): a reminder
            // needs its thread, so look again later.
            self.store
                .watch_later(id, now + recheck.as_millis() as u64)
                .await?;
            return Ok(false);
        };
        let route = self.policy.for_channel(&thread.channel);
        let wait = match conversation.status {
            Status::Escalated => conversation
                .escalated_ms
                .zip(route.claim_after)
                .map(|(since, after)| (Waiting::ForClaim, since, after)),
            Status::Human => conversation
                .customer_waiting_ms
                .zip(self.policy.reply_after)
                .map(|(since, after)| (Waiting::ForReply, since, after)),
            Status::Bot | Status::Resolved => None,
        };
        let Some((waiting, since, after)) = wait else {
            if !self.store.settle_watch(id).await? {
                // A wait began since the record was read, or its reminder is off.
                self.store
                    .watch_later(id, now + recheck.as_millis() as u64)
                    .await?;
            }
            return Ok(false);
        };
        let due = since + after.as_millis() as u64;
        if now < due {
            self.store.watch_later(id, due).await?;
            return Ok(false);
        }
        let posted = self
            .remind(&conversation, route, waiting, since, now)
            .await?;
        // Once per wait: the dedupe keeps a second look from posting again, and a new wait
        // (claimed, then the customer writes) has a new start.
        self.store
            .watch_later(id, now + after.as_millis() as u64)
            .await?;
        Ok(posted)
    }

    async fn remind(
        &self,
        conversation: &Conversation,
        route: &RouteReminder,
        waiting: Waiting,
        since: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let minutes = now.saturating_sub(since) / 60_000;
        let notice = DeskNotice::Reminder {
            waiting,
            minutes,
            mention: route.mention.clone(),
            broadcast: route.broadcast,
        };
        let kind = match waiting {
            Waiting::ForClaim => "for_claim",
            Waiting::ForReply => "for_reply",
        };
        let post = Delivery::Desk(DeskPost {
            conversation_id: conversation.id.clone(),
            action: DeskAction::Notify { notice },
        });
        let committed = self
            .store
            .commit(&Commit {
                conversation_id: conversation.id.clone(),
                desk_payload: serde_json::to_string(&post).ok(),
                dedupe: Some(format!("reminder:{kind}:{since}")),
                ..Default::default()
            })
            .await?;
        if committed.applied {
            self.metrics
                .desk_reminders
                .get_or_create(&Metrics::label("waiting", kind))
                .inc();
            info!(conversation = %conversation.id, waiting = kind, minutes, "desk reminded");
        }
        Ok(committed.applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_overrides_the_desk_default_and_zero_turns_a_reminder_off() {
        let reminders = Reminders {
            remind_after_minutes: 10.0,
            remind_waiting_customer_minutes: 0.0,
            mention: Some("@here".into()),
            broadcast_reminders: false,
        };
        let routes = [
            DeskRoute {
                channel: "CVIP".into(),
                remind_after_minutes: Some(2.0),
                mention: Some("S0VIPTEAM".into()),
                broadcast_reminders: Some(true),
                ..Default::default()
            },
            DeskRoute {
                channel: "CQUIET".into(),
                remind_after_minutes: Some(0.0),
                ..Default::default()
            },
        ];
        let policy = ReminderPolicy::new(&reminders, &routes);
        let vip = policy.for_channel("CVIP");
        assert_eq!(vip.claim_after, Some(Duration::from_secs(120)));
        assert_eq!(vip.mention.as_deref(), Some("S0VIPTEAM"));
        assert!(vip.broadcast);
        assert_eq!(policy.for_channel("CQUIET").claim_after, None);
        assert_eq!(
            policy.for_channel("CQUIET").mention.as_deref(),
            Some("@here")
        );
        let other = policy.for_channel("CSUPPORT");
        assert_eq!(other.claim_after, Some(Duration::from_secs(600)));
        assert_eq!(policy.reply_after, None);
        assert_eq!(policy.shortest(), Some(Duration::from_secs(120)));
        let all_off = Reminders {
            remind_after_minutes: 0.0,
            remind_waiting_customer_minutes: 0.0,
            ..Reminders::default()
        };
        assert_eq!(ReminderPolicy::new(&all_off, &[]).shortest(), None);
    }
}
