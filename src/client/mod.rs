//! The project's own client library: async, transport-agnostic, used by the tests, the `odd` CLI and the
//! benchmarks.
//!
//! A `Client` matches each answer to its request by (pipe, transaction id), keeps a transaction counter per
//! pipe as PROTOCOL.md §2 says, and hands everything else (pushes) to `next_push`.
//!
//! A client opened by URL reconnects by itself when its transport is lost (not when the server said goodbye
//! or the client closed): it reopens the transport and sends `connect` with its session's uuid, so the
//! gateway resumes the session with its pipes, rooms and queued pushes. Requests in flight at the loss fail
//! with `ClientError::Closed`; the app sees a push with code `Client.Reconnected` and `info.resumed`.

mod error;
mod reply;
mod url;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

pub use error::ClientError;
pub use reply::Reply;
pub use url::{ClientOptions, Endpoint};

use crate::protocol::args::User;
use crate::protocol::{CommandMessage, Frame, Message, MessageType, Reassembler};
use crate::transport::{Inbound, Link, Outbound, OutboundTx};

/// Messages larger than this are sent as fragments of this size.
pub const FRAGMENT_BYTES: usize = 256 * 1024;

/// How long `call` waits for an answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

type Pending = Arc<Mutex<HashMap<(u16, u16), oneshot::Sender<Reply>>>>;

/// The code of the push a client emits to its app after reconnecting (never sent by the gateway).
pub const RECONNECTED: &str = "Client.Reconnected";

/// How long a client keeps trying to get back after losing its transport.
pub const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// Status codes with which the gateway says goodbye: no reconnect after them.
const GOODBYES: [&str; 5] = [
    "NetConnection.Connect.Closed",
    "NetConnection.Connect.Rejected",
    "NetConnection.Connect.Failed",
    "NetConnection.Connect.AppShutdown",
    "NetConnection.Connect.IdleTimeout",
];

/// What a URL-opened client needs to come back.
struct Reconnect {
    endpoint: Endpoint,
    options: ClientOptions,
    /// (token, uuid) of the session to resume; set by a successful handshake.
    session: Mutex<Option<(String, String)>>,
    /// The client closed on purpose: do not come back.
    done: std::sync::atomic::AtomicBool,
}

/// The current transport's writer task: `close` waits for it, so the close reaches the wire before the
/// program exits (a QUIC close frame, a WebSocket close, a TCP shutdown) and the gateway sees a clean close.
type WriterTask = Arc<Mutex<Option<tokio::task::JoinHandle<crate::transport::OutboundRx>>>>;

pub struct Client {
    tx: Arc<Mutex<OutboundTx>>,
    writer: WriterTask,
    pending: Pending,
    txids: Arc<Mutex<HashMap<u16, u16>>>,
    reconnect: Option<Arc<Reconnect>>,
    pushes: mpsc::UnboundedReceiver<Reply>,
    /// Set when the transport is gone, with the reason if one was given.
    closed: Arc<Mutex<Option<String>>>,
    /// The session's uuid and our identity, once `connect` succeeded.
    pub uuid: String,
    pub user: User,
}

impl Client {
    /// Opens the transport only; call `handshake` (or `call` anything, to test the server's manners).
    pub async fn open(url: &str) -> Result<Client, ClientError> {
        Client::open_with(url, &ClientOptions::default()).await
    }

    /// Opens the transport with explicit options (certificates to trust for `tls://` and `quic://`).
    pub async fn open_with(url: &str, options: &ClientOptions) -> Result<Client, ClientError> {
        let endpoint: Endpoint = url.parse()?;
        let link = endpoint.open(options).await?;
        let reconnect = Arc::new(Reconnect {
            endpoint,
            options: options.clone(),
            session: Mutex::new(None),
            done: std::sync::atomic::AtomicBool::new(false),
        });
        Ok(Client::start(link, Some(reconnect)))
    }

    /// Opens with `options` and connects with `token`.
    pub async fn connect_with(
        url: &str,
        token: &str,
        options: &ClientOptions,
    ) -> Result<Client, ClientError> {
        let mut c = Client::open_with(url, options).await?;
        c.handshake(token, "").await?;
        Ok(c)
    }

