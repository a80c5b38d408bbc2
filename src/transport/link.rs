//! The seam between a transport and the session layer.

use std::fmt;
use std::net::SocketAddr;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::protocol::{Frame, FrameError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Tcp,
    Tls,
    Quic,
    WebSocket,
}

impl TransportKind {
    pub const ALL: [TransportKind; 4] = [
        TransportKind::Tcp,
        TransportKind::Tls,
        TransportKind::Quic,
        TransportKind::WebSocket,
    ];

    /// The `transport` label of metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
            TransportKind::Quic => "quic",
            TransportKind::WebSocket => "ws",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LinkInfo {
    pub kind: TransportKind,
    pub peer: SocketAddr,
}

/// What a transport's reader hands up.
#[derive(Debug)]
pub enum Inbound {
    /// A frame; `wire_len` is its size on the wire without the transport's own delimiting.
    Frame(Frame),
    /// Bytes that were delimited fine but are not a valid frame. The stream is still in sync.
    Malformed(FrameError),
    /// The peer broke the transport's rules (oversized length prefix, text on a WebSocket): the connection
    /// cannot go on and the session must not be kept for a reconnect.
    Violation(String),
    /// The transport was lost (I/O error, reset, QUIC idle timeout): a reconnect may resume the session.
    Failed(String),
    /// The peer closed on purpose (a QUIC application close, a WebSocket close frame): the session ends now
    /// instead of waiting for a reconnect that will not come.
    Closed(String),
    /// The transport's own buffers for this client filled up (a QUIC stream the client does not read): the
    /// session ends as a slow consumer, as when its outgoing queue overflows.
    SlowConsumer,
}

/// What the session layer hands down.
#[derive(Debug)]
pub enum Outbound {
    Frame(Frame),
    /// Flush what is queued, close with this reason, and stop.
    Close(String),
    /// A frame counted against its outbox's byte budget until a writer takes it (see `Outbox`).
    Queued(Frame, QueueTicket),
    /// Several pushes for one recipient from one journal batch, in order: one queue item and one wake-up for
    /// the writer instead of one per message, their bodies shared with the batch's other recipients.
    Shared(super::SharedBatch, QueueTicket),
    /// The last words for one transport only (the one whose writer runs under the `Stop` with this id): write
    /// the frame, then close with the reason. Any other writer skips it, so a goodbye meant for a transport
    /// that was taken over never reaches the transport that took the session over.
    /// Boxed: a rare item, and every queue slot is as large as the largest item (64 bytes).
    Farewell(Box<(Frame, String, u64)>),
    /// From now on, write what this other queue holds (a resumed session's queue, with the pushes that
    /// waited for the client), in place of the current one.
    Splice(OutboundRx),
}

pub type OutboundTx = super::queue::Sender<Outbound>;

/// Holds queued frames (their count and bytes) against their outbox's bounds and the process budget; gives
/// them back when dropped, i.e. when a writer takes them. Kept small (one pointer and two counts): it rides
/// in every queue slot, and a queue's first block of slots is allocated with every connection.
#[derive(Debug)]
pub struct QueueTicket {
    bytes: usize,
    frames: u32,
    counters: QueueCounters,
}

/// Frames and bytes waiting in one outbox's queue (a batch is one queue item but many frames), and the
/// process budget they are charged to: one shared allocation per outbox.
#[derive(Debug, Clone)]
pub struct QueueCounters(std::sync::Arc<Counts>);

#[derive(Debug)]
struct Counts {
    bytes: std::sync::atomic::AtomicUsize,
    frames: std::sync::atomic::AtomicUsize,
    budget: super::MemoryBudget,
}

impl QueueCounters {
    pub fn new(budget: super::MemoryBudget) -> QueueCounters {
        QueueCounters(std::sync::Arc::new(Counts {
            bytes: Default::default(),
            frames: Default::default(),
            budget,
        }))
    }

