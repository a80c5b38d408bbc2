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
        .with_state(b.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/connect"), b)
}

async fn gateway(url: &str, fail_open: bool) -> TestGateway {
    let url = url.to_string();
    TestGateway::start_with(move |c| {
        c.auth.anonymous = Some(false);
        c.auth.tokens = vec![odd_gateway::config::StaticToken {
            token: "static-bob".into(),
            id: "bob".into(),
            nick: "Bob".into(),
            avatar: String::new(),
        }];
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
