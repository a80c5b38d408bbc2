//! The way into a connection's outgoing queue, for its own session and for anyone pushing to it.
//!
//! The queue is bounded. The session's own replies wait for room (briefly: a client that stops reading its
//! answers is cut off after `REPLY_WAIT`); pushes from other connections never wait: when the queue is full the
//! receiver is a slow consumer, `overflowed` fires, and its session closes it. So one slow phone can never
//! slow a room down.

use std::time::Duration;

use super::queue::TrySendError;
use tokio_util::sync::CancellationToken;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::budget::MemoryBudget;
use super::link::{Outbound, OutboundTx, QueueCounters, QueueTicket};
use crate::metrics::LinkMetrics;
use crate::protocol::{Frame, MessageType};

/// How long a session waits for its client to make room for an answer before giving up on it.
pub const REPLY_WAIT: Duration = Duration::from_secs(10);

/// A handle on one connection's queue. Cloned for every room the connection is in and for every journal batch
/// that reaches it, so a clone is one reference count: everything lives in `OutboxShared`.
#[derive(Clone, Debug)]
pub struct Outbox(Arc<OutboxShared>);

/// What every handle on one queue shares (read through `Outbox`).
#[derive(Clone, Debug)]
pub struct OutboxShared {
    tx: OutboundTx,
    overflowed: CancellationToken,
    /// The same fact as `overflowed`, read on every push: an atomic load instead of the token's mutex.
    overflow_flag: Arc<AtomicBool>,
    metrics: Option<LinkMetrics>,
    /// Bytes and frames waiting in the queue, and the process-wide ceiling they count against (budget.rs).
    queued: QueueCounters,
    /// The most bytes pushes may fill the queue with: a queue of large files is bounded by memory, not only
    /// by count.
    max_bytes: usize,
    /// The most frames pushes may queue (batches count each of their frames).
    max_frames: usize,
    /// The session is parked: the queue collects pushes for a client that is away (not a live delivery).
    away: Arc<AtomicBool>,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undeliverable {
    /// The client does not read fast enough; it is being cut off.
    SlowConsumer,
    /// The connection is closed or closing.
    Closed,
}

impl std::ops::Deref for Outbox {
    type Target = OutboxShared;
    fn deref(&self) -> &OutboxShared {
        &self.0
    }
}

impl Outbox {
    pub fn new(tx: OutboundTx) -> Outbox {
        Outbox(Arc::new(OutboxShared {
            tx,
            overflowed: CancellationToken::new(),
            overflow_flag: Arc::default(),
            metrics: None,
            queued: QueueCounters::new(MemoryBudget::unlimited()),
            max_bytes: usize::MAX,
            max_frames: usize::MAX,
            away: Arc::default(),
        }))
    }

    /// For the builders below, which run before the outbox is shared.
    fn build(&mut self) -> &mut OutboxShared {
        Arc::make_mut(&mut self.0)
    }

    /// Counts what this outbox queues against the process-wide budget.
    pub fn with_budget(mut self, budget: MemoryBudget) -> Outbox {
        // Only while building: nothing is queued yet, so fresh counters lose nothing.
        self.build().queued = QueueCounters::new(budget);
        self
    }

    /// Bounds the bytes pushes may queue (a single frame larger than the bound still goes into an empty queue).
    pub fn with_byte_limit(mut self, max_bytes: usize) -> Outbox {
        self.build().max_bytes = max_bytes;
        self
    }

    /// Bounds the frames pushes may queue (the queue's own capacity counts a batch as one item).
    pub fn with_frame_limit(mut self, max_frames: usize) -> Outbox {
        self.build().max_frames = max_frames;
        self
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.queued.bytes()
    }

    /// Whether `frames` more frames of `len` bytes would overflow this queue or the process budget (a single
    /// item larger than the bound still goes into an empty queue).
    fn over(&self, frames: usize, len: usize) -> bool {
        self.queued
            .would_overflow(frames, len, self.max_frames, self.max_bytes)
    }

    fn ticket(&self, frame: Frame) -> Outbound {
        let len = frame.wire_len();
        Outbound::Queued(frame, QueueTicket::new(len, 1, self.queued.clone()))
    }

    /// An outbox that counts what it queues and drops.
    pub fn with_metrics(tx: OutboundTx, metrics: LinkMetrics) -> Outbox {
        let mut outbox = Outbox::new(tx);
        outbox.build().metrics = Some(metrics);
        outbox
    }

    fn count(&self, kind: MessageType, len: usize) {
        if let Some(m) = &self.metrics {
            m.sent(kind, len);
        }
    }

