//! The synchronous `publish` hook, against a real HTTP backend inside the test (axum on an ephemeral port) and
//! members over real TCP: the backend accepts, rejects with a reason (the sender is told; nobody receives it;
//! nothing is stored), or rewrites a message before it is stored; a backend that does not answer in time
//! refuses the message (default) or lets it through (`fail_open`); rooms outside the patterns never reach the
//! backend; and a connection's messages keep their order across hooked and unhooked rooms. Prints the send
//! path's p50/p99 with and without the hook.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use common::pushes::{data_of, until_data};
use common::TestGateway;
use odd_gateway::client::{Client, ClientError};
use serde_json::{json, Value};

const SECRET: &str = "hook-secret-0123456789";

/// Every signed request the backend saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

async fn moderate(
    State(seen): State<Seen>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let signed = headers
        .get("x-odd-signature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s == odd_gateway::hooks::signature(SECRET.as_bytes(), &body));
    if !signed {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "bad signature"})),
        );
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Ok(mut s) = seen.0.lock() {
        s.push(request.clone());
    }
    let text = request["data"].as_str().unwrap_or("");
    let answer = if text.contains("spam") {
        json!({"result": "reject", "reason": "looks like spam\n\u{1b}[31m"})
    } else if text.contains("darn") {
        json!({"result": "replace", "data": text.replace("darn", "d**n")})
    } else if text.contains("slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
        json!({"result": "accept"})
    } else if text.contains("late") {
        // Late but within the timeout: later messages of the same connection must not overtake it.
        tokio::time::sleep(Duration::from_millis(150)).await;
        json!({"result": "accept"})
    } else {
        json!({"result": "accept"})
    };
    (StatusCode::OK, Json(answer))
}

async fn backend() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/publish", post(moderate))
        .with_state(seen.clone());
    (format!("{}/publish", common::serve_app(app).await), seen)
}

async fn gateway(url: &str, fail_open: bool) -> TestGateway {
    let url = url.to_string();
    TestGateway::start_with(move |c| {
        common::people(c);
        c.hooks.secret = SECRET.into();
        c.hooks.publish.url = url;
        c.hooks.publish.timeout_ms = 1_000;
        c.hooks.publish.fail_open = fail_open;
        c.hooks.publish.rooms = vec!["mod-*".into()];
    })
    .await
}

