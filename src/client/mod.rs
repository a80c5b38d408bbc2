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

mod commands;
mod conn;
mod error;
mod memory;
mod reply;
mod restore;
mod supervisor;
mod url;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub use conn::{CALL_TIMEOUT, RECONNECTED};
pub use error::ClientError;
pub use reply::Reply;
pub use url::{ClientOptions, Endpoint, PING_EVERY, PING_TIMEOUT, RECONNECT_FOR};

use conn::{close_reason, connect_args, next_txid, Conn, Pending, WriterTask};
use supervisor::{supervise, Reconnect};

use crate::protocol::args::User;
use crate::protocol::{CommandMessage, Frame, MessageType};
use crate::transport::{Link, Outbound, OutboundTx};

/// Messages larger than this are sent as fragments of this size.
pub const FRAGMENT_BYTES: usize = 256 * 1024;

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
            memory: Mutex::default(),
            strays: std::sync::atomic::AtomicU32::new(0),
            attempts: Mutex::default(),
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
        match c.handshake(token, "").await {
            Ok(_) => Ok(c),
            // QUIC: a gateway that no longer has our ticket (restarted, another node) refuses the `connect`
            // sent in 0-RTT and the connection is closed; the handshake just gave us a fresh ticket.
            Err(ClientError::Closed(_)) if url.starts_with("quic://") => {
                // The refusal may reach us before the connection's own watcher dropped the tickets.
                options.quic_tls.forget();
                let mut c = Client::open_with(url, options).await?;
                c.handshake(token, "").await?;
                Ok(c)
            }
            Err(e) => Err(e),
        }
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
        let (tx, rx) = crate::transport::outbound_queue(1024);
        let writer: WriterTask = Arc::new(Mutex::new(Some(
            link.writer.start(rx, crate::transport::Stop::new()),
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

    /// What a reconnecting client remembers (pipes, rooms, last mids); `None` for a client over a bare link.
    fn memory(&self) -> Option<std::sync::MutexGuard<'_, memory::Memory>> {
        self.reconnect.as_ref().map(|rc| rc.memory())
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
        tx.send_async(Outbound::Frame(frame))
            .await
            .map_err(|_| ClientError::Closed(self.close_reason()))
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

    /// Closes politely: says goodbye (`close`, so the gateway ends the session at once instead of keeping it
    /// for a reconnect, and the rooms see the user leave), then closes the transport.
    pub async fn close(self) {
        if let Some(rc) = &self.reconnect {
            rc.done.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if !self.uuid.is_empty() {
            let _ = self
                .notify(
                    0,
                    crate::protocol::commands::Command::to_args(&crate::protocol::args::Close {
                        reason: "client closed".into(),
                    }),
                )
                .await;
        }
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let _ = tx.send_async(Outbound::Close("client closed".into())).await;
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
