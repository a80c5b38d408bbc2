//! Metrics, dashboard and alert rules: the counters move by the right amounts, and nothing the operator
//! looks at names a metric the gateway does not export.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{people, TestGateway};
use odd_gateway::client::Client;
use odd_gateway::metrics::Metrics;

/// `name{labels}` -> value, from the text exposition format.
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

async fn scrape(gw: &TestGateway) -> (String, HashMap<String, f64>) {
    let body = reqwest::get(format!("{}/metrics", gw.http_url()))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    let map = parse(&body);
    (body, map)
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_a_scripted_conversation() {
    let gw = TestGateway::start_with(people).await;
    let url = gw.tcp_url();
    let a = Client::connect(&url, "alice").await.expect("alice");
    let mut b = Client::connect(&url, "bob").await.expect("bob");
    let (ap, bp) = (
        a.create("messaging").await.expect("pipe"),
        b.create("messaging").await.expect("pipe"),
    );
    a.join(ap, "metrics").await.expect("join");
    b.join(bp, "metrics").await.expect("join");
    for i in 0..3 {
        a.say(ap, "metrics", &format!("m{i}")).await.expect("sent");
    }
    for _ in 0..3 {
        b.wait_for("send").await.expect("delivered");
    }
    let bad = a
        .call(ap, serde_json::json!({"name": "bogus"}))
        .await
        .expect("answer");
    assert!(bad.is_error());
    let mut rejected = Client::open(&url).await.expect("open");
    assert!(rejected.handshake("wrong", "").await.is_err());
    rejected.closed_within(Duration::from_secs(5)).await;
    // The gateway counts the close once its session task has ended: wait for that, not for a while.
    let closed = r#"odd_gateway_connections_closed_total{reason="refused",transport="tcp"}"#;
    assert!(
        common::until_metric(&gw.http_url(), closed, 1.0, Duration::from_secs(5)).await,
        "the refused connection was never counted closed"
    );

    let (_, m) = scrape(&gw).await;
    assert_eq!(
        get(&m, r#"odd_gateway_connections_total{transport="tcp"}"#),
        3.0
    );
    assert_eq!(
        get(&m, r#"odd_gateway_connections_open{transport="tcp"}"#),
        2.0,
        "the rejected one closed"
    );
    assert_eq!(
        get(
            &m,
            r#"odd_gateway_connections_closed_total{reason="refused",transport="tcp"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            r#"odd_gateway_auth_failures_total{reason="unknown_token"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            r#"odd_gateway_commands_total{code="NetConnection.Connect.Success",command="connect"}"#
        ),
        2.0
    );
    assert_eq!(
        get(
            &m,
            r#"odd_gateway_commands_total{code="NetConnection.Connect.Rejected",command="connect"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            r#"odd_gateway_commands_total{code="NetGroup.Connect.Success",command="join"}"#
        ),
        2.0
    );
    assert_eq!(
        get(
            &m,
            r#"odd_gateway_commands_total{code="NetConnection.Call.Success",command="send"}"#
        ),
        3.0
    );
    assert_eq!(
        get(
            &m,
            r#"odd_gateway_commands_total{code="NetConnection.Call.Failed",command="unknown"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            r#"odd_gateway_protocol_errors_total{kind="unknown_command"}"#
        ),
        1.0
    );
    assert_eq!(
        get(&m, "odd_gateway_fanout_deliveries_total"),
        6.0,
        "two recipients per message: bob and the echo to alice"
    );
    assert_eq!(get(&m, "odd_gateway_messages_stored_total"), 3.0);
    assert!(get(&m, "odd_gateway_store_batch_messages_count") >= 1.0);
    assert_eq!(get(&m, "odd_gateway_store_batch_messages_sum"), 3.0);
    assert_eq!(
        get(
            &m,
            r#"odd_gateway_command_duration_seconds_count{command="send"}"#
        ),
        3.0
    );
    assert_eq!(get(&m, "odd_gateway_rooms"), 1.0);
    assert_eq!(get(&m, "odd_gateway_room_members"), 2.0);
    // alice: connect, create, join, 3 x send, bogus; bob: connect, create, join; the rejected: connect.
    assert_eq!(
        get(
            &m,
            r#"odd_gateway_frames_received_total{transport="tcp",type="command"}"#
        ),
        11.0
    );
    assert!(get(&m, r#"odd_gateway_received_bytes_total{transport="tcp"}"#) > 0.0);
    assert!(
        get(
            &m,
            r#"odd_gateway_frames_sent_total{transport="tcp",type="command"}"#
        ) >= 11.0
    );
    assert!(get(&m, "process_resident_memory_bytes") > 0.0);
}

/// Every `odd_gateway_*` / `process_*` name an expression mentions, histogram suffixes removed.
fn names_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["odd_gateway_", "process_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let mut name = tail[..end].to_string();
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    if base.ends_with("_seconds") || base.ends_with("_messages") {
                        name = base.to_string();
                    }
                }
            }
            out.push(name);
            rest = &tail[end..];
        }
    }
    out
}

#[test]
fn dashboard_and_alerts_only_name_exported_metrics() {
    let exported = Metrics::new().family_names();
    let root = env!("CARGO_MANIFEST_DIR");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/grafana/dashboard.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    assert!(exprs.len() >= 20, "the dashboard has its panels");
    assert_eq!(
        dashboard["templating"]["list"][0]["type"], "datasource",
        "the data source is a variable"
    );
    let alerts = std::fs::read_to_string(format!("{root}/grafana/alerts.yml")).expect("alerts");
    let mut used = Vec::new();
    for e in exprs.iter().map(String::as_str).chain([alerts.as_str()]) {
        used.extend(names_in(e));
    }
    assert!(used.len() > 20);
    for name in used {
        assert!(
            exported.contains(&name),
            "{name} is used by the dashboard or alerts but not exported"
        );
    }
}

/// The other way round: every metric the gateway exports has a panel (a family whose name a panel's query
/// holds, `_bucket`/`_sum`/`_count` of a histogram included), with a unit that fits what it shows.
#[test]
fn every_exported_metric_has_a_panel_with_a_fitting_unit() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/grafana/dashboard.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let panels: Vec<&serde_json::Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|p| p["type"] != "row")
        .collect();
    let mut shown = std::collections::HashSet::new();
    for p in &panels {
        let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
        let title = p["title"].as_str().unwrap_or("");
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("expr");
            for name in names_in(expr) {
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name)
                    .to_string();
                shown.insert(family);
            }
            // A rate of a counter is per second; bytes per second are Bps, not "ops".
            if expr.contains("rate(") && expr.contains("bytes_total") {
                assert_eq!(unit, "Bps", "{title}: a byte rate");
            }
            if !expr.contains("rate(") && !expr.contains("histogram_quantile") {
                assert_ne!(unit, "ops", "{title}: a gauge is not per second");
            }
        }
    }
    let missing: Vec<String> = Metrics::new()
        .family_names()
        .into_iter()
        .filter(|n| !shown.contains(n))
        .collect();
    assert!(missing.is_empty(), "no panel shows {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_rules_and_exposition() {
    let Ok(out) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        eprintln!("\n!!! SKIPPED: promtool not installed (apt-get install prometheus) !!!\n");
        return;
    };
    assert!(out.status.success());
    let root = env!("CARGO_MANIFEST_DIR");
    let rules = std::process::Command::new("promtool")
        .args(["check", "rules", &format!("{root}/grafana/alerts.yml")])
        .output()
        .expect("promtool runs");
    assert!(
        rules.status.success(),
        "{}",
        String::from_utf8_lossy(&rules.stdout)
    );
    let gw = TestGateway::start().await;
    let c = Client::connect(&gw.tcp_url(), "").await.expect("connect");
    c.create("messaging").await.expect("pipe");
    let (body, _) = scrape(&gw).await;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool ends");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool check metrics: {report}");
}