fn refusal(r: Result<odd_gateway::client::Reply, ClientError>) -> (String, String) {
    match r {
        Err(ClientError::Status { code, description }) => (code, description),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_accepts_rejects_and_rewrites_before_anything_is_stored() {
    let (url, seen) = backend().await;
    let gw = gateway(&url, false).await;
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "mod-lobby").await;
    let (mut bob, _bp, _) = common::member_at(&gw.tcp_url(), "bob", "mod-lobby").await;

    alice.say(ap, "mod-lobby", "hello").await.expect("accepted");
    let (code, why) = refusal(alice.say(ap, "mod-lobby", "buy spam now").await);
    assert_eq!(code, "NetGroup.Posting.Failed");
    assert!(why.contains("looks like spam"), "{why}");
    assert!(
        !why.contains('\u{1b}') && !why.contains('\n'),
        "one clean line: {why:?}"
    );
    let rewritten = alice
        .say(ap, "mod-lobby", "oh darn")
        .await
        .expect("accepted");
    assert!(rewritten.info()["mid"].as_i64().is_some());
    assert_eq!(
        rewritten.info()["replaced"],
        true,
        "the sender learns it was rewritten"
    );
    alice.say(ap, "mod-lobby", "fence").await.expect("accepted");
    // Bob gets what was accepted, as the backend left it, and never the spam.
    assert_eq!(
        data_of(&until_data(&mut bob, "fence").await),
        ["hello", "oh d**n", "fence"]
    );
    // History holds the same.
    let page = alice
        .history(ap, json!({"rid": "mod-lobby"}))
        .await
        .expect("history");
    let stored: Vec<&str> = page.info()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["data"].as_str())
        .collect();
    assert_eq!(stored, ["hello", "oh d**n", "fence"]);
    // The backend saw who, where, and what.
    let first = seen.0.lock().expect("seen")[0].clone();
    assert_eq!(first["user"]["id"], "alice");
    assert_eq!(first["room"], "mod-lobby");
    assert_eq!(first["type"], "text");
    assert_eq!(first["data"], "hello");

    // A room outside the patterns never reaches the backend.
    let asked = seen.0.lock().expect("seen").len();
    alice.join(ap, "plain").await.expect("join");
    alice
        .say(ap, "plain", "spam is fine here")
        .await
        .expect("not hooked");
    assert_eq!(seen.0.lock().expect("seen").len(), asked);

    // A non-member's message is refused by the gateway before the backend is asked.
    let (carol, cp, _) = common::member_at(&gw.tcp_url(), "carol", "elsewhere").await;
    let (code, _) = refusal(carol.say(cp, "mod-lobby", "let me in").await);
    assert_eq!(code, "NetGroup.Posting.Failed");
    assert_eq!(seen.0.lock().expect("seen").len(), asked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_backend_refuses_by_default_and_lets_through_when_fail_open() {
    let (url, _) = backend().await;
    for fail_open in [false, true] {
        let gw = gateway(&url, fail_open).await;
        let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "mod-x").await;
        let started = Instant::now();
        let r = alice.say(ap, "mod-x", "slow one").await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(2_500),
            "bounded by the timeout: {took:?}"
        );
        if fail_open {
            assert!(r.is_ok(), "fail_open stores it: {r:?}");
        } else {
            let (code, why) = refusal(r);
            assert_eq!(code, "NetGroup.Posting.Failed");
            assert!(why.contains("unavailable (timed out)"), "{why}");
        }
        // An unreachable backend is the same.
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_messages_keep_their_order_across_hooked_and_plain_rooms() {
    let (url, _) = backend().await;
    let gw = gateway(&url, false).await;
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "mod-a").await;
    alice.join(ap, "plain-b").await.expect("join");
    let (mut bob, bp, _) = common::member_at(&gw.tcp_url(), "bob", "mod-a").await;
    bob.join(bp, "plain-b").await.expect("join");
    // The hooked room's message is late at the backend; the plain room's next must still come after it.
    let mut waits = Vec::new();
    for (room, text) in [
        ("mod-a", "late 1"),
        ("plain-b", "2"),
        ("mod-a", "3"),
        ("plain-b", "4"),
    ] {
        let args =
            json!({"name": "send", "type": "text", "cast": "multi", "id": room, "data": text});
        waits.push(
            alice
                .submit(ap, args, bytes::Bytes::new())
                .await
                .expect("sent"),
        );
    }
    let mut mids = Vec::new();
    for w in waits {
        let r = w.wait().await.expect("answer").ok().expect("accepted");
        mids.push(r.info()["mid"].as_i64().expect("mid"));
    }
    assert!(
        mids.windows(2).all(|w| w[0] < w[1]),
        "stored in send order: {mids:?}"
    );
    assert_eq!(
        data_of(&until_data(&mut bob, "4").await),
        ["late 1", "2", "3", "4"]
    );
}

/// The send path's latency with and without the hook (a local backend in this process), printed for the
/// record: sequential sends, each waiting for its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_latency_with_and_without_the_hook() {
    let (url, _) = backend().await;
    let gw = gateway(&url, false).await;
    let c = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("connect");
    let p = c.create("messaging").await.expect("pipe");
    c.join(p, "mod-bench").await.expect("join");
    c.join(p, "plain-bench").await.expect("join");
    for room in ["plain-bench", "mod-bench"] {
        let mut took = Vec::new();
        for i in 0..300 {
            let started = Instant::now();
            c.say(p, room, &format!("m{i}")).await.expect("sent");
            took.push(started.elapsed());
        }
        took.sort();
        println!(
            "send p50 / p99 {}: {:?} / {:?}",
            if room == "mod-bench" {
                "with the publish hook"
            } else {
                "without"
            },
            took[took.len() / 2],
            took[took.len() * 99 / 100]
        );
    }
}
