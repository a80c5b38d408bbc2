//! Request bodies are read only after the caller is authenticated, to a cap, and within a deadline: an
//! attacker holding many stalled bodies (HTTP/1.1, or one HTTP/2 connection with many streams) holds neither
//! memory nor connections.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::process::GatewayProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "k-backend-0123456789";

/// The gateway as its own process (so its memory is its own), with a server-API key and a 500 ms body deadline.
async fn gateway(dir: &std::path::Path) -> (GatewayProcess, std::net::SocketAddr) {
    let config = dir.join("gateway.toml");
    std::fs::write(&config, "[limits]\nhttp_body_timeout_ms = 500\n").expect("config");
    let config = config.to_string_lossy().to_string();
    let gw = GatewayProcess::spawn(
        dir,
        &[
            ("ODD_API_KEYS", &format!("backend={KEY}")),
            ("ODD_CONFIG", &config),
        ],
    )
    .await;
    let http = format!("127.0.0.1:{}", gw.http).parse().expect("addr");
    (gw, http)
}

/// The gateway process's resident memory.
fn rss_kib(gw: &GatewayProcess) -> u64 {
    let pid = gw.child.id().unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Sends a publish header announcing `declared` bytes and `sent` of them, with `key` if any.
async fn stalled(
    http: std::net::SocketAddr,
    key: Option<&str>,
    declared: usize,
    sent: usize,
) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(http).await.expect("connect");
    let key = key
        .map(|k| format!("X-API-Key: {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /api/server/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{key}Content-Length: {declared}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head");
    // The gateway may answer and close before the body is all written: that is the point.
    let _ = s.write_all(&vec![b' '; sent]).await;
    s
}

/// The status line's code and whether the gateway then closed the connection, within `wait`.
async fn answer_then_close(s: &mut tokio::net::TcpStream, wait: Duration) -> (u16, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {
                let code = status_of(&buf);
                return (code, false);
            }
        }
    }
    (status_of(&buf), true)
}

