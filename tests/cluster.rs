//! Three gateway processes on one PostgreSQL schema and the local NATS: a room's members spread over them see
//! each other's presence and messages (each once, in stored-id order), chmod made on one node holds on the others,
//! history is shared, and a node killed with SIGKILL drops out of presence within the TTL while the others
//! keep talking.
//!
//! Skipped with a loud message when NATS (127.0.0.1:4222, or `ODD_TEST_NATS_URL`) is unreachable, unless
//! `ODD_REQUIRE_NATS=1` (as in CI), which makes that a failure.

mod common;
#[path = "common/webrtc.rs"]
mod webrtc;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::process::GatewayProcess;
use common::pushes::{
    data_of, is_neighbor, neighbors, texts, until, until_data, until_neighbor, until_sends, within,
    DEADLINE,
};
use common::{Backend, TestDb};
use odd_gateway::client::{Client, Reply};
use serde_json::{json, Value};

const HEARTBEAT_MS: u64 = 200;
const TTL_MS: u64 = 1_000;
const QUIET: Duration = Duration::from_millis(500);

fn nats_url() -> String {
    std::env::var("ODD_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

async fn nats_reachable() -> bool {
    let url = nats_url();
    let ok = matches!(
        tokio::time::timeout(Duration::from_secs(5), async_nats::connect(url.as_str())).await,
        Ok(Ok(_))
    );
    if !ok {
        if std::env::var("ODD_REQUIRE_NATS").as_deref() == Ok("1") {
            panic!("NATS at {url} is required (ODD_REQUIRE_NATS=1) but unreachable");
        }
        eprintln!("\n!!! SKIPPED: NATS at {url} is unreachable; set ODD_REQUIRE_NATS=1 to fail instead !!!\n");
    }
    ok
}

async fn spawn(name: &str, config: &Path, dir: &Path) -> GatewayProcess {
    let data = dir.join(name);
    let (config, data) = (config.display().to_string(), data.display().to_string());
    GatewayProcess::spawn(
        dir,
        &[
            ("ODD_CONFIG", &config),
            ("ODD_DATA_DIR", &data),
            ("ODD_NODE", name),
        ],
    )
    .await
}

async fn member(node: &GatewayProcess, who: &str, rid: &str) -> (Client, u16, Reply) {
    common::member_at(&node.url(), who, rid).await
}

/// A cluster config on `db` and the NATS at `nats`, with static tokens for alice, bob, carol and dave, and a
/// subject prefix of its own (so test runs sharing a NATS server never hear each other).
fn write_config(db: &TestDb, nats: &str) -> std::path::PathBuf {
    let prefix = format!("oddtest{}", rand::random::<u32>());
    let tokens: String = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| {
            format!(
                "[[auth.tokens]]\ntoken = \"{n}\"\nid = \"{n}\"\nnick = \"{}\"\n",
                n.to_uppercase()
            )
        })
        .collect();
    let config = format!(
        "[database]\nurl = \"{}\"\nschema = \"{}\"\n[auth]\nanonymous = false\n[limits]\nresume_grace_ms = 200\n\
         [server_api]\nkeys = [{{ name = \"backend\", key = \"{API_KEY}\" }}]\n\
         [cluster]\nnats_url = \"{nats}\"\nsubject_prefix = \"{prefix}\"\nheartbeat_ms = {HEARTBEAT_MS}\nnode_ttl_ms = {TTL_MS}\n{tokens}",
        db.url,
        db.schema.as_deref().expect("a Postgres schema"),
    );
    let path = db.dir.path().join("cluster.toml");
    std::fs::write(&path, config).expect("config written");
    path
}

/// The server-API key every node of the test cluster accepts.
const API_KEY: &str = "cluster-key-0123456789";

/// A chmod on one node reaches the others' rights caches as a bus event: no endpoint shows a user's rights,
/// and probing with a send would store messages the later checks count, so the fence is this counter, which
/// a node moves once it has applied the event (`Event::kind()` of `Event::Rights`).
const RIGHTS_RECEIVED: &str = r#"odd_gateway_bus_received_total{kind="rights"}"#;

/// Leave events a node has taken from the bus (and applied, as `RIGHTS_RECEIVED`).
const LEAVES_RECEIVED: &str = r#"odd_gateway_bus_received_total{kind="leave"}"#;

/// Each node's count of applied rights events: read it before a chmod, then `until_rights_applied`.
async fn rights_received(nodes: &[&GatewayProcess]) -> Vec<f64> {
    let mut counts = Vec::new();
    for node in nodes {
        let n = common::metric_at(&node.http_url(), RIGHTS_RECEIVED).await;
        counts.push(n.expect("the rights counter is exported from the start"));
    }
    counts
}

/// Waits until each of `nodes` has applied `events` more rights events than `before` (`rights_received` of
/// the same nodes, read before the chmods that publish them).
async fn until_rights_applied(nodes: &[&GatewayProcess], before: &[f64], events: usize) {
    for (node, was) in nodes.iter().zip(before) {
        let want = was + events as f64;
        let got =
            common::until_metric_at_least(&node.http_url(), RIGHTS_RECEIVED, want, DEADLINE).await;
        if let Err(last) = got {
            panic!(
                "the node at {} counts {last:?} applied rights events, not {want}",
                node.http_url()
            );
        }
    }
}

/// Waits until every one of `nodes` sees `n` nodes alive (`odd_gateway_cluster_nodes`).
async fn until_nodes(nodes: &[&GatewayProcess], n: usize) {
    for node in nodes {
        assert!(
            common::until_metric(
                &node.http_url(),
                "odd_gateway_cluster_nodes",
                n as f64,
                DEADLINE
            )
            .await,
            "a node never saw {n} nodes"
        );
    }
}

/// Waits until `node` lists `uid` present in `rid` (presence on every node, through the server API).
async fn until_present(node: &GatewayProcess, rid: &str, uid: &str) {
    let url = format!("{}/api/server/rooms/{rid}/presence", node.http_url());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let listed: Value = match reqwest::Client::new()
            .get(&url)
            .header("X-API-Key", API_KEY)
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let present = listed["users"]
            .as_array()
            .is_some_and(|users| users.iter().any(|u| u["id"] == uid));
        if present {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{uid} never present in {rid} as seen from a node"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_a_room() {
    if !nats_reachable().await {
        return;
    }
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let path = write_config(&db, &nats_url());
    // The first node creates the schema; the others start on it.
    let n1 = spawn("n1", &path, db.dir.path()).await;
    let (n2, n3) = tokio::join!(
        spawn("n2", &path, db.dir.path()),
        spawn("n3", &path, db.dir.path())
    );
    until_nodes(&[&n1, &n2, &n3], 3).await;
    let mut h = presence_spans_the_nodes(n1, n2, n3).await;
    let acked = messages_from_every_node_arrive_once_in_one_order(&mut h).await;
    unicast_crosses_nodes(&mut h).await;
    typing_crosses_nodes(&mut h).await;
    rights_set_on_one_node_hold_on_the_others(&mut h).await;
    history_is_one_database(&mut h, &acked).await;
    the_server_api_reaches_every_node(&mut h).await;
    a_killed_node_leaves_presence_within_the_ttl(&mut h).await;
    a_session_moves_to_another_node(h).await;
}

/// Three nodes with one member each in room `hall`.
struct Hall {
    n1: GatewayProcess,
    n2: GatewayProcess,
    n3: GatewayProcess,
    alice: Client,
    ap: u16,
    bob: Client,
    bp: u16,
    carol: Client,
    cp: u16,
}

/// One member per node joins; each sees the ones before it in the coverage list and is announced to them.
async fn presence_spans_the_nodes(
    n1: GatewayProcess,
    n2: GatewayProcess,
    n3: GatewayProcess,
) -> Hall {
    let (mut alice, ap, joined) = member(&n1, "alice", "hall").await;
    assert_eq!(joined.info()["room"]["mask"], "rwx", "the creator gets rwx");
    until_present(&n2, "hall", "alice").await;
    let (mut bob, bp, _) = member(&n2, "bob", "hall").await;
    assert_eq!(
        common::pushes::coverage(&mut bob).await,
        ["alice", "bob"],
        "bob on n2 sees alice on n1"
    );
    until_present(&n3, "hall", "alice").await;
    until_present(&n3, "hall", "bob").await;
    let (mut carol, cp, _) = member(&n3, "carol", "hall").await;
    assert_eq!(
        common::pushes::coverage(&mut carol).await,
        ["alice", "bob", "carol"]
    );
    let a = until_neighbor(&mut alice, "NetGroup.Neighbor.Connect", "carol").await;
    assert_eq!(neighbors(&a, "NetGroup.Neighbor.Connect"), ["bob", "carol"]);
    let b = until_neighbor(&mut bob, "NetGroup.Neighbor.Connect", "carol").await;
    assert_eq!(neighbors(&b, "NetGroup.Neighbor.Connect"), ["carol"]);
    Hall {
        n1,
        n2,
        n3,
        alice,
        ap,
        bob,
        bp,
        carol,
        cp,
    }
}

/// Messages from every node at once: everyone gets each message exactly once (the echo of its own included),
/// and all three see them in the same order. Returns the acknowledged ids.
async fn messages_from_every_node_arrive_once_in_one_order(h: &mut Hall) -> Vec<i64> {
    let per_sender = 30;
    let mut waits = Vec::new();
    for i in 0..per_sender {
        for (c, p, who) in [
            (&h.alice, h.ap, "alice"),
            (&h.bob, h.bp, "bob"),
            (&h.carol, h.cp, "carol"),
        ] {
            let args = json!({"name": "send", "type": "text", "cast": "multi", "id": "hall", "data": format!("{who}-{i}")});
            waits.push(
                c.submit(p, args, bytes::Bytes::new())
                    .await
                    .expect("submitted"),
            );
        }
    }
    let mut acked = Vec::new();
    for w in waits {
        let r = w.wait().await.expect("answer").ok().expect("accepted");
        acked.push(r.info()["mid"].as_i64().expect("mid"));
    }
    let all = 3 * per_sender;
    let got: HashMap<&str, Vec<(String, String, i64)>> = [
        ("alice", texts(&until_sends(&mut h.alice, all).await)),
        ("bob", texts(&until_sends(&mut h.bob, all).await)),
        ("carol", texts(&until_sends(&mut h.carol, all).await)),
    ]
    .into_iter()
    .collect();
    for (who, msgs) in &got {
        assert_eq!(
            msgs.iter().filter(|(from, _, _)| from == who).count(),
            per_sender,
            "{who} gets the echo of each of its own"
        );
        let mut datas: Vec<&String> = msgs.iter().map(|(_, d, _)| d).collect();
        datas.sort();
        datas.dedup();
        // A duplicate among the first 90 would push a message out; one after them shows up in the next step,
        // which expects exactly one uni-cast on bob's connection.
        assert_eq!(datas.len(), all, "{who}: each once, no duplicates");
    }
    // Same order everywhere: every member receives every message (echoes included) in one sequence.
    let order = |who: &str| -> Vec<String> { got[who].iter().map(|(_, d, _)| d.clone()).collect() };
    for (x, y) in [("alice", "bob"), ("bob", "carol"), ("alice", "carol")] {
        assert_eq!(order(x), order(y), "{x} and {y} see one order");
    }
    let in_mid_order = got.values().all(|m| m.windows(2).all(|w| w[0].2 < w[1].2));
    println!("delivery order equals stored-id order on every member: {in_mid_order}");
    acked
}

/// A uni-cast from n1 reaches bob on n2, and nothing else came before it.
async fn unicast_crosses_nodes(h: &mut Hall) {
    h.alice
        .send(h.ap, "uni", "bob", "text", json!("psst"))
        .await
        .expect("uni accepted");
    let b = texts(&until_data(&mut h.bob, "psst").await);
    assert_eq!(
        b.iter()
            .map(|(f, d, _)| (f.as_str(), d.as_str()))
            .collect::<Vec<_>>(),
        [("alice", "psst")]
    );
}

/// A typing notice from n1 reaches the members on n2 and n3 (before alice's next message, on the same path).
async fn typing_crosses_nodes(h: &mut Hall) {
    let sent = h.alice.typing(h.ap, "hall").await.expect("typing");
    assert_eq!(sent.info()["sent"], true);
    h.alice.say(h.ap, "hall", "typed").await.expect("sent");
    for c in [&mut h.bob, &mut h.carol] {
        let got = until_data(c, "typed").await;
        let typing: Vec<_> = got
            .iter()
            .filter(|p| p.code() == "NetGroup.Typing.Notify")
            .map(|p| {
                (
                    p.info()["room"]["id"].clone(),
                    p.info()["user"]["id"].clone(),
                )
            })
            .collect();
        assert_eq!(typing, [(json!("hall"), json!("alice"))]);
    }
}

/// chmod made on n1 holds on n2 and n3: carol loses w, bob loses r (delivery and history).
async fn rights_set_on_one_node_hold_on_the_others(h: &mut Hall) {
    let (ap, bp, cp) = (h.ap, h.bp, h.cp);
    let others = [&h.n2, &h.n3];
    let before = rights_received(&others).await;
    h.alice
        .chmod(ap, "hall", "carol", "-", "w")
        .await
        .expect("chmod -w");
    h.alice
        .chmod(ap, "hall", "bob", "-", "r")
        .await
        .expect("chmod -r");
    until_rights_applied(&others, &before, 2).await;
    let refused = h
        .carol
        .call(
            cp,
            json!({"name": "send", "type": "text", "cast": "multi", "id": "hall", "data": "no"}),
        )
        .await
        .expect("answer");
    assert_eq!(
        refused.code(),
        "NetGroup.Posting.Failed",
        "carol lost w, on another node"
    );
    let not_admin = h.bob.chmod(bp, "hall", "carol", "+", "w").await;
    assert!(not_admin.is_err(), "bob has no x");
    h.alice
        .say(ap, "hall", "only for readers")
        .await
        .expect("said");
    assert_eq!(
        data_of(&until_data(&mut h.carol, "only for readers").await),
        ["only for readers"]
    );
    // Absence is the assertion: bob gets nothing, and no fence crosses nodes in order with the room's
    // messages (they come from the room's home node, a uni-cast from the sender's), so wait for silence.
    let b = common::drain_within(&mut h.bob, QUIET).await;
    assert!(texts(&b).is_empty(), "bob lost r: nothing delivered on n2");
    let denied = h.bob.history(bp, json!({"rid": "hall"})).await;
    assert!(denied.is_err(), "bob lost r: no history either");
}

/// History is the one database: carol on n3 reads everything acknowledged on any node, in id order.
async fn history_is_one_database(h: &mut Hall, acked: &[i64]) {
    let page = h
        .carol
        .history(h.cp, json!({"rid": "hall", "limit": 500}))
        .await
        .expect("history");
    let mids: Vec<i64> = page.info()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["mid"].as_i64())
        .collect();
    assert!(mids.windows(2).all(|w| w[0] < w[1]), "history in id order");
    for mid in acked {
        assert!(mids.contains(mid), "acknowledged {mid} is in history");
    }
}

/// A server-API publish on n1 reaches the members on all three nodes exactly once (alice on n1, dave on n2,
/// carol on n3; bob lost `r` above; a fence message from alice follows it on the same ordered path), its
/// redaction through n1 is told to all three, and a disconnect sent to n1 ends dave's session on n2 with its
/// reason.
async fn the_server_api_reaches_every_node(h: &mut Hall) {
    let http = reqwest::Client::new();
    let (mut dave, _, _) = member(&h.n2, "dave", "hall").await;
    until_present(&h.n1, "hall", "dave").await;
    let r = http
        .post(format!("{}/api/server/publish", h.n1.http_url()))
        .header("X-API-Key", API_KEY)
        .json(&json!({"room": "hall", "data": "from the backend"}))
        .send()
        .await
        .expect("publish");
    assert_eq!(r.status().as_u16(), 200);
    let published: serde_json::Value = r.json().await.expect("json");
    let mid = published["mid"].as_i64().expect("mid");
    h.alice.say(h.ap, "hall", "fence").await.expect("fence");
    for c in [&mut h.alice, &mut dave, &mut h.carol] {
        let pushes = until_data(c, "fence").await;
        let copies = pushes
            .iter()
            .filter(|p| p.name() == "send" && p.args["data"] == "from the backend")
            .count();
        assert_eq!(copies, 1, "the server's message arrives once on every node");
    }

    // Redacted through n1: the members on every node are told.
    let r = http
        .post(format!("{}/api/server/redact", h.n1.http_url()))
        .header("X-API-Key", API_KEY)
        .json(&json!({"mid": mid}))
        .send()
        .await
        .expect("redact");
    assert_eq!(r.status().as_u16(), 200);
    for c in [&mut h.alice, &mut dave, &mut h.carol] {
        common::pushes::until(c, "the redaction notice", |p| {
            p.code() == "NetGroup.Redact.Notify" && p.info()["mids"] == json!([mid])
        })
        .await;
    }

    let r = http
        .post(format!("{}/api/server/disconnect", h.n1.http_url()))
        .header("X-API-Key", API_KEY)
        .json(&json!({"user": "dave", "reason": "account closed"}))
        .send()
        .await
        .expect("disconnect");
    assert_eq!(r.status().as_u16(), 200);
    let pushes = common::pushes::until(&mut dave, "dave's closing status", |p| {
        p.code() == "NetConnection.Connect.Closed"
    })
    .await;
    assert_eq!(
        pushes.last().map(|p| p.description()),
        Some("account closed")
    );
    assert!(dave.closed_within(Duration::from_secs(5)).await.is_some());
}

/// Kill n3: carol drops out of presence on n1 and n2 within the TTL; alice and bob keep talking.
async fn a_killed_node_leaves_presence_within_the_ttl(h: &mut Hall) {
    let killed = Instant::now();
    h.n3.child.start_kill().expect("SIGKILL");
    let _ = h.n3.child.wait().await;
    until_neighbor(&mut h.alice, "NetGroup.Neighbor.Disconnect", "carol").await;
    let took = killed.elapsed();
    println!("carol left presence {took:?} after her node was killed (TTL {TTL_MS} ms)");
    assert!(
        took < Duration::from_millis(TTL_MS + 2 * HEARTBEAT_MS + 1_500),
        "within the TTL: {took:?}"
    );
    until_neighbor(&mut h.bob, "NetGroup.Neighbor.Disconnect", "carol").await;
    let before = rights_received(&[&h.n2]).await;
    h.alice
        .chmod(h.ap, "hall", "bob", "+", "r")
        .await
        .expect("chmod +r");
    until_rights_applied(&[&h.n2], &before, 1).await;
    h.bob
        .say(h.bp, "hall", "still here")
        .await
        .expect("bob says");
    h.alice
        .say(h.ap, "hall", "me too")
        .await
        .expect("alice says");
    // Both see both, in one order (their own lines come back as echoes).
    assert_eq!(
        data_of(&until_data(&mut h.alice, "me too").await),
        ["still here", "me too"]
    );
    assert_eq!(
        data_of(&until_data(&mut h.bob, "me too").await),
        ["still here", "me too"]
    );
}

/// Fast reconnect to another node: bob's phone comes back through n1 with his session's uuid. Same uuid,
/// same pipe, same rooms; alice sees no flapping; another user cannot take the session on any node.
async fn a_session_moves_to_another_node(h: Hall) {
    let Hall {
        n1,
        n2,
        mut alice,
        ap,
        mut bob,
        bp,
        ..
    } = h;
    // The fence for the old copy's leave below: the leave events n1 has taken from the bus so far.
    let leaves_before = common::metric_at(&n1.http_url(), LEAVES_RECEIVED)
        .await
        .expect("the leave counter is exported from the start");
    let mut bob2 = Client::open(&n1.url()).await.expect("open");
    let r = bob2
        .handshake("bob", &bob.uuid)
        .await
        .expect("resumed on n1");
    assert_eq!(r.info()["uuid"].as_str(), Some(bob.uuid.as_str()));
    assert_eq!(r.info()["resumed"], true);
    assert_eq!(r.info()["moved_from"], "n2");
    assert!(
        bob.closed_within(Duration::from_secs(5)).await.is_some(),
        "the old transport on n2 is dropped"
    );
    bob2.say(bp, "hall", "moved")
        .await
        .expect("the pipe moved with the session");
    // Absence is the assertion: the old node lets its copy leave the room a second after the handover
    // (remote_resume.rs LEAVE_AFTER). Wait until it has (n2 holds no member pipe any more) and n1 has applied
    // that leave from the bus, then check alice saw no Disconnect/Connect.
    assert!(
        common::until_metric(&n2.http_url(), "odd_gateway_room_members", 0.0, DEADLINE).await,
        "the old copy on n2 never left the room"
    );
    let leaves = common::until_metric_at_least(
        &n1.http_url(),
        LEAVES_RECEIVED,
        leaves_before + 1.0,
        DEADLINE,
    )
    .await;
    if let Err(last) = leaves {
        panic!(
            "n1 never applied the old copy's leave: {last:?} leave events, {leaves_before} before"
        );
    }
    let a = common::drain_within(&mut alice, QUIET).await;
    assert_eq!(data_of(&a), ["moved"]);
    assert!(
        neighbors(&a, "NetGroup.Neighbor.Disconnect").is_empty()
            && neighbors(&a, "NetGroup.Neighbor.Connect").is_empty(),
        "no presence flapping when a session moves: {:?}",
        a.iter().map(|p| p.code().to_string()).collect::<Vec<_>>()
    );
    alice
        .say(ap, "hall", "welcome back")
        .await
        .expect("alice says");
    assert_eq!(
        data_of(&until_data(&mut bob2, "welcome back").await),
        ["moved", "welcome back"],
        "its own post's echo, then alice's"
    );
    let mut eve = Client::open(&n2.url()).await.expect("open");
    let refused = eve.handshake("alice", &bob.uuid).await;
    assert!(refused.is_err(), "a foreign uuid is refused: {refused:?}");
    drop((n1, n2));
}

/// The NATS server binary (Debian puts it in /usr/sbin, which is not on every PATH).
fn nats_server_bin() -> &'static str {
    if Path::new("/usr/sbin/nats-server").exists() {
        "/usr/sbin/nats-server"
    } else {
        "nats-server"
    }
}

