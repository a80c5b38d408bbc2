//! Mobile resilience over real sockets: fast reconnect, takeover, grace expiry, slow consumers, limits.

mod common;

use std::time::Duration;

use common::pushes::{data_of, sends, until_data, until_neighbor};
use common::{people, Raw, TestGateway};
use odd_gateway::client::{Client, ClientError, Reply};
use odd_gateway::config::Config;
use serde_json::json;

fn quick_grace(c: &mut Config) {
    people(c);
    c.limits.resume_grace_ms = 1_500;
}

/// The presence pushes among `pushes`, as "code user".
fn presence(pushes: &[Reply]) -> Vec<String> {
    pushes
        .iter()
        .filter(|p| p.code().starts_with("NetGroup.Neighbor"))
        .map(|p| format!("{} {}", p.code(), p.info()["user"]["id"]))
        .collect()
}

/// Alice and Bob, each with a messaging pipe joined to room `r`; bob has seen alice's presence.
async fn alice_and_bob_in_r(url: &str) -> (Client, u16, Client, u16) {
    let alice = Client::connect(url, "alice").await.expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    alice.join(ap, "r").await.expect("join");
    let mut bob = Client::connect(url, "bob").await.expect("bob");
    let bp = bob.create("messaging").await.expect("pipe");
    bob.join(bp, "r").await.expect("join");
    let _ = bob
        .wait_for("NetGroup.LocalCoverage.Notify")
        .await
        .expect("coverage");
    (alice, ap, bob, bp)
}