    /// Queues a push without waiting.
    pub fn push(&self, frame: Frame) -> Result<(), Undeliverable> {
        if self.overflow_flag.load(Ordering::Relaxed) {
            return Err(Undeliverable::SlowConsumer);
        }
        let (kind, len) = (frame.kind, frame.wire_len());
        if self.over(1, len) {
            return Err(self.cut());
        }
        match self.tx.try_send(self.ticket(frame)) {
            Ok(()) => {
                self.count(kind, len);
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(self.cut()),
            Err(TrySendError::Disconnected(_)) => Err(Undeliverable::Closed),
        }
    }

    /// Queues one recipient's pushes of a journal batch as one item (one wake-up for the writer), without
    /// waiting; all or none. They are room pushes (Command frames): counted once per batch, not per frame.
    pub fn push_shared(&self, batch: super::SharedBatch) -> Result<(), Undeliverable> {
        if self.overflow_flag.load(Ordering::Relaxed) {
            return Err(Undeliverable::SlowConsumer);
        }
        let (n, len) = (batch.len(), batch.wire_len());
        if self.over(n, len) {
            return Err(self.cut());
        }
        let ticket = QueueTicket::new(len, n, self.queued.clone());
        match self.tx.try_send(Outbound::Shared(batch, ticket)) {
            Ok(()) => {
                if let Some(m) = &self.metrics {
                    m.sent_many(MessageType::Command, n, len);
                }
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(self.cut()),
            Err(TrySendError::Disconnected(_)) => Err(Undeliverable::Closed),
        }
    }

    /// A push found the queue full (in frames or bytes): the push is dropped and the connection marked as a
    /// slow consumer, which its session cuts off.
    fn cut(&self) -> Undeliverable {
        if let Some(m) = &self.metrics {
            m.dropped();
        }
        self.mark_overflowed();
        Undeliverable::SlowConsumer
    }

    /// Queues the session's own answer, waiting up to `REPLY_WAIT` for room: a free slot, and the queue's
    /// bytes and the process budget below their bounds (a replay of stored messages to a client that does not
    /// read waits here instead of piling up in memory).
    pub async fn reply(&self, frame: Frame) -> Result<(), Undeliverable> {
        let (kind, len) = (frame.kind, frame.wire_len());
        let deadline = tokio::time::Instant::now() + REPLY_WAIT;
        let mut pause = Duration::from_millis(1);
        while self.over(0, len) {
            if self.overflow_flag.load(Ordering::Relaxed) {
                return Err(Undeliverable::SlowConsumer);
            }
            if tokio::time::Instant::now() + pause > deadline {
                self.mark_overflowed();
                return Err(Undeliverable::SlowConsumer);
            }
            // The writer drains at the client's pace: look again soon, less often the longer it takes.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        match tokio::time::timeout_at(deadline, self.tx.send_async(self.ticket(frame))).await {
            Ok(Ok(())) => {
                self.count(kind, len);
                Ok(())
            }
            Err(_elapsed) => {
                self.mark_overflowed();
                Err(Undeliverable::SlowConsumer)
            }
            Ok(Err(_closed)) => Err(Undeliverable::Closed),
        }
    }

    /// Hands the writer another queue to drain from now on (a resumed session's).
    pub async fn splice(&self, queue: super::link::OutboundRx) -> Result<(), Undeliverable> {
        match tokio::time::timeout(REPLY_WAIT, self.tx.send_async(Outbound::Splice(queue))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Undeliverable::Closed),
        }
    }

    /// Asks the transport to close after what is queued, without waiting for room.
    pub fn try_close(&self, reason: &str) {
        let _ = self.tx.try_send(Outbound::Close(reason.to_string()));
    }

    /// The last words for the transport whose writer runs under `stop`: that writer writes `frame` and closes
    /// with `reason`; any later writer of this queue (a reconnect that took the session over) skips both.
    pub fn farewell(&self, frame: crate::protocol::Frame, reason: &str, stop: &super::Stop) {
        let _ = self.tx.try_send(Outbound::Farewell(Box::new((
            frame,
            reason.to_string(),
            stop.id(),
        ))));
    }

    /// Asks the transport to flush and close. Waits for room, but not forever.
    pub async fn close(&self, reason: String) {
        let _ = tokio::time::timeout(REPLY_WAIT, self.tx.send_async(Outbound::Close(reason))).await;
    }

    fn mark_overflowed(&self) {
        self.overflow_flag.store(true, Ordering::Relaxed);
        self.overflowed.cancel();
    }

    /// Marks the session parked (`true`) or back (`false`).
    pub fn set_away(&self, away: bool) {
        self.away.store(away, Ordering::Relaxed);
    }

    /// Whether the session is parked: what is pushed now waits for a reconnect.
    pub fn is_away(&self) -> bool {
        self.away.load(Ordering::Relaxed)
    }

    /// Whether the queue has overflowed (its connection is being cut off).
    pub fn is_overflowed(&self) -> bool {
        self.overflow_flag.load(Ordering::Relaxed)
    }

    /// Fires once the queue has overflowed.
    pub fn overflowed(&self) -> &CancellationToken {
        &self.overflowed
    }

    /// Frames waiting to be written.
    pub fn depth(&self) -> usize {
        self.tx.len()
    }

    pub fn same_as(&self, other: &Outbox) -> bool {
        self.tx.same_channel(&other.tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::link::Source;
    use bytes::Bytes;

    fn frame(len: usize) -> Frame {
        Frame::new(
            MessageType::Command,
            1,
            Bytes::from(vec![0u8; len - crate::protocol::HEADER_LEN]),
        )
    }

    #[tokio::test]
    async fn bytes_are_bounded_and_given_back_when_written() {
        let (tx, rx) = crate::transport::outbound_queue(16);
        let out = Outbox::new(tx).with_byte_limit(100);
        assert_eq!(out.push(frame(60)), Ok(()));
        assert_eq!(out.queued_bytes(), 60);
        // A second 60-byte push would pass 100 bytes: the receiver is a slow consumer.
        assert_eq!(out.push(frame(60)), Err(Undeliverable::SlowConsumer));
        assert!(out.overflowed().is_cancelled());
        let mut source = Source::new(rx, crate::transport::Stop::new());
        assert!(matches!(
            source.try_next(),
            Some(crate::transport::link::ToWrite::Frame(_))
        ));
        assert_eq!(
            out.queued_bytes(),
            0,
            "taken by the writer, no longer counted"
        );
    }

    #[tokio::test]
    async fn one_large_message_still_fits_an_empty_queue() {
        let (tx, _rx) = crate::transport::outbound_queue(16);
        let out = Outbox::new(tx).with_byte_limit(100);
        assert_eq!(out.push(frame(1000)), Ok(()));
    }

    /// A batch of `n` bodies `[1; 4]`, `[2; 4]`, ... all picked, on pipe 1.
    fn batch(n: u8) -> crate::transport::SharedBatch {
        let bodies = std::sync::Arc::new((1..=n).map(|i| Bytes::from(vec![i; 4])).collect());
        let mut picks = crate::transport::Picks::first(1, 0);
        for i in 1..u32::from(n) {
            picks.add(1, i);
        }
        crate::transport::SharedBatch::new(bodies, picks)
    }

    /// A batch is one queue item but counts as its frames (and their bytes) against the bounds.
    #[tokio::test]
    async fn a_batch_counts_each_of_its_frames() {
        let (tx, _rx) = crate::transport::outbound_queue(16);
        let out = Outbox::new(tx).with_frame_limit(4);
        assert_eq!(out.push_shared(batch(3)), Ok(()));
        assert_eq!(out.queued_bytes(), 3 * (crate::protocol::HEADER_LEN + 4));
        assert_eq!(
            out.push_shared(batch(2)),
            Err(Undeliverable::SlowConsumer),
            "3 + 2 frames pass the bound of 4"
        );
    }

    /// A writer stopped in the middle of a batch (its session being parked) hands back the rest of the batch
    /// ahead of the queue: nothing is lost or reordered.
    #[tokio::test]
    async fn the_rest_of_a_batch_survives_a_stop() {
        use crate::transport::link::ToWrite;
        let (tx, rx) = crate::transport::outbound_queue(16);
        let out = Outbox::new(tx);
        let numbered = |n: u8| Frame::new(MessageType::Command, 1, Bytes::from(vec![n; 4]));
        out.push_shared(batch(3)).expect("queued");
        out.push(numbered(4)).expect("queued");
        let stop = crate::transport::Stop::new();
        let mut source = Source::new(rx, stop.clone());
        let Some(ToWrite::Frame(first)) = source.try_next() else {
            panic!("the first frame of the batch");
        };
        assert_eq!(first.payload[0], 1);
        stop.cancel();
        assert!(source.try_next().is_none(), "stopped");
        let mut rest = Source::new(source.into_rx(), crate::transport::Stop::new());
        let mut got = Vec::new();
        while let Some(ToWrite::Frame(f)) = rest.try_next() {
            got.push(f.payload[0]);
        }
        assert_eq!(got, [2, 3, 4]);
    }
}