/// A NATS server of the test's own (the Debian `nats-server` binary), so the test can kill it.
async fn own_nats(port: u16) -> tokio::process::Child {
    let child = tokio::process::Command::new(nats_server_bin())
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nats-server starts");
    assert!(
        common::process::listens(port).await,
        "nats-server did not listen on {port}"
    );
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_each_node_serves_its_own_then_the_cluster_heals() {
    if !nats_reachable().await {
        return;
    }
    if std::process::Command::new(nats_server_bin())
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var("ODD_REQUIRE_NATS").as_deref() == Ok("1") {
            panic!("the nats-server binary is required (ODD_REQUIRE_NATS=1)");
        }
        eprintln!("\n!!! SKIPPED: no nats-server binary to run a NATS of the test's own !!!\n");
        return;
    }
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let port = common::process::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let mut nats = own_nats(port).await;
    let path = write_config(&db, &url);
    let n1 = spawn("n1", &path, db.dir.path()).await;
    let n2 = spawn("n2", &path, db.dir.path()).await;
    until_nodes(&[&n1, &n2], 2).await;
    let (mut alice, ap, _) = member(&n1, "alice", "room").await;
    until_present(&n2, "room", "alice").await;
    let (mut dave, _dp, _) = member(&n1, "dave", "room").await;
    let (mut bob, bp, _) = member(&n2, "bob", "room").await;
    until_present(&n1, "room", "bob").await;
    until_present(&n2, "room", "dave").await;
    alice.say(ap, "room", "all here").await.expect("said");
    assert_eq!(
        texts(&until_data(&mut bob, "all here").await).len(),
        1,
        "bob on n2 hears alice"
    );
    assert_eq!(texts(&until_data(&mut dave, "all here").await).len(), 1);

    // NATS goes away: n1 serves its own members on its own.
    nats.start_kill().expect("kill nats");
    let _ = nats.wait().await;
    // async-nats notices the dead server from a failed read; the node says so in its metrics (the assertion
    // below is that sending then does not wait on the dead bus).
    assert!(
        common::until_metric(&n1.http_url(), "odd_gateway_bus_connected", 0.0, DEADLINE).await,
        "n1 never noticed NATS was gone"
    );
    let sent = Instant::now();
    alice
        .say(ap, "room", "local only")
        .await
        .expect("acknowledged without NATS");
    assert_eq!(
        data_of(&until_data(&mut dave, "local only").await),
        ["local only"],
        "dave, on alice's node, still hears her"
    );
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "no wait on the dead bus: {:?}",
        sent.elapsed()
    );
    assert!(
        within(
            &mut alice,
            Duration::from_secs(5),
            is_neighbor("NetGroup.Neighbor.Disconnect", "bob")
        )
        .await
        .is_ok(),
        "past the TTL, bob's node is out of reach and bob leaves alice's presence"
    );
    bob.say(bp, "room", "bob alone")
        .await
        .expect("bob's node commits on its own too");

    // NATS comes back on the same port: the nodes find each other again.
    let _nats = own_nats(port).await;
    assert!(
        within(
            &mut alice,
            Duration::from_secs(20),
            is_neighbor("NetGroup.Neighbor.Connect", "bob")
        )
        .await
        .is_ok(),
        "bob is back in alice's presence once NATS is"
    );
    until_nodes(&[&n1, &n2], 2).await;
    until_present(&n2, "room", "alice").await;
    alice.say(ap, "room", "healed").await.expect("said");
    // Bob's own line from the outage came back to him then; alice's "local only" is not replayed live.
    assert_eq!(
        data_of(&until_data(&mut bob, "healed").await),
        ["bob alone", "healed"]
    );
    // Everything acknowledged during the outage is in the one history.
    let page = alice
        .history(ap, json!({"rid": "room"}))
        .await
        .expect("history");
    let all: Vec<String> = page.info()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["data"].as_str().map(String::from))
        .collect();
    for t in ["all here", "local only", "bob alone", "healed"] {
        assert!(all.iter().any(|a| a == t), "{t:?} in history: {all:?}");
    }
}

