//! The store on a real 3-master Redis Cluster: found from any node, spread over every master,
//! and its batch reads and writes (which cross partitions) work there as on a single server.

use std::time::Duration;

use redis::Commands;
use switchboard::store::{keys, Commit, Store, Work};
use switchboard_api::{Identity, Inbound, InboundKind};

use crate::harness::RedisCluster;

fn inbound(key: &str) -> Inbound {
    Inbound {
        channel: switchboard_webchat::CHANNEL,
        conversation_key: key.into(),
        message_id: "wc:1".into(),
        kind: InboundKind::Text,
        author: Identity {
            id: key.into(),
            ..Default::default()
        },
        text: "Where is my order?".into(),
        context: Default::default(),
        files: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_given_any_node_spreads_conversations_over_every_master_and_batches_across_them() {
    let cluster = RedisCluster::start();
    // Not the seed: an operator may name whichever node they like.
    let url = cluster.urls()[2].clone();
    let store = Store::connect(&url, Duration::from_secs(2))
        .await
        .expect("connect to the cluster");
    assert!(store.is_cluster(), "a cluster node is recognised as such");
    store.ensure_groups().await.unwrap();

    let customers: Vec<String> = (0..64).map(|n| format!("s:cluster-visitor-{n}")).collect();
    let mut ids = Vec::new();
    for key in &customers {
        let ingested = store.ingest(&inbound(key)).await.unwrap();
        assert!(ingested.is_new && ingested.created);
        ids.push(ingested.conversation_id);
    }
    let partitions: std::collections::HashSet<usize> =
        ids.iter().map(|id| keys::partition(id)).collect();
    assert!(partitions.len() > 8, "64 customers fall in many partitions");

    for node in cluster.urls() {
        let mut conn = redis::Client::open(node.as_str())
            .and_then(|client| client.get_connection())
            .unwrap();
        let held: usize = redis::cmd("DBSIZE").query(&mut conn).unwrap();
        assert!(held > 0, "master {node} holds none of the data");
    }

    // One batch read over every partition, as triage does.
    let wanted: Vec<&str> = ids.iter().map(String::as_str).collect();
    let loaded = store.conversations_with_recent(&wanted, 5).await.unwrap();
    assert_eq!(loaded.len(), 64);
    for (found, id) in loaded.iter().zip(&ids) {
        let (conversation, recent) = found.as_ref().expect("conversation found");
        assert_eq!(&conversation.id, id);
        assert_eq!(recent.len(), 1);
    }

    // Every partition's work is read, then acked in one batch with decisions.
    let items = store
        .read_work(
            Work::Inbound,
            "worker",
            &keys::ALL_PARTITIONS,
            100,
            Duration::from_millis(100),
        )
        .await
        .unwrap();
    assert_eq!(items.len(), 64, "every partition's inbound work is read");
    let commits: Vec<Commit> = items
        .iter()
        .take(32)
        .map(|item| Commit {
            conversation_id: item.fields["conv"].clone(),
            fields: vec![("status".into(), "escalated".into())],
            ack: Some((keys::PIPELINE_GROUP.into(), item.entry_id.clone())),
            ..Default::default()
        })
        .collect();
    let acks: Vec<(Work, &switchboard::store::WorkItem)> = items
        .iter()
        .skip(32)
        .map(|item| (Work::Inbound, item))
        .collect();
    let committed = store.commit_batch(&commits, &acks).await.unwrap();
    assert!(committed.iter().all(|commit| commit.applied));

    let counts = store.work_counts().await.unwrap();
    assert_eq!(counts.inbound, 0, "every work item acked: {counts:?}");
    assert_eq!(counts.inbound_pending, 0);
    let mut conn = redis::cluster::ClusterClient::new(cluster.urls())
        .and_then(|client| client.get_connection())
        .unwrap();
    let escalated = ids
        .iter()
        .filter(|id| {
            conn.hget::<_, _, Option<String>>(keys::conversation(id), "status")
                .unwrap()
                .as_deref()
                == Some("escalated")
        })
        .count();
    assert_eq!(escalated, 32);
}
