//! The `odd` CLI end to end: real processes against a real gateway.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestGateway;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const ODD: &str = env!("CARGO_BIN_EXE_odd");

fn chat(url: &str, room: &str) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(ODD)
        .args(["--url", url, "chat", "--room", room])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("odd chat starts");
    let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    (child, out)
}

/// Reads lines until one contains `needle`; returns it.
async fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>, needle: &str) -> String {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    })
    .await;
    found
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no line containing {needle:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chats_exchange_a_line() {
    let gw = TestGateway::start().await;
    let url = gw.tcp_url();
    let (mut alice, mut alice_out) = chat(&url, "cli-room");
    expect_line(&mut alice_out, "joined cli-room").await;
    let (mut bob, mut bob_out) = chat(&url, "cli-room");
    let joined = expect_line(&mut bob_out, "joined cli-room").await;
    assert!(joined.contains("2 present"), "{joined}");
    expect_line(&mut alice_out, "joined").await; // "* guest-... joined"

    let mut stdin = alice.stdin.take().expect("stdin");
    stdin
        .write_all(b"hello from the terminal\n")
        .await
        .expect("write");
    stdin.flush().await.expect("flush");
    let line = expect_line(&mut bob_out, "hello from the terminal").await;
    // `HH:MM:SS nick: text`
    assert!(
        line.len() > 9 && line.as_bytes()[2] == b':' && line.contains(": hello"),
        "{line}"
    );

    // End of input: alice leaves and exits cleanly; bob sees her go.
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), alice.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success());
    expect_line(&mut bob_out, "left").await;
    drop(bob.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(10), bob.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success());
}

async fn odd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(ODD)
        .args(args)
        .output()
        .await
        .expect("odd runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_history_and_clear_errors() {
    let gw = TestGateway::start().await;
    let url = gw.tcp_url();
    let (ok, out, err) = odd(&["--url", &url, "send", "--room", "r1", "first", "words"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("sent, id "), "{out}");
    let (ok, out, _) = odd(&["--url", &url, "history", "--room", "r1", "--json"]).await;
    assert!(ok);
    let page: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(page["messages"][0]["data"], "first words");
    let (ok, out, _) = odd(&["--url", &url, "history", "--room", "r1"]).await;
    assert!(ok && out.contains("first words"), "{out}");
    // Search (the index follows the send path: ask until it has caught up).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, out, err) = odd(&[
            "--url", &url, "history", "--room", "r1", "--query", "fir*", "--json",
        ])
        .await;
        assert!(ok, "{err}");
        let hits: serde_json::Value = serde_json::from_str(&out).expect("json");
        if hits["messages"][0]["data"] == "first words" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never found: {out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another guest may not redact it: a clear failure.
    let (ok, _, err) = odd(&[
        "--url",
        &url,
        "redact",
        &page["messages"][0]["mid"].to_string(),
    ])
    .await;
    assert!(!ok && err.contains("no administer (x) permission"), "{err}");

    let (ok, _, err) = odd(&["--url", "tcp://127.0.0.1:1", "send", "--room", "r", "x"]).await;
    assert!(!ok && err.contains("cannot reach 127.0.0.1:1"), "{err}");
    let (ok, _, err) = odd(&["--url", "smtp://x:1", "send", "--room", "r", "x"]).await;
    assert!(!ok && err.contains("unknown scheme"), "{err}");
    let (ok, _, err) = odd(&["--url", &url, "--token", "nope", "send", "--room", "r", "x"]).await;
    assert!(
        !ok && err.contains("NetConnection.Connect.Rejected"),
        "{err}"
    );
    let (ok, _, err) = odd(&["--url", &url, "chmod", "--room", "r1", "--user", "bob", "w"]).await;
    assert!(!ok && err.contains("must be +, - or ="), "{err}");
    let (ok, _, err) = odd(&[
        "--url", &url, "chmod", "--room", "r1", "--user", "bob", "-w",
    ])
    .await;
    assert!(
        !ok && err.contains("administer (x)"),
        "a guest is not the room's owner: {err}"
    );
}

/// A series' value, 0 when it is not exported (yet).
async fn metric(gw: &TestGateway, series: &str) -> f64 {
    common::metric_at(&gw.http_url(), series)
        .await
        .unwrap_or(0.0)
}

