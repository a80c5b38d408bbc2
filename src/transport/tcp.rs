//! Length-delimited frames over a byte stream: plain TCP here, and TLS (which wraps the same stream).
//!
//! Every frame is preceded by its u32 big-endian length, tokio-util's `LengthDelimitedCodec` default layout.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::link::{Inbound, Link, LinkInfo, TransportKind, Writer, INBOUND_QUEUE};
use super::loops::{read_loop, write_loop, FrameSink, FrameSource, Read};
use super::vectored::VectoredWriter;
use crate::protocol::Frame;

/// The codec every stream transport uses.
pub fn codec(max_frame_bytes: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(max_frame_bytes)
        .new_codec()
}

/// Turns any byte stream into a `Link`: spawns the reader now, returns the writer ready to start.
pub fn link<S>(stream: S, info: LinkInfo, frame_limit: super::FrameLimit) -> Link
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(stream);
    let (tx, inbound) = super::inbound_queue(INBOUND_QUEUE);
    let source = Delimited::new(read_half, frame_limit.clone());
    tokio::spawn(read_loop(source, tx, None, |_| {}));
    // The limit guards what we read. What we write is whole messages (we never fragment), so only the u32
    // length prefix bounds it.
    let sink = DelimitedSink(VectoredWriter::new(write_half));
    Link {
        info,
        frame_limit,
        inbound,
        writer: Writer::new(move |rx| write_loop(sink, rx, None)),
    }
}

/// What an idle connection's read buffer starts at; it grows with what arrives (amortized doubling).
const READ_BUFFER: usize = 1024;
/// A buffer left larger than this by a burst (a big file, a fan-out storm) is given back once it is empty, so a
/// connection's memory returns to its idle size.
const SHRINK_ABOVE: usize = 64 * 1024;

/// Length-delimited messages read from a byte stream (TCP, TLS, a QUIC stream).
/// The codec's maximum follows the connection's `FrameLimit` (raised after `connect`), read at every decode,
/// so a frame is measured against the limit in force when its length arrives.
pub(super) struct Limited(LengthDelimitedCodec, super::FrameLimit);

impl tokio_util::codec::Decoder for Limited {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, io::Error> {
        let limit = self.1.get();
        if self.0.max_frame_length() != limit {
            self.0.set_max_frame_length(limit);
        }
        let frame = self.0.decode(src)?;
        if let Some(f) = &frame {
            if !self.1.charge(f.len() + 4) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "more than {} bytes before connect",
                        super::limit::PRE_CONNECT_BYTES
                    ),
                ));
            }
        }
        Ok(frame)
    }
}

pub(super) struct Delimited<R>(FramedRead<R, Limited>);

impl<R> Delimited<R> {
    pub(super) fn new(read: R, limit: super::FrameLimit) -> Delimited<R> {
        Delimited::with_capacity(read, limit, READ_BUFFER)
    }

    /// Starting at `capacity` bytes: a source whose reads are memory copies (a QUIC stream's, from quinn's
    /// buffers), not system calls, loses nothing by starting small.
    pub(super) fn with_capacity(
        read: R,
        limit: super::FrameLimit,
        capacity: usize,
    ) -> Delimited<R> {
        Delimited(FramedRead::with_capacity(
            read,
            Limited(codec(limit.get()), limit),
            capacity,
        ))
    }
}

impl<R: AsyncRead + Unpin + Send> FrameSource for Delimited<R> {
    async fn next(&mut self) -> Option<Read> {
        let read = match self.0.next().await? {
            Ok(bytes) => Read::Frame(bytes.freeze()),
            Err(e) => Read::End(read_error(&e)),
        };
        let buffer = self.0.read_buffer_mut();
        if buffer.is_empty() && buffer.capacity() > SHRINK_ABOVE {
            *buffer = BytesMut::with_capacity(READ_BUFFER);
        }
        Some(read)
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

/// Length-delimited frames written to a byte stream (see `vectored.rs`).
struct DelimitedSink<W>(VectoredWriter<W>);

impl<W: AsyncWrite + Unpin + Send> FrameSink for DelimitedSink<W> {
    async fn feed(&mut self, frame: Frame, seq: u16) -> Result<(), ()> {
        self.0
            .feed(&frame, seq)
            .await
            .map_err(|e| debug!(error = %e, "write failed"))
    }

    async fn flush(&mut self) -> Result<(), ()> {
        self.0
            .flush()
            .await
            .map_err(|e| debug!(error = %e, "flush failed"))
    }

    fn idle(&mut self) {
        self.0.idle();
    }

    async fn finish(mut self, close: Option<String>) {
        if let Some(reason) = close {
            debug!(%reason, "closing stream transport");
            let _ = self.0.shutdown().await;
        }
    }
}

/// Accepts plain TCP connections until `shutdown`, handing each `Link` to `on_link`.
/// Turns on TCP keep-alive: the kernel probes a silent peer after `idle` and gives up after three unanswered
/// probes `idle / 3` apart. A quiet user (the odd.js page sends nothing while its user reads) keeps answering
/// probes and stays; a peer that vanished (phone off, cable out, NAT state gone) is found within about
/// twice `idle`, and its session is parked for a fast reconnect. Data unacknowledged for twice `idle` ends the
/// connection too (`TCP_USER_TIMEOUT`).
pub fn keep_alive(stream: &tokio::net::TcpStream, idle: std::time::Duration) {
    if idle.is_zero() {
        return;
    }
    let ka = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval((idle / 3).max(std::time::Duration::from_secs(1)))
        .with_retries(3);
    let sock = socket2::SockRef::from(stream);
    if let Err(e) = sock.set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "could not enable TCP keep-alive");
    }
    // Keep-alive probes only run while nothing is unacknowledged. A peer that vanished while the gateway had
    // data on the way (a phone in a tunnel with pushes queued) is found by the user timeout instead: written
    // data unacknowledged this long ends the connection (without it Linux retries for ~15 minutes, and the
    // session's writer stays stuck in the dead socket).
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    if let Err(e) = sock.set_tcp_user_timeout(Some(idle * 2)) {
        tracing::debug!(error = %e, "could not set TCP_USER_TIMEOUT");
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
                on_link(link(
                    stream,
                    tcp_info(peer),
                    super::FrameLimit::until_connect(max_frame_bytes),
                ));
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