    /// Opens the transport and connects with `token` (empty for a guest).
    pub async fn connect(url: &str, token: &str) -> Result<Client, ClientError> {
        let mut c = Client::open(url).await?;
        c.handshake(token, "").await?;
        Ok(c)
    }

    /// Wraps an open link (any transport). Such a client does not reconnect by itself.
    pub fn over(link: Link) -> Client {
        Client::start(link, None)
    }

    fn start(link: Link, reconnect: Option<Arc<Reconnect>>) -> Client {
        let (tx, rx) = mpsc::channel(1024);
        let writer: WriterTask = Arc::new(Mutex::new(Some(
            link.writer
                .start(rx, tokio_util::sync::CancellationToken::new()),
        )));
        let pending: Pending = Arc::default();
        let closed = Arc::new(Mutex::new(None));
        let (push_tx, pushes) = mpsc::unbounded_channel();
        let tx = Arc::new(Mutex::new(tx));
        let txids = Arc::new(Mutex::new(HashMap::new()));
        tokio::spawn(supervise(
            link.inbound,
            Conn {
                tx: tx.clone(),
                writer: writer.clone(),
                txids: txids.clone(),
                pending: pending.clone(),
                pushes: push_tx,
                closed: closed.clone(),
            },
            reconnect.clone(),
        ));
        Client {
            tx,
            writer,
            pending,
            txids,
            reconnect,
            pushes,
            closed,
            uuid: String::new(),
            user: User::default(),
        }
    }

    /// Sends `connect`; on success remembers the uuid and user.
    pub async fn handshake(&mut self, token: &str, uuid: &str) -> Result<Reply, ClientError> {
        let r = self.call(0, connect_args(token, uuid)).await?;
        let r = r.ok()?;
        let info = r.info();
        self.uuid = info["uuid"].as_str().unwrap_or_default().to_string();
        self.user = serde_json::from_value(info["user"].clone()).unwrap_or_default();
        if let Some(rc) = &self.reconnect {
            *rc.session.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((token.to_string(), self.uuid.clone()));
        }
        Ok(r)
    }

    fn next_txid(&self, pipe: u16) -> u16 {
        next_txid(&self.txids, pipe)
    }

    /// Sends a command and waits for its status (success or error: see `Reply::ok`).
    pub async fn call(&self, pipe: u16, args: Value) -> Result<Reply, ClientError> {
        self.call_with(pipe, args, Bytes::new()).await
    }

    /// Like `call`, with a binary payload after the arguments.
    pub async fn call_with(
        &self,
        pipe: u16,
        args: Value,
        payload: Bytes,
    ) -> Result<Reply, ClientError> {
        self.submit(pipe, args, payload).await?.wait().await
    }