/// A request to a node that is not running comes back at once with the cause (NATS "no responders"), not as
/// an undecodable answer and not after the request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_dead_node_fails_at_once_with_the_cause() {
    if !nats_reachable().await {
        return;
    }
    let prefix = format!("odd-test-{}", std::process::id());
    let bus = odd_gateway::bus::ClusterBus::connect(
        &nats_url(),
        &prefix,
        "alive",
        std::sync::Arc::new(odd_gateway::metrics::Metrics::new()),
    )
    .await
    .expect("bus");
    let started = std::time::Instant::now();
    let answer = bus.request("gone", "post", &"x", b"").answer().await;
    let took = started.elapsed();
    let err = answer.expect_err("nobody answers");
    assert!(err.contains("gone is not running"), "{err}");
    assert!(took < Duration::from_secs(2), "failed after {took:?}");
}

/// What one paced send saw: when it was issued, how long its answer took, and the error text if it was
/// refused.
struct Answered {
    room: &'static str,
    issued: Instant,
    took: Duration,
    error: Option<String>,
}

/// An `Answered` with its issue time relative to the kill (negative before it).
struct Outcome {
    room: &'static str,
    issued_ms: i128,
    took: Duration,
    error: Option<String>,
}

impl Answered {
    fn relative_to(self, killed: Instant) -> Outcome {
        let issued_ms = if self.issued >= killed {
            (self.issued - killed).as_millis() as i128
        } else {
            -((killed - self.issued).as_millis() as i128)
        };
        Outcome {
            room: self.room,
            issued_ms,
            took: self.took,
            error: self.error,
        }
    }
}

