//! The harness's Redis Cluster forms for real: three masters sharing every slot.

use crate::harness::RedisCluster;

const SLOTS: usize = 16384;

#[test]
fn cluster_starts_with_three_masters_covering_all_slots() {
    let cluster = RedisCluster::start();
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    assert_eq!(urls[0], cluster.url());

    // Every node, not only the seed, must serve: clients may be redirected to any of them.
    for url in &urls {
        let mut connection = redis::Client::open(url.as_str())
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|error| panic!("connect to {url}: {error}"));
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut connection)
            .expect("CLUSTER INFO");
        assert!(
            info.lines().any(|line| line.trim() == "cluster_state:ok"),
            "{url}: {info}"
        );
    }

    let mut connection = cluster.client().get_connection().expect("connect to seed");
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut connection)
        .expect("CLUSTER NODES");
    // Line format: id addr flags master ping pong epoch link-state slot...
    let masters: Vec<Vec<&str>> = nodes
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.len() >= 8 && fields[2].split(',').any(|flag| flag == "master"))
        .collect();
    assert_eq!(masters.len(), 3, "{nodes}");
    let mut owner = vec![0u32; SLOTS];
    for fields in &masters {
        assert_eq!(fields[7], "connected", "{nodes}");
        assert!(fields.len() > 8, "a master without slots:\n{nodes}");
        for range in &fields[8..] {
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            let first: usize = first.parse().unwrap_or_else(|_| panic!("slot {range}"));
            let last: usize = last.parse().unwrap_or_else(|_| panic!("slot {range}"));
            for slot in &mut owner[first..=last] {
                *slot += 1;
            }
        }
    }
    assert!(
        owner.iter().all(|&count| count == 1),
        "slots not covered exactly once:\n{nodes}"
    );
}
