//! What the stock odd.js chat page relies on (PROTOCOL.md §4), checked with raw sockets that speak as that
//! client does: a browser WebSocket carrying one frame per binary message, a sender that renders only what the
//! server pushes, replies matched by transaction id and `level`, a `release` sent twice with txid 0.

mod common;

use std::time::Duration;

use common::TestGateway;
use futures::{SinkExt, StreamExt};
use odd_gateway::protocol::{CommandMessage, Frame, Message, MessageType, Reassembler};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A browser-like client: binary WebSocket messages, one frame each, txids counted per pipe.
struct Browser {
    ws: Ws,
    seq: u16,
    reassembler: Reassembler,
}

#[derive(Debug)]
struct Got {
    pipe: u16,
    txid: u16,
    args: Value,
}

impl Got {
    fn code(&self) -> &str {
        self.args["code"].as_str().unwrap_or("")
    }
}

impl Browser {
    async fn open(gw: &TestGateway) -> Browser {
        let url = format!("ws://{}/im", gw.gateway.http_addr.expect("http"));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
        Browser {
            ws,
            seq: 1,
            reassembler: Reassembler::new(1 << 20),
        }
    }

    async fn send(&mut self, pipe: u16, txid: u16, args: Value) {
        let body = CommandMessage::encode(0, txid, args.to_string().as_bytes(), &[]).expect("fits");
        let bytes = Frame::new(MessageType::Command, pipe, body).to_bytes(self.seq);
        self.seq = self.seq.wrapping_add(1);
        self.ws.send(WsMessage::Binary(bytes)).await.expect("send");
    }