    /// Sends a command now and returns a handle to its answer, so many requests can be in flight in order.
    pub async fn submit(
        &self,
        pipe: u16,
        args: Value,
        payload: Bytes,
    ) -> Result<PendingReply, ClientError> {
        let txid = self.next_txid(pipe);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((pipe, txid), tx);
        // The connection ended for good (its reader set `closed`, then failed what was pending): nothing will
        // answer this one, so say so now rather than after `CALL_TIMEOUT`.
        let ended = self
            .closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if ended {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(pipe, txid));
            return Err(ClientError::Closed(close_reason(&self.closed)));
        }
        if let Err(e) = self.send_command(pipe, txid, &args, &payload).await {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(pipe, txid));
            return Err(e);
        }
        Ok(PendingReply {
            rx,
            key: (pipe, txid),
            pending: self.pending.clone(),
            closed: self.closed.clone(),
        })
    }

    /// Sends a command that wants no answer (transaction id 0).
    pub async fn notify(&self, pipe: u16, args: Value) -> Result<(), ClientError> {
        self.send_command(pipe, 0, &args, &[]).await
    }

    async fn send_command(
        &self,
        pipe: u16,
        txid: u16,
        args: &Value,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        let json = serde_json::to_vec(args).map_err(|e| ClientError::Encode(e.to_string()))?;
        let mut body = CommandMessage::encode(crate::clock::now_secs(), txid, &json, payload)
            .map_err(|e| ClientError::Encode(e.to_string()))?;
        // Large messages go as fragments, each well under the gateway's default frame limit.
        while body.len() > FRAGMENT_BYTES {
            let part = body.split_to(FRAGMENT_BYTES);
            let mut frame = Frame::new(MessageType::Command, pipe, part);
            frame.fin = false;
            self.send_frame(frame).await?;
        }
        self.send_frame(Frame::new(MessageType::Command, pipe, body))
            .await
    }

    /// Sends any frame as is (tests use it for hostile input).
    pub async fn send_frame(&self, frame: Frame) -> Result<(), ClientError> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        tx.send(Outbound::Frame(frame))
            .await
            .map_err(|_| ClientError::Closed(self.close_reason()))
    }

    /// `create {kind}`: returns the new pipe id.
    pub async fn create(&self, kind: &str) -> Result<u16, ClientError> {
        let r = self
            .call(0, json!({"name": "create", "kind": kind}))
            .await?
            .ok()?;
        r.info()["id"]
            .as_u64()
            .and_then(|id| u16::try_from(id).ok())
            .ok_or_else(|| {
                ClientError::Unexpected(format!("create answered without a pipe id: {}", r.args))
            })
    }

    /// `release {id}` on pipe 0.
    pub async fn release(&self, pipe: u16) -> Result<Reply, ClientError> {
        self.call(0, json!({"name": "release", "id": pipe, "reason": ""}))
            .await?
            .ok()
    }

    /// `join {rid}` on a messaging pipe; returns the `NetGroup.Connect.Success` answer.
    pub async fn join(&self, pipe: u16, rid: &str) -> Result<Reply, ClientError> {
        self.call(pipe, json!({"name": "join", "rid": rid}))
            .await?
            .ok()
    }

    /// `leave {rid}`.
    pub async fn leave(&self, pipe: u16, rid: &str) -> Result<Reply, ClientError> {
        self.call(pipe, json!({"name": "leave", "rid": rid, "reason": ""}))
            .await?
            .ok()
    }

    /// `send` with `cast` `multi` (room id) or `uni` (user id); returns the answer (its info has `mid`).
    pub async fn send(
        &self,
        pipe: u16,
        cast: &str,
        id: &str,
        kind: &str,
        data: Value,
    ) -> Result<Reply, ClientError> {
        self.call(
            pipe,
            json!({"name": "send", "type": kind, "cast": cast, "id": id, "data": data}),
        )
        .await?
        .ok()
    }

    /// A text message to a room.
    pub async fn say(&self, pipe: u16, rid: &str, text: &str) -> Result<Reply, ClientError> {
        self.send(pipe, "multi", rid, "text", json!(text)).await
    }

    /// `chmod {rid, tid, operator, mask}`.
    pub async fn chmod(
        &self,
        pipe: u16,
        rid: &str,
        tid: &str,
        operator: &str,
        mask: &str,
    ) -> Result<Reply, ClientError> {
        self.call(
            pipe,
            json!({"name": "chmod", "rid": rid, "tid": tid, "operator": operator, "mask": mask}),
        )
        .await?
        .ok()
    }

    /// `history`: `query` holds `rid` or `uid` and optionally `before`, `after`, `limit`.
    pub async fn history(&self, pipe: u16, mut query: Value) -> Result<Reply, ClientError> {
        query["name"] = json!("history");
        self.call(pipe, query).await?.ok()
    }

    /// The next push (or unmatched answer), waiting at most `wait`.
    pub async fn next_push_within(&mut self, wait: Duration) -> Option<Reply> {
        tokio::time::timeout(wait, self.pushes.recv())
            .await
            .ok()
            .flatten()
    }

    /// Every push as a stream (ends when the connection closes).
    pub fn pushes(&mut self) -> impl futures::Stream<Item = Reply> + '_ {
        futures::stream::poll_fn(move |cx| self.pushes.poll_recv(cx))
    }

    /// The next push, waiting up to the call timeout.
    pub async fn next_push(&mut self) -> Option<Reply> {
        self.next_push_within(CALL_TIMEOUT).await
    }

    /// Waits for a push with this status code or command name, skipping others. `None` on timeout or close.
    pub async fn wait_for(&mut self, code_or_name: &str) -> Option<Reply> {
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let p = self.next_push_within(left).await?;
            if p.code() == code_or_name || p.name() == code_or_name {
                return Some(p);
            }
        }
    }

    /// True once the transport has closed.
    pub fn is_closed(&self) -> bool {
        self.closed.lock().map(|c| c.is_some()).unwrap_or(true)
    }

    fn close_reason(&self) -> String {
        close_reason(&self.closed)
    }

    /// Waits until the server closes the connection; returns the reason we saw, if any.
    pub async fn closed_within(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(r) = self.closed.lock().ok().and_then(|c| c.clone()) {
                return Some(r);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            // Pushes that arrive meanwhile are dropped; the caller only cares about the close.
            let _ =
                tokio::time::timeout(left.min(Duration::from_millis(20)), self.pushes.recv()).await;
        }
    }

    /// Closes the transport politely.
    pub async fn close(self) {
        if let Some(rc) = &self.reconnect {
            rc.done.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let _ = tx.send(Outbound::Close("client closed".into())).await;
        drop(tx);
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            // Bounded: a dead transport must not hang a closing program.
            let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        }
    }
}