fn status_of(buf: &[u8]) -> u16 {
    String::from_utf8_lossy(buf)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_http1_bodies_hold_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let (gw, http) = gateway(dir.path()).await;
    let before = rss_kib(&gw);
    // 200 strangers, each announcing 2 MB and sending all but the last kilobyte: answered 401 at once, and
    // closed, without their bodies being read.
    let mut strangers = Vec::new();
    for _ in 0..200 {
        strangers.push(stalled(http, None, 2_097_000, 2_096_000).await);
    }
    let started = Instant::now();
    for s in &mut strangers {
        assert_eq!(
            answer_then_close(s, Duration::from_secs(5)).await,
            (401, true)
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let grown = rss_kib(&gw).saturating_sub(before);
    eprintln!("gateway RSS {before} KiB, +{grown} KiB under 200 stalled HTTP/1.1 bodies");
    assert!(
        grown < 64 * 1024,
        "RSS grew {grown} KiB under 200 stalled bodies"
    );
    // A caller with a key: a body over the cap is refused before it is read; a stalled one gets 408 at the
    // deadline and the connection is closed.
    let mut big = stalled(http, Some(KEY), 3 << 20, 10).await;
    assert_eq!(
        answer_then_close(&mut big, Duration::from_secs(2)).await,
        (413, true)
    );
    let mut slow = stalled(http, Some(KEY), 1000, 10).await;
    let started = Instant::now();
    assert_eq!(
        answer_then_close(&mut slow, Duration::from_secs(5)).await,
        (408, true)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before the deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_h2c_streams_hold_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let (gw, http) = gateway(dir.path()).await;
    let before = rss_kib(&gw);
    let mut answers = Vec::new();
    let mut held = Vec::new();
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(http).await.expect("connect");
        let (client, conn) = h2::client::handshake(tcp).await.expect("h2c");
        tokio::spawn(conn);
        let mut client = client.ready().await.expect("ready");
        for _ in 0..200 {
            let req = http::Request::post(format!("http://{http}/api/server/publish"))
                .header("content-length", "2097000")
                .body(())
                .expect("request");
            client = client.ready().await.expect("a stream slot");
            let Ok((answer, mut body)) = client.send_request(req, false) else {
                break;
            };
            // As much as flow control lets through, never the end.
            body.reserve_capacity(1 << 20);
            let _ = body.send_data(Bytes::from(vec![b' '; 64 * 1024]), false);
            answers.push(answer);
            held.push(body);
        }
    }
    let started = Instant::now();
    for a in answers {
        let status = tokio::time::timeout(Duration::from_secs(5), a)
            .await
            .expect("answered in time")
            .map(|r| r.status().as_u16());
        match status {
            Ok(code) => assert_eq!(code, 401),
            // Streams past the gateway's limit are refused before the client knew the limit.
            Err(e) => assert_eq!(e.reason(), Some(h2::Reason::REFUSED_STREAM), "{e}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let grown = rss_kib(&gw).saturating_sub(before);
    eprintln!(
        "gateway RSS {before} KiB, +{grown} KiB under 2 h2c connections x 200 stalled streams"
    );
    assert!(
        grown < 64 * 1024,
        "RSS grew {grown} KiB under 400 stalled h2 streams"
    );
    drop(held);
}

/// A connection that sends no request holds nothing for long: silence, one byte, half the HTTP/2 preface or
/// the whole preface with SETTINGS (hyper's HTTP/1 header deadline does not cover any of these) are closed
/// once `http_header_timeout_ms` passes; an HTTP/2 connection whose requests are done is closed after
/// `http_idle_timeout_ms`. Before, all of these stayed open for as long as the client liked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_requests_are_closed() {
    let gw = common::TestGateway::start_with(|c| {
        c.limits.http_header_timeout_ms = 500;
        c.limits.http_idle_timeout_ms = 1_000;
    })
    .await;
    let http = gw.gateway.http_addr.expect("http");
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec();
    let openings: [(&str, Vec<u8>); 4] = [
        ("silence", vec![]),
        ("one byte", b"P".to_vec()),
        ("half the HTTP/2 preface", b"PRI * HTTP/2.0\r\n".to_vec()),
        ("the HTTP/2 preface and SETTINGS", preface),
    ];
    let mut opened = Vec::new();
    for (what, bytes) in openings {
        let mut s = tokio::net::TcpStream::connect(http).await.expect("connect");
        s.write_all(&bytes).await.expect("write");
        opened.push((what, s));
    }
    let started = Instant::now();
    for (what, mut s) in opened {
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            let mut buf = [0u8; 1024];
            // Whatever the server says first (a SETTINGS frame, a GOAWAY), it ends with the close.
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{what}: still open after 5 s");
    }
    assert!(started.elapsed() < Duration::from_secs(4));

    // HTTP/2 after its requests: closed once idle past the limit, not before.
    let tcp = tokio::net::TcpStream::connect(http).await.expect("connect");
    let (client, conn) = h2::client::handshake(tcp).await.expect("h2c");
    let conn = tokio::spawn(conn);
    let mut client = client.ready().await.expect("ready");
    for _ in 0..3 {
        let req = http::Request::get(format!("http://{http}/healthz"))
            .body(())
            .expect("request");
        client = client.ready().await.expect("a stream slot");
        let (answer, _) = client.send_request(req, true).expect("sent");
        let answer = answer.await.expect("answered");
        assert_eq!(answer.status().as_u16(), 200);
    }
    let idle_from = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the idle HTTP/2 connection is closed")
        .expect("task")
        .ok();
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(600),
        "closed {idle:?} after its last request, before its idle limit"
    );
}

/// A WebSocket stranger is held to what a `connect` needs, like one on TCP: 200 upgraded connections, each
/// starting a 1 MB binary message and sending all of it but the end, are closed at once (the gateway reads no
/// more than 147 KiB of one before `connect`), and the gateway's memory barely moves. Before, the WebSocket
/// library gathered each message whole (`max_frame_bytes`), 200 MB in all, until the handshake deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_websocket_strangers_hold_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let (gw, http) = gateway(dir.path()).await;
    let before = rss_kib(&gw);
    let declared: u64 = 1_040_000;
    let mut strangers = Vec::new();
    for _ in 0..200 {
        let mut s = tokio::net::TcpStream::connect(http).await.expect("connect");
        s.write_all(
            b"GET /im HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .expect("handshake");
        let mut head = [0u8; 1024];
        let n = s.read(&mut head).await.expect("answer");
        assert!(
            head[..n].starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head[..n])
        );
        // A masked binary frame of `declared` bytes (64-bit length), then all but the last 40 KB of it.
        let mut frame = vec![0x82, 0xFF];
        frame.extend_from_slice(&declared.to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        frame.resize(frame.len() + declared as usize - 40_000, b'x');
        // The gateway may close before it is all written: that is the point.
        let _ = tokio::time::timeout(Duration::from_secs(5), s.write_all(&frame)).await;
        strangers.push(s);
    }
    // Measured while all 200 are still open on this side.
    let grown = rss_kib(&gw).saturating_sub(before);
    eprintln!("gateway RSS {before} KiB, +{grown} KiB under 200 WebSocket strangers");
    let started = Instant::now();
    for s in &mut strangers {
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "a stranger's big message did not close the connection"
        );
    }
    // Well before the handshake deadline (10 s): closed for what it sent, not for its silence.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        grown < 64 * 1024,
        "RSS grew {grown} KiB under 200 WebSocket strangers"
    );
}