/// The home node of a room is killed (SIGKILL) while a member on another node keeps posting to it and to a room
/// homed on its own node: posts to the dead home are refused at once with the cause (well under the 5 s
/// request timeout), posts to the other room never fail, and once the dead node's heartbeat expires the
/// survivor becomes the home and posts are accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_home_node_under_load_fails_fast_with_the_cause_then_heals() {
    if !nats_reachable().await {
        return;
    }
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    // One room homed on n2 (to be killed), one on n1.
    let pick = |home: &str| {
        (0..1000)
            .map(|i| format!("room{i}"))
            .find(|r| odd_gateway::rooms::home_node(["n1", "n2"], r) == Some(home))
            .expect("a room for each home")
    };
    let doomed: &'static str = Box::leak(pick("n2").into_boxed_str());
    let steady: &'static str = Box::leak(pick("n1").into_boxed_str());
    let path = write_config(&db, &nats_url());
    let n1 = spawn("n1", &path, db.dir.path()).await;
    let mut n2 = spawn("n2", &path, db.dir.path()).await;
    until_nodes(&[&n1, &n2], 2).await;
    let (alice, ap, _) = member(&n1, "alice", doomed).await;
    alice
        .call(ap, json!({"name": "join", "rid": steady}))
        .await
        .expect("answer")
        .ok()
        .expect("joined the steady room");
    // Bob's session lives on n2; his phone will come back through n1 right after the kill.
    let (bob, _bp, _) = member(&n2, "bob", steady).await;
    // Both rooms accept posts through their homes before the kill.
    for room in [doomed, steady] {
        alice
            .say(ap, room, "before")
            .await
            .expect("answer")
            .ok()
            .expect("accepted");
    }

    let alice = std::sync::Arc::new(alice);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Answered>();
    let load = {
        let alice = alice.clone();
        tokio::spawn(async move {
            // 200 posts a second, alternating rooms, for 4 s; each answer awaited on its own task.
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            for i in 0..800u32 {
                tick.tick().await;
                let room = if i % 2 == 0 { doomed } else { steady };
                let issued = Instant::now();
                let args = json!({"name": "send", "type": "text", "cast": "multi", "id": room, "data": format!("m{i}")});
                let Ok(pending) = alice.submit(ap, args, bytes::Bytes::new()).await else {
                    panic!("the connection to n1 broke");
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let reply = pending.wait().await.expect("an answer from n1");
                    let error = reply.is_error().then(|| reply.description().to_string());
                    let _ = tx.send(Answered {
                        room,
                        issued,
                        took: issued.elapsed(),
                        error,
                    });
                });
            }
        })
    };
    // Kill once the load is under way: the homes have answered 40 posts (a fifth of a second of it).
    let mut answered = Vec::new();
    while answered.len() < 40 {
        match tokio::time::timeout(DEADLINE, rx.recv()).await {
            Ok(Some(a)) => answered.push(a),
            _ => panic!("only {} answers before the kill", answered.len()),
        }
    }
    let killed = Instant::now();
    n2.child.start_kill().expect("SIGKILL n2");
    let _ = n2.child.wait().await;
    // A fast reconnect whose session lived on the dead node starts a fresh session at once, rather than
    // waiting out the bus request timeout for an owner that cannot answer.
    let asked = Instant::now();
    let mut bob2 = Client::open(&n1.url()).await.expect("open");
    let fresh = bob2
        .handshake("bob", &bob.uuid)
        .await
        .expect("a fresh session on n1");
    let took = asked.elapsed();
    assert_ne!(
        fresh.info()["resumed"],
        true,
        "nothing to resume on a dead node"
    );
    assert!(
        took < Duration::from_secs(2),
        "the reconnect waited {took:?}"
    );
    eprintln!("reconnect right after the kill answered in {took:?}");
    load.await.expect("the load ran");
    while answered.len() < 800 {
        match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
            Ok(Some(a)) => answered.push(a),
            _ => panic!("only {} of 800 answers came back", answered.len()),
        }
    }
    let outcomes: Vec<Outcome> = answered
        .into_iter()
        .map(|a| a.relative_to(killed))
        .collect();

    let steady_failures: Vec<_> = outcomes
        .iter()
        .filter(|o| o.room == steady && o.error.is_some())
        .collect();
    assert!(
        steady_failures.is_empty(),
        "posts to the room homed on the survivor never fail: {:?}",
        steady_failures.iter().map(|o| &o.error).collect::<Vec<_>>()
    );
    let refused: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.room == doomed && o.error.is_some())
        .collect();
    assert!(
        !refused.is_empty(),
        "some posts reached the dead home before its heartbeat expired"
    );
    for o in &refused {
        let e = o.error.as_deref().unwrap_or_default();
        // A post already on its way to n2 when it died can only time out; every later one is refused at once.
        if o.issued_ms < 50 {
            continue;
        }
        assert!(
            e.contains("the room's home node did not accept the message")
                && e.contains("n2 is not running"),
            "the refusal names the cause: {e:?}"
        );
        assert!(
            o.took < Duration::from_secs(1),
            "refused after {:?}, issued {} ms after the kill",
            o.took,
            o.issued_ms
        );
    }
    let last_refused = refused
        .iter()
        .map(|o| o.issued_ms)
        .max()
        .unwrap_or_default();
    let accepted_after: Vec<_> = outcomes
        .iter()
        .filter(|o| o.room == doomed && o.error.is_none() && o.issued_ms > last_refused)
        .collect();
    assert!(
        !accepted_after.is_empty(),
        "posts are accepted again after n2's heartbeat expired (last refusal {last_refused} ms after the kill)"
    );
    assert!(
        last_refused < (TTL_MS + 3 * HEARTBEAT_MS) as i128 + 500,
        "n1 took over within the TTL: last refusal {last_refused} ms after the kill"
    );
    let timed_out: Vec<_> = refused
        .iter()
        .filter(|o| o.took >= Duration::from_secs(1))
        .collect();
    eprintln!(
        "home kill: {} refused (slowest after the kill {:?}; {} in flight at the kill timed out), last refusal {last_refused} ms after the kill, {} accepted after",
        refused.len(),
        refused.iter().filter(|o| o.issued_ms >= 50).map(|o| o.took).max().unwrap_or_default(),
        timed_out.len(),
        accepted_after.len()
    );
    drop(n1);
}

