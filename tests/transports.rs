//! One gateway, every transport: TCP, TLS over TCP, QUIC and WebSocket all reach the same session layer.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::pushes::{sends, until_data, until_sends};
use common::TestGateway;
use futures::{SinkExt, StreamExt};
use odd_gateway::client::{Client, ClientOptions};
use serde_json::json;

fn urls(gw: &TestGateway) -> Vec<(&'static str, String)> {
    let g = &gw.gateway;
    vec![
        ("tcp", format!("tcp://{}", g.tcp_addr.expect("tcp"))),
        (
            "tls",
            format!("tls://localhost:{}", g.tls_addr.expect("tls").port()),
        ),
        (
            "quic",
            format!("quic://localhost:{}", g.quic_addr.expect("quic").port()),
        ),
        ("ws", format!("ws://{}/im", g.http_addr.expect("http"))),
        (
            "wss",
            format!("wss://localhost:{}/im", g.https_addr.expect("https").port()),
        ),
    ]
}

fn trust(gw: &TestGateway) -> ClientOptions {
    ClientOptions::trusting(gw.gateway.cert_path.as_deref().expect("dev cert"))
        .expect("cert readable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_room_with_a_member_on_every_transport() {
    let gw = TestGateway::start().await;
    let opts = trust(&gw);
    let mut members = Vec::new();
    for (name, url) in urls(&gw) {
        let c = Client::connect_with(&url, "", &opts)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let pipe = c
            .create("messaging")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let joined = c
            .join(pipe, "mixed")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(joined.info()["room"]["id"], "mixed", "{name}");
        members.push((name, c, pipe));
    }
    for (name, c, pipe) in &members {
        let ack = c
            .say(*pipe, "mixed", &format!("hello from {name}"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            ack.info()["delivered"],
            5,
            "{name}: reaches the four others and its own connection (the echo)"
        );
    }
    // Every member posted once and got five answers, so all five messages were pushed before the last answer.
    for (name, c, _) in members.iter_mut() {
        let pushes = until_sends(c, 5).await;
        let got = sends(&pushes);
        let mut texts: Vec<String> = got
            .iter()
            .map(|m| m.args["data"].as_str().unwrap_or_default().to_string())
            .collect();
        texts.sort();
        let mut expected: Vec<String> = ["tcp", "tls", "quic", "ws", "wss"]
            .iter()
            .map(|t| format!("hello from {t}"))
            .collect();
        expected.sort();
        assert_eq!(
            texts, expected,
            "{name} sees every message (its own echo included) exactly once"
        );
    }
    // History is the same whichever transport asks.
    for (name, c, pipe) in &members {
        let page = c
            .history(*pipe, json!({"rid": "mixed"}))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            page.info()["messages"].as_array().map(Vec::len),
            Some(5),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_conversation_works_on_each_transport() {
    let gw = TestGateway::start().await;
    let opts = trust(&gw);
    for (name, url) in urls(&gw) {
        let mut a = Client::connect_with(&url, "", &opts)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = Client::connect_with(&url, "", &opts)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (ap, bp) = (
            a.create("messaging").await.expect("pipe"),
            b.create("messaging").await.expect("pipe"),
        );
        let room = format!("solo-{name}");
        a.join(ap, &room).await.expect("join");
        b.join(bp, &room).await.expect("join");
        let n = a
            .wait_for("NetGroup.Neighbor.Connect")
            .await
            .expect("presence");
        assert_eq!(n.info()["user"]["id"], b.user.id.as_str(), "{name}");
        let file = b
            .call_with(bp, json!({"name": "send", "type": "file", "cast": "multi", "id": room, "data": {"name": "x.bin"}}),
                       Bytes::from(vec![7u8; 300_000]))
            .await
            .expect("answer")
            .ok()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(file.info()["mid"].is_i64());
        let pushes = until_sends(&mut a, 1).await;
        let got = sends(&pushes);
        assert_eq!(got.len(), 1, "{name}");
        assert_eq!(
            got[0].payload.len(),
            300_000,
            "{name}: the fragmented file arrives whole"
        );
        assert!(got[0].payload.iter().all(|b| *b == 7));
        let page = a.history(ap, json!({"rid": room})).await.expect("history");
        assert_eq!(page.info()["messages"][0]["size"], 300_000, "{name}");
        b.release(bp).await.expect("release");
        let d = a
            .wait_for("NetGroup.Neighbor.Disconnect")
            .await
            .expect("presence");
        assert_eq!(d.info()["user"]["id"], b.user.id.as_str(), "{name}");
        drop(b);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_large_file_does_not_hold_up_chat_on_another_pipe() {
    let gw = TestGateway::start().await;
    let opts = trust(&gw);
    let url = format!(
        "quic://localhost:{}",
        gw.gateway.quic_addr.expect("quic").port()
    );
    let sender = Client::connect_with(&url, "", &opts).await.expect("sender");
    let files = sender.create("messaging").await.expect("pipe");
    let chat = sender.create("messaging").await.expect("pipe");
    sender.join(files, "files").await.expect("join");
    sender.join(chat, "chat").await.expect("join");
    let mut receiver = Client::connect_with(&url, "", &opts)
        .await
        .expect("receiver");
    let rf = receiver.create("messaging").await.expect("pipe");
    let rc = receiver.create("messaging").await.expect("pipe");
    receiver.join(rf, "files").await.expect("join");
    receiver.join(rc, "chat").await.expect("join");

    // Baseline: a text alone.
    let t0 = Instant::now();
    sender.say(chat, "chat", "warm-up").await.expect("text");
    let alone = t0.elapsed();
    until_data(&mut receiver, "warm-up").await;

    // 8 MiB on the files pipe, and right behind it a text on the chat pipe.
    let started = Instant::now();
    let file = sender
        .submit(files, json!({"name": "send", "type": "file", "cast": "multi", "id": "files", "data": {"name": "big.bin"}}),
                Bytes::from(vec![1u8; 8 << 20]))
        .await
        .expect("file submitted");
    let file_sent = started.elapsed();
    let text_start = Instant::now();
    let text = sender.say(chat, "chat", "quick").await.expect("text");
    let text_rtt = text_start.elapsed();
    assert!(text.info()["mid"].is_i64());
    // The receiver gets the text on its chat pipe; the file arrives on the other pipe's stream.
    let mut text_seen = None;
    let mut file_seen = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while (text_seen.is_none() || file_seen.is_none()) && Instant::now() < deadline {
        let Some(p) = receiver.next_push_within(Duration::from_secs(5)).await else {
            break;
        };
        if p.name() == "send" && p.pipe == rc {
            text_seen = Some(started.elapsed());
        } else if p.name() == "send" && p.pipe == rf {
            assert_eq!(p.payload.len(), 8 << 20);
            file_seen = Some(started.elapsed());
        }
    }
    let file_ack = file
        .wait()
        .await
        .expect("file answered")
        .ok()
        .expect("file stored");
    assert!(file_ack.info()["mid"].is_i64());
    let (text_seen, file_seen) = (
        text_seen.expect("text delivered"),
        file_seen.expect("file delivered"),
    );
    println!(
        "text alone {alone:?}; 8 MiB queued in {file_sent:?}; text round trip during the file {text_rtt:?}; \
         text at receiver {text_seen:?}, file at receiver {file_seen:?}"
    );
    assert!(
        text_rtt < Duration::from_secs(1),
        "chat waited {text_rtt:?} behind a file"
    );
    assert!(
        text_seen < file_seen,
        "the text overtook the 8 MiB file: it did not queue behind it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_refuses_a_wrong_alpn() {
    let gw = TestGateway::start().await;
    let roots = odd_gateway::transport::certs::read_pem_certs(
        gw.gateway.cert_path.as_deref().expect("cert"),
    )
    .expect("pem");
    let addr = gw.gateway.quic_addr.expect("quic");
    for alpn in [&b"h3"[..], &b""[..]] {
        let alpns: Vec<&[u8]> = if alpn.is_empty() { vec![] } else { vec![alpn] };
        let tls =
            odd_gateway::transport::certs::client_config(&roots, &alpns, true).expect("config");
        let result = odd_gateway::transport::quic::connect(
            addr,
            "localhost",
            std::sync::Arc::new(tls),
            1 << 20,
            None,
        )
        .await;
        match result {
            Err(e) => println!("ALPN {alpn:?} refused at handshake: {e}"),
            Ok(link) => {
                // Without any ALPN the handshake can complete; the gateway then closes at once.
                let mut c = Client::over(link);
                let answer = c.handshake("", "").await;
                assert!(answer.is_err(), "ALPN {alpn:?} must not get a session");
                assert!(c.closed_within(Duration::from_secs(5)).await.is_some());
            }
        }
    }
    // The right ALPN still works.
    let opts = trust(&gw);
    Client::connect_with(&format!("quic://localhost:{}", addr.port()), "", &opts)
        .await
        .expect("odd-im works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_text_message_closes_with_a_reason() {
    let gw = TestGateway::start().await;
    let url = format!("ws://{}/im", gw.gateway.http_addr.expect("http"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("ws connect");
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::Text("hello".into())).await.expect("send");
    let mut reason = None;
    while let Some(Ok(m)) = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .ok()
        .flatten()
    {
        if let Message::Close(Some(frame)) = m {
            reason = Some(frame.reason.to_string());
            break;
        }
    }
    let reason = reason.expect("a close frame with a reason");
    assert!(
        reason.contains("text messages are not part of the protocol"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_certificate_is_generated_once_and_reused() {
    let dir = tempfile::tempdir().expect("dir");
    let first = odd_gateway::transport::certs::CertMaterial::dev(dir.path()).expect("generated");
    let again = odd_gateway::transport::certs::CertMaterial::dev(dir.path()).expect("reused");
    assert_eq!(first.fingerprint(), again.fingerprint());
    assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
    assert!(dir.path().join("certs/dev-key.pem").exists());
    // Without a configured certificate the prod profile refuses to start TLS/QUIC.
    let mut c = odd_gateway::config::Config::ephemeral(dir.path());
    c.profile = odd_gateway::config::Profile::Prod;
    let err = odd_gateway::gateway::Gateway::start(c)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("need a certificate"), "{err:#}");
}

/// The gateway lets a QUIC client open `max_pipes + 1` streams (quinn sets up state for every one of them per
/// connection). Pipe ids move upward as pipes are released and created again, so the client must not need a
/// stream per pipe id: here, with `max_pipes = 3` (4 streams), 40 pipes are created, used and released in turn
/// and every one of them is answered, including pipes whose ids are far above the stream limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_pipe_churn_beyond_the_stream_limit_keeps_working() {
    let gw = TestGateway::start_with(|c| c.limits.max_pipes = 3).await;
    let opts = trust(&gw);
    let url = format!(
        "quic://localhost:{}",
        gw.gateway.quic_addr.expect("quic").port()
    );
    let client = Client::connect_with(&url, "", &opts).await.expect("client");
    let mut highest = 0;
    for round in 0..40 {
        let pipe = tokio::time::timeout(Duration::from_secs(5), client.create("messaging"))
            .await
            .unwrap_or_else(|_| panic!("create {round} timed out"))
            .expect("pipe");
        highest = highest.max(pipe);
        let joined = tokio::time::timeout(Duration::from_secs(5), client.join(pipe, "churn"))
            .await
            .unwrap_or_else(|_| panic!("join on pipe {pipe} timed out (no stream left?)"));
        joined.expect("join");
        client.release(pipe).await.expect("release");
    }
    assert!(highest >= 40, "pipe ids moved upward (highest {highest})");
}

/// A QUIC connection starts with a few streams allowed and is allowed more as it opens them. A raw client
/// (not the client library, which shares streams when it cannot open more) opens one stream per pipe for 20
/// pipes and speaks on each: every `open_bi` completes, which it would not if the allowance stayed at its start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_a_stream_per_pipe_client_gets_its_streams() {
    use odd_gateway::protocol::{CommandMessage, Frame, MessageType};
    let gw = TestGateway::start().await;
    let endpoint = common::quinn_client(&gw, false);
    let conn = endpoint
        .connect(gw.gateway.quic_addr.expect("quic"), "localhost")
        .expect("connect")
        .await
        .expect("handshake");
    let frame = |pipe: u16, txid: u16, args: &str| {
        let body = CommandMessage::encode(0, txid, args.as_bytes(), &[]).expect("fits");
        let bytes = Frame::new(MessageType::Command, pipe, body).to_bytes(txid);
        common::length_prefixed(&bytes)
    };
    let mut streams = Vec::new();
    for pipe in 0..20u16 {
        let (mut send, recv) = tokio::time::timeout(Duration::from_secs(5), conn.open_bi())
            .await
            .unwrap_or_else(|_| panic!("stream {pipe} was never allowed"))
            .expect("open");
        let args = if pipe == 0 {
            r#"{"name":"connect","token":""}"#.to_string()
        } else {
            format!(r#"{{"name":"create","kind":"messaging","pipe":{pipe}}}"#)
        };
        send.write_all(&frame(0, pipe + 1, &args))
            .await
            .expect("write");
        if pipe == 0 {
            // The session starts once `connect` is answered; other streams' commands come after.
            let mut recv = recv;
            let mut buf = [0u8; 256];
            let n = tokio::time::timeout(Duration::from_secs(5), recv.read(&mut buf))
                .await
                .expect("connect answered")
                .expect("read");
            assert!(n.is_some_and(|n| n > 0), "an answer to connect");
            streams.push((send, recv));
            continue;
        }
        streams.push((send, recv));
    }
    conn.close(0u32.into(), b"done");
}

/// A WebSocket peer that closes (a browser tab's `ws.close()`) gets the other half of the close handshake,
/// before and after `connect`: without it Chromium reported code 1006, "not clean", for every closed tab.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_closes_gets_its_close_answered() {
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    use tokio_tungstenite::tungstenite::Message;
    let gw = TestGateway::start().await;
    let url = format!("{}/im", gw.http_url().replace("http://", "ws://"));
    for connected in [false, true] {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("upgrade");
        if connected {
            let json = br#"{"name":"connect","uuid":"","parameters":{"token":""}}"#;
            let mut frame = vec![0x84, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, json.len() as u8];
            frame.extend_from_slice(json);
            ws.send(Message::Binary(frame.into()))
                .await
                .expect("connect");
            let answer = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
            assert!(
                matches!(answer, Ok(Some(Ok(Message::Binary(_))))),
                "{answer:?}"
            );
        }
        ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .expect("close");
        // Whatever was on its way first, then the gateway's close frame.
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(m) = ws.next().await {
                match m {
                    Ok(Message::Close(_)) => return true,
                    Ok(_) => continue,
                    Err(_) => return false,
                }
            }
            false
        })
        .await;
        assert_eq!(
            answered,
            Ok(true),
            "connected {connected}: no close frame back"
        );
    }
}
