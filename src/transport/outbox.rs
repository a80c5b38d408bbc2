//! The way into a connection's outgoing queue, for its own session and for anyone pushing to it.
//!
//! The queue is bounded. The session's own replies wait for room (briefly: a client that stops reading its
//! answers is cut off after `REPLY_WAIT`); pushes from other connections never wait: when the queue is full the
//! receiver is a slow consumer, `overflowed` fires, and its session closes it. So one slow phone can never
//! slow a room down.

use std::time::Duration;

use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};
use tokio_util::sync::CancellationToken;

use super::link::{Outbound, OutboundTx};
use crate::metrics::LinkMetrics;
use crate::protocol::{Frame, MessageType};

/// How long a session waits for its client to make room for an answer before giving up on it.
pub const REPLY_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Outbox {
    tx: OutboundTx,
    overflowed: CancellationToken,
    metrics: Option<LinkMetrics>,
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
            metrics: None,
        }
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
        if self.overflowed.is_cancelled() {
            return Err(Undeliverable::SlowConsumer);
        }
        let (kind, len) = (frame.kind, frame.wire_len());
        match self.tx.try_send(Outbound::Frame(frame)) {
            Ok(()) => {
                self.count(kind, len);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                if let Some(m) = &self.metrics {
                    m.dropped();
                }
                self.overflowed.cancel();
                Err(Undeliverable::SlowConsumer)
            }
            Err(TrySendError::Closed(_)) => Err(Undeliverable::Closed),
        }
    }

    /// Queues the session's own answer, waiting up to `REPLY_WAIT` for room.
    pub async fn reply(&self, frame: Frame) -> Result<(), Undeliverable> {
        let (kind, len) = (frame.kind, frame.wire_len());
        match self
            .tx
            .send_timeout(Outbound::Frame(frame), REPLY_WAIT)
            .await
        {
            Ok(()) => {
                self.count(kind, len);
                Ok(())
            }
            Err(SendTimeoutError::Timeout(_)) => {
                self.overflowed.cancel();
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
