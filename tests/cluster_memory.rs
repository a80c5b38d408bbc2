//! The cluster's rules without a NATS server: three gateways in this process, joined by the in-process wire
//! (`bus::MemoryHub`) and sharing one SQLite file. The same code runs as over NATS (the bus's events, requests
//! and answers); only the wire under it differs, so these tests check the rules (presence across nodes, one
//! order for a room's messages, chmod on one node holding on the others, a node that is cut off leaving
//! presence within the TTL and coming back when its link does) in a second or two, and tests/cluster.rs keeps
//! checking the real thing over NATS and PostgreSQL.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::pushes::{neighbors, texts, until_data, until_neighbor, until_sends, DEADLINE};
use odd_gateway::bus::{MemoryHub, MemoryLink};
use odd_gateway::config::Config;
use odd_gateway::gateway::Gateway;
use serde_json::json;

const HEARTBEAT_MS: u64 = 100;
const TTL_MS: u64 = 500;
const KEY: &str = "k-ops-0123456789";

struct Node {
    gw: Gateway,
    link: MemoryLink,
}

impl Node {
    fn url(&self) -> String {
        format!("tcp://{}", self.gw.tcp_addr.expect("tcp"))
    }

    fn http(&self) -> String {
        format!("http://{}", self.gw.http_addr.expect("http"))
    }

    /// The metric `series` on this node, or 0 before it has a value.
    async fn metric(&self, series: &str) -> f64 {
        common::metric_at(&self.http(), series).await.unwrap_or(0.0)
    }
}

/// Nodes `n1`..`n<count>` on one hub and one SQLite file under `dir`.
async fn cluster(dir: &std::path::Path, count: usize) -> (MemoryHub, Vec<Node>) {
    let hub = MemoryHub::new();
    let mut nodes = Vec::new();
    for i in 1..=count {
        let data = dir.join(format!("n{i}"));
        std::fs::create_dir_all(&data).expect("data dir");
        let mut c = Config::ephemeral(&data);
        common::people(&mut c);
        c.database.url = format!("sqlite://{}", dir.join("shared.db").display());
        c.cluster.node = format!("n{i}");
        c.cluster.heartbeat_ms = HEARTBEAT_MS;
        c.cluster.node_ttl_ms = TTL_MS;
        common::api_key(&mut c, "ops", KEY);
        let link = hub.link();
        let gw = Gateway::start_on(c, std::sync::Arc::new(link.clone()))
            .await
            .expect("node starts");
        nodes.push(Node { gw, link });
    }
    for n in &nodes {
        let seen = common::until_metric(
            &n.http(),
            "odd_gateway_cluster_nodes",
            count as f64,
            DEADLINE,
        )
        .await;
        assert!(seen, "every node sees {count} nodes");
    }
    (hub, nodes)
}

