//! The bad-input suite: every row is a malformed or hostile input over a real socket and the exact status or
//! close it must get. Meanwhile two bystanders chat in a room; at the end they must have seen every message
//! exactly once, and nothing else.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{people, Raw, TestGateway};
use odd_gateway::client::Client;
use odd_gateway::protocol::{CommandMessage, Frame, MessageType};
use serde_json::json;

enum Expect {
    /// An error status with this code whose description contains this text; the connection stays up.
    Answer(&'static str, &'static str),
    /// An error status with this code and text, then the connection is closed.
    Closes(&'static str, &'static str),
}

enum Input {
    /// Raw frame bytes (delimited by the test's codec), sent after a successful connect.
    Frame(Vec<u8>),
    /// Several frames.
    Frames(Vec<Frame>),
    /// A command's JSON on a pipe (after connect, create messaging = pipe 1, join "hostile").
    Command(u16, &'static str),
    /// Bytes written to the stream as they are (after connect).
    Stream(Vec<u8>),
    /// A command sent before any connect.
    BeforeConnect(&'static str),
    /// A connect with this token.
    Connect(&'static str),
}

fn command(pipe: u16, args: &str) -> Frame {
    Frame::new(
        MessageType::Command,
        pipe,
        CommandMessage::encode(0, 5, args.as_bytes(), &[]).expect("fits"),
    )
}

fn fragment(pipe: u16, len: usize, fin: bool) -> Frame {
    Frame {
        fin,
        kind: MessageType::Command,
        seq: 0,
        pipe,
        payload: Bytes::from(vec![b' '; len]),
    }
}

fn rows() -> Vec<(&'static str, Input, Expect)> {
    use Expect::*;
    use Input::*;
    let fail = "NetConnection.Call.Failed";
    vec![
        (
            "truncated frame",
            Frame(vec![0x84, 0, 1]),
            Answer(fail, "shorter than the 5-byte header"),
        ),
        (
            "reserved bits",
            Frame(vec![0xF4, 0, 1, 0, 0]),
            Answer(fail, "reserved bits"),
        ),
        (
            "unknown type",
            Frame(vec![0x8A, 0, 1, 0, 0, 9]),
            Answer(fail, "unknown message type 0xa"),
        ),
        (
            "short command head",
            Frame(vec![0x84, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
            Answer(fail, "8-byte head"),
        ),
        (
            "offset past the end",
            Frame(vec![
                0x84, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0xFF, 0xFF, b'{', b'}',
            ]),
            Answer(fail, "runs past"),
        ),
        (
            "bad ack length",
            Frame(vec![0x83, 0, 1, 0, 0, 1]),
            Answer(fail, "must be 4 bytes"),
        ),
        (
            "fragmented control",
            Frames(vec![odd_gateway::protocol::Frame {
                fin: false,
                ..odd_gateway::protocol::Frame::new(
                    MessageType::Ack,
                    0,
                    Bytes::from_static(&[0, 0, 0, 1]),
                )
            }]),
            Answer(fail, "may not be fragmented"),
        ),
        (
            "abort of unknown type",
            Frame(vec![0x81, 0, 1, 0, 0, 0x0C]),
            Answer(fail, "abort names unknown message type"),
        ),
        (
            "oversize message",
            Frames(vec![
                fragment(1, 40_000, false),
                fragment(1, 40_000, false),
                fragment(1, 10, true),
            ]),
            Answer(fail, "65536-byte limit"),
        ),
        (
            "bad JSON",
            Command(1, r#"{"name":"join","rid":"#),
            Answer(fail, "not valid UTF-8 JSON"),
        ),
        (
            "JSON that is not an object",
            Command(1, r#"[1,2,3]"#),
            Answer(fail, "must be a JSON object"),
        ),
        (
            "no name",
            Command(1, r#"{"rid":"x"}"#),
            Answer(fail, "no string field `name`"),
        ),
        (
            "unknown command",
            Command(1, r#"{"name":"format_disk"}"#),
            Answer(fail, "unknown command `format_disk`"),
        ),
        (
            "missing field",
            Command(1, r#"{"name":"join"}"#),
            Answer(fail, "missing field `rid`"),
        ),
        (
            "wrong type",
            Command(1, r#"{"name":"join","rid":7}"#),
            Answer(fail, "bad arguments for `join`: rid:"),
        ),
        (
            "unknown pipe",
            Command(9, r#"{"name":"join","rid":"x"}"#),
            Answer(fail, "pipe 9 does not exist"),
        ),
        (
            "wrong pipe kind",
            Command(0, r#"{"name":"join","rid":"x"}"#),
            Answer(fail, "not valid on pipe 0"),
        ),
        (
            "room id with control characters",
            Command(1, "{\"name\":\"join\",\"rid\":\"a\\u0000b\"}"),
            Answer("NetGroup.Connect.Failed", "room id"),
        ),
        (
            "send to a room not joined",
            Command(
                1,
                r#"{"name":"send","type":"text","cast":"multi","id":"elsewhere","data":"x"}"#,
            ),
            Answer("NetGroup.Posting.Failed", "join room"),
        ),
        (
            "unknown message type in send",
            Command(
                1,
                r#"{"name":"send","type":"virus","cast":"multi","id":"hostile","data":"x"}"#,
            ),
            Answer(fail, "type"),
        ),
        (
            "chmod without x",
            Command(
                1,
                r#"{"name":"chmod","rid":"hostile","tid":"alice","operator":"-","mask":"w"}"#,
            ),
            Answer(fail, "administer (x)"),
        ),
        (
            "bad chmod mask",
            Command(
                1,
                r#"{"name":"chmod","rid":"hostile","tid":"alice","operator":"-","mask":"rwq"}"#,
            ),
            Answer(fail, "letters r, w, x"),
        ),
        (
            "history page too large",
            Command(1, r#"{"name":"history","rid":"hostile","limit":100000}"#),
            Answer(fail, "limit"),
        ),
        (
            "search without words",
            Command(1, r#"{"name":"history","query":"*** ---"}"#),
            Answer(fail, "no words"),
        ),
        (
            "search query of the wrong type",
            Command(1, r#"{"name":"history","query":5}"#),
            Answer(fail, "query"),
        ),
        (
            "search query too long",
            Command(
                1,
                Box::leak(
                    format!(r#"{{"name":"history","query":"{}"}}"#, "a ".repeat(200))
                        .into_boxed_str(),
                ),
            ),
            Answer(fail, "256 bytes"),
        ),
        (
            "redact without mid",
            Command(1, r#"{"name":"redact"}"#),
            Answer(fail, "mid"),
        ),
        (
            "redact with a string mid",
            Command(1, r#"{"name":"redact","mid":"1"}"#),
            Answer(fail, "mid"),
        ),
        (
            "redact of a missing message",
            Command(1, r#"{"name":"redact","mid":-5}"#),
            Answer(fail, "does not exist"),
        ),
        (
            "retention set without x",
            Command(
                1,
                r#"{"name":"setProperty","info":{"room:hostile:retention_count":1}}"#,
            ),
            Answer(fail, "administer (x)"),
        ),
        (
            "release pipe 0",
            Command(0, r#"{"name":"release","id":0}"#),
            Answer(fail, "cannot be released"),
        ),
        (
            "second connect",
            Command(0, r#"{"name":"connect","parameters":{"token":"carol"}}"#),
            Answer(fail, "already connected"),
        ),
        (
            "length prefix over the limit",
            Stream(vec![0x7F, 0, 0, 0, 0x84]),
            Closes("NetConnection.Connect.Closed", "exceeds the limit"),
        ),
        (
            "command before connect",
            BeforeConnect(r#"{"name":"create","kind":"messaging"}"#),
            Closes("NetConnection.Connect.Failed", "must be the first command"),
        ),
        (
            "wrong token",
            Connect("not-a-token"),
            Closes("NetConnection.Connect.Rejected", "not valid"),
        ),
        (
            "forged JWT",
            Connect(
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJl",
            ),
            Closes("NetConnection.Connect.Rejected", "not valid"),
        ),
    ]
}

async fn hostile_connection(gw: &TestGateway) -> Raw {
    let mut raw = Raw::open(gw).await;
    raw.command(
        0,
        1,
        r#"{"name":"connect","uuid":"","parameters":{"token":"carol"}}"#,
    )
    .await;
    assert_eq!(
        raw.recv_command().await.expect("connect").code(),
        "NetConnection.Connect.Success"
    );
    raw.command(0, 2, r#"{"name":"create","kind":"messaging"}"#)
        .await;
    raw.recv_command().await.expect("create");
    raw.command(1, 1, r#"{"name":"join","rid":"hostile"}"#)
        .await;
    raw.recv_command().await.expect("join");
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_input_gets_its_answer_and_bystanders_lose_nothing() {
    let gw = TestGateway::start_with(|c| {
        people(c);
        c.limits.max_frame_bytes = 50_000;
        c.limits.max_message_bytes = 65_536;
        c.auth.jwt_secret = Some("suite-secret-0123456789abcdef-01234".into());
    })
    .await;
    let url = gw.tcp_url();
    let alice = Client::connect(&url, "alice").await.expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    alice.join(ap, "hostile").await.expect("join");
    let mut bob = Client::connect(&url, "bob").await.expect("bob");
    let bp = bob.create("messaging").await.expect("pipe");
    bob.join(bp, "hostile").await.expect("join");

    let mut sent = 0;
    for (name, input, expect) in rows() {
        // The bystanders talk between every hostile row.
        alice
            .say(ap, "hostile", &format!("a{sent}"))
            .await
            .unwrap_or_else(|e| panic!("{name}: alice: {e}"));
        bob.say(bp, "hostile", &format!("b{sent}"))
            .await
            .unwrap_or_else(|e| panic!("{name}: bob: {e}"));
        sent += 1;

        let mut raw = match &input {
            Input::BeforeConnect(_) | Input::Connect(_) => Raw::open(&gw).await,
            _ => hostile_connection(&gw).await,
        };
        match input {
            Input::Frame(bytes) => raw.send_raw(&bytes).await,
            Input::Frames(frames) => {
                for f in frames {
                    raw.send_frame(f).await;
                }
            }
            Input::Command(pipe, args) => raw.send_frame(command(pipe, args)).await,
            Input::Stream(bytes) => raw.write_bytes(&bytes).await,
            Input::BeforeConnect(args) => raw.send_frame(command(0, args)).await,
            Input::Connect(token) => {
                let args =
                    format!(r#"{{"name":"connect","uuid":"","parameters":{{"token":"{token}"}}}}"#);
                raw.command(0, 1, &args).await;
            }
        }
        // Skip pushes the hostile member gets as a room member; find the error.
        let answer = loop {
            let r = raw
                .recv_command()
                .await
                .unwrap_or_else(|| panic!("{name}: no answer"));
            if r.level() == "error" {
                break r;
            }
        };
        let (code, text, closes) = match expect {
            Expect::Answer(c, t) => (c, t, false),
            Expect::Closes(c, t) => (c, t, true),
        };
        assert_eq!(answer.code(), code, "{name}: {}", answer.description());
        assert!(
            answer.description().contains(text),
            "{name}: {:?} lacks {text:?}",
            answer.description()
        );
        if closes {
            assert!(raw.closed().await, "{name}: the connection must close");
        } else {
            raw.command(0, 99, r#"{"name":"getProperty","keys":[]}"#)
                .await;
            let still = loop {
                let r = raw
                    .recv_command()
                    .await
                    .unwrap_or_else(|| panic!("{name}: connection died"));
                if r.txid == 99 {
                    break r;
                }
            };
            assert_eq!(still.pipe, 0, "{name}: the connection still answers");
        }
    }

    // Every bystander message arrived exactly once, in order, and nothing foreign was delivered: alice's
    // last line is the fence (the room's messages are pushed in order).
    alice
        .say(ap, "hostile", "fence")
        .await
        .expect("alice: fence");
    let mut from_alice = Vec::new();
    for p in common::pushes::until_data(&mut bob, "fence").await {
        if p.name() == "send" && p.args["data"] != "fence" {
            // Bob hears alice, and the echo of his own posts; nothing from the hostile connection.
            let from = p.args["user"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                from == "alice" || from == "bob",
                "bob only hears alice and himself: {:?}",
                p.args
            );
            if from == "alice" {
                from_alice.push(p.args["data"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    assert_eq!(
        from_alice,
        (0..sent).map(|i| format!("a{i}")).collect::<Vec<_>>()
    );
    let page = alice
        .history(ap, json!({"rid": "hostile", "limit": 500}))
        .await
        .expect("history");
    let stored = page.info()["messages"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(
        stored,
        2 * sent + 1,
        "only the bystanders' messages (and the fence) are stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_tokens_over_a_real_connection() {
    let secret = "integration-secret-0123456789abcdef";
    let gw = TestGateway::start_with(|c| {
        c.auth.anonymous = Some(false);
        c.auth.jwt_secret = Some("integration-secret-0123456789abcdef".into());
    })
    .await;
    let now = odd_gateway::clock::now_secs() as u64;
    let token = |claims: serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encodes")
    };
    let ok = token(
        json!({"sub": "u7", "nick": "Seven", "avatar": "https://x/7.png", "exp": now + 60, "rooms": ["allowed"]}),
    );
    let c = Client::connect(&gw.tcp_url(), &ok)
        .await
        .expect("valid JWT");
    assert_eq!((c.user.id.as_str(), c.user.nick.as_str()), ("u7", "Seven"));
    let pipe = c.create("messaging").await.expect("pipe");
    c.join(pipe, "allowed").await.expect("granted room");
    let r = c
        .call(pipe, json!({"name": "join", "rid": "other"}))
        .await
        .expect("answer");
    assert_eq!(r.code(), "NetGroup.Connect.Rejected");
    assert!(
        r.description().contains("does not grant"),
        "{}",
        r.description()
    );
    // The HTTP API takes the same token.
    let http = reqwest::Client::new();
    let api = format!("{}/api/rooms/allowed/messages", gw.http_url());
    assert_eq!(
        http.get(&api)
            .bearer_auth(&ok)
            .send()
            .await
            .expect("http")
            .status(),
        200
    );
    let denied = format!("{}/api/rooms/other/messages", gw.http_url());
    assert_eq!(
        http.get(&denied)
            .bearer_auth(&ok)
            .send()
            .await
            .expect("http")
            .status(),
        403
    );

    for (what, bad, expect) in [
        (
            "expired",
            token(json!({"sub": "u7", "exp": now - 3600})),
            "expired",
        ),
        ("missing sub", token(json!({"exp": now + 60})), "sub"),
        (
            "markup nick",
            token(json!({"sub": "u7", "nick": "<img src=x>", "exp": now + 60})),
            "nick",
        ),
        (
            "wrong signature",
            jsonwebtoken::encode(
                &jsonwebtoken::Header::default(),
                &json!({"sub": "u7", "exp": now + 60}),
                &jsonwebtoken::EncodingKey::from_secret(b"other"),
            )
            .expect("encodes"),
            "signature",
        ),
    ] {
        let mut c = Client::open(&gw.tcp_url()).await.expect("open");
        match c.handshake(&bad, "").await {
            Err(odd_gateway::client::ClientError::Status { code, description }) => {
                assert_eq!(code, "NetConnection.Connect.Rejected", "{what}");
                assert!(description.contains(expect), "{what}: {description}");
            }
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(
            http.get(&api)
                .bearer_auth(&bad)
                .send()
                .await
                .expect("http")
                .status(),
            401,
            "{what} over HTTP"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_are_limited() {
    let gw = TestGateway::start_with(|c| c.limits.max_connections_per_ip = Some(3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            Client::connect(&gw.tcp_url(), "")
                .await
                .expect("within the limit"),
        );
    }
    let mut raw = Raw::open(&gw).await;
    let r = raw.recv_command().await.expect("a reason");
    assert_eq!(r.code(), "NetConnection.Connect.Rejected");
    assert!(
        r.description()
            .contains("too many connections from 127.0.0.1"),
        "{}",
        r.description()
    );
    assert!(raw.closed().await);
    // Our own client says why too (the refusal comes with txid 0, before its `connect` is answered).
    match Client::connect(&gw.tcp_url(), "").await {
        Err(e) => assert!(
            e.to_string()
                .contains("too many connections from 127.0.0.1"),
            "the client's error names the reason: {e}"
        ),
        Ok(_) => panic!("over the limit"),
    }
    drop(held.pop());
    // The freed slot comes back once the gateway has seen that connection close: retry until then.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Client::connect(&gw.tcp_url(), "").await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("a slot was never freed: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Over HTTP too, a connection over its address's limit is told why: `429` with the reason, not a silent close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_connections_over_the_limit_get_429_with_the_reason() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = TestGateway::start_with(|c| c.limits.max_connections_per_ip = Some(2)).await;
    let http = gw.gateway.http_addr.expect("http");
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(http).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let mut over = tokio::net::TcpStream::connect(http).await.expect("connect");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), over.read_to_string(&mut answer))
        .await
        .expect("answered and closed in time")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.contains("too many connections from 127.0.0.1 (at most 2)"),
        "{answer}"
    );
    // Our own client over WebSocket says why as well (the reason is in the 429's JSON body).
    match Client::connect(&format!("ws://{http}/im"), "").await {
        Err(e) => assert!(
            e.to_string()
                .contains("too many connections from 127.0.0.1 (at most 2)"),
            "{e}"
        ),
        Ok(_) => panic!("over the limit"),
    }
    drop(held);
}

/// Every HTTP error is the documented JSON `{error, code}`, including the ones the router makes itself (no
/// route, a method a route does not serve, a path parameter that is not a number): never the framework's
/// plain text or an empty body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_error_is_json() {
    let gw = TestGateway::start().await;
    let http = gw.http_url();
    let client = reqwest::Client::new();
    for (method, path, status, code) in [
        ("GET", "/no/such/route", 404, "not_found"),
        ("GET", "/api/messages/abc/payload", 400, "bad_request"),
        ("DELETE", "/api/messages/abc", 400, "bad_request"),
        ("DELETE", "/rtc/resources/abc", 404, "not_found"),
        (
            "DELETE",
            "/rtc/resources/99999999999999999999999",
            404,
            "not_found",
        ),
        ("GET", "/api/rooms/%FF%FE/messages", 400, "bad_request"),
        ("PUT", "/api/server/publish", 405, "method_not_allowed"),
        ("GET", "/whip/im", 405, "method_not_allowed"),
        ("GET", "/im", 400, "bad_request"),
        ("GET", "/api/users/%25zz/unread", 400, "bad_request"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let resp = client
            .request(method.clone(), format!("{http}{path}"))
            .send()
            .await
            .expect("answered");
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        let kind = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            kind.starts_with("application/json"),
            "{method} {path}: {kind}"
        );
        let body: serde_json::Value = resp.json().await.expect("JSON body");
        assert_eq!(body["code"], code, "{method} {path}: {body}");
        let text = body["error"].as_str().unwrap_or("");
        assert!(!text.is_empty(), "{method} {path}: {body}");
        for leak in ["Cannot parse", "i64", "u64", "Invalid URL"] {
            assert!(!text.contains(leak), "{method} {path}: {body}");
        }
    }
}

/// A stranger cannot make the gateway set aside a big frame: before `connect` the reader takes no frame longer
/// than a `connect` needs (65,548 bytes), so a 1 MiB length prefix closes the connection at once, and many
/// such strangers hold next to nothing. After `connect`, frames up to `limits.max_frame_bytes` pass, on TCP and
/// (through the same reader) TLS and QUIC streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_make_the_reader_hold_a_big_frame() {
    let gw = TestGateway::start().await;
    // The length of the biggest frame a connected client may send, then the start of it.
    let mut strangers = Vec::new();
    for _ in 0..20 {
        let mut raw = Raw::open(&gw).await;
        raw.write_bytes(&(1_048_640u32).to_be_bytes()).await;
        raw.write_bytes(&vec![0u8; 32 * 1024]).await;
        strangers.push(raw);
    }
    for raw in &mut strangers {
        assert!(
            raw.closed().await,
            "a 1 MiB frame before connect closes the connection"
        );
    }
    // A frame just within the pre-connect limit is read (and answered: it is not a connect).
    let mut ok = Raw::open(&gw).await;
    let args = format!(r#"{{"name":"ping","pad":"{}"}}"#, "x".repeat(60_000));
    ok.command(0, 1, &args).await;
    let r = ok.recv_command().await.expect("an answer, not a close");
    assert_eq!(r.txid, 1);

    // Many connect-sized frames are no way around it: a stranger may send two frames' worth before connect.
    let mut flood = Raw::open(&gw).await;
    let pad = format!(r#"{{"name":"ping","pad":"{}"}}"#, "y".repeat(60_000));
    let body = CommandMessage::encode(0, 2, pad.as_bytes(), &[]).expect("fits");
    for seq in 0..4u16 {
        // The gateway may close while these are still being written: a failed write is the expected end.
        let frame = Frame::new(MessageType::Command, 0, body.clone()).to_bytes(seq);
        if futures::SinkExt::send(&mut flood.framed, frame)
            .await
            .is_err()
        {
            break;
        }
    }
    assert!(
        flood.closed().await,
        "over 131,096 bytes before connect closes"
    );

    // Connected, the same connection takes a frame of 200 KB: a message with a payload.
    let mut member = Raw::open(&gw).await;
    member.connect().await;
    let body = CommandMessage::encode(
        0,
        7,
        br#"{"name":"getProperty","keys":[]}"#,
        &vec![7u8; 200_000],
    )
    .expect("fits");
    member
        .send_frame(Frame::new(MessageType::Command, 0, body))
        .await;
    let r = member.answer_to(7).await.expect("answered after connect");
    assert_eq!(r.code(), "NetConnection.Call.Success");
}