/// An answer still to come (see `Client::submit`).
pub struct PendingReply {
    rx: oneshot::Receiver<Reply>,
    key: (u16, u16),
    pending: Pending,
    closed: Arc<Mutex<Option<String>>>,
}

impl PendingReply {
    /// Waits up to `CALL_TIMEOUT` for the answer.
    pub async fn wait(self) -> Result<Reply, ClientError> {
        match tokio::time::timeout(CALL_TIMEOUT, self.rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(ClientError::Closed(close_reason(&self.closed))),
            Err(_) => {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&self.key);
                Err(ClientError::Timeout)
            }
        }
    }
}

fn close_reason(closed: &Mutex<Option<String>>) -> String {
    closed
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .unwrap_or_else(|| "connection closed".to_string())
}

fn next_txid(txids: &Mutex<HashMap<u16, u16>>, pipe: u16) -> u16 {
    let mut t = txids.lock().unwrap_or_else(|e| e.into_inner());
    let n = t.entry(pipe).or_insert(0);
    *n = n.wrapping_add(1);
    if *n == 0 {
        *n = 1;
    }
    *n
}

fn connect_args(token: &str, uuid: &str) -> Value {
    json!({
        "name": "connect", "device": "", "os": std::env::consts::OS, "kernel": "",
        "browser": "", "client": concat!("odd-gateway-client/", env!("CARGO_PKG_VERSION")),
        "uuid": uuid, "parameters": {"token": token}
    })
}

/// What the background task shares with the `Client`.
struct Conn {
    tx: Arc<Mutex<OutboundTx>>,
    writer: WriterTask,
    txids: Arc<Mutex<HashMap<u16, u16>>>,
    pending: Pending,
    pushes: mpsc::UnboundedSender<Reply>,
    closed: Arc<Mutex<Option<String>>>,
}

