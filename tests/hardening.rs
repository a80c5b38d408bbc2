//! An attacker's inputs, over real sockets: a message that would poison a room's history, a session task that
//! panics, token claims on every room-scoped act, memory before `connect`, stalled HTTP connections.
//! Each scenario reproduces a finding of the hardening issue and failed before its fix.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{people, Raw, TestGateway};
use odd_gateway::store::{NewMessage, Thread};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// Waits (up to 5 s) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics(gw: &TestGateway) -> HashMap<String, f64> {
    common::scrape_metrics(&gw.http_url()).await
}

/// A raw client (any client's bytes, not our library's) in room `rid` on messaging pipe 1.
async fn raw_member(gw: &TestGateway, rid: &str) -> Raw {
    let mut raw = Raw::open(gw).await;
    raw.connect().await;
    raw.command(0, 2, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    let created = raw.answer_to(2).await.expect("create answer");
    assert_eq!(created.args["info"]["id"], 1);
    raw.command(1, 1, &format!(r#"{{"name":"join","rid":"{rid}"}}"#))
        .await;
    let joined = raw.answer_to(1).await.expect("join answer");
    assert_eq!(
        joined.code(),
        "NetGroup.Connect.Success",
        "{:?}",
        joined.args
    );
    raw
}

/// `data` exactly as it arrives in the in-band and HTTP history of `rid` (newest last).
#[derive(Deserialize)]
struct RawPage<'a> {
    #[serde(borrow)]
    messages: Vec<RawMessage<'a>>,
}
#[derive(Deserialize)]
struct RawMessage<'a> {
    mid: i64,
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(default)]
    unreadable: bool,
}
#[derive(Deserialize)]
struct RawStatus<'a> {
    code: String,
    #[serde(borrow)]
    info: RawPage<'a>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_that_cannot_be_read_back_is_refused_and_history_keeps_working() {
    let gw = TestGateway::start().await;
    let mut raw = raw_member(&gw, "poison").await;
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let poisons = [
        r#""\ud800""#.to_string(),
        r#"{"\udfff":1}"#.to_string(),
        r#"["ok","\ud83d"]"#.to_string(),
        deep,
    ];
    let mut txid = 10;
    for data in &poisons {
        txid += 1;
        raw.command(
            1,
            txid,
            &format!(
                r#"{{"name":"send","type":"text","cast":"multi","id":"poison","data":{data}}}"#
            ),
        )
        .await;
        let answer = raw.answer_to(txid).await.expect("an answer, not a hang");
        assert_eq!(answer.level(), "error", "{data}: {:?}", answer.args);
        assert_eq!(answer.code(), "NetConnection.Call.Failed");
    }
    // The connection is still fine, and a good message after the bad ones is stored and readable.
    txid += 1;
    let good = r#"{"emoji":"\ud83d\ude00","n":[1,[2,[3]]]}"#;
    raw.command(
        1,
        txid,
        &format!(r#"{{"name":"send","type":"text","cast":"multi","id":"poison","data":{good}}}"#),
    )
    .await;
    let sent = raw.answer_to(txid).await.expect("send answer");
    assert_ne!(sent.level(), "error", "{:?}", sent.args);

    // A row stored before the check existed (written straight to the store) cannot break the page either.
    let legacy = NewMessage {
        thread: Thread::Room("poison".into()),
        sender: "mallory".into(),
        sender_nick: "mallory".into(),
        sender_avatar: String::new(),
        kind: "text".into(),
        cast: "multi".into(),
        target: "poison".into(),
        data: r#""\ud800""#.into(),
        payload: None,
        created_ms: 0,
    };
    gw.gateway
        .rooms()
        .store()
        .append(&[legacy])
        .await
        .expect("legacy row");

    txid += 1;
    raw.command(1, txid, r#"{"name":"history","rid":"poison"}"#)
        .await;
    let (_, _, args) = loop {
        let r = raw.recv_raw_args().await.expect("history answer");
        if r.1 == txid {
            break r;
        }
    };
    let page: RawStatus = serde_json::from_slice(&args).expect("history answer parses");
    assert_eq!(page.code, "NetConnection.Call.Success");
    assert_eq!(
        page.info.messages.len(),
        2,
        "the good message and a placeholder"
    );
    assert_eq!(page.info.messages[0].data.get(), good, "byte-identical");
    assert!(page.info.messages[1].unreadable);
    assert_eq!(page.info.messages[1].data.get(), "null");

    let http = reqwest::get(format!("{}/api/rooms/poison/messages", gw.http_url()))
        .await
        .expect("http history");
    assert_eq!(http.status(), 200);
    let body = http.text().await.expect("body");
    let page: RawPage = serde_json::from_str(&body).expect("HTTP page parses");
    assert_eq!(page.messages.len(), 2);
    assert_eq!(page.messages[0].data.get(), good);
    assert!(page.messages[1].mid > page.messages[0].mid && page.messages[1].unreadable);
    let m = metrics(&gw).await;
    assert_eq!(m.get("odd_gateway_history_unreadable_total"), Some(&2.0));
    assert_eq!(m.get("odd_gateway_session_panics_total"), Some(&0.0));
}

/// Whatever `data` the send path accepts comes back byte for byte from in-band and HTTP history; whatever
/// it refuses gets an error answer. Inputs: random JSON-ish texts with escapes, surrogates and nesting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_data_comes_back_byte_identical() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        "[a-z \u{e9}\u{4e2d}\u{1f600}]{0,12}".prop_map(|s| format!("{s:?}")),
        prop::sample::select(vec![
            r#""\ud800""#,
            r#""\udbff\udfff""#,
            r#""\ud83d\ude00""#,
            r#""\u0000\n\t\"\\\/""#,
            r#""\udc00x""#,
        ])
        .prop_map(String::from),
    ];
    let value = leaf.prop_recursive(40, 200, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z]{1,3}", inner), 0..4).prop_map(|v| {
                let fields: Vec<String> = v.iter().map(|(k, x)| format!("{k:?} : {x}")).collect();
                format!("{{ {} }}", fields.join(","))
            }),
        ]
    });

    let gw = TestGateway::start().await;
    let mut raw = raw_member(&gw, "props").await;
    let mut runner = TestRunner::deterministic();
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for i in 0..150u16 {
        let data = value.new_tree(&mut runner).expect("a value").current();
        let txid = 100 + i;
        raw.command(
            1,
            txid,
            &format!(
                r#"{{"name":"send","type":"text","cast":"multi","id":"props","data":{data}}}"#
            ),
        )
        .await;
        let answer = raw.answer_to(txid).await.expect("answer");
        if answer.level() == "error" {
            refused += 1;
        } else {
            accepted.push(data);
        }
    }
    assert!(
        refused > 0 && accepted.len() > 50,
        "the generator covers both: {refused} refused"
    );

    raw.command(1, 9, r#"{"name":"history","rid":"props","limit":500}"#)
        .await;
    let args = loop {
        let (_, txid, args) = raw.recv_raw_args().await.expect("history answer");
        if txid == 9 {
            break args;
        }
    };
    let inband: RawStatus = serde_json::from_slice(&args).expect("page parses");
    let body = reqwest::get(format!(
        "{}/api/rooms/props/messages?limit=500",
        gw.http_url()
    ))
    .await
    .expect("http")
    .text()
    .await
    .expect("body");
    let http: RawPage = serde_json::from_str(&body).expect("HTTP page parses");
    // The in-band page may be shortened to fit 64 KiB, from its old end.
    let inband_data: Vec<&str> = inband.info.messages.iter().map(|m| m.data.get()).collect();
    let http_data: Vec<&str> = http.messages.iter().map(|m| m.data.get()).collect();
    let sent: Vec<&str> = accepted.iter().map(String::as_str).collect();
    assert_eq!(http_data, sent);
    assert!(!inband_data.is_empty());
    assert_eq!(inband_data[..], sent[sent.len() - inband_data.len()..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_session_is_cleaned_up_like_a_normal_end() {
    let gw = TestGateway::start_with(|c| {
        people(c);
        c.faults.panic_after_join_by = Some("carol".into());
    })
    .await;
    let url = gw.tcp_url();
    let (mut alice, _, _) = common::member_at(&url, "alice", "hall").await;
    let mut carol = Raw::open(&gw).await;
    carol
        .command(
            0,
            1,
            r#"{"name":"connect","uuid":"","parameters":{"token":"carol"}}"#,
        )
        .await;
    assert_eq!(
        carol.answer_to(1).await.expect("connected").code(),
        "NetConnection.Connect.Success"
    );
    carol
        .command(0, 2, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    carol.answer_to(2).await.expect("pipe");
    // Carol's session panics right after the room took her in: she is told why, and closed.
    carol.command(1, 1, r#"{"name":"join","rid":"hall"}"#).await;
    let last = carol.answer_to(0).await.expect("a last word");
    assert_eq!(
        last.code(),
        "NetConnection.Connect.Failed",
        "{:?}",
        last.args
    );
    assert!(last.description().contains("internal error"));
    assert!(carol.closed().await);
    // ...and she leaves the room as after any end: alice sees her come and go, the room forgets her.
    let came = alice
        .wait_for("NetGroup.Neighbor.Connect")
        .await
        .expect("connect");
    assert_eq!(came.info()["user"]["id"], "carol");
    let left = alice
        .wait_for("NetGroup.Neighbor.Disconnect")
        .await
        .expect("carol's departure");
    assert_eq!(left.info()["user"]["id"], "carol");
    eventually("carol gone from the room", || {
        gw.gateway.rooms().present("hall") == vec!["alice".to_string()]
    })
    .await;
    let m = metrics(&gw).await;
    assert_eq!(m.get("odd_gateway_session_panics_total"), Some(&1.0));
    assert_eq!(
        m.get(r#"odd_gateway_connections_open{transport="tcp"}"#),
        Some(&1.0)
    );
    assert_eq!(m.get("odd_gateway_room_members"), Some(&1.0));
    assert_eq!(
        m.get(r#"odd_gateway_connections_closed_total{reason="internal_error",transport="tcp"}"#),
        Some(&1.0)
    );
    // The room still works for the others.
    let (bob, bp, _) = common::member_at(&url, "bob", "hall").await;
    bob.say(bp, "hall", "still here").await.expect("sent");
    let got = alice.wait_for("send").await.expect("delivered");
    assert_eq!(got.args["data"], Value::from("still here"));
}

const SECRET: &str = "claims-secret-0123456789abcdef-0123";

/// An HS256 token for `sub`, limited to `rooms` when given.
fn jwt(sub: &str, rooms: Option<&[&str]>) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 3600;
    let mut claims = serde_json::json!({ "sub": sub, "exp": exp });
    if let Some(r) = rooms {
        claims["rooms"] = serde_json::json!(r);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("token")
}

/// The outcome of one act: allowed, or refused with this description.
#[derive(Debug)]
enum Outcome {
    Allowed,
    Refused(String),
}

impl Outcome {
    fn of(r: odd_gateway::client::Reply) -> Outcome {
        if r.is_error() {
            Outcome::Refused(r.description().to_string())
        } else {
            Outcome::Allowed
        }
    }
    async fn of_http(r: reqwest::Response) -> Outcome {
        if r.status().is_success() {
            Outcome::Allowed
        } else {
            Outcome::Refused(format!(
                "{}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ))
        }
    }
}

/// A connected user with one messaging and one signaling pipe, and its token.
struct Actor {
    c: odd_gateway::client::Client,
    pipe: u16,
    signal: u16,
    token: String,
}

async fn actor(url: &str, token: String) -> Actor {
    let c = odd_gateway::client::Client::connect(url, &token)
        .await
        .expect("connect");
    let pipe = c.create("messaging").await.expect("pipe");
    let signal = c.create("signaling").await.expect("signaling pipe");
    Actor {
        c,
        pipe,
        signal,
        token,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Column {
    ClaimAllows,
    ClaimForbids,
    StoredRightMissing,
}

/// Every room-scoped act x {the token's claim allows it, the claim forbids it, the stored right is missing}.
/// The claim is checked by the same function everywhere: before this issue, payload downloads, chmod and room
/// properties ignored it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_claims_hold_on_every_room_scoped_act() {
    use serde_json::json;
    let gw = TestGateway::start_with(|c| {
        c.auth.anonymous = Some(false);
        c.auth.jwt_secret = Some(SECRET.into());
    })
    .await;
    let url = gw.tcp_url();
    let http = gw.http_url();
    // The owner (wide token) makes room A, gives each test user the rights it needs, stores a file in A.
    let owner = actor(&url, jwt("alice", None)).await;
    owner.c.join(owner.pipe, "A").await.expect("A");
    for (who, mask) in [("carol", "r"), ("dave", "w"), ("eve", ""), ("bob", "rwx")] {
        owner
            .c
            .chmod(owner.pipe, "A", who, "=", mask)
            .await
            .expect("chmod");
    }
    let file = owner
        .c
        .call_with(
            owner.pipe,
            json!({"name": "send", "type": "file", "cast": "multi", "id": "A", "data": {"name": "f"}}),
            bytes::Bytes::from_static(b"payload"),
        )
        .await
        .expect("file")
        .ok()
        .expect("stored");
    let mid = file.info()["mid"].as_i64().expect("mid");

    // Bob holds rwx in A: with a token for A the claim allows, with a token for B only it forbids.
    let allows = actor(&url, jwt("bob", Some(&["A"]))).await;
    let forbids = actor(&url, jwt("bob", Some(&["B"]))).await;
    // Members for the acts that need one: bob (allowed) and carol (`r` only) are in A.
    allows.c.join(allows.pipe, "A").await.expect("bob joins A");
    let carol = actor(&url, jwt("carol", None)).await;
    carol.c.join(carol.pipe, "A").await.expect("carol joins A");
    let dave = actor(&url, jwt("dave", None)).await;
    dave.c
        .join(dave.pipe, "A")
        .await
        .expect("dave (w only) joins A");
    let eve = actor(&url, jwt("eve", None)).await;

    type Act = &'static str;
    let acts: [Act; 10] = [
        "join",
        "send",
        "history",
        "http history",
        "payload download",
        "chmod",
        "set room property",
        "get room property",
        "play a room's stream",
        "nothing stored needed",
    ];
    let mut checked = 0;
    for act in acts {
        for column in [
            Column::ClaimAllows,
            Column::ClaimForbids,
            Column::StoredRightMissing,
        ] {
            let who = match (column, act) {
                (Column::ClaimAllows, _) => &allows,
                (Column::ClaimForbids, _) => &forbids,
                (Column::StoredRightMissing, "join") => &eve,
                (Column::StoredRightMissing, "send" | "chmod" | "set room property") => &carol,
                (Column::StoredRightMissing, "history" | "http history" | "payload download")
                | (Column::StoredRightMissing, "play a room's stream") => &dave,
                // Reading a room property needs no stored right, only the claim.
                (Column::StoredRightMissing, _) => continue,
            };
            let (c, p) = (&who.c, who.pipe);
            let call = |args| async move { Outcome::of(c.call(p, args).await.expect("answer")) };
            let get = |path: String| {
                let token = who.token.clone();
                let http = http.clone();
                async move {
                    Outcome::of_http(
                        reqwest::Client::new()
                            .get(format!("{http}{path}"))
                            .bearer_auth(token)
                            .send()
                            .await
                            .expect("http"),
                    )
                    .await
                }
            };
            let outcome = match act {
                "join" => call(json!({"name": "join", "rid": "A"})).await,
                "send" => {
                    call(json!({"name": "send", "type": "text", "cast": "multi", "id": "A", "data": "x"}))
                        .await
                }
                "history" => call(json!({"name": "history", "rid": "A"})).await,
                "http history" => get("/api/rooms/A/messages".into()).await,
                "payload download" => get(format!("/api/messages/{mid}/payload")).await,
                "chmod" => {
                    call(json!({"name": "chmod", "rid": "A", "tid": "zed", "operator": "+", "mask": "r"}))
                        .await
                }
                "set room property" => {
                    call(json!({"name": "setProperty", "info": {"room:A:default_rights": "rw"}}))
                        .await
                }
                "get room property" => {
                    call(json!({"name": "getProperty", "keys": ["room:A:default_rights"]})).await
                }
                "play a room's stream" => Outcome::of(
                    c.call(who.signal, json!({"name": "play", "stream": format!("cam-{checked}@h/A")}))
                        .await
                        .expect("answer"),
                ),
                _ => continue,
            };
            checked += 1;
            match (column, &outcome) {
                (Column::ClaimAllows, Outcome::Allowed) => {}
                (Column::ClaimForbids, Outcome::Refused(why)) => {
                    // Sending needs a membership, which the claim already refused.
                    assert!(
                        why.contains("does not grant") || (act == "send" && why.contains("join")),
                        "{act}: {why}"
                    )
                }
                (Column::StoredRightMissing, Outcome::Refused(why)) => assert!(
                    why.contains("permission") || why.contains("not allowed"),
                    "{act}: {why}"
                ),
                _ => panic!("{act} / {column:?}: {outcome:?}"),
            }
        }
    }
    assert_eq!(checked, 26);
}

/// A fast reconnect with a narrower token than the session was made with keeps only the rooms it grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_with_a_narrower_token_leaves_the_rooms_it_does_not_grant() {
    let gw = TestGateway::start_with(|c| {
        c.auth.anonymous = Some(false);
        c.auth.jwt_secret = Some(SECRET.into());
    })
    .await;
    let mut wide = Raw::open(&gw).await;
    wide.command(
        0,
        1,
        &format!(
            r#"{{"name":"connect","uuid":"","parameters":{{"token":"{}"}}}}"#,
            jwt("bob", None)
        ),
    )
    .await;
    let connected = wide.answer_to(1).await.expect("connected");
    let uuid = connected.args["info"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    wide.command(0, 2, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    wide.answer_to(2).await.expect("pipe");
    for (txid, rid) in [(1, "A"), (2, "B")] {
        wide.command(1, txid, &format!(r#"{{"name":"join","rid":"{rid}"}}"#))
            .await;
        assert_eq!(
            wide.answer_to(txid).await.expect("join").code(),
            "NetGroup.Connect.Success"
        );
    }
    drop(wide);
    eventually("bob's session parked", || {
        gw.gateway.rooms().present("B") == vec!["bob".to_string()]
    })
    .await;

    let mut narrow = Raw::open(&gw).await;
    narrow
        .command(
            0,
            1,
            &format!(
                r#"{{"name":"connect","uuid":"{uuid}","parameters":{{"token":"{}"}}}}"#,
                jwt("bob", Some(&["A"]))
            ),
        )
        .await;
    let resumed = narrow.answer_to(1).await.expect("resumed");
    assert_eq!(resumed.args["info"]["resumed"], true, "{:?}", resumed.args);
    let left = narrow.answer_to(0).await.expect("told it left B");
    assert_eq!(left.code(), "NetGroup.Connect.Closed");
    assert_eq!(left.args["info"]["room"]["id"], "B");
    eventually("bob gone from B", || {
        gw.gateway.rooms().present("B").is_empty()
    })
    .await;
    for (txid, rid, ok) in [(5, "A", true), (6, "B", false)] {
        narrow
            .command(
                1,
                txid,
                &format!(
                    r#"{{"name":"send","type":"text","cast":"multi","id":"{rid}","data":"x"}}"#
                ),
            )
            .await;
        let answer = narrow.answer_to(txid).await.expect("send answer");
        assert_eq!(answer.level() != "error", ok, "{rid}: {:?}", answer.args);
    }
}

/// Resident memory of this process (the gateway runs in it), in bytes.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// A Command fragment (F=0) of `len` bytes on `pipe`.
fn fragment(pipe: u16, len: usize) -> odd_gateway::protocol::Frame {
    odd_gateway::protocol::Frame {
        fin: false,
        kind: odd_gateway::protocol::MessageType::Command,
        seq: 0,
        pipe,
        payload: bytes::Bytes::from(vec![b' '; len]),
    }
}

/// Before `connect`, fragments are gathered only up to one connect-sized message per connection: 40
/// unauthenticated connections each pushing partial fragments on two pipes hold next to nothing (a longer
/// frame, or more bytes in all, closes the connection: bad_input.rs).
/// (Before: up to 32 MiB each, 8 connections took the process from 74 MB to 372 MB.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_fragments_before_connect_hold_no_memory() {
    let gw = TestGateway::start().await;
    let before = rss();
    let mut conns = Vec::new();
    for _ in 0..40 {
        conns.push(Raw::open(&gw).await);
    }
    for raw in &mut conns {
        // Three fragments, 120,000 bytes (under the 131,096 a stranger may send at all): the first pipe's
        // message passes 65,543 bytes on the third.
        for i in 0..3u16 {
            raw.send_frame(fragment(i % 2, 40_000)).await;
        }
    }
    // Every connection is told its message grew past the pre-connect bound, and stays open until then.
    for raw in &mut conns {
        let e = raw.recv_command().await.expect("an error status");
        assert_eq!(e.level(), "error");
        assert!(e.description().contains("65543-byte limit"), "{:?}", e.args);
    }
    let grown = rss().saturating_sub(before);
    println!(
        "40 unauthenticated connections x 3 partial fragments of 40,000 bytes: RSS grew {} KiB",
        grown >> 10
    );
    assert!(
        grown < 120 << 20,
        "40 connections x 3 fragments grew RSS by {} MiB",
        grown >> 20
    );
    let m = metrics(&gw).await;
    let held = m
        .get("odd_gateway_memory_budget_used_bytes")
        .copied()
        .unwrap_or(f64::MAX);
    assert!(held <= 40.0 * 2.0 * 65_543.0, "budget use {held}");
}

/// The process-wide budget: with a 1 MiB budget, the connection whose partial message would cross it is
/// closed with a clear reason; the others keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_budget_closes_the_connection_that_would_exceed_it() {
    let gw = TestGateway::start_with(|c| c.limits.memory_budget_bytes = 1 << 20).await;
    let mut first = Raw::open(&gw).await;
    first.connect().await;
    let mut second = Raw::open(&gw).await;
    second.connect().await;
    first.send_frame(fragment(0, 700 << 10)).await;
    // Wait until the first connection's 700 KiB are held, then the second asks for 700 KiB more.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let used = metrics(&gw)
            .await
            .get("odd_gateway_memory_budget_used_bytes")
            .copied()
            .unwrap_or(0.0);
        if used >= (700 << 10) as f64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "first fragment never held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.send_frame(fragment(0, 700 << 10)).await;
    let last = second.answer_to(0).await.expect("a last word");
    assert_eq!(last.code(), "NetConnection.Connect.Closed");
    assert!(
        last.description().contains("memory budget"),
        "{:?}",
        last.args
    );
    assert!(second.closed().await);
    // The first drops its partial message and goes on as usual.
    first
        .send_frame(odd_gateway::protocol::Frame::new(
            odd_gateway::protocol::MessageType::Abort,
            0,
            bytes::Bytes::from_static(&[4]),
        ))
        .await;
    first
        .command(0, 7, r#"{"name":"getProperty","keys":["x"]}"#)
        .await;
    let answer = first.answer_to(7).await.expect("answered");
    assert_eq!(
        answer.code(),
        "NetConnection.Call.Success",
        "{:?}",
        answer.args
    );
    let m = metrics(&gw).await;
    assert_eq!(
        m.get(r#"odd_gateway_memory_budget_refusals_total{what="reassembly"}"#),
        Some(&1.0)
    );
}

/// True when the server closes `s` within `wait` (reads until EOF or error).
async fn closed_by_server(s: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Slowloris: connections that send half a request header are closed once the header deadline passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_http_headers_are_closed_within_the_timeout() {
    use tokio::io::AsyncWriteExt;
    let gw = TestGateway::start_with(|c| c.limits.http_header_timeout_ms = 500).await;
    let addr = gw.gateway.http_addr.expect("http");
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /im HTTP/1.1\r\nHost: x\r\nUpgrade: web")
            .await
            .expect("partial header");
        stalled.push(s);
    }
    let started = std::time::Instant::now();
    for s in &mut stalled {
        assert!(closed_by_server(s, Duration::from_secs(5)).await);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // A complete request still works.
    let ok = reqwest::get(format!("{}/healthz", gw.http_url()))
        .await
        .expect("healthz");
    assert_eq!(ok.status(), 200);
}

/// The per-IP limit holds on the HTTP port too, and is shared with the protocol listeners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_holds_on_the_http_port() {
    use tokio::io::AsyncWriteExt;
    let gw = TestGateway::start_with(|c| c.limits.max_connections_per_ip = Some(5)).await;
    let addr = gw.gateway.http_addr.expect("http");
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("partial");
        held.push(s);
    }
    // Give the accept loop a moment to count the five (they are idle, so nothing else would tell us).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut extra = tokio::net::TcpStream::connect(addr).await.expect("connect");
        extra.write_all(b"GET /healthz HTTP/1.1\r\n").await.ok();
        if closed_by_server(&mut extra, Duration::from_millis(300)).await {
            break;
        }
        held.push(extra);
        assert!(
            tokio::time::Instant::now() < deadline,
            "a sixth connection from one address was never refused"
        );
    }
    assert!(held.len() <= 5, "{} held", held.len());
    // The protocol port shares the count: a TCP client from the same address is refused with a reason.
    let mut raw = Raw::open(&gw).await;
    let refused = raw.recv_command().await.expect("a refusal");
    assert_eq!(refused.code(), "NetConnection.Connect.Rejected");
    assert!(refused.description().contains("too many connections"));
    // Freeing one HTTP connection frees its slot.
    held.pop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/healthz", gw.http_url())).await {
            assert_eq!(r.status(), 200);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Room ids are limited in characters, as documented, not bytes: 128 four-byte characters are a valid id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_ids_are_counted_in_characters() {
    let gw = TestGateway::start().await;
    let mut raw = Raw::open(&gw).await;
    raw.connect().await;
    raw.command(0, 2, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    raw.answer_to(2).await.expect("pipe");
    let long = "\u{1F600}".repeat(128);
    raw.command(1, 1, &format!(r#"{{"name":"join","rid":"{long}"}}"#))
        .await;
    let ok = raw.answer_to(1).await.expect("answer");
    assert_eq!(ok.code(), "NetGroup.Connect.Success", "{:?}", ok.args);
    let too_long = "\u{1F600}".repeat(129);
    raw.command(1, 2, &format!(r#"{{"name":"join","rid":"{too_long}"}}"#))
        .await;
    let refused = raw.answer_to(2).await.expect("answer");
    assert_eq!(refused.level(), "error");
    assert!(
        refused.description().contains("128 characters"),
        "{:?}",
        refused.args
    );
}