/// Waits (up to 1 s) until the gateway has parked the one session.
async fn until_parked(gw: &TestGateway) {
    assert!(
        common::until_metric(
            &gw.http_url(),
            "odd_gateway_sessions_parked",
            1.0,
            Duration::from_secs(1)
        )
        .await,
        "the session was not kept for a reconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_within_grace_resumes_with_queued_messages_in_order() {
    let gw = TestGateway::start_with(quick_grace).await;
    let url = gw.tcp_url();
    let (alice, ap, mut bob, bp) = alice_and_bob_in_r(&url).await;
    let uuid = alice.uuid.clone();

    // Alice's transport drops mid-conversation.
    // Alice's transport drops without a goodbye (`close` would end the session for good).
    drop(alice);
    until_parked(&gw).await;
    for i in 0..5 {
        bob.say(bp, "r", &format!("while away {i}"))
            .await
            .expect("sent");
    }

    let mut again = Client::open(&url).await.expect("open");
    let r = again.handshake("alice", &uuid).await.expect("resume");
    assert_eq!(
        r.info()["uuid"],
        uuid.as_str(),
        "same uuid: the session was resumed"
    );
    assert_eq!(r.info()["resumed"], true);
    // The pipe and the membership are intact: alice talks without create/join. Her own line is also the
    // fence: the queued messages come before its echo, each exactly once.
    again
        .say(ap, "r", "back")
        .await
        .expect("old pipe still works");
    let pushes = until_data(&mut again, "back").await;
    let got = sends(&pushes);
    assert_eq!(
        data_of(&pushes),
        (0..5)
            .map(|i| format!("while away {i}"))
            .chain(["back".to_string()])
            .collect::<Vec<_>>(),
        "exactly once, in order, then the echo"
    );
    assert!(got.iter().all(|m| m.pipe == ap), "on the pipe that joined");
    let seen = until_data(&mut bob, "back").await;
    // Bob also has the echoes of his own five posts; from alice, exactly the one.
    let from_alice: Vec<_> = sends(&seen)
        .into_iter()
        .filter(|m| m.args["user"]["id"] == "alice")
        .collect();
    assert_eq!(from_alice.len(), 1);
    assert!(presence(&seen).is_empty(), "no presence flapping: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_grace_period_a_reconnect_is_a_new_session() {
    let gw = TestGateway::start_with(|c| {
        people(c);
        c.limits.resume_grace_ms = 200;
    })
    .await;
    let url = gw.tcp_url();
    let (alice, _, mut bob, _) = alice_and_bob_in_r(&url).await;
    let uuid = alice.uuid.clone();
    alice.close().await;
    let left = bob
        .wait_for("NetGroup.Neighbor.Disconnect")
        .await
        .expect("alice leaves after the grace period");
    assert_eq!(left.info()["user"]["id"], "alice");
    let mut again = Client::open(&url).await.expect("open");
    let r = again.handshake("alice", &uuid).await.expect("connect");
    assert_ne!(r.info()["uuid"], uuid.as_str(), "a new session");
    assert!(r.info().get("resumed").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_uuid_is_refused() {
    let gw = TestGateway::start_with(quick_grace).await;
    let url = gw.tcp_url();
    let alice = Client::connect(&url, "alice").await.expect("alice");
    let uuid = alice.uuid.clone();
    // Alice's transport drops without a goodbye (`close` would end the session for good).
    drop(alice);
    until_parked(&gw).await;
    let mut mallory = Client::open(&url).await.expect("open");
    match mallory.handshake("bob", &uuid).await {
        Err(ClientError::Status { code, description }) => {
            assert_eq!(code, "NetConnection.Connect.Rejected");
            assert!(description.contains("another user"), "{description}");
        }
        other => panic!("bob must not take alice's session: {other:?}"),
    }
    assert!(mallory
        .closed_within(Duration::from_secs(5))
        .await
        .is_some());
    // Alice still can.
    let mut back = Client::open(&url).await.expect("open");
    let r = back.handshake("alice", &uuid).await.expect("resume");
    assert_eq!(r.info()["resumed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_takes_over_a_session_whose_old_transport_still_looks_alive() {
    let gw = TestGateway::start_with(quick_grace).await;
    let url = gw.tcp_url();
    let mut old = Client::connect(&url, "alice").await.expect("alice");
    let ap = old.create("messaging").await.expect("pipe");
    old.join(ap, "r").await.expect("join");
    // The phone switched networks: a new connection with the same uuid while the old one is still open.
    let mut new = Client::open(&url).await.expect("open");
    let r = new.handshake("alice", &old.uuid).await.expect("takeover");
    assert_eq!(r.info()["resumed"], true);
    assert!(
        old.closed_within(Duration::from_secs(5)).await.is_some(),
        "the old transport is dropped"
    );
    new.say(ap, "r", "still here")
        .await
        .expect("the pipe moved with the session");
    let page = new.history(ap, json!({"rid": "r"})).await.expect("history");
    assert_eq!(page.info()["messages"][0]["data"], "still here");
}

fn cuts_slow_consumers(c: &mut Config) {
    people(c);
    c.limits.outbound_queue = 1024;
    c.limits.resume_grace_ms = 0;
    c.limits.commands_per_second = 100_000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_and_the_room_keeps_flowing() {
    let gw = TestGateway::start_with(cuts_slow_consumers).await;
    // The slow one: joins, then never reads again.
    let _slow = Raw::non_reader(&gw, "carol", "busy").await;
    flood_past_the_non_reader(&gw, "tcp").await;
}

/// The same over QUIC, where the client's flow control (not a socket buffer) is what stops the gateway's
/// writes: the non-reader's link stops taking frames from quinn once its inbound queue is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_client_that_never_reads_is_cut_and_the_room_keeps_flowing() {
    let gw = TestGateway::start_with(cuts_slow_consumers).await;
    let _slow = quic_non_reader(&gw, "carol", "busy").await;
    flood_past_the_non_reader(&gw, "quic").await;
}

/// The same over WebSocket, as a browser tab that stopped reading (a raw WebSocket, one frame per binary message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_never_reads_is_cut_and_the_room_keeps_flowing() {
    let gw = TestGateway::start_with(cuts_slow_consumers).await;
    let _slow = ws_non_reader(&gw, "carol", "busy").await;
    flood_past_the_non_reader(&gw, "ws").await;
}

/// A WebSocket on `/im` that connects as `token`, joins `rid`, waits for the join's answer, then never reads.
async fn ws_non_reader(gw: &TestGateway, token: &str, rid: &str) -> impl Send {
    use futures::{SinkExt, StreamExt};
    use odd_gateway::protocol::{Frame, Reassembler};
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let url = format!("ws://{}/im", gw.gateway.http_addr.expect("http"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let mut reassembler = Reassembler::new(1 << 20);
    for (seq, (pipe, txid, frame)) in joining(token, rid).into_iter().enumerate() {
        let bytes = frame.to_bytes(seq as u16 + 1);
        ws.send(WsMessage::Binary(bytes)).await.expect("sent");
        let answered = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(msg)) = ws.next().await {
                let WsMessage::Binary(b) = msg else { continue };
                let Ok(frame) = Frame::decode(b) else {
                    continue;
                };
                if answers(&mut reassembler, frame, pipe, txid) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(answered, Ok(true), "command {txid} on pipe {pipe} answered");
    }
    ws
}

/// A QUIC connection (the crate's own transport, no client library on top) that connects as `token`, joins
/// `rid`, waits for the join's answer, then never reads again. Dropping it closes the connection.
async fn quic_non_reader(gw: &TestGateway, token: &str, rid: &str) -> impl Drop {
    quic_member(gw, token, rid).await
}

/// A raw QUIC member joined to `rid` on pipe 1, read only when the test reads `inbound`: once that queue is
/// full the link stops taking frames from quinn, and the gateway meets the client's flow control.
struct QuicMember {
    inbound: odd_gateway::transport::InboundRx,
    reassembler: odd_gateway::protocol::Reassembler,
    writer: tokio::task::JoinHandle<odd_gateway::transport::OutboundRx>,
    _out: odd_gateway::transport::OutboundTx,
}

impl Drop for QuicMember {
    fn drop(&mut self) {
        self.writer.abort();
    }
}

/// Connects as `token` over QUIC and joins `rid` (reading up to each command's answer).
async fn quic_member(gw: &TestGateway, token: &str, rid: &str) -> QuicMember {
    use odd_gateway::protocol::Reassembler;
    use odd_gateway::transport::{outbound_queue, Inbound, Outbound, Stop};
    let url = format!(
        "quic://localhost:{}",
        gw.gateway.quic_addr.expect("quic").port()
    );
    let opts = odd_gateway::client::ClientOptions::trusting(
        gw.gateway.cert_path.as_deref().expect("dev cert"),
    )
    .expect("cert readable");
    let endpoint: odd_gateway::client::Endpoint = url.parse().expect("url");
    let link = endpoint.open(&opts).await.expect("quic link");
    let (out, rx) = outbound_queue(64);
    let writer = link.writer.start(rx, Stop::new());
    let mut inbound = link.inbound;
    let mut reassembler = Reassembler::new(1 << 20);
    for (pipe, txid, frame) in joining(token, rid) {
        out.send_async(Outbound::Frame(frame))
            .await
            .expect("queued");
        // Read up to this command's answer (pushes before it are skipped).
        let answered = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Inbound::Frame(f)) = inbound.recv().await {
                if answers(&mut reassembler, f, pipe, txid) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(answered, Ok(true), "command {txid} on pipe {pipe} answered");
    }
    QuicMember {
        inbound,
        reassembler,
        writer,
        _out: out,
    }
}

/// A QUIC reader that stops reading until quinn's flow control is full, then reads everything, gets every push
/// in order: the gateway hands a stream's bytes straight to quinn while quinn takes them and queues the rest
/// for the stream's own task once it does not, and a later push must never overtake a queued one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_reader_behind_full_flow_control_gets_every_push_in_order() {
    use odd_gateway::protocol::Message;
    use odd_gateway::transport::Inbound;
    let gw = TestGateway::start_with(|c| {
        people(c);
        c.limits.commands_per_second = 100_000;
    })
    .await;
    let mut slow = quic_member(&gw, "dave", "order").await;
    let alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    alice.join(ap, "order").await.expect("join");
    // 300 x 16 KB = 4.8 MB: more than the reader's inbound queue (64 frames) and quinn's stream window take.
    const N: u64 = 300;
    let pad = "x".repeat(16_000);
    let sends = (0..N).map(|n| {
        json!({"name": "send", "type": "text", "cast": "multi", "id": "order",
               "data": {"n": n, "pad": pad}})
    });
    send_all_accepted(&alice, ap, sends).await;
    // Every message is stored and fanned out (some of it waits in the gateway): now read.
    let mut next = 0u64;
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while next < N {
            let Some(Inbound::Frame(f)) = slow.inbound.recv().await else {
                break;
            };
            let Ok(Some(Message::Command { pipe: 1, command })) = slow.reassembler.push(f) else {
                continue;
            };
            let args: serde_json::Value = serde_json::from_slice(&command.args).expect("json");
            if args["name"] != "send" {
                continue;
            }
            assert_eq!(args["data"]["n"], next, "push {next} was overtaken");
            next += 1;
        }
    })
    .await;
    assert!(read.is_ok(), "got {next} of {N} pushes within 30 s");
    assert_eq!(next, N, "the connection ended after {next} of {N} pushes");
}

/// Sends every message of `sends` on `pipe`, pipelined (all submitted before any answer is awaited), then
/// waits until each one is accepted.
async fn send_all_accepted(
    client: &Client,
    pipe: u16,
    sends: impl IntoIterator<Item = serde_json::Value>,
) {
    let mut pending = Vec::new();
    for args in sends {
        pending.push(
            client
                .submit(pipe, args, bytes::Bytes::new())
                .await
                .expect("submitted"),
        );
    }
    for p in pending {
        p.wait().await.expect("answered").ok().expect("accepted");
    }
}

/// What a raw client sends to connect as `token` and join `rid` on pipe 1: (pipe, txid, frame), in order.
fn joining(token: &str, rid: &str) -> Vec<(u16, u16, odd_gateway::protocol::Frame)> {
    use odd_gateway::protocol::{CommandMessage, Frame, MessageType};
    [
        (
            0u16,
            1u16,
            json!({"name": "connect", "uuid": "", "parameters": {"token": token}}),
        ),
        (0, 2, json!({"name": "create", "kind": "messaging"})),
        (1, 1, json!({"name": "join", "rid": rid})),
    ]
    .into_iter()
    .map(|(pipe, txid, args)| {
        let body =
            CommandMessage::encode(0, txid, args.to_string().as_bytes(), &[]).expect("encode");
        (pipe, txid, Frame::new(MessageType::Command, pipe, body))
    })
    .collect()
}

/// Whether `frame` completes the answer to command `txid` on `pipe`.
fn answers(
    reassembler: &mut odd_gateway::protocol::Reassembler,
    frame: odd_gateway::protocol::Frame,
    pipe: u16,
    txid: u16,
) -> bool {
    matches!(
        reassembler.push(frame),
        Ok(Some(odd_gateway::protocol::Message::Command { pipe: p, command })) if p == pipe && command.txid == txid
    )
}

/// Alice floods room `busy` with 2,000 x 16 KB while Bob reads and a non-reader (already joined) does not:
/// Bob gets everything in good time, and the non-reader is cut as a slow consumer on `transport`.
async fn flood_past_the_non_reader(gw: &TestGateway, transport: &str) {
    let url = gw.tcp_url();
    let alice = Client::connect(&url, "alice").await.expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    alice.join(ap, "busy").await.expect("join");
    let mut bob = Client::connect(&url, "bob").await.expect("bob");
    let bp = bob.create("messaging").await.expect("pipe");
    bob.join(bp, "busy").await.expect("join");

    // 2,000 x 16 KB = 32 MB: more than the non-reader's queue (1,024 frames) and socket buffers can hold.
    let big = "x".repeat(16_000);
    let started = std::time::Instant::now();
    let sends = (0..2_000).map(
        |_| json!({"name": "send", "type": "text", "cast": "multi", "id": "busy", "data": big}),
    );
    send_all_accepted(&alice, ap, sends).await;
    let mut received = 0;
    while received < 2_000 {
        match bob.next_push_within(Duration::from_secs(5)).await {
            Some(p) if p.name() == "send" => received += 1,
            Some(_) => {}
            None => break,
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(received, 2_000, "the reader got everything");
    println!("2,000 x 16 KB to a reader next to a non-reader in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(30));
    let series =
        format!(r#"odd_gateway_slow_consumer_disconnects_total{{transport="{transport}"}}"#);
    assert!(
        common::until_metric(&gw.http_url(), &series, 1.0, Duration::from_secs(10)).await,
        "the slow one was cut: {series} = {:?}\n{}",
        common::metric_at(&gw.http_url(), &series).await,
        reqwest::get(format!("{}/metrics", gw.http_url()))
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body")
            .lines()
            .filter(|l| l.contains(&format!(r#"transport="{transport}""#)) && !l.ends_with(" 0"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_clearly_and_silence_is_not_death() {
    let gw = TestGateway::start_with(|c| {
        c.limits.commands_per_second = 5;
        c.limits.idle_timeout_ms = 700;
        // Probes after 1 s of silence, then every second (whole seconds: the kernel's unit).
        c.limits.tcp_keepalive_ms = 1_000;
    })
    .await;
    let c = Client::connect(&gw.tcp_url(), "").await.expect("connect");
    let mut refused = 0;
    for _ in 0..30 {
        let r = c
            .call(0, json!({"name": "getProperty", "keys": []}))
            .await
            .expect("answer");
        if r.description().contains("rate limit") {
            refused += 1;
        }
    }
    assert!(refused >= 10, "bursts past 2 x 5/s are refused ({refused})");
    // A TCP client that says nothing for four idle periods is still served: only a dead transport (TCP
    // keep-alive) ends a connection, never a quiet user.
    let mut quiet = Raw::open(&gw).await;
    quiet.connect().await;
    // The gateway's TCP keep-alive probes are the clock: each comes after a second in which the gateway's
    // side heard nothing (the client's kernel only acknowledges them), so three span 3 s.
    let socket = quiet.framed.get_ref();
    let (from, deadline) = (
        bare_segments_in(socket),
        tokio::time::Instant::now() + Duration::from_secs(15),
    );
    while bare_segments_in(socket) < from + 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} keep-alive probes from the gateway in 15 s",
            bare_segments_in(socket) - from
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    quiet
        .command(0, 9, r#"{"name":"getProperty","keys":[]}"#)
        .await;
    let r = quiet.recv_command().await.expect("still connected");
    assert_eq!(r.txid, 9);
    assert_eq!(r.code(), "NetConnection.Call.Success");
}

/// Segments without data the kernel has received on `socket` (TCP_INFO: `tcpi_segs_in - tcpi_data_segs_in`):
/// on a connection where neither side writes, the peer's keep-alive probes.
fn bare_segments_in(socket: &tokio::net::TcpStream) -> u32 {
    use std::os::fd::AsRawFd;
    // SAFETY: `tcp_info` is plain integers (all zeros is a valid value); getsockopt writes at most `len`
    // bytes into it and says how many it wrote.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_data_segs_in) + 4;
    assert!(
        len as usize >= needed,
        "this kernel's TCP_INFO has no segment counts"
    );
    info.tcpi_segs_in - info.tcpi_data_segs_in
}

/// A TCP proxy whose live connections the test can cut, as a network change would.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cuts = cuts.clone();
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Proxy { addr, cut }
    }

    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_library_reconnects_and_resumes_by_itself() {
    let gw = TestGateway::start_with(quick_grace).await;
    let proxy = Proxy::start(gw.gateway.tcp_addr.expect("tcp")).await;
    let mut alice = Client::connect(&format!("tcp://{}", proxy.addr), "alice")
        .await
        .expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    alice.join(ap, "net").await.expect("join");
    let bob = Client::connect(&gw.tcp_url(), "bob").await.expect("bob");
    let bp = bob.create("messaging").await.expect("pipe");
    bob.join(bp, "net").await.expect("join");
    until_neighbor(&mut alice, "NetGroup.Neighbor.Connect", "bob").await;
    let uuid = alice.uuid.clone();

    proxy.cut_all();
    for i in 0..3 {
        bob.say(bp, "net", &format!("during the outage {i}"))
            .await
            .expect("sent");
    }
    // The proxy's tasks see the cut a moment after `cut_all`: the first message may still reach alice on the
    // old connection, before the reconnect. Everything up to the reconnect notice counts.
    let mut seen = common::pushes::until(&mut alice, "the reconnect", |p| {
        p.code() == odd_gateway::client::RECONNECTED
    })
    .await;
    let back = seen.pop().expect("the reconnect notice");
    assert_eq!(back.info()["resumed"], true);
    assert_eq!(back.info()["uuid"], uuid.as_str());
    alice
        .say(ap, "net", "I am back")
        .await
        .expect("the same pipe works after the reconnect");
    seen.extend(until_data(&mut alice, "I am back").await);
    // Her own line's echo is the fence: the outage's messages come before it, each once, in order.
    assert_eq!(
        data_of(&seen),
        (0..3)
            .map(|i| format!("during the outage {i}"))
            .chain(["I am back".to_string()])
            .collect::<Vec<_>>()
    );
}
