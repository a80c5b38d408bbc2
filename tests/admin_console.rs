//! The admin console in a real browser: headless Chromium (Debian's `chromium`), driven by playwright-core from
//! `tests/browser/admin.mjs`, against a real gateway (node n1 of a two-node cluster on the in-process bus, so the
//! overview shows both), while a member takes part over a real TCP connection.
//! The script signs in (a wrong key refused), finds the member's room, sees their message rendered as text
//! (it carries `<script>` and `<img onerror>`), watches a new message arrive live, searches and redacts it,
//! and kicks the member, whose connection must receive the reason. It saves a screenshot of every page at
//! 1280 and 360 px under `target/admin-screenshots/`.
//!
//! Needs node, Chromium and playwright-core (`.ci/run` installs them: `target/playwright`). Without them the
//! test says so and passes, unless `ODD_REQUIRE_BROWSER=1` (CI), where a missing browser is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::people;
use odd_gateway::bus::MemoryHub;
use odd_gateway::client::Client;
use odd_gateway::config::Config;
use odd_gateway::gateway::Gateway;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const KEY: &str = "k-console-browser-0123456789";
const ROOM: &str = "ops-console";
const KICK_REASON: &str = "removed by the console test";
/// The whole browser session, start to end.
const WITHIN: Duration = Duration::from_secs(120);

/// Where playwright-core is: `ODD_PLAYWRIGHT`, else `target/playwright` (where `.ci/run` puts it).
fn playwright() -> Option<PathBuf> {
    let dir = std::env::var_os("ODD_PLAYWRIGHT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/playwright"));
    dir.join("node_modules/playwright-core")
        .is_dir()
        .then_some(dir)
}

fn browser_parts() -> Result<PathBuf, String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Err("no /usr/bin/chromium (apt-get install chromium)".into());
    }
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("no node: {e}"))?;
    if !node.status.success() {
        return Err("node --version failed".into());
    }
    playwright().ok_or_else(|| {
        "no playwright-core (npm install --prefix target/playwright playwright-core@1)".into()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_signs_in_watches_searches_redacts_and_kicks() {
    let pw = match browser_parts() {
        Ok(dir) => dir,
        Err(why) => {
            assert!(
                std::env::var("ODD_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "ODD_REQUIRE_BROWSER=1 but {why}"
            );
            eprintln!("SKIPPED the console's browser test: {why}");
            return;
        }
    };
    // Two nodes of a cluster on the in-process bus, one SQLite file: the console, on n1, shows both.
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = MemoryHub::new();
    let mut nodes = Vec::new();
    for name in ["n1", "n2"] {
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).expect("data dir");
        let mut c = Config::ephemeral(&data);
        people(&mut c);
        common::api_key(&mut c, "ops", KEY);
        c.database.url = format!("sqlite://{}", dir.path().join("shared.db").display());
        c.cluster.node = name.into();
        c.cluster.heartbeat_ms = 200;
        c.cluster.node_ttl_ms = 2_000;
        let gw = Gateway::start_on(c, std::sync::Arc::new(hub.link()))
            .await
            .expect("node starts");
        nodes.push(gw);
    }
    let http = format!("http://{}", nodes[0].http_addr.expect("http"));
    for n in &nodes {
        let url = format!("http://{}", n.http_addr.expect("http"));
        let both = common::until_metric(&url, "odd_gateway_cluster_nodes", 2.0, WITHIN).await;
        assert!(both, "the nodes see each other");
    }
    let tcp = format!("tcp://{}", nodes[0].tcp_addr.expect("tcp"));
    let mut alice = Client::connect(&tcp, "alice").await.expect("alice");
    let pipe = alice.create("messaging").await.expect("pipe");
    alice.join(pipe, ROOM).await.expect("join");
    let hostile = "<script>alert(2)</script><img src=x onerror=alert(3)> first words";
    let sent = alice.say(pipe, ROOM, hostile).await.expect("sent");
    assert!(!sent.is_error(), "{sent:?}");

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/admin-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/admin.mjs");
    let mut node = tokio::process::Command::new("node")
        .arg(script)
        .env("ODD_PLAYWRIGHT", &pw)
        .env("ODD_ADMIN_URL", &http)
        .env("ODD_ADMIN_NODES", "n1,n2")
        .env("ODD_ADMIN_KEY", KEY)
        .env("ODD_ADMIN_ROOM", ROOM)
        .env("ODD_ADMIN_USER", "alice")
        .env("ODD_ADMIN_TEXT", hostile)
        .env("ODD_ADMIN_SHOTS", &shots)
        .env("ODD_KICK_REASON", KICK_REASON)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut to_node = node.stdin.take().expect("stdin");
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let mut kicked = None;
    let run = async {
        while let Some(line) = lines.next_line().await.expect("read the script") {
            eprintln!("admin.mjs: {line}");
            seen.push(line.clone());
            if line == "NEED live" {
                let live = "watched live arrives kumquat";
                let r = alice.say(pipe, ROOM, live).await.expect("sent");
                assert!(!r.is_error(), "{r:?}");
                to_node
                    .write_all(format!("SENT {live}\n").as_bytes())
                    .await
                    .expect("tell the script");
            } else if line == "STEP kicked" {
                // The member's connection is told why, then closed.
                kicked = alice.closed_within(Duration::from_secs(10)).await;
            } else if line == "DONE" || line.starts_with("FAIL") {
                break;
            }
        }
    };
    let finished = tokio::time::timeout(WITHIN, run).await;
    let status = node.wait().await.expect("the script ends");
    assert!(finished.is_ok(), "the script did not finish: {seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("DONE"), "{seen:?}");
    assert!(status.success(), "{status:?}");
    let reason = kicked.expect("alice's connection closed after the kick");
    assert!(reason.contains(KICK_REASON), "{reason}");
    for page in ["overview", "rooms", "room", "users", "media"] {
        for width in [1280, 360] {
            let shot = shots.join(format!("{page}-{width}.png"));
            assert!(shot.is_file(), "no screenshot {}", shot.display());
        }
    }
}
