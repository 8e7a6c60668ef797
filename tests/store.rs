//! The conversation model in a real Redis: ingest, dedupe, find-or-create, status, outbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Commands;
use switchboard::config::OutboxConfig;
use switchboard::model::{conversation_id, Delivery, EscalationReason, Role, Status};
use switchboard::outbox::{DeliveryOutcome, OutboxWorker};
use switchboard::store::{keys, Commit, ReplyToQueue, Store, Work};
use switchboard_api::{
    Author, ChannelKind, Connector, ConnectorError, Identity, Inbound, InboundKind, Outbound,
    RecordingConnector,
};

use crate::harness::{eventually, on_single_and_cluster, TestRedis};
use crate::work::work_left;

/// A web chat message from Dana, as the connector would hand it over.
pub(crate) fn inbound(key: &str, message_id: &str, text: &str) -> Inbound {
    Inbound {
        channel: switchboard_webchat::CHANNEL,
        conversation_key: key.into(),
        message_id: message_id.into(),
        kind: InboundKind::Text,
        author: Identity {
            id: key.into(),
            display_name: Some("Dana".into()),
            ..Default::default()
        },
        text: text.into(),
        context: Default::default(),
        files: Vec::new(),
    }
}

async fn store(redis: &TestRedis) -> Store {
    let store = Store::connect(&redis.url(), Duration::from_millis(500))
        .await
        .expect("connect");
    store.ensure_groups().await.unwrap();
    store
}

async fn ingest_creates_the_conversation_and_a_replay_stores_nothing_twice(redis: TestRedis) {
    let store = store(&redis).await;

    let first = store
        .ingest(&inbound("s:visitor-1", "wc:1", "Hello"))
        .await
        .unwrap();
    let replay = store
        .ingest(&inbound("s:visitor-1", "wc:1", "Hello"))
        .await
        .unwrap();
    let second = store
        .ingest(&inbound("s:visitor-1", "wc:2", "Anyone?"))
        .await
        .unwrap();
    let other = store
        .ingest(&inbound("s:visitor-2", "wc:1", "Hi"))
        .await
        .unwrap();

    assert!(first.is_new);
    assert!(
        !replay.is_new,
        "a retried event must not make a second message"
    );
    assert_eq!(replay.message_id, first.message_id);
    assert_eq!(
        second.conversation_id, first.conversation_id,
        "same visitor, same conversation"
    );
    assert_ne!(other.conversation_id, first.conversation_id);

    let mut redis_client = redis.client();
    let id = conversation_id(switchboard_webchat::CHANNEL, "s:visitor-1");
    let stored: usize = redis_client.xlen(keys::messages(&id)).unwrap();
    assert_eq!(stored, 2);
    let queued = work_left(&mut redis_client).inbound;
    assert_eq!(
        queued, 3,
        "one triage work item per new message, none for the replay"
    );
    let status: String = redis_client
        .hget(keys::conversation(&id), "status")
        .unwrap();
    assert_eq!(status, "bot");
    let contact: String = redis_client
        .hget(keys::conversation(&id), "contact")
        .unwrap();
    assert!(contact.contains("Dana"));
}

async fn concurrent_replays_of_one_event_store_one_message(redis: TestRedis) {
    let store = store(&redis).await;
    let attempts = (0..20).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.ingest(&inbound("s:racer", "wc:same", "hi")).await })
    });
    let mut new = 0;
    for attempt in attempts {
        if attempt.await.unwrap().unwrap().is_new {
            new += 1;
        }
    }
    assert_eq!(new, 1);
    let id = conversation_id(switchboard_webchat::CHANNEL, "s:racer");
    let stored: usize = redis.client().xlen(keys::messages(&id)).unwrap();
    assert_eq!(stored, 1);
}

