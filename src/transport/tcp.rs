//! Length-delimited frames over a byte stream: plain TCP here, and TLS (which wraps the same stream).
//!
//! Every frame is preceded by its u32 big-endian length, tokio-util's `LengthDelimitedCodec` default layout.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::link::{
    Inbound, Link, LinkInfo, Outbound, Source, TransportKind, Writer, INBOUND_QUEUE, WRITE_BATCH,
};
use crate::protocol::frame::SeqCounter;
use crate::protocol::Frame;

/// Largest frame a writer sends: whatever the u32 length prefix can describe.
pub(super) const OUTGOING_MAX: usize = u32::MAX as usize;

/// The codec every stream transport uses.
pub fn codec(max_frame_bytes: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(max_frame_bytes)
        .new_codec()
}

/// Turns any byte stream into a `Link`: spawns the reader now, returns the writer ready to start.
pub fn link<S>(stream: S, info: LinkInfo, max_frame_bytes: usize) -> Link
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(stream);
    let (tx, inbound) = mpsc::channel(INBOUND_QUEUE);
    tokio::spawn(read_frames(
        FramedRead::new(read_half, codec(max_frame_bytes)),
        tx,
        |_| {},
    ));
    // The limit guards what we read. What we write is whole messages (we never fragment), so only the u32
    // length prefix bounds it.
    let sink = FramedWrite::new(write_half, codec(OUTGOING_MAX));
    Link {
        info,
        inbound,
        writer: Writer::new(move |rx| write_frames(sink, rx)),
    }
}

/// Reads length-delimited frames into `tx` until the stream ends, fails, or the session is gone. `seen`
/// observes every valid frame (QUIC uses it to route each pipe to the stream it last spoke on).
pub(super) async fn read_frames<R: AsyncRead + Unpin>(
    mut frames: FramedRead<R, LengthDelimitedCodec>,
    tx: mpsc::Sender<Inbound>,
    mut seen: impl FnMut(&Frame),
) {
    loop {
        let next = tokio::select! {
            next = frames.next() => next,
            // The session is gone: stop reading even if the peer never closes.
            _ = tx.closed() => return,
        };
        let item = match next {
            None => return,
            Some(Ok(bytes)) => match Frame::decode(bytes.freeze()) {
                Ok(f) => {
                    seen(&f);
                    Inbound::Frame(f)
                }
                Err(e) => Inbound::Malformed(e),
            },
            Some(Err(e)) => {
                let _ = tx.send(read_error(&e)).await;
                return;
            }
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

/// What a stream read error means for the session.
pub(super) fn read_error(e: &io::Error) -> Inbound {
    if e.kind() == io::ErrorKind::InvalidData {
        // LengthDelimitedCodec's only InvalidData error: a length prefix above the configured maximum.
        Inbound::Violation(format!("frame length exceeds the limit: {e}"))
    } else if e.kind() == io::ErrorKind::UnexpectedEof || e.to_string().contains("bytes remaining")
    {
        Inbound::Failed("connection closed in the middle of a frame".to_string())
    } else {
        Inbound::Failed(format!("read failed: {e}"))
    }
}

async fn write_frames<W: AsyncWrite + Unpin>(
    mut sink: FramedWrite<W, LengthDelimitedCodec>,
    mut rx: Source,
) -> mpsc::Receiver<Outbound> {
    let mut seq = SeqCounter::default();
    let mut buf = bytes::BytesMut::new();
    'outer: while let Some(first) = rx.next().await {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(out) = next.take() {
            match out {
                Outbound::Frame(frame) => {
                    buf.clear();
                    frame.encode(seq.next_seq(), &mut buf);
                    if let Err(e) = sink.feed(buf.split().freeze()).await {
                        debug!(error = %e, "write failed");
                        break 'outer;
                    }
                }
                // `Source` applies splices itself; none reach a writer.
                Outbound::Splice(_) | Outbound::Queued(..) => {}
                Outbound::Close(reason) => {
                    debug!(%reason, "closing stream transport");
                    let _ = SinkExt::<bytes::Bytes>::flush(&mut sink).await;
                    let _ = sink.get_mut().shutdown().await;
                    break 'outer;
                }
            }
            n += 1;
            if n < WRITE_BATCH {
                next = rx.try_next();
            }
        }
        if let Err(e) = SinkExt::<bytes::Bytes>::flush(&mut sink).await {
            debug!(error = %e, "flush failed");
            break;
        }
    }
    rx.into_rx()
}

/// Accepts plain TCP connections until `shutdown`, handing each `Link` to `on_link`.
/// Turns on TCP keep-alive: the kernel probes a silent peer after `idle` and gives up after three unanswered
/// probes `idle / 3` apart. A quiet user (the odd.js page sends nothing while its user reads) keeps answering
/// probes and stays; a peer that vanished (phone off, cable out, NAT state gone) is found within about
/// twice `idle`, and its session is parked for a fast reconnect.
pub fn keep_alive(stream: &tokio::net::TcpStream, idle: std::time::Duration) {
    if idle.is_zero() {
        return;
    }
    let ka = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval((idle / 3).max(std::time::Duration::from_secs(1)))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "could not enable TCP keep-alive");
    }
}

pub async fn serve(
    listener: TcpListener,
    max_frame_bytes: usize,
    keep_alive_after: std::time::Duration,
    on_link: Arc<dyn Fn(Link) + Send + Sync>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                keep_alive(&stream, keep_alive_after);
                on_link(link(stream, tcp_info(peer), max_frame_bytes));
            }
            Err(e) => {
                // Usually EMFILE: back off briefly instead of spinning.
                warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

fn tcp_info(peer: SocketAddr) -> LinkInfo {
    LinkInfo {
        kind: TransportKind::Tcp,
        peer,
    }
}