/// The CLI says goodbye on every transport: the gateway counts a `goodbye`, parks nothing, and the room shows
/// nobody who left (before, each `odd send` over TCP or TLS left a ghost present for the 30 s grace, and before
/// that over QUIC too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_closes_every_transport_cleanly() {
    let gw = TestGateway::start().await;
    let cert = gw.gateway.cert_path.clone().expect("dev cert");
    let cert = cert.to_string_lossy().to_string();
    let quic = format!(
        "quic://localhost:{}",
        gw.gateway.quic_addr.expect("quic").port()
    );
    let ws = format!("ws://{}/im", gw.gateway.http_addr.expect("http"));
    let wss = format!(
        "wss://localhost:{}/im",
        gw.gateway.https_addr.expect("https").port()
    );
    let tcp = gw.tcp_url();
    let tls = format!(
        "tls://localhost:{}",
        gw.gateway.tls_addr.expect("tls").port()
    );
    // Someone in the room sees every sender leave at once: a goodbye, not a lost phone kept for 30 s.
    let (watcher, _, _) = common::member_at(&tcp, "", "r").await;
    for url in [&tcp, &tls, &quic, &ws, &wss] {
        let (ok, out, err) =
            odd(&["--url", url, "--ca", &cert, "send", "--room", "r", "bye"]).await;
        assert!(ok && out.starts_with("sent"), "{url}: {out} {err}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut said = Vec::new();
        for transport in ["tcp", "tls", "quic", "ws"] {
            let series = format!(
                r#"odd_gateway_connections_closed_total{{reason="goodbye",transport="{transport}"}}"#
            );
            said.push(metric(&gw, &series).await);
        }
        if said == [1.0, 1.0, 1.0, 2.0] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "goodbyes by transport (tcp, tls, quic, ws): {said:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let present: serde_json::Value =
        reqwest::get(format!("{}/api/rooms/r/presence", gw.http_url()))
            .await
            .expect("presence")
            .json()
            .await
            .expect("json");
    assert_eq!(
        present["count"], 1,
        "only the watcher is present: {present}"
    );
    assert_eq!(metric(&gw, "odd_gateway_sessions_parked").await, 0.0);
    assert_eq!(
        metric(&gw, r#"odd_gateway_connections_open{transport="quic"}"#).await,
        0.0
    );
    watcher.close().await;
}

/// `odd-gateway --check-config` validates without starting: 0 for a good configuration, non-zero with the
/// reason for a bad one (unknown key, unreadable key file, prod without certificates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_says_why() {
    let dir = tempfile::tempdir().expect("dir");
    let check = |file: &std::path::Path| {
        let file = file.to_path_buf();
        async move {
            let out = Command::new(env!("CARGO_BIN_EXE_odd-gateway"))
                .arg("--check-config")
                .arg("--config")
                .arg(&file)
                .env_remove("ODD_JWT_SECRET")
                .output()
                .await
                .expect("runs");
            (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        }
    };
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[rooms]\nhistory_max = 100\n").expect("write");
    let (ok, out) = check(&good).await;
    assert!(ok && out.contains("configuration is valid"), "{out}");
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[limits]\nmax_pipez = 3\n").expect("write");
    let (ok, out) = check(&typo).await;
    assert!(!ok && out.contains("max_pipez"), "{out}");
    let keys = dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        "[auth]\njwt_public_keys = [\"/nonexistent/key.pem\"]\n",
    )
    .expect("write");
    let (ok, out) = check(&keys).await;
    assert!(
        !ok && out.contains("auth keys") && out.contains("/nonexistent/key.pem"),
        "{out}"
    );
    let prod = dir.path().join("prod.toml");
    std::fs::write(&prod, "profile = \"prod\"\n").expect("write");
    let (ok, out) = check(&prod).await;
    assert!(!ok && out.contains("tls.cert"), "{out}");
}

/// The example production configuration in docs/deploy parses and passes validation (its certificate and key
/// files exist only on a real host, so only the file's keys and values are checked here).
#[test]
fn the_example_production_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy/production.toml");
    let c = odd_gateway::config::Config::from_file(std::path::Path::new(path)).expect("parses");
    c.validate().expect("valid");
    assert!(!c.anonymous_allowed());
    assert_eq!(c.cluster.node, "gw1");
}

