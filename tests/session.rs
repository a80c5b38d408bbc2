//! The foundation conversation over real TCP sockets: connect, pipes, transactions, and bad input.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Raw, TestGateway};
use odd_gateway::client::{Client, ClientError};
use odd_gateway::config::StaticToken;
use odd_gateway::protocol::{Frame, MessageType};
use serde_json::json;

#[tokio::test]
async fn connect_success_names_the_session_and_user() {
    let gw = TestGateway::start().await;
    let mut c = Client::open(&gw.tcp_url()).await.expect("open");
    let r = c.handshake("", "").await.expect("connect");
    assert_eq!(r.code(), "NetConnection.Connect.Success");
    assert_eq!(
        (r.pipe, r.txid),
        (0, 1),
        "answer on pipe 0 with the request's txid"
    );
    assert_eq!(c.uuid.len(), 36, "uuid: {}", c.uuid);
    assert!(c.user.id.starts_with("guest-"), "guest id: {}", c.user.id);
    let now = odd_gateway::session::now_secs();
    assert!(r.timestamp.abs_diff(now) <= 2, "timestamp is server time");

    // A second client gets a different session and identity.
    let d = Client::connect(&gw.tcp_url(), "").await.expect("connect 2");
    assert_ne!(c.uuid, d.uuid);
    assert_ne!(c.user.id, d.user.id);
}

#[tokio::test]
async fn static_tokens_and_rejection() {
    let gw = TestGateway::start_with(|c| {
        c.auth.anonymous = Some(false);
        c.auth.tokens = vec![StaticToken {
            token: "alice-token".into(),
            id: "1001".into(),
            nick: "Alice".into(),
            avatar: "a.png".into(),
        }];
    })
    .await;
    let alice = Client::connect(&gw.tcp_url(), "alice-token")
        .await
        .expect("alice");
    assert_eq!(alice.user.id, "1001");
    assert_eq!(alice.user.nick, "Alice");
    assert_eq!(alice.user.avatar, "a.png");

    for token in ["wrong", ""] {
        let mut c = Client::open(&gw.tcp_url()).await.expect("open");
        match c.handshake(token, "").await {
            Err(ClientError::Status { code, .. }) => {
                assert_eq!(code, "NetConnection.Connect.Rejected")
            }
            other => panic!("token {token:?}: expected rejection, got {other:?}"),
        }
        assert!(
            c.closed_within(Duration::from_secs(5)).await.is_some(),
            "closed after rejection"
        );
    }
}

#[tokio::test]
async fn create_and_release_pipes() {
    let gw = TestGateway::start_with(|c| c.limits.max_pipes = 2).await;
    let c = Client::connect(&gw.tcp_url(), "").await.expect("connect");
    let m = c.create("messaging").await.expect("create messaging");
    let s = c.create("signaling").await.expect("create signaling");
    assert_eq!((m, s), (1, 2));
    match c.create("messaging").await {
        Err(ClientError::Status { code, description }) => {
            assert_eq!(code, "NetConnection.Call.Failed");
            assert!(description.contains("too many pipes"), "{description}");
        }
        other => panic!("expected the pipe limit, got {other:?}"),
    }
    let r = c.release(m).await.expect("release");
    assert_eq!(r.info()["id"], json!(1));
    // A repeated release (the odd.js SDK sends two) is harmless: a success, marked as a repeat.
    let again = c
        .call(0, json!({"name": "release", "id": m}))
        .await
        .expect("answer");
    assert!(
        !again.is_error() && again.info()["already"] == json!(true),
        "{:?}",
        again.args
    );
    let never = c
        .call(0, json!({"name": "release", "id": 77}))
        .await
        .expect("answer");
    assert!(
        never.is_error() && never.description().contains("does not exist"),
        "{:?}",
        never.args
    );
    let zero = c
        .call(0, json!({"name": "release", "id": 0}))
        .await
        .expect("answer");
    assert!(zero.is_error(), "pipe 0 cannot be released");
    let bad_kind = c
        .call(0, json!({"name": "create", "kind": "video"}))
        .await
        .expect("answer");
    assert!(
        bad_kind.is_error() && bad_kind.description().contains("kind"),
        "{:?}",
        bad_kind.args
    );
    // The freed slot can be used again; ids are not reused at once.
    assert_eq!(c.create("messaging").await.expect("create again"), 3);
}

