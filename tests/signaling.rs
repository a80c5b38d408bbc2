//! WebRTC signaling relay and pipe/room properties over real sockets.

mod common;

use bytes::Bytes;
use common::{people, TestGateway};
use odd_gateway::client::{Client, ClientError, Reply};
use serde_json::json;

async fn signaling(gw: &TestGateway, who: &str) -> (Client, u16) {
    let c = Client::connect(&gw.tcp_url(), who).await.expect("connect");
    let pipe = c.create("signaling").await.expect("pipe");
    (c, pipe)
}

/// The next push that is a command with this name (e.g. "sdp").
async fn next_named(c: &mut Client, name: &str) -> Reply {
    loop {
        let p = c
            .next_push()
            .await
            .unwrap_or_else(|| panic!("no {name} push"));
        if p.name() == name {
            return p;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_pair_and_exchange_offer_answer_candidates_unchanged() {
    let gw = TestGateway::start_with(|c| {
        people(c);
        c.limits.resume_grace_ms = 200;
    })
    .await;
    let stream = "call-1@gw.example/lobby";
    let (mut alice, ap) = signaling(&gw, "alice").await;
    let (mut bob, bp) = signaling(&gw, "bob").await;

    let wait = alice
        .call(
            ap,
            json!({"name": "play", "stream": stream, "mode": "video"}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("play");
    assert_eq!(wait.code(), "NetStream.Play.PublishNotify");
    let start = bob
        .call(
            bp,
            json!({"name": "play", "stream": stream, "mode": "audio"}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("play");
    assert_eq!(start.code(), "NetStream.Play.Start");
    assert_eq!(start.info()["role"], "answerer");
    assert_eq!(start.info()["peer"]["id"], "alice");
    assert_eq!(start.info()["mode"], "video", "the peer's mode");
    let pushed = alice
        .wait_for("NetStream.Play.Start")
        .await
        .expect("alice is told");
    assert_eq!(pushed.info()["role"], "offerer");
    assert_eq!(pushed.info()["peer"]["id"], "bob");
    assert_eq!(pushed.info()["mode"], "audio");

    // Offer, answer and candidates arrive byte for byte.
    let offer = r#"{"name":"sdp","type":"offer","sdp":"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n","x-extra":[1,2,3]}"#;
    alice
        .submit(ap, serde_json::from_str(offer).expect("json"), Bytes::new())
        .await
        .expect("sent");
    let got = next_named(&mut bob, "sdp").await;
    assert_eq!(got.pipe, bp);
    assert_eq!(
        got.args,
        serde_json::from_str::<serde_json::Value>(offer).expect("json")
    );
    let raw_offer =
        serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(offer).expect("json"))
            .expect("bytes");
    assert_eq!(&got.raw_args[..], &raw_offer[..], "byte-identical");
    let answer =
        json!({"name": "sdp", "type": "answer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"});
    bob.call(bp, answer.clone())
        .await
        .expect("answer")
        .ok()
        .expect("relayed");
    assert_eq!(next_named(&mut alice, "sdp").await.args, answer);
    for i in 0..3 {
        let cand = json!({"name": "candidate", "candidate": format!("candidate:{i} 1 udp 2122260223 192.0.2.1 5000{i} typ host"), "sdpMid": "0", "sdpMLineIndex": 0});
        alice
            .call(ap, cand.clone())
            .await
            .expect("answer")
            .ok()
            .expect("relayed");
        assert_eq!(next_named(&mut bob, "candidate").await.args, cand);
    }

    // A third player is refused.
    let (carol, cp) = signaling(&gw, "carol").await;
    match carol
        .call(cp, json!({"name": "play", "stream": stream}))
        .await
        .expect("answer")
        .ok()
    {
        Err(ClientError::Status { code, description }) => {
            assert_eq!(code, "NetStream.Play.Failed");
            assert!(description.contains("two players"), "{description}");
        }
        other => panic!("a third player must be refused: {other:?}"),
    }

    // stop notifies the peer.
    let stopped = bob
        .call(bp, json!({"name": "stop", "stream": stream}))
        .await
        .expect("answer")
        .ok()
        .expect("stop");
    assert_eq!(stopped.code(), "NetStream.Play.Stop");
    let told = alice
        .wait_for("NetStream.Play.Stop")
        .await
        .expect("alice is told");
    assert_eq!(told.info()["stream"], stream);
    let lonely = alice
        .call(ap, json!({"name": "sdp", "type": "offer", "sdp": "x"}))
        .await
        .expect("answer");
    assert!(
        lonely.is_error() && lonely.description().contains("no peer"),
        "{:?}",
        lonely.args
    );

    // Carol pairs with alice now; then carol's connection is lost: alice is told (after the grace period).
    carol
        .call(cp, json!({"name": "play", "stream": stream}))
        .await
        .expect("answer")
        .ok()
        .expect("pairs");
    alice
        .wait_for("NetStream.Play.Start")
        .await
        .expect("paired again");
    drop(carol);
    let gone = alice
        .wait_for("NetStream.Play.Stop")
        .await
        .expect("alice is told carol is gone");
    assert_eq!(gone.info()["stream"], stream);
}

/// The RTC SDK's standalone default, `ws(s)://<host>/rtc/sig`, is the same endpoint as `/im`: a session there
/// connects and opens signaling pipes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rtc_sdk_default_url_is_served() {
    let gw = TestGateway::start().await;
    let url = format!("ws://{}/rtc/sig", gw.gateway.http_addr.expect("http"));
    let c = Client::connect(&url, "")
        .await
        .expect("connect over /rtc/sig");
    let pipe = c.create("signaling").await.expect("a signaling pipe");
    assert!(pipe > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playing_a_rooms_stream_needs_read_rights_there() {
    let gw = TestGateway::start_with(people).await;
    let owner = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let op = owner.create("messaging").await.expect("pipe");
    owner.join(op, "club").await.expect("creates the room");
    owner
        .chmod(op, "club", "bob", "=", "")
        .await
        .expect("bob has no rights");
    let (bob, bp) = signaling(&gw, "bob").await;
    let r = bob
        .call(bp, json!({"name": "play", "stream": "x@h/club"}))
        .await
        .expect("answer");
    assert_eq!(r.code(), "NetStream.Play.Failed");
    assert!(r.description().contains("read (r)"), "{}", r.description());
    let (carol, cp) = signaling(&gw, "carol").await;
    carol
        .call(cp, json!({"name": "play", "stream": "x@h/club"}))
        .await
        .expect("answer")
        .ok()
        .expect("default rights include r");
    let bad = carol
        .call(cp, json!({"name": "play", "stream": "no-at-sign"}))
        .await
        .expect("answer");
    assert!(bad.is_error() && bad.description().contains("name@host/app"));
    let wrong_pipe = owner
        .call(op, json!({"name": "play", "stream": "x@h/club"}))
        .await
        .expect("answer");
    assert!(
        wrong_pipe
            .description()
            .contains("not valid on a messaging pipe"),
        "{}",
        wrong_pipe.description()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_pipes_deliver_live_but_store_nothing() {
    let gw = TestGateway::start_with(people).await;
    let mut alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    let defaults = alice
        .wait_for("setProperty")
        .await
        .expect("the pipe's properties are pushed");
    assert_eq!(
        defaults.args["info"],
        json!({"temporary": false, "private": false})
    );
    alice.join(ap, "t").await.expect("join");
    let mut bob = Client::connect(&gw.tcp_url(), "bob").await.expect("bob");
    let bp = bob.create("messaging").await.expect("pipe");
    bob.join(bp, "t").await.expect("join");
    let set = alice
        .call(
            ap,
            json!({"name": "setProperty", "info": {"temporary": true}}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("set");
    assert_eq!(set.info()["temporary"], true);
    let ack = alice.say(ap, "t", "ephemeral").await.expect("sent");
    assert!(ack.info()["mid"].is_null(), "not stored, so no id");
    let live = next_named(&mut bob, "send").await;
    assert_eq!(live.args["data"], "ephemeral");
    alice
        .call(
            ap,
            json!({"name": "setProperty", "info": {"temporary": false}}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("set");
    alice.say(ap, "t", "kept").await.expect("sent");
    let page = bob.history(bp, json!({"rid": "t"})).await.expect("history");
    let texts: Vec<_> = page.info()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["data"].clone())
        .collect();
    assert_eq!(texts, vec![json!("kept")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_pipes_are_hidden_from_presence() {
    let gw = TestGateway::start_with(people).await;
    let mut alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    alice.join(ap, "p").await.expect("join");
    let _ = alice
        .wait_for("NetGroup.LocalCoverage.Notify")
        .await
        .expect("coverage");
    let mut ghost = Client::connect(&gw.tcp_url(), "carol")
        .await
        .expect("carol");
    let gp = ghost.create("messaging").await.expect("pipe");
    ghost
        .call(
            gp,
            json!({"name": "setProperty", "info": {"private": true}}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("set");
    ghost.join(gp, "p").await.expect("join");
    let own = ghost
        .wait_for("NetGroup.LocalCoverage.Notify")
        .await
        .expect("coverage");
    let list = own.info()["list"].as_object().expect("list");
    assert!(
        list.contains_key("carol") && list.contains_key("alice"),
        "a private member sees itself and others"
    );
    let mut bob = Client::connect(&gw.tcp_url(), "bob").await.expect("bob");
    let bp = bob.create("messaging").await.expect("pipe");
    bob.join(bp, "p").await.expect("join");
    let cov = bob
        .wait_for("NetGroup.LocalCoverage.Notify")
        .await
        .expect("coverage");
    let list = cov.info()["list"].as_object().expect("list");
    assert!(!list.contains_key("carol"), "carol is hidden: {list:?}");
    assert!(list.contains_key("alice"));
    // Bob joined after carol: anything pushed about carol would have reached alice before bob's arrival.
    let seen: Vec<String> =
        common::pushes::until_neighbor(&mut alice, "NetGroup.Neighbor.Connect", "bob")
            .await
            .iter()
            .map(|p| format!("{} {}", p.code(), p.info()["user"]["id"]))
            .collect();
    assert_eq!(
        seen,
        vec![r#"NetGroup.Neighbor.Connect "bob""#.to_string()],
        "no push about carol"
    );
    // Private members still receive messages.
    alice.say(ap, "p", "hello all").await.expect("sent");
    assert_eq!(
        next_named(&mut ghost, "send").await.args["data"],
        "hello all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_round_trip_unknown_keys_and_room_defaults() {
    let gw = TestGateway::start_with(people).await;
    let alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    alice.join(ap, "props").await.expect("owner");
    let set = alice
        .call(
            ap,
            json!({"name": "setProperty", "info": {"theme": {"dark": true}, "temporary": false}}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("set");
    assert_eq!(set.info()["theme"], json!({"dark": true}));
    let got = alice
        .call(
            ap,
            json!({"name": "getProperty", "keys": ["theme", "temporary", "private", "nothing"]}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("get");
    assert_eq!(
        got.info(),
        &json!({"theme": {"dark": true}, "temporary": false, "private": false, "nothing": null})
    );
    // Pipe 0 keeps its own properties.
    alice
        .call(
            0,
            json!({"name": "setProperty", "info": {"device": "phone"}}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("set");
    let got0 = alice
        .call(
            0,
            json!({"name": "getProperty", "keys": ["device", "theme"]}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("get");
    assert_eq!(got0.info(), &json!({"device": "phone", "theme": null}));
    // Wrong types and places are refused.
    let bad = alice
        .call(
            ap,
            json!({"name": "setProperty", "info": {"temporary": "yes"}}),
        )
        .await
        .expect("answer");
    assert!(bad.is_error() && bad.description().contains("true or false"));
    let bad = alice
        .call(0, json!({"name": "setProperty", "info": {"private": true}}))
        .await
        .expect("answer");
    assert!(bad.is_error() && bad.description().contains("messaging pipes"));
    let big = alice
        .call(
            ap,
            json!({"name": "setProperty", "info": {"blob": "x".repeat(2000)}}),
        )
        .await
        .expect("answer");
    assert!(big.is_error());

    // Room defaults: the owner makes newcomers read-only.
    let r = alice
        .call(
            ap,
            json!({"name": "setProperty", "info": {"room:props:default_rights": "r"}}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("set");
    assert_eq!(r.info()["room:props:default_rights"], "r");
    let bob = Client::connect(&gw.tcp_url(), "bob").await.expect("bob");
    let bp = bob.create("messaging").await.expect("pipe");
    let joined = bob.join(bp, "props").await.expect("join");
    assert_eq!(joined.info()["room"]["mask"], "r");
    let denied = bob
        .call(
            bp,
            json!({"name": "setProperty", "info": {"room:props:default_rights": "rwx"}}),
        )
        .await
        .expect("answer");
    assert!(denied.is_error() && denied.description().contains("administer (x)"));
    let unknown = alice
        .call(
            ap,
            json!({"name": "setProperty", "info": {"room:props:color": "red"}}),
        )
        .await
        .expect("answer");
    assert!(unknown.is_error() && unknown.description().contains("unknown room property"));
    let read = bob
        .call(
            bp,
            json!({"name": "getProperty", "keys": ["room:props:default_rights"]}),
        )
        .await
        .expect("answer")
        .ok()
        .expect("get");
    assert_eq!(read.info()["room:props:default_rights"], "r");
}