/// The systemd unit in docs/deploy passes `systemd-analyze verify` (with the binary path pointed at the one
/// this build made); skipped loudly where systemd-analyze is not installed.
#[test]
fn the_systemd_unit_verifies() {
    let Ok(probe) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!(
            "\n!!! SKIPPED: systemd-analyze is not installed; the unit was not verified !!!\n"
        );
        return;
    };
    assert!(probe.status.success());
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/deploy/odd-gateway.service"
    ))
    .expect("unit")
    .replace(
        "/usr/local/bin/odd-gateway",
        env!("CARGO_BIN_EXE_odd-gateway"),
    );
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("odd-gateway.service");
    std::fs::write(&path, unit).expect("write");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("odd-gateway.service:"),
        "{text}"
    );
}

/// `odd bench` end to end on a small shape: it starts its own gateway, every receiver gets every message, and the
/// report carries the phases and the CPU of both sides (the figures a reader needs to tell a client-bound run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_harness_reports_deliveries_phases_and_cpu() {
    let (ok, out, err) = odd(&["bench", "fanout", "-n", "20", "-m", "10", "--json"]).await;
    assert!(ok, "odd bench failed: {err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["messages_sent"], 10);
    assert_eq!(
        report["deliveries"], 200,
        "20 receivers x 10 messages: {report}"
    );
    assert!(report["fanout_seconds"].as_f64().is_some_and(|s| s > 0.0));
    assert!(report["setup_seconds"].as_f64().is_some_and(|s| s > 0.0));
    assert!(report["server_cpu_ms_per_1000"].is_number(), "{report}");
    assert!(report["client_cpu_ms_per_1000"].is_number(), "{report}");
}

/// `odd admin` calls the server API: a publish reaches a member and its redaction tells them, an erase reports
/// its count, the room list comes back as JSON, and a wrong key fails with the gateway's 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_publishes_lists_rooms_and_reports_a_wrong_key() {
    const KEY: &str = "cli-key-0123456789ab";
    let gw = TestGateway::start_with(|c| {
        common::api_key(c, "ops", KEY);
    })
    .await;
    let http = gw.http_url();
    let mut member = odd_gateway::client::Client::connect(&gw.tcp_url(), "")
        .await
        .expect("member");
    let pipe = member.create("messaging").await.expect("pipe");
    member.join(pipe, "news").await.expect("join");

    let (ok, stdout, stderr) = odd(&[
        "admin", "--http", &http, "--key", KEY, "publish", "--room", "news", "hello", "world",
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("published, id "), "{stdout}");
    common::pushes::until_data(&mut member, "hello world").await;
    let mid = stdout
        .trim()
        .trim_start_matches("published, id ")
        .to_string();
    let mid_number: i64 = mid.parse().expect("a message id");

    // Redacted from the terminal: the member is told.
    let (ok, stdout, stderr) = odd(&["admin", "--http", &http, "--key", KEY, "redact", &mid]).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), format!("message {mid} redacted"));
    common::pushes::until(&mut member, "the redaction notice", |p| {
        p.code() == "NetGroup.Redact.Notify" && p.info()["mids"][0] == mid_number
    })
    .await;
    let (ok, stdout, stderr) = odd(&[
        "admin", "--http", &http, "--key", KEY, "erase", "news", "nobody",
    ])
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "nobody in news: 0 message(s) redacted");

    let (ok, stdout, stderr) =
        odd(&["admin", "--http", &http, "--key", KEY, "--json", "rooms"]).await;
    assert!(ok, "{stderr}");
    let rooms: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert_eq!(rooms["rooms"][0]["id"], "news");
    assert_eq!(rooms["rooms"][0]["present"], 1);

    let (ok, _, stderr) = odd(&[
        "admin",
        "--http",
        &http,
        "--key",
        "wrong-key-wrong-key",
        "rooms",
    ])
    .await;
    assert!(!ok);
    assert!(stderr.contains("401"), "{stderr}");
}