    /// The next command within `wait` (ACK frames skipped), or `None`.
    async fn next_within(&mut self, wait: Duration) -> Option<Got> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??
                .ok()?;
            let WsMessage::Binary(b) = msg else { continue };
            let frame = Frame::decode(b).expect("server frames are valid");
            if let Ok(Some(Message::Command { pipe, command })) = self.reassembler.push(frame) {
                let args: Value = serde_json::from_slice(&command.args).expect("JSON");
                return Some(Got {
                    pipe,
                    txid: command.txid,
                    args,
                });
            }
        }
    }

    /// Reads until the gateway has pinged `n` times (tungstenite answers each ping by itself, as a browser
    /// does); returns the commands that came meanwhile. Panics if the socket ends first or the pings do not
    /// come within `wait`.
    async fn until_pings(&mut self, n: usize, wait: Duration) -> Vec<Got> {
        let deadline = tokio::time::Instant::now() + wait;
        let (mut pings, mut got) = (0, Vec::new());
        while pings < n {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("{pings} of {n} pings within {wait:?}; got {got:?}"),
                Ok(None) | Ok(Some(Err(_))) => panic!("closed after {pings} pings; got {got:?}"),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                WsMessage::Ping(_) => pings += 1,
                WsMessage::Binary(b) => {
                    let frame = Frame::decode(b).expect("server frames are valid");
                    if let Ok(Some(Message::Command { pipe, command })) =
                        self.reassembler.push(frame)
                    {
                        let args: Value = serde_json::from_slice(&command.args).expect("JSON");
                        got.push(Got {
                            pipe,
                            txid: command.txid,
                            args,
                        });
                    }
                }
                _ => {}
            }
        }
        got
    }

    async fn next(&mut self) -> Got {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("a command within 5 s")
    }

    /// The answer to `txid` on `pipe`; pushes before it are returned too.
    async fn answer(&mut self, pipe: u16, txid: u16) -> (Got, Vec<Got>) {
        let mut pushes = Vec::new();
        loop {
            let g = self.next().await;
            if g.pipe == pipe && g.txid == txid {
                return (g, pushes);
            }
            pushes.push(g);
        }
    }

    /// connect, create a messaging pipe (1), join `rid` on it.
    async fn enter(gw: &TestGateway, rid: &str) -> Browser {
        Browser::enter_as(gw, "", rid).await
    }

    async fn enter_as(gw: &TestGateway, token: &str, rid: &str) -> Browser {
        let mut b = Browser::open(gw).await;
        b.send(0, 1, json!({"name": "connect", "uuid": "", "client": "odd.js/2.5", "parameters": {"token": token}}))
            .await;
        assert_eq!(
            b.answer(0, 1).await.0.code(),
            "NetConnection.Connect.Success"
        );
        b.send(0, 2, json!({"name": "create", "kind": "messaging"}))
            .await;
        let (created, _) = b.answer(0, 2).await;
        assert_eq!(created.args["info"]["id"], 1);
        b.send(1, 1, json!({"name": "join", "rid": rid})).await;
        assert_eq!(b.answer(1, 1).await.0.code(), "NetGroup.Connect.Success");
        b
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_sees_its_own_post_and_gets_a_plain_success() {
    let gw = TestGateway::start().await;
    let mut alice = Browser::enter(&gw, "lobby").await;
    let mut bob = Browser::enter(&gw, "lobby").await;
    alice
        .send(1, 2, json!({"name": "send", "type": "text", "cast": "multi", "id": "lobby", "data": "hello"}))
        .await;
    let (reply, pushes) = alice.answer(1, 2).await;
    // The reply is NetConnection.Call.Success: a Posting.Notify *status* would be rendered as a message
    // and its missing `info.Arguments.type` would crash the page.
    assert_eq!(
        reply.code(),
        "NetConnection.Call.Success",
        "{:?}",
        reply.args
    );
    assert_eq!(reply.args["level"], "status");
    let mid = reply.args["info"]["mid"].as_i64().expect("mid");
    // The page renders the line from the server's push: the sender gets the same push as everyone.
    let echoes: Vec<&Got> = pushes.iter().filter(|p| p.args["name"] == "send").collect();
    assert_eq!(
        echoes.len(),
        1,
        "delivered (to everyone) before the answer: {pushes:?}"
    );
    let own = echoes[0];
    assert_eq!(own.txid, 0);
    assert_eq!(own.args["mid"], mid);
    assert_eq!(own.args["data"], "hello");
    let theirs = loop {
        let g = bob.next().await;
        if g.args["name"] == "send" {
            break g;
        }
    };
    assert_eq!(theirs.args["mid"], mid, "the same push, the same id");
    assert_eq!(theirs.args, own.args);
    // No reply anywhere used a push code.
    for p in &pushes {
        assert!(
            !(p.txid != 0 && p.code().ends_with(".Notify")),
            "a reply reused a push code: {:?}",
            p.args
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_release_with_txid_0_is_silent_and_invoke_is_refused() {
    let gw = TestGateway::start().await;
    let mut page = Browser::enter(&gw, "lobby").await;
    page.send(0, 0, json!({"name": "release", "id": 1, "reason": ""}))
        .await;
    page.send(0, 0, json!({"name": "release", "id": 1, "reason": ""}))
        .await;
    page.send(0, 3, json!({"name": "invoke", "method": "ls", "args": []}))
        .await;
    let (refused, between) = page.answer(0, 3).await;
    // Nothing on pipe 0 between the two releases and the invoke answer: no error push for the repeat (the
    // join's coverage push on pipe 1 may still be in flight).
    let on_pipe_0: Vec<&Got> = between.iter().filter(|g| g.pipe == 0).collect();
    assert!(on_pipe_0.is_empty(), "{on_pipe_0:?}");
    assert_eq!(refused.code(), "NetConnection.Call.Failed");
    assert_eq!(refused.args["level"], "error");
    assert!(
        refused.args["description"]
            .as_str()
            .unwrap_or("")
            .contains("not supported"),
        "{:?}",
        refused.args
    );
}

/// `wss://` served by the gateway itself, with the dev certificate trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_client_completes_a_conversation() {
    let gw = TestGateway::start().await;
    let cert = gw.gateway.cert_path.clone().expect("dev certificate");
    let opts = odd_gateway::client::ClientOptions::trusting(&cert).expect("trust");
    let port = gw.gateway.https_addr.expect("https listener").port();
    let url = format!("wss://localhost:{port}/im");
    let a = odd_gateway::client::Client::connect_with(&url, "", &opts)
        .await
        .expect("wss connect");
    let mut b = odd_gateway::client::Client::connect_with(&url, "", &opts)
        .await
        .expect("wss connect");
    let (ap, bp) = (
        a.create("messaging").await.expect("pipe"),
        b.create("messaging").await.expect("pipe"),
    );
    a.join(ap, "secure").await.expect("join");
    b.join(bp, "secure").await.expect("join");
    let ack = a.say(ap, "secure", "over tls").await.expect("sent");
    assert_eq!(ack.code(), "NetConnection.Call.Success");
    let got = b.wait_for("send").await.expect("delivered");
    assert_eq!(got.args["data"], "over tls");
}

/// A series' value, 0 when it is not exported (yet).
async fn metric(gw: &TestGateway, name: &str) -> f64 {
    common::metric_at(&gw.http_url(), name).await.unwrap_or(0.0)
}

/// A browser page that only reads (its WebSocket answers the gateway's pings, as every browser does) stays
/// connected across many idle periods, and then gets the next message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_browser_that_answers_pings_stays_and_receives() {
    let gw = TestGateway::start_with(|c| c.limits.idle_timeout_ms = 600).await;
    let mut reader = Browser::enter(&gw, "quiet").await;
    // Five idle periods of silence from the page (it reads, so tungstenite answers the pings). The gateway's
    // pings are the clock: one every third of the idle period, never closer, so 15 of them span five periods.
    for g in reader.until_pings(15, Duration::from_secs(15)).await {
        assert_ne!(
            g.args["code"], "NetConnection.Connect.Closed",
            "{:?}",
            g.args
        );
    }
    let mut writer = Browser::enter(&gw, "quiet").await;
    writer
        .send(1, 2, json!({"name": "send", "type": "text", "cast": "multi", "id": "quiet", "data": "still there?"}))
        .await;
    let got = loop {
        let g = reader.next().await;
        if g.args["name"] == "send" {
            break g;
        }
    };
    assert_eq!(got.args["data"], "still there?");
    assert_eq!(metric(&gw, "odd_gateway_sessions_parked").await, 0.0);
}

/// A WebSocket whose peer stops answering (a dead tab, a vanished phone) is lost after the idle period and
/// its session parked, so the client's reconnect with its uuid resumes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_stops_answering_is_parked_and_resumable() {
    let gw = TestGateway::start_with(|c| c.limits.idle_timeout_ms = 600).await;
    let mut dead = Browser::open(&gw).await;
    dead.send(
        0,
        1,
        json!({"name": "connect", "uuid": "", "parameters": {"token": ""}}),
    )
    .await;
    let (ok, _) = dead.answer(0, 1).await;
    let uuid = ok.args["info"]["uuid"].as_str().expect("uuid").to_string();
    // From now on the test never polls `dead`: no pongs go back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metric(&gw, "odd_gateway_sessions_parked").await < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "never parked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut back = Browser::open(&gw).await;
    back.send(
        0,
        1,
        json!({"name": "connect", "uuid": uuid, "parameters": {"token": ""}}),
    )
    .await;
    let (resumed, _) = back.answer(0, 1).await;
    assert_eq!(resumed.args["info"]["resumed"], true, "{:?}", resumed.args);
    drop(dead);
}

/// QUIC: transport keep-alives keep a silent client; application silence is not death.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_quic_client_stays_and_receives() {
    let gw = TestGateway::start_with(|c| {
        c.limits.idle_timeout_ms = 600;
        c.limits.quic_idle_timeout_ms = 1_000;
        c.limits.quic_keep_alive_ms = 200;
    })
    .await;
    // The client library over a quinn connection of the test's own: one with no keep-alive of its own (only
    // the gateway's keeps it), whose statistics the test reads.
    let addr = gw.gateway.quic_addr.expect("quic");
    let endpoint = common::quinn_client(&gw, false);
    let conn = endpoint
        .connect(addr, "localhost")
        .expect("connect")
        .await
        .expect("handshake");
    use odd_gateway::transport::{quic, LinkInfo, TransportKind};
    let link = quic::link(
        conn.clone(),
        LinkInfo {
            kind: TransportKind::Quic,
            peer: addr,
        },
        odd_gateway::transport::FrameLimit::fixed(64 << 20),
        quic::Role::Client,
        0,
        quic::StreamBounds::CLIENT,
        quic::Extras {
            endpoint: Some(endpoint),
            early: None,
        },
    );
    let mut quiet = odd_gateway::client::Client::over(link);
    quiet.handshake("", "").await.expect("connect");
    let qp = quiet.create("messaging").await.expect("pipe");
    quiet.join(qp, "q").await.expect("join");
    // Silence is the point: five idle periods and three QUIC idle timeouts without a command, or a packet
    // other than an ACK, from the client. The gateway's keep-alive PINGs are the clock: each goes out only
    // after 200 ms in which it heard nothing, so 15 of them span 3 s.
    let pings = |c: &quinn::Connection| c.stats().frame_rx.ping;
    let (from, deadline) = (
        pings(&conn),
        tokio::time::Instant::now() + Duration::from_secs(15),
    );
    while pings(&conn) < from + 15 {
        assert!(
            conn.close_reason().is_none(),
            "closed after {} keep-alives: {:?}",
            pings(&conn) - from,
            conn.close_reason()
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} keep-alives from the gateway in 15 s",
            pings(&conn) - from
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (talker, tp, _) = common::member_at(&gw.tcp_url(), "", "q").await;
    talker.say(tp, "q", "hello quiet").await.expect("sent");
    let got = quiet.wait_for("send").await.expect("delivered");
    assert_eq!(got.args["data"], "hello quiet");
    assert!(!quiet.is_closed());
    // One connection all along: not closed and resumed behind the client library's back.
    assert_eq!(metric(&gw, "odd_gateway_session_resumes_total").await, 0.0);
    assert_eq!(
        metric(&gw, r#"odd_gateway_connections_total{transport="quic"}"#).await,
        1.0
    );
}

/// `join {rid, after}`: a member who was away gets every message after its last `mid` exactly once, in `mid`
/// order, the stored ones replayed before live ones, even while new messages are being committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_after_catches_up_without_gaps_or_duplicates() {
    let gw = TestGateway::start_with(common::people).await;
    let url = gw.tcp_url();
    let (alice, ap, _) = common::member_at(&url, "alice", "news").await;
    let mut bob = Browser::enter_as(&gw, "bob", "news").await;
    bob.send(
        1,
        2,
        json!({"name": "send", "type": "text", "cast": "multi", "id": "news", "data": "last seen"}),
    )
    .await;
    let (mark, _) = bob.answer(1, 2).await;
    let last = mark.args["info"]["mid"].as_i64().expect("mid");
    bob.send(1, 3, json!({"name": "leave", "rid": "news"}))
        .await;
    bob.answer(1, 3).await;
    for i in 0..50 {
        alice.say(ap, "news", &format!("m{i}")).await.expect("sent");
    }
    // 50 more while bob joins: some are committed during the replay.
    let writer = tokio::spawn(async move {
        for i in 50..100 {
            alice.say(ap, "news", &format!("m{i}")).await.expect("sent");
        }
        alice
    });
    bob.send(1, 4, json!({"name": "join", "rid": "news", "after": last}))
        .await;
    let (joined, early) = bob.answer(1, 4).await;
    assert_eq!(joined.code(), "NetGroup.Connect.Success");
    assert_eq!(joined.args["info"]["catchup"]["after"], last);
    assert_eq!(joined.args["info"]["catchup"]["more"], false);
    assert!(
        early.iter().all(|g| g.args["name"] != "send"),
        "nothing of the room before the join answer: {early:?}"
    );
    let mut got: Vec<(i64, String)> = Vec::new();
    while got.len() < 100 {
        let g = bob.next().await;
        if g.args["name"] == "send" {
            got.push((
                g.args["mid"].as_i64().expect("mid"),
                g.args["data"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    let _alice = writer.await.expect("writer");
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    let want: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, want.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "mid order");
    // And nothing twice afterwards.
    while let Some(g) = bob.next_within(Duration::from_millis(300)).await {
        assert_ne!(g.args["name"], "send", "a duplicate: {:?}", g.args);
    }
}

/// A `send` repeated with the same `cid` (a phone resending after a reconnect) is stored and delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_with_the_same_cid_is_stored_once() {
    let gw = TestGateway::start_with(common::people).await;
    let mut watcher = Browser::enter_as(&gw, "bob", "cids").await;
    let mut phone = Browser::enter_as(&gw, "alice", "cids").await;
    let send = json!({"name": "send", "type": "text", "cast": "multi", "id": "cids", "data": "once", "cid": "c-1"});
    phone.send(1, 2, send.clone()).await;
    let (first, _) = phone.answer(1, 2).await;
    assert_eq!(first.code(), "NetConnection.Call.Success");
    let mid = first.args["info"]["mid"].as_i64().expect("mid");
    // The connection drops; the phone comes back on a new one and sends the same message again.
    drop(phone);
    let mut again = Browser::enter_as(&gw, "alice", "cids").await;
    again.send(1, 2, send).await;
    let (second, _) = again.answer(1, 2).await;
    assert_eq!(second.code(), "NetConnection.Call.Success");
    assert_eq!(second.args["info"]["mid"], mid, "the first one's id");
    assert_eq!(second.args["info"]["duplicate"], true);
    // Another cid is a new message.
    again
        .send(1, 3, json!({"name": "send", "type": "text", "cast": "multi", "id": "cids", "data": "twice", "cid": "c-2"}))
        .await;
    let (third, _) = again.answer(1, 3).await;
    assert!(third.args["info"]["mid"].as_i64().expect("mid") > mid);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let g = watcher.next().await;
        if g.args["name"] == "send" {
            seen.push(g.args["data"].as_str().unwrap_or_default().to_string());
        }
    }
    assert_eq!(seen, ["once", "twice"]);
    while let Some(g) = watcher.next_within(Duration::from_millis(300)).await {
        assert_ne!(g.args["name"], "send", "delivered twice: {:?}", g.args);
    }
    let page: Value = reqwest::Client::new()
        .get(format!("{}/api/rooms/cids/messages", gw.http_url()))
        .bearer_auth("bob")
        .send()
        .await
        .expect("http")
        .json()
        .await
        .expect("json");
    let stored: Vec<&str> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["data"].as_str())
        .collect();
    assert_eq!(stored, ["once", "twice"], "stored once");
}

/// A TCP connection that dies without a FIN (the test's proxy resets the gateway's side, as a vanished NAT
/// mapping or a dead phone would look) is parked, and its uuid resumes within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_tcp_connection_is_parked_and_resumable() {
    use tokio_util::codec::{Framed, LengthDelimitedCodec};
    let gw = TestGateway::start().await;
    let target = gw.gateway.tcp_addr.expect("tcp");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy = listener.local_addr().expect("addr");
    let (reset_tx, reset_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
            return;
        };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
            _ = reset_rx => {
                // Linger 0: closing sends RST, not FIN.
                let _ = socket2::SockRef::from(&outbound).set_linger(Some(Duration::ZERO));
                drop(outbound);
                // Keep the client's side open and silent: it never learns anything.
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }
    });
    let mut framed = Framed::new(
        tokio::net::TcpStream::connect(proxy)
            .await
            .expect("connect"),
        LengthDelimitedCodec::new(),
    );
    let body = CommandMessage::encode(
        0,
        1,
        br#"{"name":"connect","uuid":"","parameters":{"token":""}}"#,
        &[],
    )
    .expect("fits");
    framed
        .send(Frame::new(MessageType::Command, 0, body).to_bytes(1))
        .await
        .expect("send");
    let mut reassembler = Reassembler::new(1 << 20);
    let uuid = loop {
        let b = framed.next().await.expect("frame").expect("ok");
        let f = Frame::decode(b.freeze()).expect("valid");
        if let Ok(Some(Message::Command { command, .. })) = reassembler.push(f) {
            let args: Value = serde_json::from_slice(&command.args).expect("json");
            break args["info"]["uuid"].as_str().expect("uuid").to_string();
        }
    };
    let _ = reset_tx.send(());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metric(&gw, "odd_gateway_sessions_parked").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a reset connection was not parked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut back = common::Raw::open(&gw).await;
    back.command(
        0,
        1,
        &format!(r#"{{"name":"connect","uuid":"{uuid}","parameters":{{"token":""}}}}"#),
    )
    .await;
    let resumed = back.answer_to(1).await.expect("answer");
    assert_eq!(resumed.args["info"]["resumed"], true, "{:?}", resumed.args);
    drop(framed);
}
