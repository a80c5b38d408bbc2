//! What the admin console stands on, called as the console calls it (plain HTTP with an `X-API-Key`) while a
//! member talks over a real TCP connection: the node figures, a room's history, search and stored rights
//! without a member's rights, and the console's own files with their security headers (and none in prod).

mod common;

use std::time::Duration;

use common::{api_key, people, server_call, TestGateway};
use odd_gateway::client::Client;
use reqwest::Method;
use serde_json::{json, Value};

const KEY: &str = "k-console-0123456789";

fn with_key(c: &mut odd_gateway::config::Config) {
    people(c);
    api_key(c, "ops", KEY);
}

async fn get(gw: &TestGateway, path: &str, key: Option<&str>) -> (u16, Value) {
    server_call(&gw.http_url(), Method::GET, path, key, None).await
}

async fn post(gw: &TestGateway, path: &str, body: Value) -> (u16, Value) {
    server_call(&gw.http_url(), Method::POST, path, Some(KEY), Some(&body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reads_nodes_history_search_and_rights_of_any_room() {
    let gw = TestGateway::start_with(with_key).await;
    let alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let pipe = alice.create("messaging").await.expect("pipe");
    alice.join(pipe, "ops").await.expect("join");
    let text = "<script>alert(1)</script> needle";
    let sent = alice.say(pipe, "ops", text).await.expect("sent");
    assert!(!sent.is_error(), "{sent:?}");

    // This node: alice's TCP connection, the stored message, the store's state, who it is.
    let (status, nodes) = get(&gw, "/api/server/nodes", Some(KEY)).await;
    assert_eq!(status, 200, "{nodes}");
    let me = &nodes["nodes"][0];
    assert_eq!(nodes["self"], me["node"]);
    assert_eq!(me["connections"]["tcp"], 1, "{me}");
    assert!(me["messages_stored"].as_u64() >= Some(1), "{me}");
    assert_eq!(me["store"], json!({"backend": "sqlite", "up": true}));
    assert_eq!(me["rooms"], 1, "{me}");
    assert!(me["frames"]["received"].as_u64() >= Some(3), "{me}");
    assert!(me["memory"]["budget_bytes"].as_u64() > Some(0), "{me}");
    assert_eq!(nodes["nodes"].as_array().map(Vec::len), Some(1));
    assert_eq!(me["cluster"], false, "a single node: {me}");

    // A user who connected has a stored profile; an id nobody used has none.
    let (_, user) = get(&gw, "/api/server/users/alice", Some(KEY)).await;
    assert_eq!(user["seen"]["nick"], "ALICE", "{user}");
    assert_eq!(user["connections"], 1);
    let (status, nobody) = get(&gw, "/api/server/users/nobody-here", Some(KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(nobody["seen"], Value::Null, "{nobody}");

    // API answers are per caller: never stored by a cache in front.
    let r = reqwest::Client::new()
        .get(format!("{}/api/server/nodes", gw.http_url()))
        .header("X-API-Key", KEY)
        .send()
        .await
        .expect("nodes");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");

    // The room's history as members see it, though the key holds no rights in the room.
    let (status, page) = get(&gw, "/api/server/rooms/ops/messages?limit=10", Some(KEY)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["data"], text, "{page}");
    assert_eq!(page["messages"][0]["user"]["id"], "alice");

    // Search in the room, once the indexer has reached the message.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let hits = loop {
        let (status, hits) = get(&gw, "/api/server/search?room=ops&q=needle", Some(KEY)).await;
        assert_eq!(status, 200, "{hits}");
        if hits["messages"].as_array().is_some_and(|m| !m.is_empty()) {
            break hits;
        }
        assert!(tokio::time::Instant::now() < deadline, "no hit: {hits}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(hits["messages"][0]["data"], text);
    let (status, _) = get(&gw, "/api/server/search?room=ops&q=", Some(KEY)).await;
    assert_eq!(status, 400, "a query with no words");
    let (status, _) = get(&gw, "/api/server/search?q=needle", Some(KEY)).await;
    assert_eq!(status, 400, "the room is required");

    // Stored rights: what chmod wrote, ascending by user, paged.
    for (user, mask) in [("carol", "rwx"), ("bob", "r")] {
        let (status, body) = post(
            &gw,
            "/api/server/chmod",
            json!({"room": "ops", "user": user, "operator": "=", "mask": mask}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // alice made the room, so she holds rwx in it.
    let (status, rights) = get(&gw, "/api/server/rooms/ops/rights?limit=2", Some(KEY)).await;
    assert_eq!(status, 200, "{rights}");
    let first = json!([{"user": "alice", "mask": "rwx"}, {"user": "bob", "mask": "r"}]);
    assert_eq!(rights, json!({"rights": first, "more": true}));
    let (_, rest) = get(&gw, "/api/server/rooms/ops/rights?after=bob", Some(KEY)).await;
    let rest_json = json!({"rights": [{"user": "carol", "mask": "rwx"}], "more": false});
    assert_eq!(rest, rest_json);

    // Unknown rooms, bad limits, no key.
    for path in [
        "/api/server/rooms/nowhere/messages",
        "/api/server/rooms/nowhere/rights",
        "/api/server/search?room=nowhere&q=x",
    ] {
        assert_eq!(get(&gw, path, Some(KEY)).await.0, 404, "{path}");
    }
    for path in [
        "/api/server/rooms/ops/rights?limit=0",
        "/api/server/rooms/ops/messages?limit=100000",
        "/api/server/rooms/ops/messages?before=x",
    ] {
        assert_eq!(get(&gw, path, Some(KEY)).await.0, 400, "{path}");
    }
    for path in [
        "/api/server/nodes",
        "/api/server/rooms/ops/messages",
        "/api/server/search?room=ops&q=needle",
        "/api/server/rooms/ops/rights",
        "/api/server/media",
    ] {
        assert_eq!(get(&gw, path, None).await.0, 401, "{path}");
        assert_eq!(
            get(&gw, path, Some("wrong-key-0123456789")).await.0,
            401,
            "{path}"
        );
    }
}

/// `/admin` serves the console's files with a policy that forbids inline script and every other origin;
/// nothing outside its folder; and nothing at all when `[admin] enabled = false` (the prod default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_its_policy_and_only_when_enabled() {
    let gw = TestGateway::start_with(with_key).await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/admin", gw.http_url()))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, h: &str| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = header(&page, "content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert!(header(&page, "content-type").starts_with("text/html"));
    let html = page.text().await.expect("html");
    assert!(
        html.contains("<script type=\"module\" src=\"/admin/app.js\""),
        "{html}"
    );
    let script = http
        .get(format!("{}/admin/app.js", gw.http_url()))
        .send()
        .await
        .expect("script");
    assert_eq!(script.status(), 200);
    assert!(header(&script, "content-type").starts_with("text/javascript"));
    // The page is never kept (no back/forward-cache copy of a signed-in console), nor opened by others.
    assert_eq!(header(&page_again(&gw).await, "cache-control"), "no-store");
    assert_eq!(header(&script, "cache-control"), "no-cache");
    assert_eq!(
        header(&page_again(&gw).await, "cross-origin-opener-policy"),
        "same-origin"
    );
    for path in [
        "/admin/..%2FCargo.toml",
        "/admin/.gitignore",
        "/admin/nothing.js",
        "/admin/console.rs",
    ] {
        let r = http
            .get(format!("{}{path}", gw.http_url()))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 404, "{path}");
        // Error answers under /admin carry the console's policy too.
        assert_eq!(header(&r, "content-security-policy"), csp, "{path}");
    }
    let r = http
        .post(format!("{}/admin", gw.http_url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 405);
    assert_eq!(header(&r, "x-frame-options"), "DENY");

    let off = TestGateway::start_with(|c| {
        with_key(c);
        c.admin.enabled = Some(false);
    })
    .await;
    let r = http
        .get(format!("{}/admin", off.http_url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 404);
    let prod = odd_gateway::config::Profile::Prod;
    assert!(!odd_gateway::config::Admin::default().enabled_in(prod));
}

async fn page_again(gw: &TestGateway) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/admin", gw.http_url()))
        .send()
        .await
        .expect("page")
}

/// A member's upload is served from the console's own origin: it must never run or render there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_are_downloads_that_never_run_on_this_origin() {
    let gw = TestGateway::start_with(with_key).await;
    let alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let pipe = alice.create("messaging").await.expect("pipe");
    alice.join(pipe, "files").await.expect("join");
    let args =
        json!({"name": "send", "type": "file", "cast": "multi", "id": "files", "data": "x.js"});
    let script = bytes::Bytes::from_static(b"alert(document.domain)");
    let sent = alice
        .submit(pipe, args, script)
        .await
        .expect("sent")
        .wait()
        .await
        .expect("answer");
    let mid = sent.info()["mid"].as_i64().expect("mid");
    let r = reqwest::Client::new()
        .get(format!("{}/api/messages/{mid}/payload", gw.http_url()))
        .bearer_auth("alice")
        .send()
        .await
        .expect("payload");
    assert_eq!(r.status(), 200);
    let h = |name: &str| r.headers()[name].to_str().unwrap_or_default().to_string();
    assert_eq!(h("content-type"), "application/octet-stream");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("content-disposition"), "attachment");
    assert!(h("content-security-policy").contains("sandbox"));
}

/// No member may be the server's publisher identity or look like it (what the server publishes, and the rooms
/// it owns, must not be imitable), and no nick may reorder text (`\u{202E}NIMDA` displayed as "ADMIN").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_member_is_the_server_and_no_nick_reorders_text() {
    let gw = TestGateway::start_with(|c| {
        with_key(c);
        for (token, id, nick) in [
            ("sys", "system", "System"),
            // Look-alikes: a Cyrillic `ѕ`, another case.
            ("cyr", "\u{455}ystem", "System"),
            ("caps", "SYSTEM", "System"),
            ("rlo", "eve", "\u{202E}NIMDA"),
            ("lsep", "mallory", "a\u{2028}b"),
        ] {
            c.auth.tokens.push(odd_gateway::config::StaticToken {
                token: token.into(),
                id: id.into(),
                nick: nick.into(),
                avatar: String::new(),
            });
        }
    })
    .await;
    for token in ["sys", "cyr", "caps", "rlo", "lsep"] {
        let refused = Client::connect(&gw.tcp_url(), token).await;
        assert!(refused.is_err(), "{token} connected");
        let r = reqwest::Client::new()
            .get(format!("{}/api/users/system/unread", gw.http_url()))
            .bearer_auth(token)
            .send()
            .await
            .expect("http");
        assert_eq!(r.status(), 401, "{token} over HTTP");
    }
    // The server itself still publishes as that identity, and the console is told who it is.
    let (status, body) = post(&gw, "/api/server/rooms", json!({"rid": "news"})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &gw,
        "/api/server/publish",
        json!({"room": "news", "data": "hi"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, nodes) = get(&gw, "/api/server/nodes", Some(KEY)).await;
    assert_eq!(
        nodes["publisher"],
        json!({"id": "system", "nick": "System"})
    );
    // An ordinary member still connects.
    assert!(Client::connect(&gw.tcp_url(), "alice").await.is_ok());
}
