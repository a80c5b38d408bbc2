//! One QUIC stream's outgoing side: the connection's writer hands a batch's bytes straight to quinn, and only
//! what quinn cannot take yet (the peer's flow control is full) goes to the stream's own task, which waits for
//! quinn on that stream alone.
//!
//! So the common case costs no task hop (a push used to travel writer -> stream queue -> stream task ->
//! quinn), while a stream that must wait (an 8 MiB file the peer reads slowly) still never holds up the
//! connection's other streams. Order within a stream holds because the writer hands bytes over directly only
//! while the stream is not `busy`: from the moment anything is queued until the task has given quinn all of
//! it, under the same lock.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;

use super::StreamBounds;
use crate::transport::link::{QueueCounters, QueueTicket};
use crate::transport::queue::{self, TrySendError};

/// How long a closing connection waits for the peer to acknowledge what was sent.
pub(super) const DRAIN: Duration = Duration::from_secs(2);

/// What `StreamOut::hand_over` could not do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum HandOver {
    /// The stream's queue is full in frames or bytes: the peer does not read.
    SlowConsumer,
    /// The stream or the connection is gone.
    Closed,
}

/// The stream's sending half, shared by the connection's writer and the stream's task.
struct Out {
    send: Option<quinn::SendStream>,
    /// Bytes are queued for the stream's task or being written by it: the writer must queue behind them.
    busy: bool,
}

/// The way into one stream (cloned per frame routed to it).
#[derive(Clone)]
pub(super) struct StreamOut {
    out: Arc<Mutex<Out>>,
    tx: queue::Sender<(Bytes, QueueTicket)>,
    queued: QueueCounters,
    /// How much may wait in the queue (`limits.outbound_queue` and `outbound_queue_bytes` on the gateway).
    bounds: StreamBounds,
}

fn lock(out: &Mutex<Out>) -> MutexGuard<'_, Out> {
    // Nothing panics while holding it; a poisoned lock still guards a whole stream.
    out.lock().unwrap_or_else(|e| e.into_inner())
}

impl StreamOut {
    /// Starts the stream's task; the queue behind it is bounded by `bounds` (`limits.outbound_queue`).
    pub(super) fn start(
        send: quinn::SendStream,
        bounds: StreamBounds,
    ) -> (StreamOut, tokio::task::JoinHandle<()>) {
        let out = Arc::new(Mutex::new(Out {
            send: Some(send),
            busy: false,
        }));
        // Allocated on the first frame and given back when drained (`transport::queue`).
        let (tx, rx) = queue::bounded(bounds.frames);
        let task = tokio::spawn(write_stream(out.clone(), rx));
        let stream = StreamOut {
            out,
            tx,
            queued: QueueCounters::new(crate::transport::MemoryBudget::unlimited()),
            bounds,
        };
        (stream, task)
    }

    /// Gives quinn `chunk` (`frames` whole frames) now if it takes it, else queues what is left for the
    /// stream's task.
    pub(super) fn hand_over(&self, chunk: Bytes, frames: usize) -> Result<(), HandOver> {
        let mut out = lock(&self.out);
        let mut rest = chunk;
        if !out.busy {
            let Some(send) = out.send.as_mut() else {
                return Err(HandOver::Closed);
            };
            let mut bufs = [rest];
            match send.write_chunks(&mut bufs).now_or_never() {
                Some(Ok(_)) if bufs[0].is_empty() => return Ok(()),
                // Part of it, or none (quinn is blocked on the peer's flow control): the task waits.
                Some(Ok(_)) | None => {}
                Some(Err(_)) => return Err(HandOver::Closed),
            }
            [rest] = bufs;
        }
        let len = rest.len();
        let StreamBounds {
            frames: most,
            bytes,
        } = self.bounds;
        if self.queued.would_overflow(frames, len, most, bytes) {
            return Err(HandOver::SlowConsumer);
        }
        let ticket = QueueTicket::new(len, frames, self.queued.clone());
        match self.tx.try_send((rest, ticket)) {
            Ok(()) => {
                out.busy = true;
                Ok(())
            }
            // The item, and with it its ticket, is dropped.
            Err(TrySendError::Full(_)) => Err(HandOver::SlowConsumer),
            Err(TrySendError::Disconnected(_)) => Err(HandOver::Closed),
        }
    }
}

/// Gives quinn what the writer could not, waiting for the peer's flow control; finishes the stream when the
/// queue closes (the connection is closing) and lets the peer read everything.
async fn write_stream(out: Arc<Mutex<Out>>, rx: queue::Receiver<(Bytes, QueueTicket)>) {
    while let Ok((first, mut taken)) = rx.recv_async().await {
        let mut chunks = vec![first];
        while let Ok((more, ticket)) = rx.try_recv() {
            taken.absorb(ticket);
            chunks.push(more);
        }
        if write_all(&out, &mut chunks).await.is_err() {
            return;
        }
        // quinn has them now: they leave the stream's count.
        drop(taken);
        {
            let mut o = lock(&out);
            if rx.is_empty() {
                o.busy = false;
            }
        }
    }
    let send = lock(&out).send.take();
    if let Some(mut send) = send {
        let _ = send.finish();
        let _ = tokio::time::timeout(DRAIN, send.stopped()).await;
    }
}

/// Writes every chunk, waiting for quinn as long as it takes.
async fn write_all(out: &Mutex<Out>, chunks: &mut [Bytes]) -> Result<(), ()> {
    let mut at = 0;
    while at < chunks.len() {
        let written = poll_fn(|cx| {
            let mut o = lock(out);
            let Some(send) = o.send.as_mut() else {
                return Poll::Ready(Err(()));
            };
            // quinn's write future holds no state between polls: made and polled under the lock each time.
            let polled = pin!(send.write_chunks(&mut chunks[at..])).poll(cx);
            polled.map_err(|_| ())
        })
        .await?;
        at += written.chunks;
    }
    Ok(())
}