    pub fn bytes(&self) -> usize {
        self.0.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn frames(&self) -> usize {
        self.0.frames.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn budget(&self) -> &super::MemoryBudget {
        &self.0.budget
    }

    /// Whether `frames` more frames of `len` bytes would pass `max_frames` or `max_bytes` or the process budget.
    /// A single item larger than `max_bytes` still goes into an empty queue.
    pub fn would_overflow(
        &self,
        frames: usize,
        len: usize,
        max_frames: usize,
        max_bytes: usize,
    ) -> bool {
        let queued = self.bytes();
        (queued > 0 && (queued.saturating_add(len) > max_bytes || !self.budget().has_room(len)))
            || self.frames().saturating_add(frames) > max_frames
    }
}

impl QueueTicket {
    pub fn new(bytes: usize, frames: usize, counters: QueueCounters) -> QueueTicket {
        use std::sync::atomic::Ordering::Relaxed;
        // A batch is one journal batch for one recipient: far below u32::MAX frames.
        let frames = u32::try_from(frames).unwrap_or(u32::MAX);
        counters.0.bytes.fetch_add(bytes, Relaxed);
        counters.0.frames.fetch_add(frames as usize, Relaxed);
        counters.0.budget.charge(bytes);
        QueueTicket {
            bytes,
            frames,
            counters,
        }
    }

    /// Takes over what `other` holds (from the same queue), so one ticket gives back a whole run of items.
    pub fn absorb(&mut self, mut other: QueueTicket) {
        self.bytes += other.bytes;
        self.frames = self.frames.saturating_add(other.frames);
        // `other` now holds nothing: its drop gives back nothing.
        (other.bytes, other.frames) = (0, 0);
    }
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let counts = &self.counters.0;
        counts.bytes.fetch_sub(self.bytes, Relaxed);
        counts.frames.fetch_sub(self.frames as usize, Relaxed);
        counts.budget.release(self.bytes);
    }
}
pub type OutboundRx = super::queue::Receiver<Outbound>;

/// A connection's outbound queue, bounded at `frames` items.
pub fn outbound_queue(frames: usize) -> (OutboundTx, OutboundRx) {
    super::queue::bounded(frames)
}

type StartFn = Box<dyn FnOnce(Source) -> BoxFuture<'static, OutboundRx> + Send>;

/// What a writer sees of the queue: frames and the close, never the queue's own bookkeeping (splices, tickets).
#[derive(Debug)]
pub enum ToWrite {
    Frame(Frame),
    /// Flush what is written, close with this reason, and stop.
    Close(String),
    /// Write this frame, then close with the reason.
    Farewell(Frame, String),
}

/// Detaches a writer from its queue (a session being parked keeps what is still queued). Checked before every
/// frame a writer takes, so the check is an atomic load; the token wakes a writer waiting for its queue.
#[derive(Clone, Debug)]
pub struct Stop {
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    token: CancellationToken,
    id: u64,
}

impl Default for Stop {
    fn default() -> Stop {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Stop {
            flag: Default::default(),
            token: CancellationToken::new(),
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Names the writer this stop detaches (see `Outbound::Farewell`).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn cancel(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Release);
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::Acquire)
    }

    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }
}

/// What a writer drains: the session's queue, which a `Splice` can swap, and which `stop` detaches from the
/// transport without consuming what is still queued (a session being parked keeps its pushes).
pub struct Source {
    rx: OutboundRx,
    stop: Stop,
    /// The rest of a batch being written (`None` between batches: an idle writer holds no batch).
    pending: Option<super::SharedBatch>,
}

impl Source {
    pub fn new(rx: OutboundRx, stop: Stop) -> Source {
        Source {
            rx,
            stop,
            pending: None,
        }
    }

    /// The next frame or close; `None` when stopped or when every sender is gone.
    pub async fn next(&mut self) -> Option<ToWrite> {
        loop {
            if self.stop.is_cancelled() {
                return None;
            }
            if let Some(frame) = self.pop_pending() {
                return Some(ToWrite::Frame(frame));
            }
            // What is queued already needs no waiting, nor the stop token's future (polling it takes the
            // token's lock: 2 % of the gateway's CPU in a fan-out profile); `stop` was checked above.
            let item = match self.rx.try_recv() {
                Ok(item) => item,
                Err(super::queue::TryRecvError::Disconnected) => return None,
                Err(super::queue::TryRecvError::Empty) => tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => return None,
                    item = self.rx.recv_async() => item.ok()?,
                },
            };
            if let Some(out) = self.take(item) {
                return Some(out);
            }
        }
    }

    /// Like `next`, without waiting.
    pub fn try_next(&mut self) -> Option<ToWrite> {
        loop {
            if self.stop.is_cancelled() {
                return None;
            }
            if let Some(frame) = self.pop_pending() {
                return Some(ToWrite::Frame(frame));
            }
            let item = self.rx.try_recv().ok()?;
            if let Some(out) = self.take(item) {
                return Some(out);
            }
        }
    }