async fn a_committed_escalation_changes_status_and_shows_the_notice_to_the_customer(
    redis: TestRedis,
) {
    let store = store(&redis).await;
    let ingested = store
        .ingest(&inbound("s:esc", "wc:1", "I want a person"))
        .await
        .unwrap();
    let item = store
        .read_work(
            Work::Inbound,
            "test",
            &keys::ALL_PARTITIONS,
            10,
            Duration::from_millis(10),
        )
        .await
        .unwrap()
        .remove(0);
    let commit = Commit {
        conversation_id: ingested.conversation_id.clone(),
        fields: vec![("status".into(), "escalated".into())],
        reply: Some(ReplyToQueue {
            role: Role::System,
            author: String::new(),
            text: "A person is joining".into(),
            payload: "{}".into(),
            ..Default::default()
        }),
        ack: Some((keys::PIPELINE_GROUP.into(), item.entry_id.clone())),
        escalation_log: Some(r#"{"reason":"human_requested"}"#.into()),
        ..Default::default()
    };
    store.commit(&commit).await.unwrap();

    let view = store
        .customer_view(switchboard_webchat::CHANNEL, "s:esc", None)
        .await
        .unwrap()
        .expect("conversation exists");
    assert_eq!(view.status, "escalated");
    assert_eq!(view.messages.len(), 2);
    assert_eq!(view.messages[1].author, Author::System);
    let mut client = redis.client();
    let left = work_left(&mut client);
    assert_eq!(left.escalations, 1);
    assert_eq!(
        left.inbound_pending, 0,
        "the work item is acked with the decision"
    );
    assert_eq!(left.outbox, 1);
}

/// The web chat channel as the outbox sees it, failing its first `failures` sends.
fn recording_channel(
    failures: usize,
    failure: fn(ChannelKind) -> ConnectorError,
) -> Arc<RecordingConnector> {
    Arc::new(RecordingConnector::new(switchboard_webchat::CHANNEL).failing_first(failures, failure))
}

fn transient(_: ChannelKind) -> ConnectorError {
    ConnectorError::Transient {
        connector: "webchat",
        detail: "connection reset".into(),
    }
}

fn permanent(_: ChannelKind) -> ConnectorError {
    ConnectorError::Permanent {
        connector: "webchat",
        detail: "unknown recipient".into(),
    }
}

async fn queue_reply(store: &Store, key: &str, text: &str) -> String {
    let ingested = store
        .ingest(&inbound(key, &format!("wc:{text}"), "question"))
        .await
        .unwrap();
    let outbound = Outbound {
        id: String::new(),
        conversation_id: ingested.conversation_id.clone(),
        channel: switchboard_webchat::CHANNEL,
        conversation_key: key.into(),
        author: Author::Ai,
        text: text.into(),
        actions: vec![],
        reply_context: Default::default(),
        files: Vec::new(),
        maybe_sent: false,
    };
    store
        .commit(&Commit {
            conversation_id: ingested.conversation_id,
            reply: Some(ReplyToQueue {
                role: Role::Ai,
                author: String::new(),
                text: text.into(),
                payload: serde_json::to_string(&Delivery::Customer(outbound)).unwrap(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .entry_id
        .expect("reply queued")
}

fn worker(store: Store, channel: Arc<RecordingConnector>, name: &str) -> OutboxWorker {
    let connectors: HashMap<ChannelKind, Arc<dyn Connector>> =
        HashMap::from([(switchboard_webchat::CHANNEL, channel as Arc<dyn Connector>)]);
    let config = OutboxConfig {
        claim_idle_ms: 300,
        initial_backoff_ms: 50,
        max_backoff_ms: 200,
        give_up_after_ms: 60_000,
        unhealthy_after_ms: 60_000,
        send_timeout_ms: 1000,
    };
    OutboxWorker::new(store, connectors, config, name.into())
}

async fn a_reply_whose_sender_died_before_ack_is_delivered_once_by_another(redis: TestRedis) {
    let store = store(&redis).await;
    let transcript_id = queue_reply(&store, "s:crash", "Here is how to reset it").await;

    // Instance A takes the entry and dies before delivering or acking it.
    let taken_at = Instant::now();
    let taken = store
        .read_work(
            Work::Outbox,
            "instance-a",
            &keys::ALL_PARTITIONS,
            10,
            Duration::from_millis(10),
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);

    let channel = recording_channel(0, transient);
    let survivor = worker(store.clone(), channel.clone(), "instance-b");
    // B keeps polling; it takes the entry over once A held it for claim_idle_ms, not before.
    let outcomes = eventually(Duration::from_secs(10), "the entry taken over", || async {
        let outcomes = survivor.work_once(Duration::from_millis(10)).await.unwrap();
        (!outcomes.is_empty()).then_some(outcomes)
    })
    .await;
    assert!(
        taken_at.elapsed() >= Duration::from_millis(300),
        "a live owner's entry is not stolen before claim_idle_ms"
    );
    assert_eq!(outcomes, vec![DeliveryOutcome::Delivered]);
    let again = survivor.work_once(Duration::from_millis(10)).await.unwrap();
    assert!(again.is_empty());

    let delivered = channel.sent();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].text, "Here is how to reset it");
    assert_eq!(
        delivered[0].id, transcript_id,
        "the outbound id is the transcript id"
    );
    assert_eq!(work_left(&mut redis.client()).outbox, 0);
}

async fn a_failed_delivery_is_retried_with_backoff_then_delivered_once(redis: TestRedis) {
    let store = store(&redis).await;
    queue_reply(&store, "s:retry", "Try this").await;
    let channel = recording_channel(2, transient);
    let outbox = worker(store.clone(), channel.clone(), "solo");

    let mut outcomes = Vec::new();
    for _ in 0..40 {
        outcomes.extend(outbox.work_once(Duration::from_millis(20)).await.unwrap());
        if outcomes.contains(&DeliveryOutcome::Delivered) {
            break;
        }
    }
    assert!(matches!(
        outcomes[0],
        DeliveryOutcome::Retrying { attempt: 1, .. }
    ));
    assert!(
        matches!(outcomes[1], DeliveryOutcome::Retrying { attempt: 2, after } if after > Duration::from_millis(50))
    );
    assert_eq!(outcomes[2], DeliveryOutcome::Delivered);
    assert_eq!(channel.sent().len(), 1);
}

async fn an_undeliverable_reply_goes_to_dead_letters_with_the_reason(redis: TestRedis) {
    let store = store(&redis).await;
    queue_reply(&store, "s:dead", "Never arrives").await;
    let outbox = worker(
        store.clone(),
        recording_channel(usize::MAX, permanent),
        "solo",
    );
    let outcomes = outbox.work_once(Duration::from_millis(20)).await.unwrap();
    assert!(
        matches!(&outcomes[0], DeliveryOutcome::DeadLettered(reason) if reason.contains("unknown recipient"))
    );
    let mut client = redis.client();
    let left = work_left(&mut client);
    assert_eq!(left.dead, 1);
    assert_eq!(left.outbox, 0);
}

async fn replies_to_one_customer_arrive_in_order_when_an_earlier_one_is_retried(redis: TestRedis) {
    let store = store(&redis).await;
    queue_reply(&store, "s:order", "First answer").await;
    queue_reply(&store, "s:order", "Second answer").await;
    let channel = recording_channel(1, transient);
    let outbox = worker(store.clone(), channel.clone(), "solo");

    let first_round = outbox.work_once(Duration::from_millis(20)).await.unwrap();
    assert!(
        matches!(
            first_round.as_slice(),
            [
                DeliveryOutcome::Retrying { attempt: 1, .. },
                DeliveryOutcome::Waiting
            ]
        ),
        "the second reply waits behind the first: {first_round:?}"
    );
    // A reply written while the first waits for its retry waits too; another customer does not.
    queue_reply(&store, "s:order", "Third answer").await;
    queue_reply(&store, "s:other", "Another customer's answer").await;
    for _ in 0..50 {
        outbox.work_once(Duration::from_millis(20)).await.unwrap();
        if channel.sent().len() == 4 {
            break;
        }
    }
    let delivered: Vec<String> = channel.sent_texts();
    let to_first_customer: Vec<&String> = delivered
        .iter()
        .filter(|text| !text.starts_with("Another"))
        .collect();
    assert_eq!(
        to_first_customer,
        ["First answer", "Second answer", "Third answer"],
        "{delivered:?}"
    );
    assert_eq!(
        delivered.first().map(String::as_str),
        Some("Another customer's answer"),
        "a retry for one customer holds up nobody else: {delivered:?}"
    );
    assert_eq!(work_left(&mut redis.client()).parked, 0);
}

async fn done_work_is_trimmed_from_its_stream_and_pending_work_never_is(redis: TestRedis) {
    let store = store(&redis).await;
    // One customer's messages share a partition, so they fill one stream's nodes.
    let key = "s:chatty";
    for m in 0..250 {
        store
            .ingest(&inbound(key, &format!("wc:{m}"), "Hello?"))
            .await
            .unwrap();
    }
    let partition = keys::partition(&conversation_id(switchboard_webchat::CHANNEL, key));
    let stream_length =
        |redis: &TestRedis| -> usize { redis.client().xlen(keys::inbound(partition)).unwrap() };
    let items = store
        .read_work(
            Work::Inbound,
            "worker",
            &[partition],
            300,
            Duration::from_millis(10),
        )
        .await
        .unwrap();
    assert_eq!(items.len(), 250);

    // The oldest entry stays pending (its worker is slow): nothing may go.
    let acks: Vec<(Work, &switchboard::store::WorkItem)> = items[1..]
        .iter()
        .map(|item| (Work::Inbound, item))
        .collect();
    store.commit_batch(&[], &acks).await.unwrap();
    store.trim_done(Work::Inbound, &[partition]).await.unwrap();
    assert_eq!(
        stream_length(&redis),
        250,
        "an entry still pending is never trimmed"
    );
    let left = store.work_counts().await.unwrap();
    assert_eq!((left.inbound, left.inbound_pending), (1, 1), "{left:?}");

    store
        .commit_batch(&[], &[(Work::Inbound, &items[0])])
        .await
        .unwrap();
    let trimmed = store.trim_done(Work::Inbound, &[partition]).await.unwrap();
    assert!(
        trimmed >= 100 && stream_length(&redis) <= 150,
        "whole nodes of done entries go: trimmed {trimmed}, left {}",
        stream_length(&redis)
    );
    assert_eq!(store.work_counts().await.unwrap().inbound, 0);
    assert_eq!(work_left(&mut redis.client()).inbound, 0);

    // New work after a trim is still read and counted.
    store
        .ingest(&inbound(key, "wc:after", "Still there?"))
        .await
        .unwrap();
    assert_eq!(store.work_counts().await.unwrap().inbound, 1);
    assert_eq!(work_left(&mut redis.client()).inbound, 1);
}

async fn work_left_in_the_layout_before_partitions_is_named(redis: TestRedis) {
    let store = store(&redis).await;
    assert!(store.unpartitioned_work().await.unwrap().is_empty());
    let _: String = redis
        .client()
        .xadd("sb:inbound", "*", &[("conv", "c"), ("msg", "1-0")])
        .unwrap();
    assert_eq!(
        store.unpartitioned_work().await.unwrap(),
        vec![("sb:inbound", 1)]
    );
}

/// A record written by another version (a newer status, reason or role) still loads: the
/// customer keeps being answered and the unknown entry is shown to no one.
async fn a_record_with_unknown_stored_values_loads_without_panic(redis: TestRedis) {
    let store = store(&redis).await;
    let ingested = store
        .ingest(&inbound("s:future", "wc:1", "Hello"))
        .await
        .unwrap();
    let id = ingested.conversation_id.clone();
    let mut client = redis.client();
    let _: () = client
        .hset_multiple(
            keys::conversation(&id),
            &[
                ("status", "snoozed"),
                ("escalation_reason", "legal_hold"),
                ("last_decision", "{not json"),
                ("escalated_ms", "soon"),
                ("a_field_from_the_future", "1"),
            ],
        )
        .unwrap();
    let _: String = client
        .xadd(
            keys::messages(&id),
            "*",
            &[("role", "bot_v2"), ("text", "internal")],
        )
        .unwrap();

    let (conversation, transcript) = store
        .conversation_with_recent(&id, 10)
        .await
        .unwrap()
        .expect("the record loads");
    assert_eq!(
        conversation.status,
        Status::Bot,
        "an unknown status is answered by the AI"
    );
    assert_eq!(
        conversation.escalation_reason,
        Some(EscalationReason::Other("legal_hold".into()))
    );
    assert!(conversation.last_decision.is_none());
    assert_eq!(conversation.escalated_ms, None);
    assert_eq!(conversation.channel, switchboard_webchat::CHANNEL);
    assert_eq!(transcript.len(), 2);
    assert_eq!(transcript[1].role, Role::Other("bot_v2".into()));
    let view = store
        .customer_view(switchboard_webchat::CHANNEL, "s:future", None)
        .await
        .unwrap()
        .expect("conversation exists");
    let texts: Vec<&str> = view.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        ["Hello"],
        "an entry of an unknown role reaches no customer"
    );
}

on_single_and_cluster!(
    a_record_with_unknown_stored_values_loads_without_panic,
    work_left_in_the_layout_before_partitions_is_named,
    done_work_is_trimmed_from_its_stream_and_pending_work_never_is,
    ingest_creates_the_conversation_and_a_replay_stores_nothing_twice,
    concurrent_replays_of_one_event_store_one_message,
    a_committed_escalation_changes_status_and_shows_the_notice_to_the_customer,
    a_reply_whose_sender_died_before_ack_is_delivered_once_by_another,
    a_failed_delivery_is_retried_with_backoff_then_delivered_once,
    an_undeliverable_reply_goes_to_dead_letters_with_the_reason,
    replies_to_one_customer_arrive_in_order_when_an_earlier_one_is_retried,
);
