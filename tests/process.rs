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

/// Waits until the gateway has committed at least `n` messages: the load is well under way.
async fn until_stored(gw: &GatewayProcess, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = common::metric_at(&gw.http_url(), "odd_gateway_messages_stored_total")
            .await
            .unwrap_or(0.0);
        if stored >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {stored} of {n} messages stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    until_stored(&gw, 2_000.0).await;
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
    until_stored(&gw, 300.0).await;
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