    /// The next frame of the batch being written; the batch (its share of the bodies) goes with its last frame.
    fn pop_pending(&mut self) -> Option<Frame> {
        let batch = self.pending.as_mut()?;
        let frame = batch.take();
        if batch.is_empty() {
            self.pending = None;
        }
        frame
    }

    /// Applies a splice (nothing to write); turns anything else into what the writer writes.
    fn take(&mut self, item: Outbound) -> Option<ToWrite> {
        match item {
            Outbound::Splice(rx) => {
                self.rx = rx;
                None
            }
            // The ticket is dropped here: the frame leaves the queue's byte budget.
            Outbound::Queued(frame, _ticket) => Some(ToWrite::Frame(frame)),
            Outbound::Shared(batch, _ticket) => {
                // Taken only between batches: `next` and `try_next` finish the pending one first.
                self.pending = Some(batch);
                self.pop_pending().map(ToWrite::Frame)
            }
            Outbound::Frame(frame) => Some(ToWrite::Frame(frame)),
            Outbound::Close(reason) => Some(ToWrite::Close(reason)),
            Outbound::Farewell(last) if last.2 == self.stop.id() => {
                let (frame, reason, _) = *last;
                Some(ToWrite::Farewell(frame, reason))
            }
            // A goodbye for the transport this queue was taken from.
            Outbound::Farewell(..) => None,
        }
    }

    /// The stop that detaches this writer: it also cuts short a write the transport does not take.
    pub fn stop(&self) -> Stop {
        self.stop.clone()
    }

    /// The queue, with whatever it still holds: the unwritten rest of a batch first, then the queue itself
    /// (through a splice), so a parked session loses nothing.
    pub fn into_rx(self) -> OutboundRx {
        let Some(mut batch) = self.pending.filter(|b| !b.is_empty()) else {
            return self.rx;
        };
        let (tx, rx) = outbound_queue(batch.len() + 1);
        while let Some(frame) = batch.take() {
            let _ = tx.try_send(Outbound::Frame(frame));
        }
        let _ = tx.try_send(Outbound::Splice(self.rx));
        rx
    }
}

/// The sending half of a transport, not yet running.
pub struct Writer {
    start: StartFn,
}

impl Writer {
    pub fn new<F, Fut>(f: F) -> Writer
    where
        F: FnOnce(Source) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = OutboundRx> + Send + 'static,
    {
        Writer {
            start: Box::new(move |rx| Box::pin(f(rx))),
        }
    }

    /// Spawns the writer task. It returns the channel when the transport closes or fails, or as soon as
    /// `stop` is cancelled (leaving what is queued in it).
    pub fn start(self, rx: OutboundRx, stop: Stop) -> JoinHandle<OutboundRx> {
        tokio::spawn((self.start)(Source::new(rx, stop)))
    }
}

/// One connection, as the session layer sees it.
pub struct Link {
    pub info: LinkInfo,
    /// The longest frame its reader accepts (`limit.rs`): the session raises it after `connect`.
    pub frame_limit: super::FrameLimit,
    /// Closed when the peer is gone.
    pub inbound: super::InboundRx,
    pub writer: Writer,
}

/// Inbound frames buffered between a transport's reader and its session. Small: when the session is busy the
/// reader stops reading, and the transport's own flow control pushes back on the client.
pub const INBOUND_QUEUE: usize = 64;

/// Most frames a writer encodes before it flushes, so one busy connection cannot starve the flush.
pub const WRITE_BATCH: usize = 128;

/// A close reason cut to `max` bytes on a character boundary (QUIC and WebSocket close frames bound it).
/// Someone else's text made fit for one line of a log or a status: at most `max` bytes, and every character
/// that could steer a terminal or hide text (`protocol::args::rooms::steers_text`) a space.
pub fn one_line(text: &str, max: usize) -> String {
    truncate_reason(text, max)
        .chars()
        .map(|c| {
            if crate::protocol::args::rooms::steers_text(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

pub fn truncate_reason(reason: &str, max: usize) -> &str {
    if reason.len() <= max {
        return reason;
    }
    let mut end = max;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_label_every_transport() {
        let labels = super::TransportKind::ALL.map(super::TransportKind::as_str);
        assert_eq!(labels, crate::metrics::TRANSPORTS);
    }
}
