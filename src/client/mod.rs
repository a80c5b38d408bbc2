//! The project's own client library: async, transport-agnostic, used by the tests, the `odd` CLI and the
//! benchmarks.
//!
//! A `Client` matches each answer to its request by (pipe, transaction id), keeps a transaction counter per
//! pipe as PROTOCOL.md §2 says, and hands everything else (pushes) to `next_push`.

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

pub struct Client {
    tx: OutboundTx,
    pending: Pending,
    txids: Mutex<HashMap<u16, u16>>,
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
        Ok(Client::over(link))
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

    /// Wraps an open link (any transport).
    pub fn over(link: Link) -> Client {
        let (tx, rx) = mpsc::channel(1024);
        link.writer
            .start(rx, tokio_util::sync::CancellationToken::new());
        let pending: Pending = Arc::default();
        let closed = Arc::new(Mutex::new(None));
        let (push_tx, pushes) = mpsc::unbounded_channel();
        tokio::spawn(read_loop(
            link.inbound,
            pending.clone(),
            push_tx,
            closed.clone(),
        ));
        Client {
            tx,
            pending,
            txids: Mutex::new(HashMap::new()),
            pushes,
            closed,
            uuid: String::new(),
            user: User::default(),
        }
    }

    /// Sends `connect`; on success remembers the uuid and user.
    pub async fn handshake(&mut self, token: &str, uuid: &str) -> Result<Reply, ClientError> {
        let r = self
            .call(
                0,
                json!({
                    "name": "connect", "device": "", "os": std::env::consts::OS, "kernel": "",
                    "browser": "", "client": concat!("odd-gateway-client/", env!("CARGO_PKG_VERSION")),
                    "uuid": uuid, "parameters": {"token": token}
                }),
            )
            .await?;
        let r = r.ok()?;
        let info = r.info();
        self.uuid = info["uuid"].as_str().unwrap_or_default().to_string();
        self.user = serde_json::from_value(info["user"].clone()).unwrap_or_default();
        Ok(r)
    }

    fn next_txid(&self, pipe: u16) -> u16 {
        let mut t = self.txids.lock().unwrap_or_else(|e| e.into_inner());
        let n = t.entry(pipe).or_insert(0);
        *n = n.wrapping_add(1);
        if *n == 0 {
            *n = 1;
        }
        *n
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
        let mut body = CommandMessage::encode(crate::session::now_secs(), txid, &json, payload)
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
        self.tx
            .send(Outbound::Frame(frame))
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
        let _ = self.tx.send(Outbound::Close("client closed".into())).await;
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

async fn read_loop(
    mut inbound: mpsc::Receiver<Inbound>,
    pending: Pending,
    pushes: mpsc::UnboundedSender<Reply>,
    closed: Arc<Mutex<Option<String>>>,
) {
    let mut reassembler = Reassembler::new(64 * 1024 * 1024);
    let reason = loop {
        let frame = match inbound.recv().await {
            None => break "connection closed".to_string(),
            Some(Inbound::Failed(r)) | Some(Inbound::Violation(r)) => break r,
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
    if let Ok(mut c) = closed.lock() {
        *c = Some(reason);
    }
    // Fail every caller still waiting.
    if let Ok(mut p) = pending.lock() {
        p.clear();
    }
}
