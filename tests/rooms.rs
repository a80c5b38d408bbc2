//! Rooms, messaging, rights and history over real TCP sockets, each scenario on SQLite and on PostgreSQL.

mod common;

use common::pushes::{data_of, neighbors, sends, until_data, until_neighbor};
use common::{people, Backend, DbGateway};
use odd_gateway::client::{Client, ClientError, Reply};
use serde_json::json;

async fn member(gw: &DbGateway, who: &str, rid: &str) -> (Client, u16, Reply) {
    common::member_at(&gw.tcp_url(), who, rid).await
}

async fn presence_and_fanout(backend: Backend) {
    // A short fast-reconnect grace, so a dropped connection leaves its rooms quickly.
    let Some(gw) = DbGateway::start(backend, |c| {
        people(c);
        c.limits.resume_grace_ms = 200;
    })
    .await
    else {
        return;
    };
    let (mut a, ap, joined) = member(&gw, "alice", "lobby").await;
    assert_eq!(joined.code(), "NetGroup.Connect.Success");
    assert_eq!(joined.info()["user"]["id"], "alice");
    assert_eq!(joined.info()["room"]["id"], "lobby");
    assert_eq!(joined.info()["room"]["mask"], "rwx", "the creator gets rwx");
    let cov = a
        .wait_for("NetGroup.LocalCoverage.Notify")
        .await
        .expect("coverage");
    assert_eq!(cov.pipe, ap);
    assert_eq!(
        cov.info()["list"],
        json!({"alice": {"id": "alice", "nick": "ALICE", "avatar": ""}})
    );

    let (mut b, _bp, bj) = member(&gw, "bob", "lobby").await;
    assert_eq!(
        bj.info()["room"]["mask"],
        "rw",
        "others get the default rights"
    );
    let cov = b
        .wait_for("NetGroup.LocalCoverage.Notify")
        .await
        .expect("coverage");
    let list = cov.info()["list"].as_object().expect("list object");
    assert_eq!(list.keys().collect::<Vec<_>>(), ["alice", "bob"]);
    let n = a
        .wait_for("NetGroup.Neighbor.Connect")
        .await
        .expect("alice sees bob");
    assert_eq!(n.info()["user"]["id"], "bob");
    assert_eq!(n.info()["room"]["id"], "lobby");

    let (mut c, cp, _) = member(&gw, "carol", "lobby").await;

    let before = odd_gateway::clock::now_secs();
    let ack = a.say(ap, "lobby", "hello").await.expect("sent");
    // A plain success: Posting.Notify is what clients treat as an incoming message (PROTOCOL.md §4).
    assert_eq!(ack.code(), "NetConnection.Call.Success");
    let mid = ack.info()["mid"].as_i64().expect("mid");
    assert_eq!(
        ack.info()["delivered"],
        3,
        "bob, carol and alice's own echo"
    );
    // A fence: the room's messages are pushed in order, so a second copy of "hello" would come before it.
    a.say(ap, "lobby", "fence").await.expect("sent");
    for (who, client) in [("alice", &mut a), ("bob", &mut b), ("carol", &mut c)] {
        let pushes = until_data(client, "fence").await;
        let got: Vec<&Reply> = sends(&pushes)
            .into_iter()
            .filter(|p| p.args["data"] == "hello")
            .collect();
        assert_eq!(got.len(), 1, "{who} gets it exactly once: {pushes:?}");
        let m = got[0];
        assert_eq!(m.txid, 0);
        assert_eq!(
            m.args["user"],
            json!({"id": "alice", "nick": "ALICE", "avatar": ""})
        );
        assert_eq!(m.args["data"], "hello");
        assert_eq!(m.args["type"], "text");
        assert_eq!(m.args["cast"], "multi");
        assert_eq!(m.args["room"]["id"], "lobby");
        assert_eq!(m.args["mid"], mid);
        assert!(
            m.timestamp >= before && m.timestamp <= before + 2,
            "header timestamp = acceptance time"
        );
    }

    // The sender cannot speak as someone else.
    c.call(
        cp,
        json!({"name": "send", "type": "text", "cast": "multi", "id": "lobby", "data": "hi",
                      "user": {"id": "alice", "nick": "fake", "avatar": ""}}),
    )
    .await
    .expect("answer")
    .ok()
    .expect("sent");
    let pushes = until_data(&mut b, "hi").await;
    let hi = sends(&pushes).pop().expect("the message");
    assert_eq!(hi.args["user"]["id"], "carol");

    let left = c.leave(cp, "lobby").await.expect("leave");
    assert_eq!(left.code(), "NetGroup.Connect.Closed");
    assert_eq!(left.info()["room"]["id"], "lobby");
    let d = a
        .wait_for("NetGroup.Neighbor.Disconnect")
        .await
        .expect("alice sees carol leave");
    assert_eq!(d.info()["user"]["id"], "carol");

    // A dropped connection leaves its rooms once the fast-reconnect grace period is over.
    b.close().await;
    let d = a
        .wait_for("NetGroup.Neighbor.Disconnect")
        .await
        .expect("alice sees bob go");
    assert_eq!(d.info()["user"]["id"], "bob");
    assert_eq!(
        gw.gateway.rooms().present("lobby"),
        vec!["alice".to_string()]
    );
}

