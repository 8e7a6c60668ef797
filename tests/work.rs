//! Work left in Redis, summed over every partition and read with a plain client, as an
//! operator would with redis-cli: the tests' independent check of what the store reports.

use redis::Commands;
use switchboard::store::{keys, WorkCounts};

/// Queued, pending, parked and dead work and logged escalations over every partition.
pub fn work_left(client: &mut impl redis::ConnectionLike) -> WorkCounts {
    let mut counts = WorkCounts::default();
    for partition in keys::partitions() {
        counts.inbound += client.xlen::<_, usize>(keys::inbound(partition)).unwrap();
        counts.inbound_pending += pending(client, keys::inbound(partition), keys::PIPELINE_GROUP);
        counts.outbox += client.xlen::<_, usize>(keys::outbox(partition)).unwrap();
        counts.outbox_pending += pending(client, keys::outbox(partition), keys::OUTBOX_GROUP);
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

fn pending(client: &mut impl redis::ConnectionLike, stream: String, group: &str) -> usize {
    client
        .xpending::<_, _, redis::streams::StreamPendingReply>(stream, group)
        .map(|reply| reply.count())
        .unwrap_or(0)
}
