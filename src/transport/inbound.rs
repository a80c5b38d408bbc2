//! The queue from a transport's reader (or, on QUIC, its stream readers) up to the session.
//!
//! A flume channel, whose buffer is allocated on the first frame rather than with the channel (tokio's mpsc
//! allocates a 32-slot block per channel: ~1.5 KB of every idle connection), plus what flume lacks: a way for
//! readers to notice that the session is gone (`closed`), so a reader stops even when the peer never sends
//! again.

use tokio_util::sync::{CancellationToken, DropGuard};

use super::link::Inbound;

/// A queue of `frames` items: the readers' end and the session's.
pub fn inbound_queue(frames: usize) -> (InboundTx, InboundRx) {
    let (tx, rx) = flume::bounded(frames);
    let gone = CancellationToken::new();
    (
        InboundTx {
            tx,
            gone: gone.clone(),
        },
        InboundRx {
            rx,
            _gone: gone.drop_guard(),
        },
    )
}

#[derive(Clone)]
pub struct InboundTx {
    tx: flume::Sender<Inbound>,
    gone: CancellationToken,
}

impl InboundTx {
    /// Waits for room; gives the item back when the session is gone.
    pub async fn send(&self, item: Inbound) -> Result<(), Inbound> {
        self.tx.send_async(item).await.map_err(|e| e.into_inner())
    }

    /// Resolves once the session has dropped its end.
    pub async fn closed(&self) {
        self.gone.cancelled().await
    }

    /// A handle that does not keep the queue open.
    pub fn downgrade(&self) -> WeakInboundTx {
        WeakInboundTx {
            tx: self.tx.downgrade(),
            gone: self.gone.clone(),
        }
    }
}

pub struct WeakInboundTx {
    tx: flume::WeakSender<Inbound>,
    gone: CancellationToken,
}

impl WeakInboundTx {
    /// The queue, while some reader still holds it open.
    pub fn upgrade(&self) -> Option<InboundTx> {
        Some(InboundTx {
            tx: self.tx.upgrade()?,
            gone: self.gone.clone(),
        })
    }
}

/// The session's end. Dropping it tells the readers (`InboundTx::closed`).
pub struct InboundRx {
    rx: flume::Receiver<Inbound>,
    _gone: DropGuard,
}

impl InboundRx {
    /// The next item; `None` once every reader is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Inbound> {
        self.rx.recv_async().await.ok()
    }
}

impl std::fmt::Debug for InboundRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundRx")
            .field("queued", &self.rx.len())
            .finish()
    }
}