/// A fresh gateway exports, at 0, the labelled series the dashboard and the alert rules use, so the first
/// slow consumer, auth failure or protocol error shows up in `rate()` and `increase()` instead of being the
/// series' invisible first sample.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_gateway_exports_labelled_series_at_zero() {
    let gw = TestGateway::start().await;
    let (_, m) = scrape(&gw).await;
    for series in [
        r#"odd_gateway_slow_consumer_disconnects_total{transport="tcp"}"#,
        r#"odd_gateway_slow_consumer_disconnects_total{transport="ws"}"#,
        r#"odd_gateway_auth_failures_total{reason="invalid_token"}"#,
        r#"odd_gateway_auth_failures_total{reason="expired_token"}"#,
        r#"odd_gateway_protocol_errors_total{kind="bad_args"}"#,
        r#"odd_gateway_connections_closed_total{reason="slow_consumer",transport="quic"}"#,
        r#"odd_gateway_connections_closed_total{reason="lost",transport="tcp"}"#,
        r#"odd_gateway_pushes_dropped_total{transport="tls"}"#,
        r#"odd_gateway_bus_errors_total{kind="publish"}"#,
        r#"odd_gateway_commands_total{code="NetConnection.Call.Failed",command="send"}"#,
        r#"odd_gateway_commands_total{code="NetGroup.Posting.Failed",command="send"}"#,
        r#"odd_gateway_memory_budget_refusals_total{what="reassembly"}"#,
        "odd_gateway_session_panics_total",
        "odd_gateway_history_unreadable_total",
        r#"odd_gateway_command_duration_seconds_count{command="send"}"#,
        r#"odd_gateway_command_duration_seconds_count{command="history"}"#,
        r#"odd_gateway_hook_duration_seconds_count{hook="message"}"#,
        r#"odd_gateway_hook_calls_total{hook="message",outcome="failed"}"#,
        r#"odd_gateway_hook_calls_total{hook="connect",outcome="unavailable"}"#,
        r#"odd_gateway_hook_backlog_messages{hook="message"}"#,
    ] {
        assert_eq!(m.get(series), Some(&0.0), "{series} is exported at 0");
    }
    assert_eq!(m.get("odd_gateway_store_up"), Some(&1.0));
}

