//! Work left in Redis, summed over every partition and read with a plain client, as an
//! operator would with redis-cli: the tests' independent check of what the store reports.

use redis::Commands;
use switchboard::store::{keys, WorkCounts};

/// Queued, pending, parked and dead work and logged escalations over every partition.
pub fn work_left(client: &mut impl redis::ConnectionLike) -> WorkCounts {
    let mut counts = WorkCounts::default();
    for partition in keys::partitions() {
        let (inbound, inbound_pending) =
            backlog(client, keys::inbound(partition), keys::PIPELINE_GROUP);
        let (outbox, outbox_pending) = backlog(client, keys::outbox(partition), keys::OUTBOX_GROUP);
        counts.inbound += inbound;
        counts.inbound_pending += inbound_pending;
        counts.outbox += outbox;
        counts.outbox_pending += outbox_pending;
        counts.parked += client
            .zcard::<_, usize>(keys::outbox_delayed(partition))
            .unwrap();
        counts.dead += client
            .xlen::<_, usize>(keys::outbox_dead(partition))
            .unwrap();
        counts.escalations += client
            .xlen::<_, usize>(keys::escalations(partition))
            .unwrap();
    }
    counts
}

/// (entries not yet acked, of which delivered to a consumer): acked entries stay in the
/// stream until trimmed, so what is left is what comes after the group's last delivered
/// entry, plus what is pending.
fn backlog(client: &mut impl redis::ConnectionLike, stream: String, group: &str) -> (usize, usize) {
    let groups: redis::streams::StreamInfoGroupsReply = match client.xinfo_groups(&stream) {
        Ok(groups) => groups,
        Err(_) => return (0, 0), // no stream yet
    };
    let Some(info) = groups.groups.into_iter().find(|info| info.name == group) else {
        return (0, 0);
    };
    let undelivered: redis::streams::StreamRangeReply = client
        .xrange(&stream, format!("({}", info.last_delivered_id), "+")
        .unwrap();
    (undelivered.ids.len() + info.pending, info.pending)
}