/// Waits until `node` counts more than `before` applied bus events of `kind`.
async fn until_applied(node: &Node, kind: &str, before: f64) {
    let series = format!("odd_gateway_bus_received_total{{kind=\"{kind}\"}}");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while node.metric(&series).await <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{kind} never applied"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spans_three_nodes_on_the_in_process_wire() {
    let dir = tempfile::tempdir().expect("dir");
    let (hub, nodes) = cluster(dir.path(), 3).await;

    // Presence: each member sees the ones on the other nodes and is announced to them.
    let (mut alice, ap, joined) = common::member_at(&nodes[0].url(), "alice", "hall").await;
    assert_eq!(joined.info()["room"]["mask"], "rwx", "the creator gets rwx");
    let (mut bob, bp, _) = common::member_at(&nodes[1].url(), "bob", "hall").await;
    assert_eq!(common::pushes::coverage(&mut bob).await, ["alice", "bob"]);
    until_neighbor(&mut alice, "NetGroup.Neighbor.Connect", "bob").await;
    let (mut carol, cp, _) = common::member_at(&nodes[2].url(), "carol", "hall").await;
    assert_eq!(
        common::pushes::coverage(&mut carol).await,
        ["alice", "bob", "carol"]
    );
    until_neighbor(&mut alice, "NetGroup.Neighbor.Connect", "carol").await;
    until_neighbor(&mut bob, "NetGroup.Neighbor.Connect", "carol").await;

    // The operator's overview on any node shows every node, each with its own figures from its heartbeat.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, overview) = common::server_call(
            &nodes[0].http(),
            reqwest::Method::GET,
            "/api/server/nodes",
            Some(KEY),
            None,
        )
        .await;
        let seen: Vec<(String, i64)> = overview["nodes"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|n| {
                        let name = n["node"].as_str().unwrap_or_default().to_string();
                        (name, n["connections"]["tcp"].as_i64().unwrap_or(-1))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let want = [("n1", 1), ("n2", 1), ("n3", 1)].map(|(n, c)| (n.to_string(), c));
        if seen == want {
            assert_eq!(overview["self"], "n1");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "every node with its one connection: {overview}"
        );
        tokio::time::sleep(Duration::from_millis(HEARTBEAT_MS)).await;
    }

    // Messages from every node at once: each member gets each once, and all in one order.
    let per_sender = 20;
    let mut waits = Vec::new();
    for i in 0..per_sender {
        for (c, p, who) in [
            (&alice, ap, "alice"),
            (&bob, bp, "bob"),
            (&carol, cp, "carol"),
        ] {
            let args = json!({"name": "send", "type": "text", "cast": "multi", "id": "hall", "data": format!("{who}-{i}")});
            waits.push(c.submit(p, args, bytes::Bytes::new()).await.expect("sent"));
        }
    }
    for w in waits {
        w.wait().await.expect("answer").ok().expect("accepted");
    }
    let all = 3 * per_sender;
    let mut orders: HashMap<&str, Vec<String>> = HashMap::new();
    for (who, c) in [
        ("alice", &mut alice),
        ("bob", &mut bob),
        ("carol", &mut carol),
    ] {
        let got = texts(&until_sends(c, all).await);
        let mut data: Vec<String> = got.iter().map(|(_, d, _)| d.clone()).collect();
        orders.insert(who, data.clone());
        data.sort();
        data.dedup();
        assert_eq!(data.len(), all, "{who}: each message once");
        assert!(
            got.windows(2).all(|w| w[0].2 < w[1].2),
            "{who}: in stored-id order"
        );
    }
    assert_eq!(orders["alice"], orders["bob"]);
    assert_eq!(orders["bob"], orders["carol"]);

    // Typing on n1 reaches n2 and n3, ahead of alice's next message.
    alice.typing(ap, "hall").await.expect("typing");
    alice.say(ap, "hall", "typed").await.expect("sent");
    for c in [&mut bob, &mut carol] {
        let got = until_data(c, "typed").await;
        assert_eq!(
            got.iter()
                .filter(|p| p.code() == "NetGroup.Typing.Notify")
                .count(),
            1
        );
    }

    // chmod on n1 holds on n3 once n3 has applied it: carol can no longer write.
    let before = nodes[2]
        .metric(r#"odd_gateway_bus_received_total{kind="rights"}"#)
        .await;
    alice
        .chmod(ap, "hall", "carol", "-", "w")
        .await
        .expect("chmod");
    until_applied(&nodes[2], "rights", before).await;
    let refused = carol.say(cp, "hall", "still here?").await;
    assert!(refused.is_err(), "carol lost w on n3: {refused:?}");

    // n3's link is cut (a node whose network is gone): within the TTL the others drop carol from presence;
    // when the link comes back, its next snapshot brings her back.
    let delivered = hub.delivered();
    nodes[2].link.set_up(false);
    let gone = until_neighbor(&mut alice, "NetGroup.Neighbor.Disconnect", "carol").await;
    assert_eq!(neighbors(&gone, "NetGroup.Neighbor.Disconnect"), ["carol"]);
    until_neighbor(&mut bob, "NetGroup.Neighbor.Disconnect", "carol").await;
    // While cut, what n1 says reaches n2 but not n3.
    alice.say(ap, "hall", "while cut").await.expect("sent");
    until_data(&mut bob, "while cut").await;
    nodes[2].link.set_up(true);
    until_neighbor(&mut alice, "NetGroup.Neighbor.Connect", "carol").await;
    assert!(hub.delivered() > delivered);
    alice.say(ap, "hall", "healed").await.expect("sent");
    let got = until_data(&mut carol, "healed").await;
    assert!(
        texts(&got).iter().all(|(_, d, _)| d != "while cut"),
        "what was said while n3 was cut is not pushed to it later (history has it)"
    );
}
