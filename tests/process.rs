//! The gateway as a real process: killed with SIGKILL under load it loses no acknowledged message; stopped
//! with SIGTERM it tells its clients, answers what it accepted, and exits 0.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::process::GatewayProcess;
use odd_gateway::client::Client;
use serde_json::json;

async fn spawn(dir: &Path) -> GatewayProcess {
    GatewayProcess::spawn(dir, &[]).await
}

async fn connect_once(url: &str) -> Result<Client, odd_gateway::client::ClientError> {
    let endpoint: odd_gateway::client::Endpoint = url.parse()?;
    let link = endpoint
        .open(&odd_gateway::client::ClientOptions::default())
        .await?;
    let mut c = Client::over(link);
    c.handshake("", "").await?;
    Ok(c)
}

/// Sends as fast as acknowledgements allow until the connection fails; returns (mid -> data) acknowledged.
async fn sender(url: String, room: String) -> HashMap<i64, String> {
    let mut acked = HashMap::new();
    // No automatic reconnect: once the gateway is killed this sender is done, it does not retry for 30 s.
    let Ok(c) = connect_once(&url).await else {
        return acked;
    };
    let Ok(pipe) = c.create("messaging").await else {
        return acked;
    };
    if c.join(pipe, &room).await.is_err() {
        return acked;
    }
    let mut in_flight = std::collections::VecDeque::new();
    for i in 0.. {
        let data = format!("{room}-{i}");
        let args =
            json!({"name": "send", "type": "text", "cast": "multi", "id": room, "data": data});
        match c.submit(pipe, args, Bytes::new()).await {
            Ok(p) => in_flight.push_back((data, p)),
            Err(_) => break,
        }
        if in_flight.len() >= 16 {
            let Some((data, p)) = in_flight.pop_front() else {
                break;
            };
            match p.wait().await.and_then(|r| r.ok()) {
                Ok(r) => {
                    if let Some(mid) = r.info()["mid"].as_i64() {
                        acked.insert(mid, data);
                    }
                }
                Err(_) => break,
            }
        }
    }
    // Whatever else was answered before the end also counts.
    for (data, p) in in_flight {
        if let Ok(r) = p.wait().await.and_then(|r| r.ok()) {
            if let Some(mid) = r.info()["mid"].as_i64() {
                acked.insert(mid, data);
            }
        }
    }
    acked
}