async fn unicast_reaches_every_connection(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let a = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let ap = a.create("messaging").await.expect("pipe");
    let mut phone = Client::connect(&gw.tcp_url(), "bob").await.expect("bob 1");
    phone.create("messaging").await.expect("pipe");
    let mut laptop = Client::connect(&gw.tcp_url(), "bob").await.expect("bob 2");
    laptop
        .create("signaling")
        .await
        .expect("a signaling pipe first");
    let lp = laptop.create("messaging").await.expect("pipe");
    let mut alice_tablet = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice 2");
    alice_tablet.create("messaging").await.expect("pipe");

    let ack = a
        .send(ap, "uni", "bob", "text", json!({"t": "psst"}))
        .await
        .expect("sent");
    assert_eq!(ack.code(), "NetConnection.Call.Success");
    assert_eq!(
        ack.info()["delivered"],
        3,
        "two bob connections + alice's other device"
    );
    // A fence on the same path (alice to bob): a second copy would arrive before it.
    a.send(ap, "uni", "bob", "text", json!("fence"))
        .await
        .expect("sent");
    for client in [&mut phone, &mut laptop] {
        let pushes = until_data(client, "fence").await;
        let got: Vec<&Reply> = sends(&pushes)
            .into_iter()
            .filter(|p| p.args["data"] != "fence")
            .collect();
        assert_eq!(got.len(), 1, "{pushes:?}");
        assert_eq!(got[0].args["cast"], "uni");
        assert_eq!(got[0].args["id"], "bob");
        assert_eq!(got[0].args["data"], json!({"t": "psst"}));
        assert_eq!(got[0].args["user"]["id"], "alice");
    }
    let mirror = until_data(&mut alice_tablet, "fence").await;
    assert_eq!(
        sends(&mirror).len(),
        2,
        "the sender's other device sees the conversation (the message, then the fence)"
    );

    // Both sides read the same conversation.
    laptop
        .send(lp, "uni", "alice", "text", json!("back"))
        .await
        .expect("reply");
    let page = laptop
        .history(lp, json!({"uid": "alice"}))
        .await
        .expect("history");
    let msgs = page.info()["messages"]
        .as_array()
        .expect("messages")
        .clone();
    // The message, the fence, the reply.
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0]["data"], json!({"t": "psst"}));
    assert_eq!(msgs[1]["data"], "fence");
    assert_eq!(msgs[2]["data"], "back");
    assert_eq!(msgs[2]["user"]["id"], "bob");
    let other = a
        .history(ap, json!({"uid": "bob"}))
        .await
        .expect("alice's view");
    assert_eq!(other.info()["messages"].as_array().map(Vec::len), Some(3));
    // A third user's conversation with alice is empty.
    let dave = Client::connect(&gw.tcp_url(), "dave").await.expect("dave");
    let dp = dave.create("messaging").await.expect("pipe");
    let none = dave
        .history(dp, json!({"uid": "bob"}))
        .await
        .expect("dave's view");
    assert_eq!(none.info()["messages"], json!([]));
}

