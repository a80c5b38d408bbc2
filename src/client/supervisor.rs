//! The client's background side: one task per client reads the transport, hands each answer to the request
//! waiting for it (by pipe and transaction id) and everything else to the app's push queue, and, for a client
//! opened by URL, reconnects and resumes the session when the transport is lost without a goodbye.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::reply::Reply;
use super::url::{ClientOptions, Endpoint};
use crate::protocol::{CommandMessage, Frame, Message, MessageType, Reassembler};
use crate::transport::{Inbound, Outbound, OutboundTx};

/// Requests waiting for their answer, by (pipe, transaction id).
pub(super) type Pending = Arc<Mutex<HashMap<(u16, u16), oneshot::Sender<Reply>>>>;

/// How long `call` waits for an answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

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
pub(super) struct Reconnect {
    pub(super) endpoint: Endpoint,
    pub(super) options: ClientOptions,
    /// (token, uuid) of the session to resume; set by a successful handshake.
    pub(super) session: Mutex<Option<(String, String)>>,
    /// The client closed on purpose: do not come back.
    pub(super) done: std::sync::atomic::AtomicBool,
}

/// The current transport's writer task: `close` waits for it, so the close reaches the wire before the
/// program exits (a QUIC close frame, a WebSocket close, a TCP shutdown) and the gateway sees a clean close.
pub(super) type WriterTask =
    Arc<Mutex<Option<tokio::task::JoinHandle<crate::transport::OutboundRx>>>>;

pub(super) fn close_reason(closed: &Mutex<Option<String>>) -> String {
    closed
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .unwrap_or_else(|| "connection closed".to_string())
}

pub(super) fn next_txid(txids: &Mutex<HashMap<u16, u16>>, pipe: u16) -> u16 {
    let mut t = txids.lock().unwrap_or_else(|e| e.into_inner());
    let n = t.entry(pipe).or_insert(0);
    *n = n.wrapping_add(1);
    if *n == 0 {
        *n = 1;
    }
    *n
}

pub(super) fn connect_args(token: &str, uuid: &str) -> Value {
    json!({
        "name": "connect", "device": "", "os": std::env::consts::OS, "kernel": "",
        "browser": "", "client": concat!("odd-gateway-client/", env!("CARGO_PKG_VERSION")),
        "uuid": uuid, "parameters": {"token": token}
    })
}

/// What the background task shares with the `Client`.
pub(super) struct Conn {
    pub(super) tx: Arc<Mutex<OutboundTx>>,
    pub(super) writer: WriterTask,
    pub(super) txids: Arc<Mutex<HashMap<u16, u16>>>,
    pub(super) pending: Pending,
    pub(super) pushes: mpsc::UnboundedSender<Reply>,
    pub(super) closed: Arc<Mutex<Option<String>>>,
}

/// Reads the transport; when it is lost (and nobody said goodbye), reconnects and resumes the session.
pub(super) async fn supervise(
    first: crate::transport::InboundRx,
    conn: Conn,
    reconnect: Option<Arc<Reconnect>>,
) {
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
) -> Option<crate::transport::InboundRx> {
    let deadline = tokio::time::Instant::now() + RECONNECT_FOR;
    let mut backoff = Duration::from_millis(50);
    while tokio::time::Instant::now() < deadline {
        if rc.done.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        if let Ok(link) = rc.endpoint.open(&rc.options).await {
            let (tx, rx) = crate::transport::outbound_queue(1024);
            let task = link.writer.start(rx, crate::transport::Stop::new());
            *conn.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
            *conn.tx.lock().unwrap_or_else(|e| e.into_inner()) = tx.clone();
            let mut inbound = link.inbound;
            let txid = next_txid(&conn.txids, 0);
            let json = serde_json::to_vec(&connect_args(token, uuid)).ok()?;
            let body = CommandMessage::encode(crate::clock::now_secs(), txid, &json, &[]).ok()?;
            if tx
                .send_async(Outbound::Frame(Frame::new(MessageType::Command, 0, body)))
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
async fn answer(inbound: &mut crate::transport::InboundRx, txid: u16) -> Option<Reply> {
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
    mut inbound: crate::transport::InboundRx,
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
            Some(Inbound::SlowConsumer) => break "the gateway does not read".to_string(),
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