/// Reads the transport; when it is lost (and nobody said goodbye), reconnects and resumes the session.
async fn supervise(first: mpsc::Receiver<Inbound>, conn: Conn, reconnect: Option<Arc<Reconnect>>) {
    let mut inbound = first;
    let reason = loop {
        let (reason, goodbye) = read_loop(inbound, &conn.pending, &conn.pushes).await;
        // Requests in flight may never be answered: fail them now.
        conn.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let Some(rc) = &reconnect else { break reason };
        let session = rc.session.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (Some((token, uuid)), false) = (
            session,
            goodbye || rc.done.load(std::sync::atomic::Ordering::SeqCst),
        ) else {
            break reason;
        };
        match come_back(rc, &conn, &token, &uuid).await {
            Some(next) => inbound = next,
            None => break reason,
        }
    };
    *conn.closed.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    conn.pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// Reopens the transport and resumes `uuid`, retrying with backoff for `RECONNECT_FOR`.
async fn come_back(
    rc: &Reconnect,
    conn: &Conn,
    token: &str,
    uuid: &str,
) -> Option<mpsc::Receiver<Inbound>> {
    let deadline = tokio::time::Instant::now() + RECONNECT_FOR;
    let mut backoff = Duration::from_millis(50);
    while tokio::time::Instant::now() < deadline {
        if rc.done.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        if let Ok(link) = rc.endpoint.open(&rc.options).await {
            let (tx, rx) = mpsc::channel(1024);
            let task = link
                .writer
                .start(rx, tokio_util::sync::CancellationToken::new());
            *conn.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
            *conn.tx.lock().unwrap_or_else(|e| e.into_inner()) = tx.clone();
            let mut inbound = link.inbound;
            let txid = next_txid(&conn.txids, 0);
            let json = serde_json::to_vec(&connect_args(token, uuid)).ok()?;
            let body = CommandMessage::encode(crate::clock::now_secs(), txid, &json, &[]).ok()?;
            if tx
                .send(Outbound::Frame(Frame::new(MessageType::Command, 0, body)))
                .await
                .is_ok()
            {
                match tokio::time::timeout(CALL_TIMEOUT, answer(&mut inbound, txid)).await {
                    Ok(Some(r)) if !r.is_error() => {
                        let new_uuid = r.info()["uuid"].as_str().unwrap_or_default().to_string();
                        let resumed = r.info()["resumed"] == json!(true);
                        if let Some(s) = rc
                            .session
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .as_mut()
                        {
                            s.1 = new_uuid.clone();
                        }
                        let _ = conn.pushes.send(Reply {
                            pipe: 0,
                            txid: 0,
                            timestamp: crate::clock::now_secs(),
                            args: json!({"name": "status", "level": "status", "code": RECONNECTED,
                                         "description": "reconnected", "info": {"uuid": new_uuid, "resumed": resumed}}),
                            raw_args: Bytes::new(),
                            payload: Bytes::new(),
                        });
                        return Some(inbound);
                    }
                    // Refused (e.g. the token expired): coming back is not possible.
                    Ok(Some(_)) => return None,
                    _ => {}
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    None
}

/// Reads until the answer to the connect with `txid`.
async fn answer(inbound: &mut mpsc::Receiver<Inbound>, txid: u16) -> Option<Reply> {
    let mut reassembler = Reassembler::new(64 * 1024 * 1024);
    loop {
        let Inbound::Frame(f) = inbound.recv().await? else {
            return None;
        };
        if let Ok(Some(Message::Command { pipe: 0, command })) = reassembler.push(f) {
            if command.txid == txid {
                return Reply::decode(0, command).ok();
            }
        }
    }
}

/// Reads one transport until it ends; returns why, and whether the gateway said goodbye first.
async fn read_loop(
    mut inbound: mpsc::Receiver<Inbound>,
    pending: &Pending,
    pushes: &mpsc::UnboundedSender<Reply>,
) -> (String, bool) {
    let mut reassembler = Reassembler::new(64 * 1024 * 1024);
    let mut goodbye = false;
    let reason = loop {
        let next = tokio::select! {
            next = inbound.recv() => next,
            // The `Client` was dropped: close the transport (dropping `inbound` does) and do not come back.
            _ = pushes.closed() => return ("client dropped".to_string(), true),
        };
        let frame = match next {
            None => break "connection closed".to_string(),
            // A close by the gateway: whether to come back is decided by its goodbye status, as for a loss.
            Some(Inbound::Failed(r)) | Some(Inbound::Violation(r)) | Some(Inbound::Closed(r)) => {
                break r
            }
            Some(Inbound::Malformed(e)) => break format!("server sent a malformed frame: {e}"),
            Some(Inbound::Frame(f)) => f,
        };
        let (pipe, cmd) = match reassembler.push(frame) {
            Ok(Some(Message::Command { pipe, command })) => (pipe, command),
            Ok(_) => continue,
            Err(e) => break format!("server sent a bad message: {e}"),
        };
        let reply = match Reply::decode(pipe, cmd) {
            Ok(r) => r,
            Err(e) => break e,
        };
        if pipe == 0 && GOODBYES.contains(&reply.code()) && reply.level() != "status" {
            goodbye = true;
        }
        let waiter = if reply.txid != 0 {
            pending
                .lock()
                .ok()
                .and_then(|mut p| p.remove(&(pipe, reply.txid)))
        } else {
            None
        };
        match waiter {
            Some(w) => {
                let _ = w.send(reply);
            }
            None => {
                let _ = pushes.send(reply);
            }
        }
    };
    (reason, goodbye)
}
