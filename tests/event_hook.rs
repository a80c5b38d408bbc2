//! The `events` hook against a real HTTP backend (axum, in this process) and members over real TCP, on both
//! stores: connects, joins, leaves and disconnects reach the backend signed, in order, each once; events
//! recorded while the backend is down are kept in the store and delivered after a restart of the gateway.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::{Backend, DbGateway};
use odd_gateway::client::Client;
use odd_gateway::config::Config;
use serde_json::Value;

const SECRET: &str = "hook-secret-0123456789";

#[derive(Clone, Default)]
struct Hook {
    events: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
}

async fn receive(State(h): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signed = headers
        .get("x-odd-signature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s == odd_gateway::hooks::signature(SECRET.as_bytes(), &body));
    if !signed {
        return StatusCode::UNAUTHORIZED;
    }
    if h.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let batch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Ok(mut e) = h.events.lock() {
        e.extend(batch["events"].as_array().cloned().unwrap_or_default());
    }
    StatusCode::NO_CONTENT
}

/// One backend per store's test (the gateways' config is a plain `fn`, so the URL lives here).
static URLS: [OnceLock<(String, Hook)>; 2] = [OnceLock::new(), OnceLock::new()];

fn slot(backend: Backend) -> &'static OnceLock<(String, Hook)> {
    &URLS[usize::from(backend == Backend::Postgres)]
}

async fn hook(backend: Backend) -> &'static (String, Hook) {
    let url = slot(backend);
    if let Some(h) = url.get() {
        return h;
    }
    let h = Hook::default();
    let app = Router::new()
        .route("/events", post(receive))
        .with_state(h.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Its own runtime: the backend outlives each test's runtime.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let std_listener = listener.into_std().expect("std");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            let _ = axum::serve(listener, app).await;
        });
    });
    url.get_or_init(|| (format!("http://{addr}/events"), h))
}

fn configured(c: &mut Config, backend: Backend) {
    common::people(c);
    c.hooks.secret = SECRET.into();
    c.hooks.events.url = slot(backend)
        .get()
        .map(|(u, _)| u.clone())
        .unwrap_or_default();
    c.hooks.events.batch = 3;
}

fn on_sqlite(c: &mut Config) {
    configured(c, Backend::Sqlite)
}

fn on_postgres(c: &mut Config) {
    configured(c, Backend::Postgres)
}

/// (kind, user, room) of the backend's events for `user`, once `n` of them arrived.
async fn until_events(h: &Hook, user: &str, n: usize) -> Vec<(String, String, String, i64)> {
    let deadline = Instant::now() + common::pushes::DEADLINE;
    loop {
        let seen: Vec<(String, String, String, i64)> = h
            .events
            .lock()
            .expect("events")
            .iter()
            .filter(|e| e["user"] == user)
            .map(|e| {
                (
                    e["kind"].as_str().unwrap_or("").to_string(),
                    e["user"].as_str().unwrap_or("").to_string(),
                    e["room"].as_str().unwrap_or("").to_string(),
                    e["id"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        if seen.len() >= n {
            return seen;
        }
        assert!(Instant::now() < deadline, "only {seen:?} for {user}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kinds(seen: &[(String, String, String, i64)]) -> Vec<(&str, &str)> {
    seen.iter()
        .map(|(k, _, r, _)| (k.as_str(), r.as_str()))
        .collect()
}

async fn connects_joins_leaves_and_disconnects_arrive_in_order(backend: Backend) {
    let (_, h) = hook(backend).await;
    let tweak = match backend {
        Backend::Sqlite => on_sqlite,
        Backend::Postgres => on_postgres,
    };
    let Some(gw) = DbGateway::start(backend, tweak).await else {
        return;
    };
    let who = "alice";
    let c = Client::connect(&gw.tcp_url(), who).await.expect("connect");
    let p = c.create("messaging").await.expect("pipe");
    c.join(p, "r1").await.expect("join");
    c.leave(p, "r1").await.expect("leave");
    c.join(p, "r2").await.expect("join");
    let p2 = c.create("messaging").await.expect("pipe");
    c.join(p2, "r4").await.expect("join");
    c.call(0, serde_json::json!({"name": "release", "id": p2}))
        .await
        .expect("released");
    c.close().await;
    let seen = until_events(h, who, 8).await;
    assert_eq!(
        kinds(&seen),
        [
            ("connect", ""),
            ("join", "r1"),
            ("leave", "r1"),
            ("join", "r2"),
            ("join", "r4"),
            ("leave", "r4"),
            ("leave", "r2"),
            ("disconnect", "")
        ]
    );
    assert!(
        seen.windows(2).all(|w| w[0].3 < w[1].3),
        "in id order, each once: {seen:?}"
    );

    // The backend is down: events wait in the store, through a restart, and arrive after it, each once.
    h.down.store(true, Ordering::SeqCst);
    let late = "carol";
    let c = Client::connect(&gw.tcp_url(), late).await.expect("connect");
    let p = c.create("messaging").await.expect("pipe");
    c.join(p, "r3").await.expect("join");
    c.close().await;
    let gw = gw.restart().await;
    h.down.store(false, Ordering::SeqCst);
    let seen = until_events(h, late, 4).await;
    assert_eq!(
        kinds(&seen),
        [
            ("connect", ""),
            ("join", "r3"),
            ("leave", "r3"),
            ("disconnect", "")
        ]
    );
    drop(gw);
}

on_both_backends!(connects_joins_leaves_and_disconnects_arrive_in_order);
