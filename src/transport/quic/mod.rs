//! QUIC: every bidirectional stream of a connection carries length-delimited frames exactly like TCP, and all
//! streams of a connection feed one session.
//!
//! Routing keeps pipes independent: the gateway answers and pushes a pipe's frames on the stream that pipe
//! last spoke on (pipe 0 and pipes not yet heard from: the connection's first stream). A batch's frames are
//! handed to quinn directly, one chunk per stream; what quinn cannot take yet waits in that stream's own queue
//! and task (`stream.rs`), so an 8 MiB file on one pipe never waits behind, or holds up, chat on another.
//! The client library does the mirror image: one stream per pipe, opened on first use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::FutureExt;
use tokio::sync::Notify;
use tracing::debug;

use super::inbound::{InboundTx, WeakInboundTx};
use super::link::{Inbound, Link, LinkInfo, Writer, INBOUND_QUEUE};
use super::loops::{read_loop, write_loop, FrameSink};
use super::tcp::Delimited;
use crate::protocol::Frame;
use stream::{HandOver, StreamOut, DRAIN};

/// The ALPN protocol id clients must offer.
pub const ALPN: &[u8] = b"odd-im";

/// Application close codes.
pub const CLOSE_NORMAL: u32 = 0;
pub const CLOSE_PROTOCOL: u32 = 1;
/// Abandoned, not ended on purpose (a dead path, a session moved): the gateway keeps the session to resume.
pub const CLOSE_ABANDONED: u32 = 2;

/// Bidirectional streams a client may have open at most: one per pipe it may hold (`limits.max_pipes`) plus
/// pipe 0's. quinn sets up state for every stream a peer may open (~85 bytes each, both directions), so a
/// connection starts with `INITIAL_STREAMS` and is allowed more as it opens them (`accept_streams`).
pub fn max_streams(max_pipes: usize) -> u32 {
    u32::try_from(max_pipes.saturating_add(1)).unwrap_or(u32::MAX)
}

/// The most streams the Rust client opens for pipes other than 0. Pipe ids move upward as pipes are released
/// and created again, so a stream per pipe id would run out of streams on a long-lived connection; instead
/// pipe `p` shares stream `(p - 1) % CLIENT_PIPE_STREAMS`. Pipes on different streams never wait for each
/// other; two pipes sharing one keep their own order, one behind the other.
pub const CLIENT_PIPE_STREAMS: u16 = 16;

/// Streams a QUIC connection may open at first, and how many more than it has opened it is allowed later
/// (see `accept_streams`).
pub(super) const INITIAL_STREAMS: u32 = 4;
const STREAM_HEADROOM: u32 = 4;

/// What one stream's writer may hold beyond what quinn has taken (quinn takes what the peer's flow control
/// allows). A gateway holds a client that does not read to the bounds of its outgoing queue
/// (`limits.outbound_queue` frames, `limits.outbound_queue_bytes`) and then cuts it as a slow consumer, as TCP
/// does when that queue overflows: without a bound in bytes a QUIC client that stopped reading had the gateway
/// hold every push for it (a test saw 32 MB). A client's own streams hold its own sends.
#[derive(Debug, Clone, Copy)]
pub struct StreamBounds {
    pub frames: usize,
    pub bytes: usize,
}

impl StreamBounds {
    pub const CLIENT: StreamBounds = StreamBounds {
        frames: 4096,
        bytes: usize::MAX,
    };
}

/// What a stream's read buffer starts at (it grows with what arrives): reading a QUIC stream copies from
/// quinn's buffers, no system call, so a small buffer costs nothing while it spares idle connections memory.
const STREAM_READ_BUFFER: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts the peer's streams and routes each pipe to the stream it last spoke on.
    Server,
    /// Opens one stream per pipe on first use.
    Client,
}