#[tokio::test]
async fn transaction_ids_are_per_pipe() {
    let gw = TestGateway::start().await;
    let mut raw = Raw::open(&gw).await;
    raw.connect().await;
    raw.command(0, 2, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    let created = raw.recv_command().await.expect("created");
    let pipe = created.args["info"]["id"].as_u64().expect("id") as u16;
    // txid 2 again, but on the new pipe: a separate counter, answered on that pipe.
    raw.command(pipe, 2, r#"{"name":"nonsense"}"#).await;
    let r = raw.recv_command().await.expect("answer");
    assert_eq!((r.pipe, r.txid), (pipe, 2));
    assert_eq!(r.code(), "NetConnection.Call.Failed");
    assert!(
        r.description().contains("unknown command `nonsense`"),
        "{}",
        r.description()
    );
}

#[tokio::test]
async fn command_before_connect_fails_and_closes() {
    let gw = TestGateway::start().await;
    let mut raw = Raw::open(&gw).await;
    raw.command(0, 1, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    let r = raw.recv_command().await.expect("answer");
    assert_eq!(r.level(), "error");
    assert_eq!(r.code(), "NetConnection.Connect.Failed");
    assert!(r.description().contains("connect"), "{}", r.description());
    assert!(raw.closed().await, "the connection is closed");
}

#[tokio::test]
async fn handshake_timeout_closes_silent_connections() {
    let gw = TestGateway::start_with(|c| c.limits.handshake_timeout_ms = 200).await;
    let mut raw = Raw::open(&gw).await;
    let r = raw.recv_command().await.expect("a reason before the close");
    assert_eq!(r.code(), "NetConnection.Connect.Failed");
    assert!(
        r.description().contains("no `connect`"),
        "{}",
        r.description()
    );
    assert!(raw.closed().await);
}

#[tokio::test]
async fn truncated_frame_gets_an_error_and_the_connection_lives() {
    let gw = TestGateway::start().await;
    let mut raw = Raw::open(&gw).await;
    raw.connect().await;
    raw.send_raw(&[0x84, 0x00]).await;
    let r = raw.recv_command().await.expect("answer");
    assert_eq!(r.code(), "NetConnection.Call.Failed");
    assert!(
        r.description().contains("shorter than the 5-byte header"),
        "{}",
        r.description()
    );
    // A command whose head is cut short.
    raw.send_raw(&[0x84, 0, 9, 0, 0, 0, 0, 0]).await;
    let r = raw.recv_command().await.expect("answer");
    assert!(
        r.description().contains("shorter than its 8-byte head"),
        "{}",
        r.description()
    );
    // An offset that runs past the end.
    let mut f = vec![0x84, 0, 10, 0, 0, 0, 0, 0, 0, 0, 5, 0, 200];
    f.extend_from_slice(b"{}");
    raw.send_raw(&f).await;
    let r = raw.recv_command().await.expect("answer");
    assert!(
        r.description().contains("offset 200"),
        "{}",
        r.description()
    );
    // Still serving.
    raw.command(0, 7, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    let r = raw.recv_command().await.expect("answer");
    assert_eq!((r.txid, r.code()), (7, "NetConnection.Call.Success"));
}

#[tokio::test]
async fn stream_cut_mid_frame_does_not_hurt_the_server() {
    let gw = TestGateway::start().await;
    let mut raw = Raw::open(&gw).await;
    raw.connect().await;
    // Promise 100 bytes, deliver 10, then close our side.
    raw.write_bytes(&[0, 0, 0, 100, 0x84, 0, 2, 0, 0, 1, 2, 3, 4, 5])
        .await;
    use tokio::io::AsyncWriteExt;
    raw.framed.get_mut().shutdown().await.expect("shutdown");
    assert!(raw.closed().await);
    let c = Client::connect(&gw.tcp_url(), "")
        .await
        .expect("others are still served");
    assert!(c.create("messaging").await.is_ok());
}

#[tokio::test]
async fn oversize_length_prefix_closes_with_a_reason_and_others_go_on() {
    let gw = TestGateway::start_with(|c| c.limits.max_frame_bytes = 4096).await;
    let bystander = Client::connect(&gw.tcp_url(), "").await.expect("bystander");
    let mut raw = Raw::open(&gw).await;
    raw.connect().await;
    raw.write_bytes(&[0x7F, 0xFF, 0xFF, 0xFF, 0x84]).await;
    let r = raw.recv_command().await.expect("a reason");
    assert_eq!(r.level(), "error");
    assert_eq!(r.code(), "NetConnection.Connect.Closed");
    assert!(
        r.description().contains("exceeds the limit"),
        "{}",
        r.description()
    );
    assert!(raw.closed().await);
    // Exactly at the limit is fine, one byte over is not.
    let mut ok = Raw::open(&gw).await;
    ok.connect().await;
    let mut big = vec![0x84, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9, 0, 2];
    big.extend_from_slice(b"{}");
    big.resize(4096, 0);
    ok.send_raw(&big).await;
    let r = ok.recv_command().await.expect("answer");
    assert!(
        r.description().contains("no string field `name`"),
        "{}",
        r.description()
    );
    assert!(
        bystander.create("messaging").await.is_ok(),
        "the bystander is unaffected"
    );
}

#[tokio::test]
async fn bad_json_and_wrong_types_get_clear_errors() {
    let gw = TestGateway::start().await;
    let mut raw = Raw::open(&gw).await;
    raw.connect().await;
    let cases = [
        (r#"{"name":"create","kind":"#, "not valid UTF-8 JSON"),
        (r#"["create"]"#, "must be a JSON object"),
        (r#"   "#, "must be a JSON object"),
        (r#"{"kind":"messaging"}"#, "no string field `name`"),
        (r#"{"name":"create"}"#, "missing field `kind`"),
        (
            r#"{"name":"create","kind":7}"#,
            "bad arguments for `create`: kind:",
        ),
        (
            r#"{"name":"release","id":"one"}"#,
            "bad arguments for `release`",
        ),
        (
            r#"{"name":"release","id":70000}"#,
            "bad arguments for `release`",
        ),
    ];
    for (i, (args, expect)) in cases.iter().enumerate() {
        let txid = 10 + i as u16;
        raw.command(0, txid, args).await;
        let r = raw.recv_command().await.expect("answer");
        assert_eq!(r.txid, txid, "{args}");
        assert_eq!(r.code(), "NetConnection.Call.Failed", "{args}");
        assert!(
            r.description().contains(expect),
            "{args}: {}",
            r.description()
        );
    }
    let mut non_utf8 = vec![0x84, 0, 9, 0, 0, 0, 0, 0, 0, 0, 3, 0, 2];
    non_utf8.extend_from_slice(&[0xFF, 0xFE]);
    raw.send_raw(&non_utf8).await;
    let r = raw.recv_command().await.expect("answer");
    assert_eq!(r.txid, 3);
    assert!(r.description().contains("JSON"), "{}", r.description());
}

#[tokio::test]
async fn unknown_type_and_unknown_pipe() {
    let gw = TestGateway::start().await;
    let mut raw = Raw::open(&gw).await;
    raw.connect().await;
    raw.send_raw(&[0x8A, 0, 2, 0, 0, 1, 2, 3]).await;
    let r = raw.recv_command().await.expect("answer");
    assert_eq!(r.code(), "NetConnection.Call.Failed");
    assert!(
        r.description().contains("unknown message type 0xa"),
        "{}",
        r.description()
    );
    raw.send_raw(&[0xC4, 0, 3, 0, 0]).await;
    let r = raw.recv_command().await.expect("answer");
    assert!(
        r.description().contains("reserved bits"),
        "{}",
        r.description()
    );

    raw.command(42, 5, r#"{"name":"join","rid":"001"}"#).await;
    let r = raw.recv_command().await.expect("answer");
    assert_eq!((r.pipe, r.txid), (42, 5), "answered on the pipe it came on");
    assert!(
        r.description().contains("pipe 42 does not exist"),
        "{}",
        r.description()
    );
    raw.command(0, 6, r#"{"name":"join","rid":"001"}"#).await;
    let r = raw.recv_command().await.expect("answer");
    assert!(
        r.description().contains("not valid on pipe 0"),
        "{}",
        r.description()
    );
}

#[tokio::test]
async fn too_many_malformed_frames_close_the_connection() {
    let gw = TestGateway::start_with(|c| c.limits.max_protocol_errors = 3).await;
    let mut raw = Raw::open(&gw).await;
    raw.connect().await;
    for _ in 0..3 {
        raw.send_raw(&[0x8F, 0, 0, 0, 0]).await;
    }
    let mut codes = Vec::new();
    while let Some(r) = raw.recv_command().await {
        codes.push(r.code().to_string());
    }
    assert_eq!(
        codes.last().map(String::as_str),
        Some("NetConnection.Connect.Closed"),
        "{codes:?}"
    );
    assert!(raw.closed().await);
}

#[tokio::test]
async fn fragments_are_reassembled_and_bounded() {
    let gw = TestGateway::start_with(|c| c.limits.max_message_bytes = 65536).await;
    let mut raw = Raw::open(&gw).await;
    raw.connect().await;
    let body = odd_gateway::protocol::CommandMessage::encode(
        0,
        4,
        br#"{"name":"create","kind":"signaling"}"#,
        &[],
    )
    .expect("fits");
    for (i, chunk) in body.chunks(7).enumerate() {
        let last = (i + 1) * 7 >= body.len();
        raw.send_frame(Frame {
            fin: last,
            kind: MessageType::Command,
            seq: 0,
            pipe: 0,
            payload: Bytes::copy_from_slice(chunk),
        })
        .await;
    }
    let r = raw.recv_command().await.expect("answer");
    assert_eq!((r.txid, r.code()), (4, "NetConnection.Call.Success"));
    assert_eq!(r.args["info"]["kind"], "signaling");

    // Abort throws a partial message away.
    raw.send_frame(Frame {
        fin: false,
        kind: MessageType::Command,
        seq: 0,
        pipe: 0,
        payload: Bytes::from_static(b"junk"),
    })
    .await;
    raw.send_frame(Frame::new(MessageType::Abort, 0, Bytes::from_static(&[4])))
        .await;
    raw.command(0, 5, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    let r = raw.recv_command().await.expect("answer");
    assert_eq!((r.txid, r.code()), (5, "NetConnection.Call.Success"));

    // A message beyond the limit is refused, the connection survives.
    for _ in 0..3 {
        raw.send_frame(Frame {
            fin: false,
            kind: MessageType::Command,
            seq: 0,
            pipe: 0,
            payload: Bytes::from(vec![0u8; 30000]),
        })
        .await;
    }
    raw.send_frame(Frame {
        fin: true,
        kind: MessageType::Command,
        seq: 0,
        pipe: 0,
        payload: Bytes::from_static(b"end"),
    })
    .await;
    let r = raw.recv_command().await.expect("answer");
    assert!(
        r.description().contains("65536-byte limit"),
        "{}",
        r.description()
    );
    raw.command(0, 6, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    let r = raw.recv_command().await.expect("answer");
    assert_eq!((r.txid, r.code()), (6, "NetConnection.Call.Success"));
}

#[tokio::test]
async fn ack_window_is_honoured() {
    let gw = TestGateway::start().await;
    let mut raw = Raw::open(&gw).await;
    raw.send_frame(Frame::new(
        MessageType::AckWindowSize,
        0,
        Bytes::from_static(&[0, 0, 0, 100]),
    ))
    .await;
    raw.command(0, 1, r#"{"name":"connect","uuid":"","parameters":{"token":""},"client":"padding-padding-padding-padding-padding-padding-padding"}"#)
        .await;
    let mut saw_ack = None;
    let mut saw_connect = false;
    while !(saw_connect && saw_ack.is_some()) {
        let f = raw.recv_frame().await.expect("frame");
        match f.kind {
            MessageType::Ack => {
                saw_ack = Some(u32::from_be_bytes([
                    f.payload[0],
                    f.payload[1],
                    f.payload[2],
                    f.payload[3],
                ]))
            }
            MessageType::Command => saw_connect = true,
            _ => {}
        }
    }
    // 9 bytes of window frame + the connect frame (5 + 8 + args).
    let args_len = r#"{"name":"connect","uuid":"","parameters":{"token":""},"client":"padding-padding-padding-padding-padding-padding-padding"}"#.len();
    assert_eq!(saw_ack, Some((9 + 13 + args_len) as u32));
}

#[tokio::test]
async fn unanswered_requests_and_client_status_are_silent() {
    let gw = TestGateway::start().await;
    let mut raw = Raw::open(&gw).await;
    raw.connect().await;
    raw.command(0, 0, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    raw.command(0, 0, r#"{"name":"status","level":"status","code":"x"}"#)
        .await;
    // txid 0 wants no answer; the next answered request is the first thing we hear.
    raw.command(0, 9, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    let r = raw.recv_command().await.expect("answer");
    assert_eq!(r.txid, 9);
    assert_eq!(r.args["info"]["id"], 2, "the silent create did make pipe 1");
}

#[tokio::test]
async fn shutdown_tells_clients() {
    let gw = TestGateway::start().await;
    let mut c = Client::connect(&gw.tcp_url(), "").await.expect("connect");
    let TestGateway { gateway, dir: _dir } = gw;
    let stop = tokio::spawn(gateway.shutdown(Duration::from_secs(5)));
    let p = c
        .wait_for("NetConnection.Connect.AppShutdown")
        .await
        .expect("told");
    assert_eq!(p.txid, 0);
    assert!(c.closed_within(Duration::from_secs(5)).await.is_some());
    stop.await.expect("shutdown completes");
}