/// A newcomer's first minutes, as README.md walks them, with processes only: `genconfig` writes a valid,
/// commented configuration; the gateway started with it in the dev profile writes its own secrets; `odd token` signs a token with them; a tokened `odd send` and `odd history`
/// work under that user's name; `odd admin` publishes with the generated key (found in the same data
/// directory), and the member's history shows it. A token signed with another secret is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomers_path_from_a_dev_gateway_to_tokens_and_the_server_api() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().to_str().expect("utf-8 path");
    // A complete, commented configuration file to start from; it is valid as it is.
    let generated = Command::new(env!("CARGO_BIN_EXE_odd-gateway"))
        .arg("genconfig")
        .output()
        .await
        .expect("genconfig runs");
    assert!(generated.status.success());
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, &generated.stdout).expect("write");
    let text = String::from_utf8_lossy(&generated.stdout);
    assert!(text.contains("[limits]") && text.contains("# "), "{text}");
    let checked = Command::new(env!("CARGO_BIN_EXE_odd-gateway"))
        .args(["--check-config", "--config"])
        .arg(&config)
        .output()
        .await
        .expect("check runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let config_path = config.to_str().expect("utf-8 path");
    let gw =
        common::process::GatewayProcess::spawn(dir.path(), &[("ODD_CONFIG", config_path)]).await;
    let secrets = std::fs::read_to_string(dir.path().join("dev-secrets.toml")).expect("written");
    assert!(secrets.contains("jwt_secret") && secrets.contains("api_key"));

    let (ok, token, stderr) = odd(&[
        "token",
        "--user",
        "alice",
        "--nick",
        "Alice",
        "--data-dir",
        data,
    ])
    .await;
    assert!(ok, "{stderr}");
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let url = gw.url();
    let (ok, stdout, stderr) = odd(&[
        "--url", &url, "--token", token, "send", "--room", "lobby", "hi", "there",
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("sent, id "), "{stdout}");

    let (ok, stdout, stderr) = odd(&[
        "admin",
        "--http",
        &gw.http_url(),
        "--data-dir",
        data,
        "publish",
        "--room",
        "lobby",
        "from",
        "the",
        "backend",
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("published, id "), "{stdout}");

    let (ok, stdout, stderr) = odd(&[
        "--url", &url, "--token", token, "history", "--room", "lobby", "--json",
    ])
    .await;
    assert!(ok, "{stderr}");
    let page: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json page");
    let said: Vec<(String, String)> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["user"]["id"].as_str().unwrap_or_default().to_string(),
                m["data"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        said[0],
        ("alice".to_string(), "hi there".to_string()),
        "{page}"
    );
    assert_eq!(said[1].1, "from the backend", "{page}");

    // A token signed with another secret is refused, with a reason.
    let other = tempfile::tempdir().expect("dir");
    let other_data = other.path().to_str().expect("utf-8 path");
    std::fs::write(
        other.path().join("dev-secrets.toml"),
        format!(
            "jwt_secret = \"{}\"\napi_key = \"another-key-0123456789\"\n",
            "0".repeat(64)
        ),
    )
    .expect("write");
    let (ok, forged, _) = odd(&["token", "--user", "mallory", "--data-dir", other_data]).await;
    assert!(ok);
    let (ok, _, stderr) = odd(&[
        "--url",
        &url,
        "--token",
        forged.trim(),
        "send",
        "--room",
        "lobby",
        "x",
    ])
    .await;
    assert!(!ok, "a token of another secret is refused");
    assert!(stderr.to_lowercase().contains("token"), "{stderr}");

    // Without any secret, `odd token` says where one comes from.
    let empty = tempfile::tempdir().expect("dir");
    let (ok, _, stderr) = odd(&[
        "token",
        "--user",
        "x",
        "--data-dir",
        empty.path().to_str().expect("path"),
    ])
    .await;
    assert!(!ok);
    assert!(stderr.contains("ODD_JWT_SECRET"), "{stderr}");
}

/// `odd admin` covers the rest of the server API: a room's properties read and set (bad values refused with
/// the reason), room and user details, chmod, and a broadcast into two rooms that reaches a member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reads_and_sets_properties_chmods_and_broadcasts() {
    const KEY: &str = "cli-key-0123456789ab";
    let gw = TestGateway::start_with(|c| {
        common::people(c);
        common::api_key(c, "ops", KEY);
    })
    .await;
    let http = gw.http_url();
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--http", &http, "--key", KEY];
        all.extend_from_slice(args);
        let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            odd(&refs).await
        }
    };
    let (mut alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "news").await;
    let (_bob, _, _) = common::member_at(&gw.tcp_url(), "bob", "news").await;
    alice.join(ap, "sport").await.expect("join");

    let (ok, stdout, stderr) =
        admin(&["props", "news", "offline_notify=true", "retention_count=5"]).await;
    assert!(ok, "{stderr}");
    let props: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(props["properties"]["offline_notify"], true);
    assert_eq!(props["properties"]["retention_count"], 5);
    let (ok, stdout, _) = admin(&["props", "news"]).await;
    assert!(ok && stdout.contains("offline_notify"), "{stdout}");
    // The same check as setProperty: a wrong value is refused, with the reason.
    let (ok, _, stderr) = admin(&["props", "news", "retention_count=-1"]).await;
    assert!(
        !ok && stderr.contains("retention_count") && stderr.contains("400"),
        "{stderr}"
    );
    let (ok, _, stderr) = admin(&["props", "news", "colour=red"]).await;
    assert!(!ok && stderr.contains("unknown room property"), "{stderr}");
    let (ok, _, stderr) = admin(&["props", "nowhere", "read_receipts=true"]).await;
    assert!(!ok && stderr.contains("404"), "{stderr}");

    let (ok, stdout, stderr) = admin(&["room", "news"]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("\"news\""), "{stdout}");
    let (ok, stdout, stderr) = admin(&["user", "alice"]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("news") && stdout.contains("sport"),
        "{stdout}"
    );

    let (ok, stdout, stderr) = admin(&["chmod", "news", "bob", "-w"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "bob in news: rights now \"r\"");
    let (ok, _, stderr) = admin(&["chmod", "news", "bob", "w"]).await;
    assert!(!ok && stderr.contains("mode"), "{stderr}");

    let (ok, stdout, stderr) =
        admin(&["broadcast", "--rooms", "news,sport", "kick-off", "at", "8"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let got = common::pushes::until_sends(&mut alice, 2).await;
    assert_eq!(
        common::pushes::data_of(&got),
        ["kick-off at 8", "kick-off at 8"]
    );
}

/// `odd read`, `odd unread` and `odd prop`, with a static token, and `odd chat` showing a redaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_positions_unread_counts_properties_and_redactions_from_the_terminal() {
    let gw = TestGateway::start_with(common::people).await;
    let url = gw.tcp_url();
    let http = gw.http_url();
    let (alice, ap, _) = common::member_at(&url, "alice", "news").await;
    let mut mids = Vec::new();
    for i in 0..3 {
        let r = alice.say(ap, "news", &format!("n{i}")).await.expect("sent");
        mids.push(r.info()["mid"].as_i64().expect("mid"));
    }
    let as_alice = |args: &[&str]| {
        let mut all = vec!["--url", url.as_str(), "--token", "alice"];
        all.extend_from_slice(args);
        let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            odd(&refs).await
        }
    };
    let first = mids[0].to_string();
    let (ok, stdout, stderr) = as_alice(&["read", "--room", "news", "--mid", &first]).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), format!("read up to {first}, 2 unread"));
    let (ok, stdout, stderr) = as_alice(&["unread", "--http", &http]).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("news: 2 unread (read up to {first})")
    );
    // A guest has no read positions: told so, not a 403 about a guest id it never chose.
    let (ok, _, stderr) = odd(&["--url", &url, "--token", "", "unread", "--http", &http]).await;
    assert!(
        !ok && stderr.contains("a guest has no read positions"),
        "{stderr}"
    );

    let (ok, stdout, stderr) = as_alice(&["prop", "set", "room:news:read_receipts", "true"]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("true"), "{stdout}");
    let (ok, stdout, _) = as_alice(&["prop", "get", "room:news:read_receipts"]).await;
    assert!(
        ok && stdout.contains("\"room:news:read_receipts\": true"),
        "{stdout}"
    );
    let (ok, _, stderr) = as_alice(&["prop", "set", "room:news:retention_count", "-3"]).await;
    assert!(!ok && stderr.contains("retention_count"), "{stderr}");

    // Bob's chat shows alice's redaction.
    let mut bob = Command::new(ODD)
        .args(["--url", &url, "--token", "bob", "chat", "--room", "news"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chat");
    let mut bob_out = BufReader::new(bob.stdout.take().expect("stdout")).lines();
    expect_line(&mut bob_out, "joined news").await;
    let (ok, _, stderr) = as_alice(&["redact", &mids[2].to_string()]).await;
    assert!(ok, "{stderr}");
    let line = expect_line(&mut bob_out, "redacted by").await;
    assert!(line.contains(&mids[2].to_string()), "{line}");
}
