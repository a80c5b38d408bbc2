//! The server API (`/api/server/...`), called as the app's backend would: plain HTTP with an `X-API-Key`,
//! while members listen over real TCP connections.

mod common;

use common::pushes::{until_data, until_sends};
use common::{metric_at, people, Backend, DbGateway, TestGateway};
use odd_gateway::client::Client;
use reqwest::Method;
use serde_json::{json, Value};

const KEY: &str = "k-backend-0123456789";

/// Static tokens for alice, bob, carol, dave, and one server-API key.
fn with_key(c: &mut odd_gateway::config::Config) {
    people(c);
    common::api_key(c, "backend", KEY);
}

async fn gateway() -> TestGateway {
    TestGateway::start_with(with_key).await
}

/// A gateway's HTTP base URL, whichever kind of test gateway it is.
trait Urls {
    fn http_url(&self) -> String;
}

impl Urls for TestGateway {
    fn http_url(&self) -> String {
        TestGateway::http_url(self)
    }
}

impl Urls for DbGateway {
    fn http_url(&self) -> String {
        DbGateway::http_url(self)
    }
}

async fn publish(gw: &impl Urls, key: Option<&str>, body: Value) -> (u16, Value) {
    let url = gw.http_url();
    common::server_call(&url, Method::POST, "/api/server/publish", key, Some(&body)).await
}

