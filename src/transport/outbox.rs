//! The way into a connection's outgoing queue, for its own session and for anyone pushing to it.
//!
//! The queue is bounded. The session's own replies wait for room (briefly: a client that stops reading its
//! answers is cut off after `REPLY_WAIT`); pushes from other connections never wait: when the queue is full the
//! receiver is a slow consumer, `overflowed` fires, and its session closes it. So one slow phone can never
//! slow a room down.

use std::time::Duration;

use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};
use tokio_util::sync::CancellationToken;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::budget::MemoryBudget;
use super::link::{Outbound, OutboundTx, QueueTicket};
use crate::metrics::LinkMetrics;
use crate::protocol::{Frame, MessageType};

/// How long a session waits for its client to make room for an answer before giving up on it.
pub const REPLY_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Outbox {
    tx: OutboundTx,
    overflowed: CancellationToken,
    /// The same fact as `overflowed`, read on every push: an atomic load instead of the token's mutex.
    overflow_flag: Arc<AtomicBool>,
    metrics: Option<LinkMetrics>,
    /// Bytes of frames waiting in the queue, and the most pushes may fill it to: a queue of large files is
    /// bounded by memory, not only by count.
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    /// The process-wide ceiling (see budget.rs).
    budget: MemoryBudget,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undeliverable {
    /// The client does not read fast enough; it is being cut off.
    SlowConsumer,
    /// The connection is closed or closing.
    Closed,
}

impl Outbox {
    pub fn new(tx: OutboundTx) -> Outbox {
        Outbox {
            tx,
            overflowed: CancellationToken::new(),
            overflow_flag: Arc::default(),
            metrics: None,
            queued_bytes: Arc::default(),
            max_bytes: usize::MAX,
            budget: MemoryBudget::unlimited(),
        }
    }

    /// Counts what this outbox queues against the process-wide budget.
    pub fn with_budget(mut self, budget: MemoryBudget) -> Outbox {
        self.budget = budget;
        self
    }

    /// Bounds the bytes pushes may queue (a single frame larger than the bound still goes into an empty queue).
    pub fn with_byte_limit(mut self, max_bytes: usize) -> Outbox {
        self.max_bytes = max_bytes;
        self
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    fn ticket(&self, frame: Frame) -> Outbound {
        let len = frame.wire_len();
        Outbound::Queued(
            frame,
            QueueTicket::new(len, self.queued_bytes.clone(), self.budget.clone()),
        )
    }

    /// An outbox that counts what it queues and drops.
    pub fn with_metrics(tx: OutboundTx, metrics: LinkMetrics) -> Outbox {
        Outbox {
            metrics: Some(metrics),
            ..Outbox::new(tx)
        }
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
        let queued = self.queued_bytes();
        if queued > 0 && (queued + len > self.max_bytes || !self.budget.has_room(len)) {
            return Err(self.cut());
        }
        match self.tx.try_send(self.ticket(frame)) {
            Ok(()) => {
                self.count(kind, len);
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(self.cut()),
            Err(TrySendError::Closed(_)) => Err(Undeliverable::Closed),
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

    /// Queues the session's own answer, waiting up to `REPLY_WAIT` for room.
    pub async fn reply(&self, frame: Frame) -> Result<(), Undeliverable> {
        let (kind, len) = (frame.kind, frame.wire_len());
        match self.tx.send_timeout(self.ticket(frame), REPLY_WAIT).await {
            Ok(()) => {
                self.count(kind, len);
                Ok(())
            }
            Err(SendTimeoutError::Timeout(_)) => {
                self.mark_overflowed();
                Err(Undeliverable::SlowConsumer)
            }
            Err(SendTimeoutError::Closed(_)) => Err(Undeliverable::Closed),
        }
    }

    /// Hands the writer another queue to drain from now on (a resumed session's).
    pub async fn splice(&self, queue: super::link::OutboundRx) -> Result<(), Undeliverable> {
        self.tx
            .send_timeout(Outbound::Splice(queue), REPLY_WAIT)
            .await
            .map_err(|_| Undeliverable::Closed)
    }

    /// Asks the transport to close after what is queued, without waiting for room.
    pub fn try_close(&self, reason: &str) {
        let _ = self.tx.try_send(Outbound::Close(reason.to_string()));
    }

    /// Asks the transport to flush and close. Waits for room, but not forever.
    pub async fn close(&self, reason: String) {
        let _ = self
            .tx
            .send_timeout(Outbound::Close(reason), REPLY_WAIT)
            .await;
    }

    fn mark_overflowed(&self) {
        self.overflow_flag.store(true, Ordering::Relaxed);
        self.overflowed.cancel();
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
        self.tx.max_capacity() - self.tx.capacity()
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
        let (tx, rx) = tokio::sync::mpsc::channel(16);
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
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let out = Outbox::new(tx).with_byte_limit(100);
        assert_eq!(out.push(frame(1000)), Ok(()));
    }
}