async fn chmod_controls_writing_reading_and_admin(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let (mut a, ap, _) = member(&gw, "alice", "ops").await;
    let (mut b, bp, _) = member(&gw, "bob", "ops").await;

    // Only x holders may chmod.
    match b.chmod(bp, "ops", "alice", "-", "w").await {
        Err(ClientError::Status { code, description }) => {
            assert_eq!(code, "NetConnection.Call.Failed");
            assert!(description.contains("administer (x)"), "{description}");
        }
        other => panic!("bob must not chmod: {other:?}"),
    }
    // -w: bob can no longer post.
    let r = a.chmod(ap, "ops", "bob", "-", "w").await.expect("chmod");
    assert_eq!(r.info()["mask"], "r");
    match b.say(bp, "ops", "can I?").await {
        Err(ClientError::Status { code, description }) => {
            assert_eq!(code, "NetGroup.Posting.Failed");
            assert!(description.contains("write (w)"), "{description}");
        }
        other => panic!("bob must not post: {other:?}"),
    }
    // Alice's own fence comes back to her after anything bob's refused post could have pushed.
    a.say(ap, "ops", "fence").await.expect("sent");
    assert_eq!(
        data_of(&until_data(&mut a, "fence").await),
        ["fence"],
        "nothing of bob's reached alice"
    );

    // Numeric masks work too: +w back (0x00FF00).
    let r = a
        .call(
            ap,
            json!({"name": "chmod", "rid": "ops", "tid": "bob", "operator": "+", "mask": 0x00FF00}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("chmod");
    assert_eq!(r.info()["mask"], "rw");
    b.say(bp, "ops", "thanks").await.expect("bob posts again");

    // -r: bob stops receiving and cannot read history.
    a.chmod(ap, "ops", "bob", "-", "r").await.expect("chmod");
    a.say(ap, "ops", "secret").await.expect("sent");
    // Bob gets no room message now, so the fence is a uni-cast: it leaves through the same queue, after
    // anything the room would have pushed him.
    a.send(ap, "uni", "bob", "text", json!("fence"))
        .await
        .expect("sent");
    let got = data_of(&until_data(&mut b, "fence").await);
    assert!(
        !got.contains(&"secret".to_string()),
        "no r, no delivery: {got:?}"
    );
    match b.history(bp, json!({"rid": "ops"})).await {
        Err(ClientError::Status { description, .. }) => {
            assert!(description.contains("read (r)"), "{description}")
        }
        other => panic!("bob must not read history: {other:?}"),
    }
    // The owner keeps x.
    assert!(a.chmod(ap, "ops", "alice", "-", "x").await.is_err());
    // Banned users cannot join.
    a.chmod(ap, "ops", "carol", "=", "")
        .await
        .expect("ban carol");
    let c = Client::connect(&gw.tcp_url(), "carol")
        .await
        .expect("carol");
    let cp = c.create("messaging").await.expect("pipe");
    match c.join(cp, "ops").await {
        Err(ClientError::Status { code, .. }) => assert_eq!(code, "NetGroup.Connect.Rejected"),
        other => panic!("carol must be refused: {other:?}"),
    }
}

async fn rights_and_history_survive_restart(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    {
        let (a, ap, _) = member(&gw, "alice", "keep").await;
        a.chmod(ap, "keep", "bob", "=", "r").await.expect("chmod");
        for i in 0..5 {
            a.say(ap, "keep", &format!("m{i}")).await.expect("sent");
        }
    }
    let gw = gw.restart().await;
    let (b, bp, joined) = member(&gw, "bob", "keep").await;
    assert_eq!(joined.info()["room"]["mask"], "r", "rights survived");
    assert_eq!(joined.info()["room"]["owner"], "alice");
    let page = b
        .history(bp, json!({"rid": "keep"}))
        .await
        .expect("history");
    let texts: Vec<_> = page.info()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["data"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4"]);
    assert!(b.say(bp, "keep", "no").await.is_err(), "still read-only");
}

async fn thousand_messages_acked_then_all_in_history(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let (a, ap, _) = member(&gw, "alice", "bulk").await;
    // Pipelined: all 1,000 in flight at once, so the journal batches them.
    let mut pending = Vec::new();
    for i in 0..1000 {
        let args = json!({"name": "send", "type": "text", "cast": "multi", "id": "bulk", "data": format!("n{i}")});
        pending.push(a.submit(ap, args, bytes::Bytes::new()).await.expect("sent"));
    }
    let mut mids = Vec::new();
    for (i, p) in pending.into_iter().enumerate() {
        let ack = p
            .wait()
            .await
            .and_then(|r| r.ok())
            .unwrap_or_else(|e| panic!("message {i} failed: {e}"));
        mids.push(ack.info()["mid"].as_i64().expect("mid"));
    }
    assert!(
        mids.windows(2).all(|w| w[0] < w[1]),
        "ids follow the sending order"
    );

    // What the store holds, read through an independent connection.
    let store = gw.db.open_store().await;
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .history(&odd_gateway::store::HistoryQuery {
                thread: odd_gateway::store::Thread::Room("bulk".into()),
                before: None,
                after: Some(after),
                limit: 300,
            })
            .await
            .expect("history");
        seen.extend(page.messages.iter().map(|m| (m.id, m.data.clone())));
        match page.messages.last() {
            Some(last) if page.more => after = last.id,
            _ => break,
        }
    }
    assert_eq!(seen.len(), 1000);
    for (i, (id, data)) in seen.iter().enumerate() {
        assert_eq!(*id, mids[i]);
        assert_eq!(data, &format!("\"n{i}\""));
    }
    // In-band paging agrees: the newest 10, then the 10 before them.
    let newest = a
        .history(ap, json!({"rid": "bulk", "limit": 10}))
        .await
        .expect("page");
    assert_eq!(newest.info()["more"], true);
    assert_eq!(newest.info()["messages"][9]["data"], "n999");
    let cursor = newest.info()["before"].clone();
    let older = a
        .history(ap, json!({"rid": "bulk", "limit": 10, "before": cursor}))
        .await
        .expect("page");
    assert_eq!(older.info()["messages"][9]["data"], "n989");
    assert_eq!(older.info()["messages"][0]["data"], "n980");
}

async fn http_history_api(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let (a, ap, _) = member(&gw, "alice", "web").await;
    for i in 0..3 {
        a.say(ap, "web", &format!("w{i}")).await.expect("sent");
    }
    a.send(ap, "uni", "bob", "text", json!("dm"))
        .await
        .expect("dm");
    let file = a
        .call_with(
            ap,
            json!({"name": "send", "type": "file", "cast": "multi", "id": "web", "data": {"name": "a.bin"}}),
            bytes::Bytes::from_static(b"\x00\x01binary"),
        )
        .await
        .expect("answer")
        .ok()
        .expect("file sent");
    let file_mid = file.info()["mid"].as_i64().expect("mid");
    a.chmod(ap, "web", "carol", "-", "r").await.expect("chmod");

    let http = reqwest::Client::new();
    let base = gw.http_url();
    let get = |path: String, token: &'static str| {
        let req = http.get(format!("{base}{path}"));
        let req = if token.is_empty() {
            req
        } else {
            req.bearer_auth(token)
        };
        async move { req.send().await.expect("http") }
    };
    let r = get("/api/rooms/web/messages?limit=2".into(), "bob").await;
    assert_eq!(r.status(), 200);
    let page: serde_json::Value = r.json().await.expect("json");
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["messages"][1]["mid"], file_mid);
    assert_eq!(page["messages"][1]["size"], 8);
    assert_eq!(page["more"], true);
    let before = page["before"].as_i64().expect("cursor");
    let r = get(
        format!("/api/rooms/web/messages?before={before}&limit=10"),
        "bob",
    )
    .await;
    let older: serde_json::Value = r.json().await.expect("json");
    assert_eq!(older["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(older["messages"][0]["data"], "w0");
    assert_eq!(older["more"], false);

    let r = get(format!("/api/messages/{file_mid}/payload"), "bob").await;
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.expect("body")[..], b"\x00\x01binary");

    assert_eq!(
        get("/api/rooms/web/messages".into(), "").await.status(),
        401,
        "no token, anonymous off"
    );
    assert_eq!(
        get("/api/rooms/web/messages".into(), "nobody")
            .await
            .status(),
        401
    );
    assert_eq!(
        get("/api/rooms/web/messages".into(), "carol")
            .await
            .status(),
        403,
        "carol has no r"
    );
    assert_eq!(
        get(format!("/api/messages/{file_mid}/payload"), "carol")
            .await
            .status(),
        403
    );
    assert_eq!(
        get("/api/rooms/nowhere/messages".into(), "bob")
            .await
            .status(),
        404
    );
    assert_eq!(
        get("/api/rooms/web/messages?limit=100000".into(), "bob")
            .await
            .status(),
        400
    );
    assert_eq!(
        get("/api/rooms/web/messages?limit=abc".into(), "bob")
            .await
            .status(),
        400
    );

    let r = get("/api/users/bob/conversations/alice/messages".into(), "bob").await;
    assert_eq!(r.status(), 200);
    let conv: serde_json::Value = r.json().await.expect("json");
    assert_eq!(conv["messages"][0]["data"], "dm");
    assert_eq!(
        get(
            "/api/users/bob/conversations/alice/messages".into(),
            "carol"
        )
        .await
        .status(),
        403
    );

    assert_eq!(get("/healthz".into(), "").await.status(), 200);
    let ready: serde_json::Value = get("/readyz".into(), "").await.json().await.expect("json");
    assert_eq!(ready["status"], "ready");
}

async fn refusals_are_clear(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, |c| {
        people(c);
        c.rooms.create_on_join = false;
    })
    .await
    else {
        return;
    };
    let a = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let ap = a.create("messaging").await.expect("pipe");
    match a.join(ap, "ghost").await {
        Err(ClientError::Status { code, description }) => {
            assert_eq!(code, "NetGroup.Connect.Rejected");
            assert!(description.contains("does not exist"), "{description}");
        }
        other => panic!("{other:?}"),
    }
    match a.say(ap, "ghost", "hi").await {
        Err(ClientError::Status { code, description }) => {
            assert_eq!(code, "NetGroup.Posting.Failed");
            assert!(description.contains("join room"), "{description}");
        }
        other => panic!("{other:?}"),
    }
    match a.send(ap, "uni", "", "text", json!("x")).await {
        Err(ClientError::Status { code, .. }) => assert_eq!(code, "NetGroup.SendTo.Failed"),
        other => panic!("{other:?}"),
    }
    // Fits the client's 65,535-byte argument limit, but not once the server adds `user` and `room`.
    let huge = "x".repeat(65_400);
    match a.send(ap, "uni", "bob", "text", json!(huge)).await {
        Err(ClientError::Status { description, .. }) => {
            assert!(
                description.contains("more than a command can carry"),
                "{description}"
            )
        }
        other => panic!("{other:?}"),
    }
    let r = a
        .call(
            ap,
            json!({"name": "send", "type": "sticker", "cast": "uni", "id": "bob"}),
        )
        .await
        .expect("answer");
    assert!(
        r.is_error() && r.description().contains("type"),
        "{:?}",
        r.args
    );
    let r = a
        .call(ap, json!({"name": "leave", "rid": "nowhere"}))
        .await
        .expect("answer");
    assert!(
        r.is_error() && r.description().contains("not in room"),
        "{:?}",
        r.args
    );
    let r = a
        .call(ap, json!({"name": "history"}))
        .await
        .expect("answer");
    assert!(
        r.is_error() && r.description().contains("exactly one"),
        "{:?}",
        r.args
    );
}

