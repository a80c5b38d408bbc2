//! Backend hooks, against a real HTTP backend inside the test (an axum server on an ephemeral port) and clients
//! over real TCP.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use common::{metric_at, TestGateway};
use odd_gateway::client::{Client, ClientError};
use serde_json::{json, Value};

const SECRET: &str = "hook-secret-0123456789";

/// What the backend saw: every request body whose signature checked out.
#[derive(Clone, Default)]
struct Backend {
    seen: Arc<Mutex<Vec<Value>>>,
    /// `message` hook batches accepted, in arrival order.
    batches: Arc<Mutex<Vec<Value>>>,
    /// While set, the `message` hook answers 503.
    down: Arc<std::sync::atomic::AtomicBool>,
    /// `offline` hook notifications, in arrival order.
    offline: Arc<Mutex<Vec<Value>>>,
    /// Connect checks in flight now, and the most seen at once.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    most_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl Backend {
    /// How many connect checks asked about `token`.
    fn asked(&self, token: &str) -> usize {
        self.seen
            .lock()
            .map(|s| s.iter().filter(|r| r["token"] == token).count())
            .unwrap_or(0)
    }
}

async fn offline_hook(State(b): State<Backend>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if !signed(&headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    let batch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Ok(mut seen) = b.offline.lock() {
        seen.extend(
            batch["notifications"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    StatusCode::OK
}

fn signed(headers: &HeaderMap, body: &[u8]) -> bool {
    headers
        .get("x-odd-signature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s == odd_gateway::hooks::signature(SECRET.as_bytes(), body))
}

async fn message_hook(State(b): State<Backend>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if !signed(&headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    if b.down.load(std::sync::atomic::Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let batch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Ok(mut batches) = b.batches.lock() {
        batches.push(batch);
    }
    StatusCode::NO_CONTENT
}

/// The app's backend: checks the signature (401 otherwise), then answers by token.
async fn connect_hook(
    State(b): State<Backend>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let signed = headers
        .get("x-odd-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if signed != odd_gateway::hooks::signature(SECRET.as_bytes(), &body) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "bad signature"})),
        );
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Ok(mut seen) = b.seen.lock() {
        seen.push(request.clone());
    }
    match request["token"].as_str().unwrap_or("") {
        "good-alice" => (
            StatusCode::OK,
            Json(
                json!({"user": {"id": "alice", "nick": "Alice", "avatar": ""}, "rooms": ["club"]}),
            ),
        ),
        "banned" => (
            StatusCode::OK,
            Json(json!({"reject": "this account is suspended"})),
        ),
        "cached-carol" => (
            StatusCode::OK,
            Json(json!({"user": {"id": "carol", "nick": "Carol", "avatar": ""}, "cache_s": 60})),
        ),
        "lag" => {
            use std::sync::atomic::Ordering::SeqCst;
            let now = b.in_flight.fetch_add(1, SeqCst) + 1;
            b.most_in_flight.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            b.in_flight.fetch_sub(1, SeqCst);
            (
                StatusCode::OK,
                Json(json!({"user": {"id": "laggard", "nick": "Lag", "avatar": ""}})),
            )
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (StatusCode::OK, Json(json!({"reject": "too late"})))
        }
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "backend bug"})),
        ),
    }
}

async fn backend() -> (String, Backend) {
    let b = Backend::default();
    let app = Router::new()
        .route("/connect", post(connect_hook))
        .route("/messages", post(message_hook))
        .route("/offline", post(offline_hook))
        .with_state(b.clone());
    (format!("{}/connect", common::serve_app(app).await), b)
}

async fn gateway(url: &str, fail_open: bool) -> TestGateway {
    gateway_with(url, fail_open, 64).await
}

async fn gateway_with(url: &str, fail_open: bool, max_concurrent: usize) -> TestGateway {
    let url = url.to_string();
    TestGateway::start_with(move |c| {
        c.hooks.connect.max_concurrent = max_concurrent;
        c.auth.anonymous = Some(false);
        c.auth.tokens = ["bob", "alice"]
            .into_iter()
            .map(|who| odd_gateway::config::StaticToken {
                token: format!("static-{who}"),
                id: who.into(),
                nick: who.to_uppercase(),
                avatar: String::new(),
            })
            .collect();
        c.hooks.secret = SECRET.into();
        c.hooks.connect.url = url;
        c.hooks.connect.timeout_ms = 500;
        c.hooks.connect.fail_open = fail_open;
    })
    .await
}

fn refused(result: Result<Client, ClientError>) -> (String, String) {
    match result {
        Err(ClientError::Status { code, description }) => (code, description),
        Err(other) => panic!("expected a status, got {other}"),
        Ok(_) => panic!("the connect was accepted"),
    }
}

/// The backend names the user (and the rooms it may enter), refuses with its reason, and an unreachable or
/// slow backend fails closed: configured tokens do not get in behind its back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_hook_accepts_refuses_and_fails_closed() {
    let (url, seen) = backend().await;
    let gw = gateway(&url, false).await;

    let alice = Client::connect(&gw.tcp_url(), "good-alice")
        .await
        .expect("the backend accepts alice");
    assert_eq!(alice.user.id, "alice");
    assert_eq!(alice.user.nick, "Alice");
    let pipe = alice.create("messaging").await.expect("pipe");
    alice
        .join(pipe, "club")
        .await
        .expect("a room the backend granted");
    assert!(
        alice.join(pipe, "elsewhere").await.is_err(),
        "the backend's room list limits the rooms"
    );
    {
        let seen = seen.seen.lock().expect("seen");
        assert_eq!(seen[0]["token"], "good-alice");
        assert_eq!(seen[0]["transport"], "tcp");
        assert!(seen[0]["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")));
    }

    let (code, why) = refused(Client::connect(&gw.tcp_url(), "banned").await);
    assert_eq!(code, "NetConnection.Connect.Rejected");
    assert!(why.contains("this account is suspended"), "{why}");

    let started = Instant::now();
    let (code, why) = refused(Client::connect(&gw.tcp_url(), "slow").await);
    assert_eq!(code, "NetConnection.Connect.Rejected");
    assert!(why.contains("unavailable"), "{why}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused after the hook's timeout, not the backend's 3 s: {:?}",
        started.elapsed()
    );
    // A backend error also fails closed, even for a token `[auth]` knows.
    let (_, why) = refused(Client::connect(&gw.tcp_url(), "static-bob").await);
    assert!(why.contains("unavailable"), "{why}");

    let url = gw.http_url();
    for (outcome, n) in [("accepted", 1.0), ("refused", 1.0), ("unavailable", 2.0)] {
        let series =
            format!(r#"odd_gateway_hook_calls_total{{hook="connect",outcome="{outcome}"}}"#);
        assert_eq!(metric_at(&url, &series).await, Some(n), "{series}");
    }
}

/// With `fail_open`, a backend that cannot answer lets `[auth]` decide: a configured token gets in, an
/// unknown one is refused as usual; a refusal from a working backend still stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_hook_fail_open_falls_back_to_configured_tokens() {
    let (url, _) = backend().await;
    let gw = gateway(&url, true).await;
    let bob = Client::connect(&gw.tcp_url(), "static-bob")
        .await
        .expect("the backend failed; [auth] knows bob");
    assert_eq!(bob.user.id, "bob");
    let (code, _) = refused(Client::connect(&gw.tcp_url(), "unknown-token").await);
    assert_eq!(code, "NetConnection.Connect.Rejected");
    let (_, why) = refused(Client::connect(&gw.tcp_url(), "banned").await);
    assert!(why.contains("suspended"), "{why}");
}

/// The `message` hook gets every committed message exactly once here, in id order, across a gateway restart
/// while the backend was down: the cursor is durable, so nothing is lost, repeated or reordered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_hook_delivers_every_message_in_order_across_a_restart() {
    let (connect_url, b) = backend().await;
    let url = connect_url.replace("/connect", "/messages");
    let dir = tempfile::tempdir().expect("dir");
    let config = |url: &str| {
        let mut c = odd_gateway::config::Config::ephemeral(dir.path());
        c.hooks.secret = SECRET.into();
        c.hooks.message.url = url.to_string();
        c.hooks.message.batch = 4;
        c
    };
    b.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let gw = odd_gateway::gateway::Gateway::start(config(&url))
        .await
        .expect("gateway");
    let tcp = format!("tcp://{}", gw.tcp_addr.expect("tcp"));
    let http = format!("http://{}", gw.http_addr.expect("http"));
    let (alice, pipe, _) = common::member_at(&tcp, "", "r1").await;
    alice.join(pipe, "r2").await.expect("join");
    let mut sent = Vec::new();
    for i in 0..10 {
        let room = if i % 2 == 0 { "r1" } else { "r2" };
        let ack = alice.say(pipe, room, &format!("m{i}")).await.expect("sent");
        sent.push((ack.info()["mid"].as_i64().expect("mid"), format!("m{i}")));
    }
    assert!(
        common::until_metric(
            &http,
            r#"odd_gateway_hook_calls_total{hook="message",outcome="failed"}"#,
            1.0,
            Duration::from_secs(10)
        )
        .await,
        "the hook tried the backend while it was down"
    );
    drop(alice);
    gw.shutdown(Duration::from_secs(5)).await;

    b.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let gw = odd_gateway::gateway::Gateway::start(config(&url))
        .await
        .expect("gateway restarts");
    let tcp = format!("tcp://{}", gw.tcp_addr.expect("tcp"));
    let (bob, pipe, _) = common::member_at(&tcp, "", "r1").await;
    for i in 10..15 {
        let ack = bob.say(pipe, "r1", &format!("m{i}")).await.expect("sent");
        sent.push((ack.info()["mid"].as_i64().expect("mid"), format!("m{i}")));
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    let delivered = loop {
        let got: Vec<(i64, String)> = b
            .batches
            .lock()
            .expect("batches")
            .iter()
            .flat_map(|batch| batch["messages"].as_array().cloned().unwrap_or_default())
            .map(|m| {
                (
                    m["mid"].as_i64().unwrap_or(-1),
                    m["data"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        if got.len() >= sent.len() || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        delivered, sent,
        "every message once, in id order, with its data"
    );
    let batches = b.batches.lock().expect("batches").len();
    assert!(batches >= 4, "batches of at most 4: {batches}");
    let first = b.batches.lock().expect("batches")[0]["messages"][0].clone();
    assert_eq!(first["room"]["id"], "r1");
    assert!(first["user"]["id"]
        .as_str()
        .is_some_and(|u| u.starts_with("guest-")));
}

/// The cursor and its lease, on both backends: a hook starts after the newest message, one node holds the
/// lease until it lapses, only the holder moves the cursor, and it only moves forward.
async fn hook_cursor_and_lease(backend: common::Backend) {
    let Some(gw) = common::DbGateway::start(backend, common::people).await else {
        return;
    };
    let (alice, pipe, _) = common::member_at(&gw.tcp_url(), "alice", "c").await;
    let before = alice.say(pipe, "c", "old").await.expect("sent").info()["mid"]
        .as_i64()
        .expect("mid");
    let store = gw.gateway.rooms().store();
    let now = odd_gateway::store::now_ms();
    let cursor = store
        .hook_lease("test", "n1", now, now + 10_000)
        .await
        .expect("lease");
    assert_eq!(
        cursor,
        Some(before),
        "a new hook starts after the newest message"
    );
    assert_eq!(
        store
            .hook_lease("test", "n2", now, now + 10_000)
            .await
            .expect("lease"),
        None,
        "n1 holds it"
    );
    let new = alice.say(pipe, "c", "new").await.expect("sent").info()["mid"]
        .as_i64()
        .expect("mid");
    let rows = store.messages_after(before, 10).await.expect("rows");
    assert_eq!(rows.iter().map(|m| m.id).collect::<Vec<_>>(), [new]);
    assert!(
        !store
            .hook_advance("test", "n2", new)
            .await
            .expect("advance"),
        "not the holder"
    );
    assert!(store
        .hook_advance("test", "n1", new)
        .await
        .expect("advance"));
    assert!(
        !store
            .hook_advance("test", "n1", before)
            .await
            .expect("advance"),
        "never backwards"
    );
    // After the lease lapses another node takes over where n1 got to.
    let later = now + 20_000;
    assert_eq!(
        store
            .hook_lease("test", "n2", later, later + 10_000)
            .await
            .expect("lease"),
        Some(new)
    );
}

on_both_backends!(hook_cursor_and_lease);

/// The `offline` hook names the recipients without a connection: the target of a uni-cast, and the stored
/// readers of a room that asks for it (`offline_notify`); not connected users, not the sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_hook_names_recipients_without_a_connection() {
    let (connect_url, b) = backend().await;
    let url = connect_url.replace("/connect", "/offline");
    let gw = TestGateway::start_with(move |c| {
        common::people(c);
        c.limits.resume_grace_ms = 100;
        c.hooks.secret = SECRET.into();
        c.hooks.offline.url = url;
    })
    .await;
    let http = gw.http_url();
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "news").await;
    let set = alice
        .call(
            0,
            json!({"name": "setProperty", "info": {"room:news:offline_notify": true}}),
        )
        .await
        .expect("answer");
    assert_eq!(set.code(), "NetConnection.Call.Success", "{:?}", set.args);
    // Dave reads news once (so he has stored rights), then goes away for good.
    let (dave, _, _) = common::member_at(&gw.tcp_url(), "dave", "news").await;
    drop(dave);
    assert!(
        common::until_metric(
            &http,
            "odd_gateway_sessions_parked",
            1.0,
            Duration::from_secs(5)
        )
        .await
    );
    assert!(
        common::until_metric(
            &http,
            "odd_gateway_sessions_parked",
            0.0,
            Duration::from_secs(5)
        )
        .await,
        "dave's parked session expired"
    );
    let (_bob, _, _) = common::member_at(&gw.tcp_url(), "bob", "news").await;

    let to_carol = alice
        .send(ap, "uni", "carol", "text", json!("are you there?"))
        .await
        .expect("sent");
    alice
        .send(ap, "uni", "bob", "text", json!("bob is online"))
        .await
        .expect("sent");
    let in_news = alice
        .say(ap, "news", "news for readers")
        .await
        .expect("sent");

    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        let got: Vec<(String, i64)> = b
            .offline
            .lock()
            .expect("offline")
            .iter()
            .map(|n| {
                (
                    n["user"].as_str().unwrap_or_default().to_string(),
                    n["message"]["mid"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        if got.len() >= 2 || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // In id order, and dave's is the last message: anything for bob or alice would have come before it.
    assert_eq!(
        got,
        [
            (
                "carol".to_string(),
                to_carol.info()["mid"].as_i64().expect("mid")
            ),
            (
                "dave".to_string(),
                in_news.info()["mid"].as_i64().expect("mid")
            ),
        ]
    );
    let first = b.offline.lock().expect("offline")[0].clone();
    assert_eq!(first["message"]["data"], "are you there?");
    assert_eq!(first["message"]["user"]["id"], "alice");
}

/// Connect checks in flight are bounded (`max_concurrent`): the backend never sees more at once, and a connect
/// that cannot get a slot within the timeout is refused as the backend being unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_hook_checks_in_flight_are_bounded() {
    let (url, b) = backend().await;
    let gw = gateway_with(&url, false, 1).await;
    let tcp = gw.tcp_url();
    let attempts: Vec<_> = (0..3)
        .map(|_| {
            let tcp = tcp.clone();
            tokio::spawn(async move { Client::connect(&tcp, "lag").await })
        })
        .collect();
    let mut crowded = 0;
    for a in attempts {
        if let Err(ClientError::Status { description, .. }) = a.await.expect("task") {
            assert!(
                description.contains("too many connect checks"),
                "{description}"
            );
            crowded += 1;
        }
    }
    assert!(
        crowded >= 1,
        "three 300 ms checks through one slot within a 500 ms wait"
    );
    assert_eq!(
        b.most_in_flight.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the backend never saw two checks at once"
    );
}

/// A user whose only session is parked (a phone that lost its network) counts as offline at once: the
/// backend can notify the phone, which may never come back within the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_hook_names_a_user_whose_only_session_is_parked() {
    let (connect_url, b) = backend().await;
    let url = connect_url.replace("/connect", "/offline");
    let gw = TestGateway::start_with(move |c| {
        common::people(c);
        c.hooks.secret = SECRET.into();
        c.hooks.offline.url = url;
    })
    .await;
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "news").await;
    let set = alice
        .call(
            0,
            json!({"name": "setProperty", "info": {"room:news:offline_notify": true}}),
        )
        .await
        .expect("answer");
    assert_eq!(set.code(), "NetConnection.Call.Success", "{:?}", set.args);
    let (dave, _, _) = common::member_at(&gw.tcp_url(), "dave", "news").await;
    drop(dave);
    assert!(
        common::until_metric(
            &gw.http_url(),
            "odd_gateway_sessions_parked",
            1.0,
            Duration::from_secs(5)
        )
        .await
    );
    let said = alice
        .say(ap, "news", "while dave is away")
        .await
        .expect("sent");
    let mid = said.info()["mid"].as_i64().expect("mid");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got: Vec<(String, i64)> = b
            .offline
            .lock()
            .expect("offline")
            .iter()
            .map(|n| {
                (
                    n["user"].as_str().unwrap_or_default().to_string(),
                    n["message"]["mid"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        if got.contains(&("dave".to_string(), mid)) {
            break;
        }
        assert!(Instant::now() < deadline, "dave was not notified: {got:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One authentication path: every token gets the same verdict from `connect` and from every HTTP route that
/// takes a bearer token (history, search, WHIP, WHEP), the connect hook included. Before, HTTP ignored the hook:
/// a token it refuses read history, and a token only it knows got 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_http_give_every_token_the_same_verdict() {
    let (url, _b) = backend().await;
    let gw = gateway(&url, false).await;
    let http = gw.http_url();
    let client = reqwest::Client::new();
    for token in ["good-alice", "banned", "static-bob", "unknown-to-all", ""] {
        let connects = Client::connect(&gw.tcp_url(), token).await.is_ok();
        let bearer = |r: reqwest::RequestBuilder| {
            if token.is_empty() {
                r
            } else {
                r.bearer_auth(token)
            }
        };
        let routes = [
            bearer(client.get(format!("{http}/api/rooms/club/messages"))),
            bearer(client.get(format!("{http}/api/search?q=hello"))),
            bearer(client.post(format!("{http}/whip/club")))
                .header("content-type", "application/sdp")
                .body("v=0\r\n"),
            bearer(client.post(format!("{http}/whep/cam@127.0.0.1:9/club")))
                .header("content-type", "application/sdp")
                .body("v=0\r\n"),
        ];
        for route in routes {
            let r = route.send().await.expect("http");
            let url = r.url().path().to_string();
            let status = r.status().as_u16();
            assert_eq!(
                status != 401,
                connects,
                "token {token:?}: connect {} but {url} answered {status}",
                if connects { "accepted" } else { "refused" }
            );
        }
    }
}

/// A hook answer with `cache_s` is reused for that token (one backend call for many HTTP requests); without it
/// every request asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cacheable_hook_answer_is_reused() {
    let (url, b) = backend().await;
    let gw = gateway(&url, false).await;
    let http = gw.http_url();
    let asked = |token: &str| b.asked(token);
    for token in ["cached-carol", "good-alice"] {
        for _ in 0..3 {
            let status = reqwest::Client::new()
                .get(format!("{http}/api/search?q=hello"))
                .bearer_auth(token)
                .send()
                .await
                .expect("http")
                .status()
                .as_u16();
            assert_ne!(status, 401, "{token}");
        }
    }
    assert_eq!(asked("cached-carol"), 1, "cache_s: asked once");
    assert_eq!(asked("good-alice"), 3, "no cache_s: asked every time");
}

/// `refresh` resolves its token through the hook as `connect` does: a token the hook refuses does not refresh,
/// even one that `[auth]` alone would take for the same user; a token the hook accepts does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_asks_the_hook_too() {
    let (url, b) = backend().await;
    let gw = gateway(&url, false).await;
    let alice = Client::connect(&gw.tcp_url(), "good-alice")
        .await
        .expect("alice");
    let refused = alice
        .call(0, json!({"name": "refresh", "token": "static-alice"}))
        .await;
    assert!(
        format!("{refused:?}").contains("unavailable"),
        "the hook answered 500 for that token: {refused:?}"
    );
    alice
        .call(0, json!({"name": "refresh", "token": "good-alice"}))
        .await
        .expect("a token the hook accepts refreshes");
    let asked = |token: &str| b.asked(token);
    assert_eq!((asked("static-alice"), asked("good-alice")), (1, 2));
}