/// `process_*` come from `/proc` at scrape time, CPU seconds with their 1/100 s resolution (the prometheus
/// crate's collector exported whole seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_metrics_are_read_with_fractions() {
    let gw = TestGateway::start().await;
    // Spend some CPU so the counter is well above 0.
    let mut x = 0u64;
    for i in 0..20_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    assert_ne!(x, 1);
    let (_, m) = scrape(&gw).await;
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let rest = stat.rsplit_once(')').expect("comm").1;
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let mine = (f[11] + f[12]) / 100.0;
    let cpu = get(&m, "process_cpu_seconds_total");
    assert!(
        cpu > 0.0 && (mine - cpu).abs() < 0.25,
        "scraped {cpu}, /proc says {mine}"
    );
    assert!(get(&m, "process_resident_memory_bytes") > 1e6);
    assert!(get(&m, "process_open_fds") > 0.0);
    assert!(get(&m, "process_max_fds") >= get(&m, "process_open_fds"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let started = get(&m, "process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 86_400.0,
        "{started}"
    );
    assert!(get(&m, "process_threads") >= 1.0);
}

/// Against a real Prometheus (Debian's `prometheus`, installed by `.ci/run` with promtool): it scrapes a gateway
/// under scripted traffic; every dashboard query, with its variables substituted, returns a series, and every
/// alert rule evaluates without error. Skipped loudly where the `prometheus` binary is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_runs_every_dashboard_query_and_rule() {
    if std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("\n!!! SKIPPED: prometheus not installed (apt-get install prometheus) !!!\n");
        return;
    }
    // A small outbound queue, so that one non-reader is cut after a few hundred KB.
    let gw = TestGateway::start_with(|c| {
        people(c);
        c.limits.outbound_queue_bytes = 256 * 1024;
    })
    .await;
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let rules = dir.path().join("alerts.yml");
    std::fs::copy(format!("{root}/grafana/alerts.yml"), &rules).expect("rules");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [\"{}\"]\nscrape_configs:\n  - job_name: odd-gateway\n    static_configs:\n      - targets: [\"{}\"]\n",
            rules.display(),
            gw.gateway.http_addr.expect("http")
        ),
    )
    .expect("config");
    let _prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus starts");
    let api = format!("http://127.0.0.1:{port}/api/v1");
    let query = |q: String| {
        let api = api.clone();
        async move {
            let r = reqwest::Client::new()
                .get(format!("{api}/query"))
                .query(&[("query", q.as_str())])
                .send()
                .await
                .ok()?;
            r.json::<serde_json::Value>().await.ok()
        }
    };
    // Scripted traffic while Prometheus scrapes: chat, a refused token, a bad command.
    let url = gw.tcp_url();
    let a = Client::connect(&url, "alice").await.expect("alice");
    let b = Client::connect(&url, "bob").await.expect("bob");
    let (ap, bp) = (
        a.create("messaging").await.expect("pipe"),
        b.create("messaging").await.expect("pipe"),
    );
    a.join(ap, "prom").await.expect("join");
    b.join(bp, "prom").await.expect("join");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    loop {
        round += 1;
        a.say(ap, "prom", &format!("tick {round}"))
            .await
            .expect("sent");
        let _ = b.call(bp, serde_json::json!({"name": "bogus"})).await;
        let mut rejected = Client::open(&url).await.expect("open");
        let _ = rejected.handshake("wrong", "").await;
        // Enough samples for rate() over 30 s windows: wait until Prometheus has at least 5 scrapes.
        let samples = query("count_over_time(up{job=\"odd-gateway\"}[1m])".into()).await;
        let n = samples
            .as_ref()
            .and_then(|v| v["data"]["result"][0]["value"][1].as_str())
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
        if n >= 5.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus never scraped the gateway"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A slow-consumer cut on this fresh gateway: its series was exported at 0 from the start, so
    // `increase(...[1m])` sees the first cut as 1 (a series born at 1 would show nothing).
    let slow_series = r#"odd_gateway_slow_consumer_disconnects_total{transport="tcp"}"#;
    assert_eq!(
        common::metric_at(&gw.http_url(), slow_series).await,
        Some(0.0),
        "exported at 0 before any cut"
    );
    let _slow = common::Raw::non_reader(&gw, "carol", "prom").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !gw
        .gateway
        .rooms()
        .present("prom")
        .contains(&"carol".to_string())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the non-reader never joined"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let big = "x".repeat(16_000);
    let mut cut = false;
    for _ in 0..4_000 {
        let args = serde_json::json!({"name": "send", "type": "text", "cast": "multi", "id": "prom", "data": big});
        a.call(ap, args)
            .await
            .expect("answer")
            .ok()
            .expect("accepted");
        if common::metric_at(&gw.http_url(), slow_series).await == Some(1.0) {
            cut = true;
            break;
        }
    }
    assert!(cut, "the non-reader was never cut");
    let increase = format!("increase({slow_series}[1m])");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let v = query(increase.clone())
            .await
            .as_ref()
            .and_then(|v| {
                v["data"]["result"][0]["value"][1]
                    .as_str()
                    .map(String::from)
            })
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
        if v >= 1.0 {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{increase} stayed at {v}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("{increase} = {seen} after one cut");
    assert!(seen < 2.5, "one cut, extrapolated over the window: {seen}");

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/grafana/dashboard.json")).expect("dashboard"),
    )
    .expect("json");
    let mut empty = Vec::new();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("expr");
            let q = expr
                .replace("$__rate_interval", "30s")
                .replace("$__interval", "15s")
                .replace("$instance", ".*")
                .replace("$job", "odd-gateway");
            let answer = query(q.clone()).await.expect("an answer");
            assert_eq!(answer["status"], "success", "{q}: {answer}");
            checked += 1;
            if answer["data"]["result"]
                .as_array()
                .is_none_or(|r| r.is_empty())
            {
                empty.push(format!("{}: {q}", panel["title"]));
            }
        }
    }
    assert!(checked >= 20);
    assert!(
        empty.is_empty(),
        "queries without a series:\n{}",
        empty.join("\n")
    );
    // Every rule evaluated, healthily.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r: serde_json::Value = reqwest::get(format!("{api}/rules"))
            .await
            .expect("rules")
            .json()
            .await
            .expect("json");
        let rules: Vec<&serde_json::Value> = r["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        let evaluated = !rules.is_empty()
            && rules.iter().all(|r| {
                r["lastEvaluation"]
                    .as_str()
                    .is_some_and(|t| !t.starts_with("0001"))
            });
        if evaluated {
            for rule in &rules {
                assert_eq!(rule["health"], "ok", "{rule}");
            }
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rules never evaluated"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `/metrics` names API keys and what they call: in prod (or with `metrics_need_key`) a scrape needs a
/// server-API key or a metrics-only key, as `X-API-Key` or as Prometheus's `Authorization: Bearer`; the
/// metrics-only key can do nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_key() {
    let gw = common::TestGateway::start_with(|c| {
        common::api_key(c, "prometheus", "k-scrape-0123456789");
        c.server_api.metrics_keys = vec![odd_gateway::config::ApiKey {
            name: "scraper".into(),
            key: "k-metrics-only-0123456789".into(),
        }];
        c.server_api.metrics_need_key = Some(true);
    })
    .await;
    let url = format!("{}/metrics", gw.http_url());
    let http = reqwest::Client::new();
    let status =
        |r: reqwest::RequestBuilder| async move { r.send().await.expect("http").status().as_u16() };
    assert_eq!(status(http.get(&url)).await, 401);
    assert_eq!(status(http.get(&url).bearer_auth("wrong")).await, 401);
    assert_eq!(
        status(http.get(&url).bearer_auth("k-scrape-0123456789")).await,
        200
    );
    assert_eq!(
        status(http.get(&url).header("X-API-Key", "k-scrape-0123456789")).await,
        200
    );
    assert_eq!(
        status(http.get(&url).bearer_auth("k-metrics-only-0123456789")).await,
        200
    );
    let publish = format!("{}/api/server/rooms", gw.http_url());
    assert_eq!(
        status(
            http.get(&publish)
                .header("X-API-Key", "k-metrics-only-0123456789")
        )
        .await,
        401,
        "a metrics-only key is not a server-API key"
    );
    // The default in the dev profile stays open (the quick start scrapes it without a key).
    let dev = common::TestGateway::start().await;
    assert_eq!(
        status(http.get(format!("{}/metrics", dev.http_url()))).await,
        200
    );
}
