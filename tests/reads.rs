//! Read positions and unread counts (`read {rid | uid, mid}`, `GET /api/users/{uid}/unread`), on SQLite and
//! PostgreSQL, over real TCP connections.

mod common;

use common::{people, Backend, DbGateway};
use odd_gateway::client::{Client, Reply};
use serde_json::{json, Value};

async fn read(c: &Client, pipe: u16, args: Value) -> Reply {
    let mut args = args;
    args["name"] = json!("read");
    c.call(pipe, args).await.expect("answer")
}

fn position(r: &Reply) -> (i64, i64) {
    assert_eq!(r.code(), "NetConnection.Call.Success", "{:?}", r.args);
    (
        r.info()["mid"].as_i64().expect("mid"),
        r.info()["unread"].as_i64().expect("unread"),
    )
}

async fn positions_move_forward_and_count_what_is_unread(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "club").await;
    let (bob, bp, _) = common::member_at(&gw.tcp_url(), "bob", "club").await;
    let mut mids = Vec::new();
    for i in 0..5 {
        let ack = alice.say(ap, "club", &format!("m{i}")).await.expect("sent");
        mids.push(ack.info()["mid"].as_i64().expect("mid"));
    }
    assert_eq!(
        position(&read(&bob, bp, json!({"rid": "club"})).await),
        (0, 5)
    );
    assert_eq!(
        position(&read(&bob, bp, json!({"rid": "club", "mid": mids[2]})).await),
        (mids[2], 2)
    );
    assert_eq!(
        position(&read(&bob, bp, json!({"rid": "club", "mid": mids[0]})).await),
        (mids[2], 2),
        "positions never move back"
    );
    assert_eq!(
        position(
            &read(
                &bob,
                bp,
                json!({"rid": "club", "mid": 1_000_000_000_000i64})
            )
            .await
        ),
        (mids[4], 0),
        "a position past the newest message stops at it"
    );
    alice.say(ap, "club", "m5").await.expect("sent");
    alice.say(ap, "club", "m6").await.expect("sent");
    // A new connection sees the stored position.
    let bob2 = Client::connect(&gw.tcp_url(), "bob")
        .await
        .expect("bob again");
    let bp2 = bob2.create("messaging").await.expect("pipe");
    assert_eq!(
        position(&read(&bob2, bp2, json!({"rid": "club"})).await),
        (mids[4], 2)
    );

    // A conversation counts the same way.
    for i in 0..3 {
        alice
            .send(ap, "uni", "bob", "text", json!(format!("dm{i}")))
            .await
            .expect("dm");
    }
    assert_eq!(
        position(&read(&bob, bp, json!({"uid": "alice"})).await).1,
        3
    );
    let newest_dm = {
        let page = bob
            .history(bp, json!({"uid": "alice", "limit": 1}))
            .await
            .expect("page");
        page.info()["messages"][0]["mid"].as_i64().expect("mid")
    };
    assert_eq!(
        position(&read(&bob, bp, json!({"uid": "alice", "mid": newest_dm})).await),
        (newest_dm, 0)
    );

    // Over HTTP: one's own, not someone else's.
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/api/users/bob/unread", gw.http_url()))
        .bearer_auth("bob")
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 200);
    let all: Value = r.json().await.expect("json");
    assert_eq!(
        all["threads"],
        json!([
            {"user": "alice", "mid": newest_dm, "unread": 0, "more": false},
            {"room": "club", "mid": mids[4], "unread": 2, "more": false},
        ]),
        "conversations first, then rooms"
    );
    let r = http
        .get(format!("{}/api/users/bob/unread", gw.http_url()))
        .bearer_auth("alice")
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 403);

    // Without `r`, the room's position can be neither read nor listed.
    alice
        .chmod(ap, "club", "bob", "-", "r")
        .await
        .expect("chmod");
    assert_ne!(
        read(&bob, bp, json!({"rid": "club"})).await.code(),
        "NetConnection.Call.Success"
    );
    let all: Value = http
        .get(format!("{}/api/users/bob/unread", gw.http_url()))
        .bearer_auth("bob")
        .send()
        .await
        .expect("http")
        .json()
        .await
        .expect("json");
    assert_eq!(all["threads"].as_array().map(Vec::len), Some(1), "{all}");

    for bad in [
        json!({"rid": "club", "uid": "alice"}),
        json!({}),
        json!({"uid": "alice", "mid": 0}),
        json!({"uid": "alice", "mid": "x"}),
    ] {
        let r = read(&bob, bp, bad.clone()).await;
        assert_eq!(r.code(), "NetConnection.Call.Failed", "{bad}: {:?}", r.args);
    }
}

/// In a room with `read_receipts`, members are told when someone's position moves (once per move); in a room
/// without it, nobody is.
async fn read_receipts_tell_members_when_a_position_moves(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let mut alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    let bob = Client::connect(&gw.tcp_url(), "bob").await.expect("bob");
    let bp = bob.create("messaging").await.expect("pipe");
    for rid in ["plain", "seen"] {
        alice.join(ap, rid).await.expect("join");
        bob.join(bp, rid).await.expect("join");
    }
    let set = alice
        .call(
            0,
            json!({"name": "setProperty", "info": {"room:seen:read_receipts": true}}),
        )
        .await
        .expect("answer");
    assert_eq!(set.code(), "NetConnection.Call.Success", "{:?}", set.args);
    let plain = alice.say(ap, "plain", "p").await.expect("sent").info()["mid"]
        .as_i64()
        .expect("mid");
    let m1 = alice.say(ap, "seen", "s1").await.expect("sent").info()["mid"]
        .as_i64()
        .expect("mid");
    let m2 = alice.say(ap, "seen", "s2").await.expect("sent").info()["mid"]
        .as_i64()
        .expect("mid");
    position(&read(&bob, bp, json!({"rid": "plain", "mid": plain})).await);
    position(&read(&bob, bp, json!({"rid": "seen", "mid": m1})).await);
    position(&read(&bob, bp, json!({"rid": "seen", "mid": m1})).await);
    position(&read(&bob, bp, json!({"rid": "seen", "mid": m2})).await);
    let pushes = common::pushes::until(&mut alice, "bob's receipt for s2", |p| {
        p.code() == "NetGroup.Read.Notify" && p.info()["mid"] == m2
    })
    .await;
    let receipts: Vec<(String, String, i64)> = pushes
        .iter()
        .filter(|p| p.code() == "NetGroup.Read.Notify")
        .map(|p| {
            (
                p.info()["room"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p.info()["user"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p.info()["mid"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        receipts,
        [
            ("seen".to_string(), "bob".to_string(), m1),
            ("seen".to_string(), "bob".to_string(), m2),
        ],
        "one receipt per move, none for the room without read receipts"
    );
}

on_both_backends!(
    positions_move_forward_and_count_what_is_unread,
    read_receipts_tell_members_when_a_position_moves
);
