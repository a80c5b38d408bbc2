//! Test helpers: a gateway on ephemeral ports with its own data directory, and a raw framed socket for
//! feeding the server bytes no well-behaved client would send.
#![allow(dead_code)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use odd_gateway::config::Config;
use odd_gateway::gateway::Gateway;
use odd_gateway::protocol::{CommandMessage, Frame, Message, MessageType, Reassembler};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

pub use db::{Backend, TestDb};

mod db;
pub mod process;
pub mod pushes;

pub struct TestGateway {
    pub gateway: Gateway,
    pub dir: tempfile::TempDir,
}

impl TestGateway {
    /// A gateway on a fresh SQLite file.
    pub async fn start() -> TestGateway {
        TestGateway::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::ephemeral(dir.path());
        tweak(&mut config);
        let gateway = Gateway::start(config).await.expect("gateway starts");
        TestGateway { gateway, dir }
    }

    pub fn tcp_url(&self) -> String {
        format!("tcp://{}", self.gateway.tcp_addr.expect("tcp listener"))
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.gateway.http_addr.expect("http listener"))
    }
}

/// A gateway on a test database (either backend); can be stopped and started again on the same data.
pub struct DbGateway {
    pub gateway: Gateway,
    pub db: TestDb,
    tweak: fn(&mut Config),
}

impl DbGateway {
    /// `None` when the backend is unavailable and not required (the test then returns early, loudly).
    pub async fn start(backend: Backend, tweak: fn(&mut Config)) -> Option<DbGateway> {
        let db = TestDb::new(backend).await?;
        let gateway = Gateway::start(db.config(tweak))
            .await
            .expect("gateway starts");
        Some(DbGateway { gateway, db, tweak })
    }

    /// Shuts down gracefully and starts a new gateway on the same database (new ports).
    pub async fn restart(self) -> DbGateway {
        let DbGateway { gateway, db, tweak } = self;
        gateway.shutdown(Duration::from_secs(5)).await;
        let gateway = Gateway::start(db.config(tweak))
            .await
            .expect("gateway restarts");
        DbGateway { gateway, db, tweak }
    }

    pub fn tcp_url(&self) -> String {
        format!("tcp://{}", self.gateway.tcp_addr.expect("tcp listener"))
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.gateway.http_addr.expect("http listener"))
    }
}