#[derive(Default)]
struct Streams {
    /// Per stream: the way into it (`stream.rs`).
    queues: Vec<StreamOut>,
    /// pipe -> index into `queues`.
    routes: HashMap<u16, usize>,
    /// Client only: the stream opened for each slot (pipe 0, then `CLIENT_PIPE_STREAMS` shared slots).
    slots: HashMap<u16, usize>,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

struct Shared {
    streams: Mutex<Streams>,
    first: Notify,
    frame_limit: crate::transport::FrameLimit,
    bounds: StreamBounds,
    early: Option<Arc<early::Early>>,
    /// The connection, for a stream reader to say why it ended (`ends.rs`).
    conn: quinn::Connection,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the writer and reader of a new stream; returns its index.
    fn add_stream(
        self: &Arc<Self>,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        tx: InboundTx,
        role: Role,
    ) -> usize {
        let (out, writer) = StreamOut::start(send, self.bounds);
        let idx = {
            let mut s = self.lock();
            s.queues.push(out);
            s.writers.push(writer);
            s.queues.len() - 1
        };
        tokio::spawn(read_stream(recv, idx, tx, self.clone(), role));
        self.first.notify_waiters();
        idx
    }
}

/// What a link holds besides its connection.
#[derive(Default)]
pub struct Extras {
    /// A client's own endpoint, kept until its close has been sent.
    pub endpoint: Option<quinn::Endpoint>,
    /// A server connection accepted in 0.5-RTT: its frames wait for the handshake (`early.rs`).
    pub early: Option<Arc<early::Early>>,
}

/// Turns a QUIC connection into a `Link`.
pub fn link(
    conn: quinn::Connection,
    info: LinkInfo,
    frame_limit: crate::transport::FrameLimit,
    role: Role,
    max_streams: u32,
    bounds: StreamBounds,
    extras: Extras,
) -> Link {
    let Extras {
        endpoint: keep,
        early,
    } = extras;
    let (tx, inbound) = crate::transport::inbound_queue(INBOUND_QUEUE);
    let shared = Arc::new(Shared {
        streams: Mutex::new(Streams::default()),
        first: Notify::new(),
        frame_limit: frame_limit.clone(),
        bounds,
        early,
        conn: conn.clone(),
    });
    if role == Role::Server {
        tokio::spawn(accept_streams(
            conn.clone(),
            tx.clone(),
            shared.clone(),
            max_streams,
        ));
    }
    if role == Role::Client {
        // The server learns why the connection ended from `accept_streams`; a client has no such task.
        let watcher = conn.clone();
        let watch_tx = tx.clone();
        tokio::spawn(async move { report_end(watcher.closed().await, &watch_tx).await });
    }
    // The writer only needs the inbound queue to start readers for streams it opens; a weak handle keeps it
    // from holding the queue open after the connection is gone.
    let inbound_tx = tx.downgrade();
    drop(tx);
    Link {
        info,
        frame_limit,
        inbound,
        writer: Writer::new(move |rx| async move {
            let sink = QuicSink {
                conn,
                shared,
                role,
                tx: inbound_tx,
                batch: Vec::new(),
                failed: None,
            };
            let rx = write_loop(sink, rx, None).await;
            // A client's own endpoint: let the close frame reach the gateway before it goes (bounded), so
            // the gateway sees a clean close instead of waiting for its idle timeout.
            if let Some(endpoint) = keep {
                let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
            }
            rx
        }),
    }
}

/// Tells the session why the connection ended (peer close, idle timeout, network loss); nothing when this
/// side closed it.
async fn report_end(e: quinn::ConnectionError, tx: &InboundTx) {
    if let Some(end) = ends::inbound_for(&e) {
        let _ = tx.send(end).await;
    }
}

/// Accepts the client's streams (and, when the connection ends, tells the session why). A connection starts with `INITIAL_STREAMS` allowed (quinn sets up state for
/// every stream a peer may open, so an idle connection holds only a few) and is allowed `STREAM_HEADROOM`
/// more than it has opened, up to `max_streams`, as it opens them: a client opening many pipes at once waits
/// at most one round trip for the extra allowance.
async fn accept_streams(
    conn: quinn::Connection,
    tx: InboundTx,
    shared: Arc<Shared>,
    max_streams: u32,
) {
    let mut opened: u32 = 0;
    let mut allowed = max_streams.min(INITIAL_STREAMS);
    loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    shared.add_stream(send, recv, tx.clone(), Role::Server);
                    opened = opened.saturating_add(1);
                    let want = opened.saturating_add(STREAM_HEADROOM).min(max_streams);
                    if want > allowed {
                        allowed = want;
                        conn.set_max_concurrent_bi_streams(allowed.into());
                    }
                }
                Err(e) => {
                    debug!(error = %e, "quic connection ended");
                    report_end(e, &tx).await;
                    return;
                }
            },
            _ = tx.closed() => return,
        }
    }
}

