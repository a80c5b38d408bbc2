//! The gateway's side of a WebSocket once the HTTP layer has switched protocols (`http/ws.rs`). The upgraded
//! byte stream is read through `Metered`: until the client's `connect` succeeds it may deliver at most
//! `PRE_CONNECT_RAW_BYTES` in all, and no read asks for more than is left of that. So the WebSocket library
//! never gathers a megabyte-long message (`max_frame_bytes`) for someone it does not know: a stranger costs
//! at most about 250 KB (the allowance, gathered into a message, and the read buffer), against about 70 KB on
//! TCP, and for at most the handshake timeout. Once the session raises the frame limit, bytes pass unmetered.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use super::limit::{FrameLimit, PRE_CONNECT_BYTES};
use super::link::{Link, LinkInfo};

/// All the raw bytes a WebSocket stranger may send before `connect`: the messages' own allowance
/// (`PRE_CONNECT_BYTES`, charged by the reader) and room for the framing around them and a few pongs.
pub const PRE_CONNECT_RAW_BYTES: usize = PRE_CONNECT_BYTES + 16 * 1024;

/// How much the WebSocket library reads from the socket at once, and keeps allocated for each connection
/// (its default, 128 KiB, made an idle browser cost 138 KiB; 8 KiB: 19 KiB, with no loss on 1 MB messages:
/// benches/README.md, "WebSocket accept").
const READ_BUFFER: usize = 8 * 1024;

/// Turns an upgraded connection into the gateway's `Link`: messages up to `max_frame_bytes` once connected,
/// the transport lost after `liveness` without a sign of life (`ws::link`).
pub async fn accept<IO>(io: IO, info: LinkInfo, liveness: Duration, max_frame_bytes: usize) -> Link
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limit = FrameLimit::until_connect(usize::MAX);
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
        .read_buffer_size(READ_BUFFER);
    let socket = WebSocketStream::from_raw_socket(
        Metered::new(io, limit.clone()),
        Role::Server,
        Some(config),
    )
    .await;
    super::ws::link_limited(socket, info, Some(liveness), limit)
}

/// A byte stream whose reads are counted against `PRE_CONNECT_RAW_BYTES` until `limit` is raised.
pub struct Metered<IO> {
    io: IO,
    limit: FrameLimit,
    left: usize,
}

impl<IO> Metered<IO> {
    pub fn new(io: IO, limit: FrameLimit) -> Metered<IO> {
        Metered {
            io,
            limit,
            left: PRE_CONNECT_RAW_BYTES,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Metered<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.limit.raised() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        if this.left == 0 {
            // The allowance is spent (the last of it may have been the `connect`, being checked now): only
            // a byte more is too many. Probe for one; if `connect` succeeded meanwhile it is simply passed on.
            let mut one = [0u8; 1];
            let mut probe = ReadBuf::new(&mut one);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut probe))?;
            if probe.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            if this.limit.raised() {
                buf.put_slice(probe.filled());
                return Poll::Ready(Ok(()));
            }
            // Worded so the reader reports a violation of the frame limit (`ws.rs`).
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("too long: more than {PRE_CONNECT_RAW_BYTES} bytes before connect"),
            )));
        }
        let want = this.left.min(buf.remaining());
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(want));
        let res = Pin::new(&mut this.io).poll_read(cx, &mut part);
        let n = part.filled().len();
        if let Poll::Ready(Ok(())) = res {
            this.left -= n;
            buf.advance(n);
        }
        res
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Metered<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_stranger_is_read_no_further_than_the_allowance_until_raised() {
        let (mut far, near) = tokio::io::duplex(1 << 20);
        let limit = FrameLimit::until_connect(usize::MAX);
        let mut metered = Metered::new(near, limit.clone());
        far.write_all(&vec![7u8; PRE_CONNECT_RAW_BYTES + 10])
            .await
            .expect("write");
        let mut got = vec![0u8; PRE_CONNECT_RAW_BYTES + 10];
        let mut read = 0;
        let err = loop {
            match metered.read(&mut got[read..]).await {
                Ok(n) => read += n,
                Err(e) => break e,
            }
        };
        assert_eq!(
            read, PRE_CONNECT_RAW_BYTES,
            "exactly the allowance, not a byte more"
        );
        assert!(err.to_string().contains("too long"), "{err}");
    }

    /// A client whose `connect` ends exactly at the allowance is connected, not cut: the meter waits for a
    /// byte more before it calls anything too long, and by then the limit is raised.
    #[tokio::test]
    async fn the_whole_allowance_then_connect_is_not_too_much() {
        let (mut far, near) = tokio::io::duplex(1 << 20);
        let limit = FrameLimit::until_connect(usize::MAX);
        let mut metered = Metered::new(near, limit.clone());
        far.write_all(&vec![7u8; PRE_CONNECT_RAW_BYTES])
            .await
            .expect("write");
        let mut got = vec![0u8; PRE_CONNECT_RAW_BYTES];
        metered.read_exact(&mut got).await.expect("the allowance");
        // The next read waits (nothing more was sent) instead of failing.
        let mut more = [0u8; 10];
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            metered.read(&mut more),
        )
        .await;
        assert!(waited.is_err(), "no error before a byte more: {waited:?}");
        limit.raise();
        far.write_all(&[9u8; 10]).await.expect("write");
        metered
            .read_exact(&mut more)
            .await
            .expect("raised: unmetered");
        assert_eq!(more, [9u8; 10]);
    }
}