async fn stored(url: &str, room: &str) -> HashMap<i64, String> {
    let c = Client::connect(url, "").await.expect("connect");
    let pipe = c.create("messaging").await.expect("pipe");
    let mut all = HashMap::new();
    let mut after = 0;
    loop {
        let page = c
            .history(pipe, json!({"rid": room, "after": after, "limit": 500}))
            .await
            .expect("history");
        let msgs = page.info()["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for m in &msgs {
            all.insert(
                m["mid"].as_i64().expect("mid"),
                m["data"].as_str().unwrap_or_default().to_string(),
            );
        }
        match msgs.last() {
            Some(last) if page.info()["more"] == true => after = last["mid"].as_i64().expect("mid"),
            _ => break,
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("dir");
    let mut gw = spawn(dir.path()).await;
    let url = format!("tcp://127.0.0.1:{}", gw.tcp);
    let rooms: Vec<String> = (0..4).map(|i| format!("crash-{i}")).collect();
    let tasks: Vec<_> = rooms
        .iter()
        .map(|r| tokio::spawn(sender(url.clone(), r.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gw.child.start_kill().expect("SIGKILL");
    let status = gw.child.wait().await.expect("reaped");
    assert!(!status.success(), "killed, not exited");
    let mut acked = HashMap::new();
    for t in tasks {
        acked.extend(t.await.expect("sender"));
    }
    assert!(
        acked.len() > 200,
        "load was real: {} acknowledged",
        acked.len()
    );

    let again = spawn(dir.path()).await;
    let url = format!("tcp://127.0.0.1:{}", again.tcp);
    let mut have = HashMap::new();
    for r in &rooms {
        have.extend(stored(&url, r).await);
    }
    let missing: Vec<_> = acked
        .iter()
        .filter(|(mid, data)| have.get(mid) != Some(data))
        .collect();
    println!(
        "acknowledged {}, stored after restart {}, missing {}",
        acked.len(),
        have.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "acknowledged but lost: {:?}",
        &missing[..missing.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_clients_and_exits_zero_with_nothing_lost() {
    let dir = tempfile::tempdir().expect("dir");
    let mut gw = spawn(dir.path()).await;
    let url = format!("tcp://127.0.0.1:{}", gw.tcp);
    let mut watcher = Client::connect(&url, "").await.expect("watcher");
    let wp = watcher.create("messaging").await.expect("pipe");
    watcher.join(wp, "term").await.expect("join");
    let load = tokio::spawn(sender(url.clone(), "term".to_string()));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pid = gw.child.id().expect("pid");
    let started = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let told = watcher.wait_for("NetConnection.Connect.AppShutdown").await;
    assert!(told.is_some(), "clients are told");
    let status = tokio::time::timeout(Duration::from_secs(15), gw.child.wait())
        .await
        .expect("exits in time")
        .expect("status");
    println!("exited {status} after {:?}", started.elapsed());
    assert!(status.success(), "exit 0 on SIGTERM: {status}");
    let acked = load.await.expect("sender");
    assert!(!acked.is_empty());
    let again = spawn(dir.path()).await;
    let have = stored(&format!("tcp://127.0.0.1:{}", again.tcp), "term").await;
    let missing = acked
        .iter()
        .filter(|(mid, data)| have.get(mid) != Some(data))
        .count();
    assert_eq!(missing, 0, "of {} acknowledged", acked.len());
}

/// Three gateways started at the same instant on one empty PostgreSQL schema (as an orchestrator starts a
/// cluster's nodes): schema creation and migrations are serialized by an advisory lock, so all three come up
/// and each serves a client that reads the others' messages from the one history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_started_at_once_on_an_empty_schema_all_come_up() {
    let Some(db) = common::TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    let config = db.dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\nschema = \"{}\"\n",
            db.url,
            db.schema.as_deref().expect("a Postgres schema")
        ),
    )
    .expect("config written");
    let config = config.display().to_string();
    let node = |name: &str| {
        let dir = db.dir.path().join(name);
        let config = config.clone();
        async move {
            let data = dir.display().to_string();
            GatewayProcess::spawn(&dir, &[("ODD_CONFIG", &config), ("ODD_DATA_DIR", &data)]).await
        }
    };
    let (a, b, c) = tokio::join!(node("a"), node("b"), node("c"));
    for (i, node) in [&a, &b, &c].into_iter().enumerate() {
        let client = connect_once(&node.url()).await.expect("a client connects");
        let pipe = client.create("messaging").await.expect("pipe");
        client.join(pipe, "shared").await.expect("join");
        client
            .say(pipe, "shared", &format!("from {i}"))
            .await
            .expect("answer")
            .ok()
            .expect("stored");
    }
    let stored = stored(&c.url(), "shared").await;
    let mut texts: Vec<&String> = stored.values().collect();
    texts.sort();
    assert_eq!(
        texts,
        ["from 0", "from 1", "from 2"],
        "one history for all three"
    );
}

/// The same race, tighter than three processes can make it: eight stores opened at once in one process on an
/// empty schema all open (without the advisory lock, `CREATE SCHEMA IF NOT EXISTS` fails with a duplicate key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_stores_opened_at_once_on_an_empty_schema_all_open() {
    let Some(db) = common::TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    let opens = (0..8).map(|_| odd_gateway::store::Store::open(&db.url, db.schema.as_deref()));
    let results = futures::future::join_all(opens).await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 8 failed: {failed:?}",
        failed.len()
    );
}