async fn read_stream(
    recv: quinn::RecvStream,
    idx: usize,
    tx: InboundTx,
    shared: Arc<Shared>,
    role: Role,
) {
    // One stream ending is not the connection ending: the reader just stops.
    let frames = Delimited::with_capacity(recv, shared.frame_limit.clone(), STREAM_READ_BUFFER);
    let frames = ends::Ending::new(frames, shared.conn.clone());
    let frames = early::Gated::new(frames, shared.early.clone());
    read_loop(frames, tx, None, |f| {
        if role == Role::Server {
            shared.lock().routes.insert(f.pipe, idx);
        }
    })
    .await;
}

/// The client's stream slot for `pipe`: 0 for the connection itself, else one of `CLIENT_PIPE_STREAMS`.
fn client_slot(pipe: u16) -> u16 {
    if pipe == 0 {
        0
    } else {
        (pipe - 1) % CLIENT_PIPE_STREAMS + 1
    }
}

/// Picks (or, for a client, opens) the stream for `pipe`.
async fn stream_for(
    conn: &quinn::Connection,
    shared: &Arc<Shared>,
    pipe: u16,
    role: Role,
    tx: &WeakInboundTx,
) -> Option<(usize, StreamOut)> {
    loop {
        {
            let s = shared.lock();
            let idx = match role {
                Role::Server => s.routes.get(&pipe).copied().or(if s.queues.is_empty() {
                    None
                } else {
                    Some(0)
                }),
                Role::Client => s.routes.get(&pipe).copied(),
            };
            if let Some(i) = idx {
                return s.queues.get(i).cloned().map(|q| (i, q));
            }
        }
        match role {
            Role::Server => {
                // Nothing to answer on until the client opens its first stream.
                let notified = shared.first.notified();
                if !shared.lock().queues.is_empty() {
                    continue;
                }
                tokio::select! {
                    _ = notified => continue,
                    _ = conn.closed() => return None,
                }
            }
            Role::Client => {
                let slot = client_slot(pipe);
                let existing = shared.lock().slots.get(&slot).copied();
                let idx = match existing {
                    Some(idx) => idx,
                    None => {
                        let tx = tx.upgrade()?;
                        let open = conn.open_bi();
                        // A gateway allows `max_pipes + 1` streams, which may be fewer than our slots: when it
                        // grants no more right now, this pipe shares a stream already open.
                        let share = {
                            let n = shared.lock().queues.len();
                            (n > 0).then(|| usize::from(slot) % n)
                        };
                        let (send, recv) = match (open.now_or_never(), share) {
                            (Some(opened), _) => opened.ok()?,
                            (None, Some(idx)) => {
                                shared.lock().routes.insert(pipe, idx);
                                continue;
                            }
                            (None, None) => conn.open_bi().await.ok()?,
                        };
                        let idx = shared.add_stream(send, recv, tx, Role::Client);
                        shared.lock().slots.insert(slot, idx);
                        idx
                    }
                };
                shared.lock().routes.insert(pipe, idx);
            }
        }
    }
}