on_both_backends!(
    presence_and_fanout,
    unicast_reaches_every_connection,
    chmod_controls_writing_reading_and_admin,
    rights_and_history_survive_restart,
    thousand_messages_acked_then_all_in_history,
    http_history_api,
    refusals_are_clear,
    crowded_rooms_do_not_announce_and_page_their_presence
);

/// A crowded room (here `presence_limit = 3`) announces no joins or leaves to everyone and caps the joiner's
/// coverage list (with `count` and `more`); `GET /api/rooms/{rid}/presence` pages through who is there.
async fn crowded_rooms_do_not_announce_and_page_their_presence(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, |c| {
        people(c);
        c.rooms.presence_limit = 3;
    })
    .await
    else {
        return;
    };
    let (mut a, ap, _) = member(&gw, "alice", "big").await;
    let (_b, _, _) = member(&gw, "bob", "big").await;
    let (_c, _, _) = member(&gw, "carol", "big").await;
    // Below the limit the protocol is unchanged: alice heard of bob and carol.
    let heard = until_neighbor(&mut a, "NetGroup.Neighbor.Connect", "carol").await;
    assert_eq!(
        neighbors(&heard, "NetGroup.Neighbor.Connect"),
        ["bob", "carol"]
    );

    let (mut d, dp, _) = member(&gw, "dave", "big").await;
    let cov = d
        .wait_for("NetGroup.LocalCoverage.Notify")
        .await
        .expect("coverage");
    let list = cov.info()["list"].as_object().expect("list");
    assert_eq!(list.len(), 3, "capped at the limit: {list:?}");
    assert!(list.contains_key("dave"), "the joiner is always listed");
    assert_eq!(cov.info()["count"], 4);
    assert_eq!(cov.info()["more"], true);
    // Nobody was told of dave: alice's fence comes before anything that would have been.
    a.say(ap, "big", "fence").await.expect("sent");
    let before = until_data(&mut a, "fence").await;
    assert!(
        neighbors(&before, "NetGroup.Neighbor.Connect").is_empty(),
        "{before:?}"
    );

    // Who is there, paged by user id.
    let http = reqwest::Client::new();
    let get = |query: &'static str| {
        http.get(format!("{}/api/rooms/big/presence{query}", gw.http_url()))
            .bearer_auth("dave")
            .send()
    };
    let page: serde_json::Value = get("?limit=2")
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(page["count"], 4);
    assert_eq!(page["more"], true);
    let ids: Vec<&str> = page["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    let page: serde_json::Value = get("?after=bob")
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = page["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(ids, ["carol", "dave"]);
    assert_eq!(page["more"], false);
    let refused = http
        .get(format!("{}/api/rooms/big/presence", gw.http_url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(refused.status(), 401, "a token is required");

    // Dave leaves a room that stays crowded: no announcement either.
    d.leave(dp, "big").await.expect("leave");
    a.say(ap, "big", "fence 2").await.expect("sent");
    let after = until_data(&mut a, "fence 2").await;
    assert!(
        neighbors(&after, "NetGroup.Neighbor.Disconnect").is_empty(),
        "{after:?}"
    );
}

/// `typing {rid}`: the room's other members get `NetGroup.Typing.Notify` naming who; the typist gets none; a
/// second one within 2 s is answered `sent: false` and goes nowhere; a connection not in the room is refused.
/// (Fences: the notices and alice's later message reach each member through its one ordered queue.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_tells_the_other_members_once_per_interval() {
    let Some(gw) = DbGateway::start(Backend::Sqlite, people).await else {
        return;
    };
    let url = gw.tcp_url();
    let (mut alice, ap, _) = common::member_at(&url, "alice", "t").await;
    let (mut bob, _bp, _) = common::member_at(&url, "bob", "t").await;
    let first = alice.typing(ap, "t").await.expect("typing");
    assert_eq!(first.info()["sent"], true);
    let second = alice.typing(ap, "t").await.expect("typing again");
    assert_eq!(
        second.info()["sent"],
        false,
        "within 2 s: answered, not sent"
    );
    alice.say(ap, "t", "fence").await.expect("sent");
    let got = until_data(&mut bob, "fence").await;
    let typing: Vec<&Reply> = got
        .iter()
        .filter(|p| p.code() == "NetGroup.Typing.Notify")
        .collect();
    assert_eq!(typing.len(), 1, "one notice for two typings");
    assert_eq!(typing[0].info()["user"]["id"], "alice");
    assert_eq!(typing[0].info()["room"]["id"], "t");
    let mine = until_data(&mut alice, "fence").await;
    assert!(
        mine.iter().all(|p| p.code() != "NetGroup.Typing.Notify"),
        "the typist is not told of herself"
    );
    let (carol, cp, _) = common::member_at(&url, "carol", "elsewhere").await;
    let refused = carol.typing(cp, "t").await;
    assert!(
        format!("{refused:?}").contains("join room"),
        "typing needs the room joined: {refused:?}"
    );
}