/// A server publish reaches the room's members in the same order as client posts (ids ascending, pushes in id
/// order), comes from the configured system identity or a named sender, and is in the room's history.
async fn publish_reaches_members_in_order_and_lands_in_history(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, with_key).await else {
        return;
    };
    let (mut alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "news").await;
    let (mut bob, bp, _) = common::member_at(&gw.tcp_url(), "bob", "news").await;

    let said = alice.say(ap, "news", "from alice").await.expect("said");
    let (status, first) = publish(
        &gw,
        Some(KEY),
        json!({"room": "news", "data": {"headline": "server one"}}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = publish(
        &gw,
        Some(KEY),
        json!({"room": "news", "type": "invite", "data": "server two",
               "sender": {"id": "moderator", "nick": "Mod", "avatar": ""}}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let mids = [
        said.info()["mid"].as_i64().expect("mid"),
        first["mid"].as_i64().expect("mid"),
        second["mid"].as_i64().expect("mid"),
    ];
    assert!(mids.windows(2).all(|w| w[0] < w[1]), "{mids:?}");

    let pushes = until_sends(&mut bob, 3).await;
    let sends: Vec<&odd_gateway::client::Reply> =
        pushes.iter().filter(|p| p.name() == "send").collect();
    let got: Vec<i64> = sends
        .iter()
        .map(|p| p.args["mid"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(got, mids, "bob sees every message once, in id order");
    assert_eq!(sends[1].args["user"]["id"], "system");
    assert_eq!(sends[1].args["user"]["nick"], "System");
    assert_eq!(sends[1].args["data"]["headline"], "server one");
    assert_eq!(sends[2].args["user"]["id"], "moderator");
    assert_eq!(sends[2].args["type"], "invite");
    // Alice, a member too, gets the server's messages (no connection is the sender).
    until_data(&mut alice, "server two").await;

    let page = bob
        .history(bp, json!({"rid": "news", "limit": 10}))
        .await
        .expect("history");
    let stored: Vec<i64> = page.info()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["mid"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(stored, mids);
    assert_eq!(
        metric_at(
            &gw.http_url(),
            r#"odd_gateway_server_api_requests_total{call="publish",key="backend",outcome="ok"}"#
        )
        .await,
        Some(2.0)
    );
}

/// A publish to a user reaches every connection of that user, online now; the sender is the system identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_a_user_reaches_each_of_their_connections() {
    let gw = gateway().await;
    let mut phone = Client::connect(&gw.tcp_url(), "carol")
        .await
        .expect("phone");
    // A connection's first messaging pipe takes its uni-casts.
    phone.create("messaging").await.expect("pipe");
    let mut laptop = Client::connect(&gw.tcp_url(), "carol")
        .await
        .expect("laptop");
    laptop.create("messaging").await.expect("pipe");
    let (status, body) = publish(&gw, Some(KEY), json!({"user": "carol", "data": "ping"})).await;
    assert_eq!(status, 200, "{body}");
    for c in [&mut phone, &mut laptop] {
        let pushes = until_data(c, "ping").await;
        let last = pushes.last().expect("the push");
        assert_eq!(last.args["user"]["id"], "system");
        assert_eq!(last.args["mid"], body["mid"]);
    }
}

/// Without a key, with a wrong one, and with bad requests: clear statuses, nothing stored, every call counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_bad_requests_are_refused_and_counted() {
    let gw = gateway().await;
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "news").await;
    let body = json!({"room": "news", "data": "nope"});
    assert_eq!(publish(&gw, None, body.clone()).await.0, 401);
    let (status, answer) = publish(&gw, Some("k-backend-12"), body.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(answer["code"], "unauthorized");
    for (bad, want) in [
        (json!({"room": "nowhere", "data": 1}), 404),
        (json!({"room": "news", "user": "bob", "data": 1}), 400),
        (json!({"data": 1}), 400),
        (json!({"room": "news"}), 400),
        (json!({"room": "news", "data": 1, "type": "shout"}), 400),
        (json!({"room": "news", "data": 1, "extra": true}), 400),
        (json!({"room": "", "data": 1}), 400),
        (json!({"room": "r".repeat(300), "data": 1}), 400),
        (
            json!({"room": "news", "data": 1, "sender": {"id": ""}}),
            400,
        ),
    ] {
        let (status, answer) = publish(&gw, Some(KEY), bad.clone()).await;
        assert_eq!(status, want, "{bad} -> {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    // A lone surrogate in the data would break every later reader of the room's history: refused at the edge.
    let r = reqwest::Client::new()
        .post(format!("{}/api/server/publish", gw.http_url()))
        .header("X-API-Key", KEY)
        .header("content-type", "application/json")
        .body(r#"{"room": "news", "data": "\ud800"}"#)
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 400);
    // Nothing of the above was stored: the room's history is empty.
    let page = alice
        .history(ap, json!({"rid": "news", "limit": 10}))
        .await
        .expect("history");
    assert_eq!(page.info()["messages"], json!([]));
    let url = gw.http_url();
    assert_eq!(
        metric_at(
            &url,
            r#"odd_gateway_server_api_requests_total{call="publish",key="-",outcome="unauthorized"}"#
        )
        .await,
        Some(2.0)
    );
    assert_eq!(
        metric_at(
            &url,
            r#"odd_gateway_server_api_requests_total{call="publish",key="backend",outcome="bad_request"}"#
        )
        .await,
        Some(9.0)
    );
    assert_eq!(
        metric_at(
            &url,
            r#"odd_gateway_server_api_requests_total{call="publish",key="backend",outcome="not_found"}"#
        )
        .await,
        Some(1.0)
    );
}

/// `disconnect` ends every session of the user, live and parked: each live connection hears the reason in a
/// `NetConnection.Connect.Closed` status and is closed; the parked one ends too; the room sees the user leave;
/// other users stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_ends_every_session_of_the_user_with_the_reason() {
    let gw = gateway().await;
    let url = gw.http_url();
    let (mut alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "lobby").await;
    let mut phones = Vec::new();
    for _ in 0..3 {
        let c = Client::connect(&gw.tcp_url(), "bob").await.expect("bob");
        let p = c.create("messaging").await.expect("pipe");
        c.join(p, "lobby").await.expect("join");
        phones.push(c);
    }
    // One of bob's connections goes away without a word: its session is parked for a fast reconnect.
    drop(phones.pop());
    assert!(
        common::until_metric(
            &url,
            "odd_gateway_sessions_parked",
            1.0,
            std::time::Duration::from_secs(10)
        )
        .await,
        "a parked session"
    );

    let r = reqwest::Client::new()
        .post(format!("{url}/api/server/disconnect"))
        .header("X-API-Key", KEY)
        .json(&json!({"user": "bob", "reason": "banned for spam"}))
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["disconnected"], 3,
        "two live sessions and the parked one"
    );

    for mut phone in phones {
        let pushes = common::pushes::until(&mut phone, "the closing status", |p| {
            p.code() == "NetConnection.Connect.Closed"
        })
        .await;
        let last = pushes.last().expect("status");
        assert_eq!(last.description(), "banned for spam");
        assert!(
            phone
                .closed_within(std::time::Duration::from_secs(5))
                .await
                .is_some(),
            "the connection is closed after the status"
        );
    }
    // Bob leaves the room once, when his last session ends; the parked one is gone too.
    common::pushes::until(
        &mut alice,
        "bob leaving",
        common::pushes::is_neighbor("NetGroup.Neighbor.Disconnect", "bob"),
    )
    .await;
    assert!(
        common::until_metric(
            &url,
            "odd_gateway_sessions_parked",
            0.0,
            std::time::Duration::from_secs(10)
        )
        .await,
        "the parked session ended"
    );
    // Alice is untouched, and nobody is left to disconnect.
    alice
        .say(ap, "lobby", "still here")
        .await
        .expect("alice still connected");
    let r = reqwest::Client::new()
        .post(format!("{url}/api/server/disconnect"))
        .header("X-API-Key", KEY)
        .json(&json!({"user": "bob"}))
        .send()
        .await
        .expect("http");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["disconnected"], 0);
}

async fn get(gw: &impl Urls, key: &str, path: &str) -> (u16, Value) {
    common::server_call(&gw.http_url(), Method::GET, path, Some(key), None).await
}

/// Room list, room info and presence pages read exactly what is there, page by page.
async fn rooms_room_info_and_presence_pages_are_exact(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, with_key).await else {
        return;
    };
    let alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    for rid in ["gamma", "alpha", "beta"] {
        alice.join(ap, rid).await.expect("join");
    }
    let (bob, bp, _) = common::member_at(&gw.tcp_url(), "bob", "beta").await;

    let (status, page) = get(&gw, KEY, "/api/server/rooms?limit=2").await;
    assert_eq!(status, 200, "{page}");
    let ids = |p: &Value| -> Vec<String> {
        p["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(ids(&page), ["alpha", "beta"]);
    assert_eq!(page["more"], true);
    assert_eq!(page["rooms"][1]["present"], 2);
    let (_, page) = get(&gw, KEY, "/api/server/rooms?limit=2&after=beta").await;
    assert_eq!(ids(&page), ["gamma"]);
    assert_eq!(page["more"], false);

    let (status, info) = get(&gw, KEY, "/api/server/rooms/beta").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["id"], "beta");
    assert_eq!(info["owner"], "alice", "the first joiner created it");
    assert_eq!(info["present"], 2);
    assert!(info["created"].as_i64().is_some_and(|t| t > 0));
    assert!(info["default_rights"].is_string());
    assert!(info["properties"].is_object());

    let (status, first) = get(&gw, KEY, "/api/server/rooms/beta/presence?limit=1").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["users"][0]["id"], "alice");
    assert_eq!(first["more"], true);
    assert_eq!(first["count"], 2);
    let (_, second) = get(
        &gw,
        KEY,
        "/api/server/rooms/beta/presence?limit=1&after=alice",
    )
    .await;
    assert_eq!(second["users"][0]["id"], "bob");
    assert_eq!(second["more"], false);

    let (status, user) = get(&gw, KEY, "/api/server/users/alice").await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["rooms"], json!(["alpha", "beta", "gamma"]));
    assert_eq!(user["connections"], 1);
    assert_eq!(user["parked"], 0);
    let (_, user) = get(&gw, KEY, "/api/server/users/bob").await;
    assert_eq!(user["rooms"], json!(["beta"]));
    let (_, user) = get(&gw, KEY, "/api/server/users/nobody").await;
    assert_eq!(
        user,
        json!({"id": "nobody", "rooms": [], "connections": 0, "parked": 0, "seen": null})
    );
    assert_eq!(get(&gw, KEY, "/api/server/users/bad%20id!").await.0, 400);

    // Bob leaves: the counts follow.
    bob.leave(bp, "beta").await.expect("leave");
    let (_, info) = get(&gw, KEY, "/api/server/rooms/beta").await;
    assert_eq!(info["present"], 1);
    let (_, user) = get(&gw, KEY, "/api/server/users/bob").await;
    assert_eq!(user["rooms"], json!([]));
    assert_eq!(user["connections"], 1, "still connected, in no room");

    for (path, want) in [
        ("/api/server/rooms/nowhere", 404),
        ("/api/server/rooms/nowhere/presence", 404),
        ("/api/server/rooms?limit=0", 400),
        ("/api/server/rooms/beta/presence?limit=5000", 400),
        ("/api/server/rooms?bogus=1", 400),
    ] {
        let (status, body) = get(&gw, KEY, path).await;
        assert_eq!(status, want, "{path}: {body}");
    }
    assert_eq!(
        get(&gw, "wrong-key-wrong-key", "/api/server/rooms").await.0,
        401
    );
}

on_both_backends!(
    publish_reaches_members_in_order_and_lands_in_history,
    rooms_room_info_and_presence_pages_are_exact
);

async fn post(gw: &impl Urls, path: &str, body: Value) -> (u16, Value) {
    common::server_call(&gw.http_url(), Method::POST, path, Some(KEY), Some(&body)).await
}

/// Ban takes a user's rights in a room (no sending, no joining again), unban gives them back, chmod works as
/// in-band; the owner keeps `x`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_unban_and_chmod_change_what_a_member_may_do() {
    let gw = gateway().await;
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "club").await;
    let (bob, bp, _) = common::member_at(&gw.tcp_url(), "bob", "club").await;
    bob.say(bp, "club", "hello").await.expect("bob may send");

    let (status, answer) = post(
        &gw,
        "/api/server/ban",
        json!({"room": "club", "user": "bob"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["mask"], "");
    assert!(
        bob.say(bp, "club", "spam").await.is_err(),
        "a banned member cannot send"
    );
    let other = bob.create("messaging").await.expect("pipe");
    assert!(bob.join(other, "club").await.is_err(), "nor join again");
    alice
        .say(ap, "club", "order restored")
        .await
        .expect("alice unaffected");

    let (status, answer) = post(
        &gw,
        "/api/server/unban",
        json!({"room": "club", "user": "bob"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["mask"], "rw");
    bob.join(other, "club").await.expect("bob may join again");
    bob.say(other, "club", "sorry").await.expect("and send");

    let (status, answer) = post(
        &gw,
        "/api/server/chmod",
        json!({"room": "club", "user": "bob", "operator": "-", "mask": "w"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["mask"], "r");
    assert!(bob.say(other, "club", "muted").await.is_err(), "no w");

    for (path, body, want) in [
        (
            "/api/server/chmod",
            json!({"room": "club", "user": "alice", "operator": "-", "mask": "x"}),
            400,
        ),
        (
            "/api/server/chmod",
            json!({"room": "nowhere", "user": "bob", "operator": "+", "mask": "r"}),
            404,
        ),
        (
            "/api/server/chmod",
            json!({"room": "club", "user": "bob", "operator": "+", "mask": "rwz"}),
            400,
        ),
        (
            "/api/server/chmod",
            json!({"room": "club", "user": "bob", "operator": "*", "mask": "r"}),
            400,
        ),
        (
            "/api/server/ban",
            json!({"room": "club", "user": "bob", "mask": "r"}),
            400,
        ),
        ("/api/server/ban", json!({"room": "club"}), 400),
    ] {
        let (status, answer) = post(&gw, path, body.clone()).await;
        assert_eq!(status, want, "{path} {body} -> {answer}");
    }
}

/// A broadcast posts into each named room on its own: members of each get it, an unknown room is reported in
/// its place without stopping the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_posts_into_each_room_and_reports_each_outcome() {
    let gw = gateway().await;
    let (mut alice, _, _) = common::member_at(&gw.tcp_url(), "alice", "a1").await;
    let (mut bob, _, _) = common::member_at(&gw.tcp_url(), "bob", "b1").await;
    let (status, answer) = post(
        &gw,
        "/api/server/broadcast",
        json!({"rooms": ["a1", "missing", "b1"], "data": "to all rooms"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["room"], "a1");
    assert!(results[0]["mid"].is_i64(), "{answer}");
    assert_eq!(results[1]["code"], "not_found");
    assert!(results[2]["mid"].as_i64() > results[0]["mid"].as_i64());
    for c in [&mut alice, &mut bob] {
        let got = until_data(c, "to all rooms").await;
        assert!(got.last().is_some_and(|p| p.args["user"]["id"] == "system"));
    }
    for bad in [
        json!({"rooms": [], "data": 1}),
        json!({"rooms": vec!["a1"; 101], "data": 1}),
        json!({"rooms": ["a1"], "data": 1, "sender": {"id": "x y"}}),
    ] {
        assert_eq!(post(&gw, "/api/server/broadcast", bad).await.0, 400);
    }
}

/// `delivered` counts connected clients only: a member whose phone lost its network (its session parked for a
/// reconnect) is not counted, though the message waits in its queue and reaches it when it resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_counts_connected_members_not_parked_sessions() {
    let gw = gateway().await;
    let (bob, _, _) = common::member_at(&gw.tcp_url(), "bob", "desk").await;
    let (_carol, _, _) = common::member_at(&gw.tcp_url(), "carol", "desk").await;
    let (status, answer) = publish(&gw, Some(KEY), json!({"room": "desk", "data": "one"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["delivered"], 2, "{answer}");
    // Bob's transport drops without a goodbye: his session is kept for a fast reconnect.
    drop(bob);
    assert!(
        common::until_metric(
            &gw.http_url(),
            "odd_gateway_sessions_parked",
            1.0,
            std::time::Duration::from_secs(5)
        )
        .await
    );
    let (status, answer) = publish(&gw, Some(KEY), json!({"room": "desk", "data": "two"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["delivered"], 1, "only carol is connected: {answer}");
}

/// With `create_on_join` off (the production example), rooms come from the backend: `POST /api/server/rooms`
/// makes one (201, then 200 and unchanged when repeated), its owner holds `rwx`, and members can then join it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_creates_rooms_when_joining_does_not() {
    let gw = TestGateway::start_with(|c| {
        with_key(c);
        c.rooms.create_on_join = false;
    })
    .await;
    let alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let pipe = alice.create("messaging").await.expect("pipe");
    let refused = alice.join(pipe, "made").await;
    assert!(
        format!("{refused:?}").contains("does not exist"),
        "{refused:?}"
    );

    let (status, room) = post(
        &gw,
        "/api/server/rooms",
        json!({"rid": "made", "owner": "alice"}),
    )
    .await;
    assert_eq!(status, 201, "{room}");
    assert_eq!(room["id"], "made");
    assert_eq!(room["owner"], "alice");
    let (status, again) = post(
        &gw,
        "/api/server/rooms",
        json!({"rid": "made", "owner": "bob"}),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["owner"], "alice", "the first creation stands");
    let (status, bad) = post(&gw, "/api/server/rooms", json!({"rid": "<b>"})).await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_request")));
    let (status, bad) = post(
        &gw,
        "/api/server/rooms",
        json!({"rid": "x", "owner": "../x"}),
    )
    .await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_request")));

    alice.join(pipe, "made").await.expect("the room exists now");
    // The owner administers it: she can give bob rights.
    alice
        .call(
            pipe,
            json!({"name": "chmod", "rid": "made", "tid": "bob", "operator": "=", "mask": "r"}),
        )
        .await
        .expect("the owner holds x");
}