/// Writes each frame to the stream of its pipe (see the module doc). A batch's frames are gathered per stream
/// and handed to quinn at the batch's flush, one chunk per stream (`stream.rs`); closing waits for the
/// streams' tasks, then closes the connection with the reason.
struct QuicSink {
    conn: quinn::Connection,
    shared: Arc<Shared>,
    role: Role,
    tx: WeakInboundTx,
    /// This batch so far, per stream: (stream index, the stream, length-prefixed frames, how many).
    batch: Vec<(usize, StreamOut, BytesMut, usize)>,
    /// Why the connection must close with an error code: a stream's queue overflowed, so the peer does not
    /// read, and the session is told (`Inbound::SlowConsumer`) before the connection closes.
    failed: Option<String>,
}

impl QuicSink {
    fn slow_consumer(&mut self) -> Result<(), ()> {
        self.failed = Some("slow consumer: stream queue full".to_string());
        Err(())
    }

    /// Hands each stream its part of the batch.
    fn hand_over(&mut self) -> Result<(), ()> {
        for (_, stream, bytes, frames) in std::mem::take(&mut self.batch) {
            match stream.hand_over(bytes.freeze(), frames) {
                Ok(()) => {}
                Err(HandOver::SlowConsumer) => return self.slow_consumer(),
                Err(HandOver::Closed) => return Err(()),
            }
        }
        Ok(())
    }
}

impl FrameSink for QuicSink {
    async fn feed(&mut self, frame: Frame, seq: u16) -> Result<(), ()> {
        let Some((idx, stream)) =
            stream_for(&self.conn, &self.shared, frame.pipe, self.role, &self.tx).await
        else {
            return Err(());
        };
        let wire = u32::try_from(frame.wire_len()).map_err(|_| ())?;
        let at = match self.batch.iter().position(|(i, ..)| *i == idx) {
            Some(at) => at,
            None => {
                self.batch.push((idx, stream, BytesMut::new(), 0));
                self.batch.len() - 1
            }
        };
        let (_, _, bytes, frames) = &mut self.batch[at];
        bytes.reserve(4 + frame.wire_len());
        bytes.put_u32(wire);
        frame.encode(seq, bytes);
        *frames += 1;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ()> {
        self.hand_over()
    }

    async fn finish(mut self, close: Option<String>) {
        // A close ends the write loop without a flush: what the batch holds goes first.
        if self.failed.is_none() {
            let _ = self.hand_over();
        }
        if self.failed.is_some() {
            // Before the streams are drained (they will not be: the peer does not read), so the session ends
            // as a slow consumer rather than as a lost connection kept for a reconnect.
            if let Some(tx) = self.tx.upgrade() {
                let _ = tokio::time::timeout(DRAIN, tx.send(Inbound::SlowConsumer)).await;
            }
        }
        let (code, reason) = match (self.failed, close) {
            (Some(failed), _) => (CLOSE_PROTOCOL, failed),
            (None, Some(reason)) => (CLOSE_NORMAL, reason),
            // Detached (a session parked or moved, a client reconnecting elsewhere): not a goodbye.
            (None, None) => (CLOSE_ABANDONED, "abandoned".to_string()),
        };
        // Let every stream flush and be acknowledged, then close the connection with the reason.
        let writers = {
            let mut s = self.shared.lock();
            s.queues.clear();
            std::mem::take(&mut s.writers)
        };
        let _ = tokio::time::timeout(DRAIN, futures::future::join_all(writers)).await;
        let reason = super::link::truncate_reason(&reason, 200);
        self.conn
            .close(quinn::VarInt::from_u32(code), reason.as_bytes());
    }
}

pub mod early;
mod endpoint;
mod ends;
mod stream;
pub use endpoint::{
    connect, serve, server_config, server_endpoint, Congestion, Sending, EARLY_REJECTED,
};