/// Media is served by the node that holds the publication (docs/rtc.md, "Cluster"): its stream name carries
/// that node's SFU address; a player on another node is told which node that is, a player on it plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_is_served_by_the_node_holding_the_publication() {
    if !nats_reachable().await {
        return;
    }
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let path = write_config(&db, &nats_url());
    let sfu = |n: &str| -> (String, String) {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("a free UDP port");
        (n.to_string(), format!("127.0.0.1:{port}"))
    };
    let ((n1_name, rtc1), (n2_name, rtc2)) = (sfu("n1"), sfu("n2"));
    let mut nodes = Vec::new();
    for (name, rtc) in [(&n1_name, &rtc1), (&n2_name, &rtc2)] {
        let data = db.dir.path().join(name).display().to_string();
        let config = path.display().to_string();
        nodes.push(
            GatewayProcess::spawn(
                db.dir.path(),
                &[
                    ("ODD_CONFIG", config.as_str()),
                    ("ODD_DATA_DIR", data.as_str()),
                    ("ODD_NODE", name.as_str()),
                    ("ODD_RTC", rtc.as_str()),
                ],
            )
            .await,
        );
    }
    let (n1, n2) = (&nodes[0], &nodes[1]);
    until_nodes(&[n1, n2], 2).await;

    // alice publishes on n1, as the odd.js SDK does.
    let mut alice = Client::connect(&n1.url(), "alice").await.expect("connect");
    let ap = alice.create("signaling").await.expect("pipe");
    let off = webrtc::Offering::new("clustercam").await;
    alice
        .notify(
            ap,
            json!({"name": "sdp", "type": "offer", "sdp": off.offer}),
        )
        .await
        .expect("sent");
    let got = until(&mut alice, "Publish.Start", |p| {
        p.code() == "NetStream.Publish.Start" || p.is_error()
    })
    .await;
    let start = got.last().expect("a push");
    assert_eq!(start.code(), "NetStream.Publish.Start", "{:?}", start.args);
    let stream = start.info()["stream"].as_str().expect("stream").to_string();
    assert_eq!(
        stream,
        format!("clustercam@{rtc1}/im"),
        "named after n1's SFU"
    );
    let answer = got
        .iter()
        .find(|p| p.name() == "sdp")
        .and_then(|p| p.args["sdp"].as_str())
        .expect("the answer");
    let mut publisher = off.answered(answer);
    publisher
        .next(DEADLINE, |s| (*s == webrtc::Seen::Connected).then_some(()))
        .await
        .expect("the publisher connects to n1");
    publisher.stream(Duration::from_millis(20));

    // bob on n2 is told where the stream is served.
    let mut bob = Client::connect(&n2.url(), "bob").await.expect("connect");
    let bp = bob.create("signaling").await.expect("pipe");
    bob.notify(bp, json!({"name": "play", "stream": stream}))
        .await
        .expect("sent");
    let refused = until(&mut bob, "Play.Failed", |p| p.is_error()).await;
    let refused = refused.last().expect("a push");
    assert_eq!(refused.code(), "NetStream.Play.Failed");
    assert!(
        refused.description().contains(&rtc1) && !refused.description().contains(&rtc2),
        "names the node that serves it: {:?}",
        refused.args
    );

    // carol on n1 plays it.
    let mut carol = Client::connect(&n1.url(), "carol").await.expect("connect");
    let cp = carol.create("signaling").await.expect("pipe");
    carol
        .notify(cp, json!({"name": "play", "stream": stream}))
        .await
        .expect("sent");
    let offered = until(&mut carol, "the offer", |p| p.name() == "sdp").await;
    let offer = offered
        .last()
        .and_then(|p| p.args["sdp"].as_str())
        .expect("sdp");
    let (mut player, answer) = webrtc::Peer::answer(offer).await;
    carol
        .notify(cp, json!({"name": "sdp", "type": "answer", "sdp": answer}))
        .await
        .expect("sent");
    player
        .next(DEADLINE, |s| {
            matches!(s, webrtc::Seen::Frame { keyframe: true, .. }).then_some(())
        })
        .await
        .expect("carol gets the video on n1");
}
