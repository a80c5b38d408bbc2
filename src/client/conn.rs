//! What the client's parts share: the queue to the transport, the requests waiting for answers, the push
//! queue to the app, and how a command on pipe 0 is framed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::reply::Reply;
use crate::protocol::{CommandMessage, Frame, MessageType};
use crate::transport::{Outbound, OutboundTx};

/// Requests waiting for their answer, by (pipe, transaction id).
pub(super) type Pending = Arc<Mutex<HashMap<(u16, u16), oneshot::Sender<Reply>>>>;

/// How long `call` waits for an answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The code of the push a client emits to its app after reconnecting (never sent by the gateway).
pub const RECONNECTED: &str = "Client.Reconnected";

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

/// The frame of a command on pipe 0.
pub(super) fn command(txid: u16, args: &Value) -> Option<Outbound> {
    command_on(0, txid, args)
}

/// The frame of a command (no payload) on `pipe`.
pub(super) fn command_on(pipe: u16, txid: u16, args: &Value) -> Option<Outbound> {
    let json = serde_json::to_vec(args).ok()?;
    let body = CommandMessage::encode(crate::clock::now_secs(), txid, &json, &[]).ok()?;
    Some(Outbound::Frame(Frame::new(
        MessageType::Command,
        pipe,
        body,
    )))
}

/// What the background task shares with the `Client`.
#[derive(Clone)]
pub(super) struct Conn {
    pub(super) tx: Arc<Mutex<OutboundTx>>,
    pub(super) writer: WriterTask,
    pub(super) txids: Arc<Mutex<HashMap<u16, u16>>>,
    pub(super) pending: Pending,
    pub(super) pushes: mpsc::UnboundedSender<Reply>,
    pub(super) closed: Arc<Mutex<Option<String>>>,
}

/// The push a client emits to its app after reconnecting.
pub(super) fn reconnected(info: Value) -> Reply {
    Reply {
        pipe: 0,
        txid: 0,
        timestamp: crate::clock::now_secs(),
        args: json!({"name": "status", "level": "status", "code": RECONNECTED,
                     "description": "reconnected", "info": info}),
        raw_args: Bytes::new(),
        payload: Bytes::new(),
    }
}