/// Every sample of the gateway's `/metrics` at `http_url`, keyed `name{labels}` exactly as exported.
pub async fn scrape_metrics(http_url: &str) -> std::collections::HashMap<String, f64> {
    let body = reqwest::get(format!("{http_url}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// One series (`name{labels}` as exported), or `None` when the gateway does not export it.
pub async fn metric_at(http_url: &str, series: &str) -> Option<f64> {
    scrape_metrics(http_url).await.get(series).copied()
}

/// Waits up to `within` until series `series` of the gateway at `http_url` reads `value`; false if it never does.
pub async fn until_metric(http_url: &str, series: &str, value: f64, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if metric_at(http_url, series).await == Some(value) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits up to `within` until series `series` of the gateway at `http_url` reads at least `min` (a counter that
/// has grown past a value read before); the last value read if it never does.
pub async fn until_metric_at_least(
    http_url: &str,
    series: &str,
    min: f64,
    within: Duration,
) -> Result<f64, Option<f64>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let now = metric_at(http_url, series).await;
        if let Some(v) = now.filter(|v| *v >= min) {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(now);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Static tokens `alice`, `bob`, `carol`, `dave` (token = user id), anonymous off.
pub fn people(c: &mut Config) {
    c.auth.anonymous = Some(false);
    c.auth.tokens = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| odd_gateway::config::StaticToken {
            token: n.to_string(),
            id: n.to_string(),
            nick: n.to_uppercase(),
            avatar: String::new(),
        })
        .collect();
}

/// Serves `app` (a test's stand-in for an app's backend) on 127.0.0.1; its base URL, `http://127.0.0.1:<port>`.
pub async fn serve_app(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// One server-API key, `name` = `key` (the only one).
pub fn api_key(c: &mut Config, name: &str, key: &str) {
    c.server_api.keys = vec![odd_gateway::config::ApiKey {
        name: name.into(),
        key: key.into(),
    }];
}

/// One server-API call, as a backend makes it: `X-API-Key` when `key` is given, `body` as JSON when given.
/// The status and the JSON answer (`null` when there is none).
pub async fn server_call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.expect("http");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Runs each named scenario `async fn name(backend: Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::common::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::common::Backend::Postgres).await } )*
        }
    };
}

/// A TCP connection that speaks length-delimited frames but nothing else: the test decides every byte.
pub struct Raw {
    pub framed: Framed<TcpStream, LengthDelimitedCodec>,
    seq: u16,
    reassembler: Reassembler,
}

/// A command the raw connection received.
#[derive(Debug)]
pub struct RawCommand {
    pub pipe: u16,
    pub txid: u16,
    pub timestamp: u32,
    pub args: Value,
}

impl RawCommand {
    pub fn code(&self) -> &str {
        self.args["code"].as_str().unwrap_or("")
    }
    pub fn level(&self) -> &str {
        self.args["level"].as_str().unwrap_or("")
    }
    pub fn description(&self) -> &str {
        self.args["description"].as_str().unwrap_or("")
    }
}

impl Raw {
    pub async fn open(gw: &TestGateway) -> Raw {
        let stream = TcpStream::connect(gw.gateway.tcp_addr.expect("tcp"))
            .await
            .expect("connect");
        // A codec that lets the test send lengths of any size.
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(usize::MAX)
            .new_codec();
        Raw {
            framed: Framed::new(stream, codec),
            seq: 1,
            reassembler: Reassembler::new(64 << 20),
        }
    }

    /// Sends these bytes as one delimited frame.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.framed
            .send(Bytes::copy_from_slice(bytes))
            .await
            .expect("send");
    }

    pub async fn send_frame(&mut self, frame: Frame) {
        let b = frame.to_bytes(self.seq);
        self.seq = self.seq.wrapping_add(1);
        self.framed.send(b).await.expect("send");
    }

    pub async fn command(&mut self, pipe: u16, txid: u16, args: &str) {
        let body = CommandMessage::encode(0, txid, args.as_bytes(), &[]).expect("fits");
        self.send_frame(Frame::new(MessageType::Command, pipe, body))
            .await;
    }

    /// A member that connects with `token`, joins `rid` and then never reads (a slow consumer in the making).
    /// It does not read its answers either: callers wait for the join on the gateway's side if they need it.
    pub async fn non_reader(gw: &TestGateway, token: &str, rid: &str) -> Raw {
        let mut raw = Raw::open(gw).await;
        let connect =
            serde_json::json!({"name": "connect", "uuid": "", "parameters": {"token": token}});
        raw.command(0, 1, &connect.to_string()).await;
        raw.command(0, 2, r#"{"name":"create","kind":"messaging"}"#)
            .await;
        let join = serde_json::json!({"name": "join", "rid": rid});
        raw.command(1, 1, &join.to_string()).await;
        raw
    }

    pub async fn connect(&mut self) -> RawCommand {
        self.command(
            0,
            1,
            r#"{"name":"connect","uuid":"","parameters":{"token":""}}"#,
        )
        .await;
        let r = self.recv_command().await.expect("connect answer");
        assert_eq!(r.code(), "NetConnection.Connect.Success", "{:?}", r.args);
        r
    }

    /// The next frame, or `None` if the connection closed or nothing came within 5 s.
    pub async fn recv_frame(&mut self) -> Option<Frame> {
        match tokio::time::timeout(Duration::from_secs(5), self.framed.next()).await {
            Ok(Some(Ok(b))) => Some(Frame::decode(b.freeze()).expect("server frames are valid")),
            _ => None,
        }
    }

    /// The next command (skipping ACKs and the informational `setProperty` push that follows a `create`).
    pub async fn recv_command(&mut self) -> Option<RawCommand> {
        loop {
            let f = self.recv_frame().await?;
            assert!(f.fin, "the server sends whole frames");
            if let Ok(Some(Message::Command { pipe, command })) = self.reassembler.push(f) {
                let args: Value =
                    serde_json::from_slice(&command.args).expect("server args are JSON");
                if command.txid == 0 && args["name"] == "setProperty" {
                    continue;
                }
                return Some(RawCommand {
                    pipe,
                    txid: command.txid,
                    timestamp: command.timestamp,
                    args,
                });
            }
        }
    }

    /// The next command's arguments exactly as sent (skipping ACKs and other frames), to check bytes, not values.
    pub async fn recv_raw_args(&mut self) -> Option<(u16, u16, Vec<u8>)> {
        loop {
            let f = self.recv_frame().await?;
            if let Ok(Some(Message::Command { pipe, command })) = self.reassembler.push(f) {
                return Some((pipe, command.txid, command.args.to_vec()));
            }
        }
    }

    /// The next command answering `txid` (pushes before it are skipped).
    pub async fn answer_to(&mut self, txid: u16) -> Option<RawCommand> {
        loop {
            let c = self.recv_command().await?;
            if c.txid == txid {
                return Some(c);
            }
        }
    }

    /// True when the server closes the connection within 5 s (frames still arriving are drained).
    pub async fn closed(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, self.framed.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn write_bytes(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let s = self.framed.get_mut();
        s.write_all(bytes).await.expect("write");
        s.flush().await.expect("flush");
    }
}

pub fn length_prefixed(frame: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    b.extend_from_slice(frame);
    b
}

/// Connects as `who`, opens a messaging pipe and joins `rid`: (client, pipe, join answer).
pub async fn member_at(
    url: &str,
    who: &str,
    rid: &str,
) -> (odd_gateway::client::Client, u16, odd_gateway::client::Reply) {
    let c = odd_gateway::client::Client::connect(url, who)
        .await
        .expect("connect");
    let pipe = c.create("messaging").await.expect("pipe");
    let joined = c.join(pipe, rid).await.expect("join");
    (c, pipe, joined)
}

/// The pushes that arrive until the connection has been quiet for `quiet`. Only for asserting absence (see
/// `pushes` for waiting on what is expected); every caller says why silence is the point.
pub async fn drain_within(
    c: &mut odd_gateway::client::Client,
    quiet: Duration,
) -> Vec<odd_gateway::client::Reply> {
    let mut out = Vec::new();
    while let Some(p) = c.next_push_within(quiet).await {
        out.push(p);
    }
    out
}

/// A quinn client endpoint (a client we did not write) trusting `gw`'s dev certificate, offering ALPN
/// `odd-im`; with `early_data`, it sends 0-RTT when it holds a ticket.
pub fn quinn_client(gw: &TestGateway, early_data: bool) -> quinn::Endpoint {
    let roots = odd_gateway::transport::certs::read_pem_certs(
        gw.gateway.cert_path.as_deref().expect("cert"),
    )
    .expect("pem");
    let mut tls =
        odd_gateway::transport::certs::client_config(&roots, &[b"odd-im"], true).expect("config");
    tls.enable_early_data = early_data;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(std::sync::Arc::new(tls))
        .expect("quic tls");
    let mut endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
    endpoint
}
