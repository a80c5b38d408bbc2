//! The one reader loop and the one writer loop every transport runs. A transport only says how to read one
//! delimited message (`FrameSource`) and how to write, flush and close (`FrameSink`); batching, sequence
//! numbers, WebSocket-style liveness pings and the hand-back of the queue are the same for TCP, TLS, QUIC
//! streams and WebSockets, and live here once.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use super::link::{Inbound, OutboundRx, Source, ToWrite, WRITE_BATCH};
use crate::protocol::frame::SeqCounter;
use crate::protocol::Frame;

/// A timer that never fires (liveness off).
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What one read from the transport gave.
pub enum Read {
    /// One delimited message: a frame to decode.
    Frame(Bytes),
    /// Something the transport handles itself (a WebSocket ping or pong): a sign of life, nothing to hand up.
    Skip,
    /// The transport cannot go on: why (`Failed`, `Violation` or `Closed`).
    End(Inbound),
}

/// The reading half of a transport.
pub trait FrameSource: Send {
    /// The next message; `None` when the peer closed cleanly.
    fn next(&mut self) -> impl Future<Output = Option<Read>> + Send;
}

/// The writing half of a transport.
pub trait FrameSink: Send {
    /// Queues one frame (with its sequence number) for writing; an error ends the writer.
    fn feed(&mut self, frame: Frame, seq: u16) -> impl Future<Output = Result<(), ()>> + Send;
    /// Writes out what `feed` queued.
    fn flush(&mut self) -> impl Future<Output = Result<(), ()>> + Send;
    /// The queue ran empty after a flush: a chance to give back buffers a burst grew.
    fn idle(&mut self) {}
    /// A keep-alive probe (WebSocket ping); transports without one need nothing.
    fn ping(&mut self) -> impl Future<Output = Result<(), ()>> + Send {
        async { Ok(()) }
    }
    /// The writer stops: `Some(reason)` when the session closes on purpose (flush, then close with the
    /// reason), `None` when the transport failed or the queue was detached for a parked session.
    fn finish(self, close: Option<String>) -> impl Future<Output = ()> + Send;
}

/// Reads until the peer is gone, the transport fails, or the session stops listening. With `liveness`, a
/// transport silent for that long (not even a pong) is reported lost. `seen` observes every valid frame.
pub async fn read_loop<S: FrameSource>(
    mut source: S,
    tx: super::InboundTx,
    liveness: Option<Duration>,
    mut seen: impl FnMut(&Frame),
) {
    let window = liveness.unwrap_or(NEVER);
    let deadline = tokio::time::sleep(window);
    tokio::pin!(deadline);
    loop {
        let next = tokio::select! {
            n = source.next() => n,
            // The session is gone: stop reading even if the peer never closes.
            _ = tx.closed() => return,
            _ = &mut deadline => {
                let reason = format!("no sign of life (frames or pongs) for {} ms", window.as_millis());
                let _ = tx.send(Inbound::Failed(reason)).await;
                return;
            }
        };
        // Anything at all from the peer is life.
        deadline
            .as_mut()
            .reset(tokio::time::Instant::now() + window);
        let item = match next {
            None => return,
            Some(Read::Skip) => continue,
            Some(Read::Frame(bytes)) => match Frame::decode(bytes) {
                Ok(f) => {
                    seen(&f);
                    Inbound::Frame(f)
                }
                Err(e) => Inbound::Malformed(e),
            },
            Some(Read::End(why)) => {
                let _ = tx.send(why).await;
                return;
            }
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

/// Writes the session's queue until it closes, the transport fails, or the queue is detached; flushes after
/// at most `WRITE_BATCH` frames; pings every `ping_every`. Returns the queue with whatever it still holds.
pub async fn write_loop<S: FrameSink>(
    mut sink: S,
    mut rx: Source,
    ping_every: Option<Duration>,
) -> OutboundRx {
    let mut seq = SeqCounter::default();
    // Only where pings are sent: an interval is a timer allocation every connection would carry.
    let mut ping = ping_every.map(|every| {
        let mut ping = tokio::time::interval(every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.reset();
        ping
    });
    let mut close = None;
    // A write the transport does not take (a dead peer's full socket) must not keep a parked or taken-over
    // session's queue: a stop cuts it short (the frame being written is lost with the transport).
    let stop = rx.stop();
    'outer: loop {
        let first = tokio::select! {
            f = rx.next() => match f {
                Some(f) => f,
                None => break,
            },
            _ = async { ping.as_mut()?.tick().await; Some(()) }, if ping.is_some() => {
                if sink.ping().await.is_err() {
                    break;
                }
                continue;
            }
        };
        let mut next = Some(first);
        let mut n = 0;
        while let Some(out) = next.take() {
            match out {
                ToWrite::Frame(frame) => {
                    if !stoppable(&stop, sink.feed(frame, seq.next_seq())).await {
                        break 'outer;
                    }
                }
                ToWrite::Close(reason) => {
                    close = Some(reason);
                    break 'outer;
                }
                ToWrite::Farewell(frame, reason) => {
                    if stoppable(&stop, sink.feed(frame, seq.next_seq())).await {
                        close = Some(reason);
                    }
                    break 'outer;
                }
            }
            n += 1;
            if n < WRITE_BATCH {
                next = rx.try_next();
            }
        }
        if !stoppable(&stop, sink.flush()).await {
            break;
        }
        if n < WRITE_BATCH {
            // The queue was empty when the batch ended.
            sink.idle();
        }
    }
    // A close flushes and waits for the peer (bounded by each transport); a stop does not wait for it.
    tokio::select! {
        biased;
        _ = sink.finish(close) => {}
        _ = stop.cancelled() => {}
    }
    rx.into_rx()
}

/// Runs one write unless `stop` comes first; true when it succeeded.
async fn stoppable(stop: &super::Stop, write: impl Future<Output = Result<(), ()>>) -> bool {
    tokio::select! {
        biased;
        r = write => r.is_ok(),
        _ = stop.cancelled() => false,
    }
}
