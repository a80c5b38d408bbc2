//! Length-delimited frames written with vectored writes: each frame's prefix and header are gathered into one
//! buffer, and a large body is written from its own (shared) bytes instead of being copied.
//!
//! The codec path this replaces copied every frame twice (encoded into a scratch buffer, then into the codec's
//! buffer behind its length prefix). A push's body is built once and shared by every recipient (see
//! `rooms::journal`), so writing it in place saves a copy per recipient; small bodies are still copied into the
//! gathered bytes, where they cost less than an extra slice in the write. The wire format is unchanged: the
//! u32 big-endian length (tokio-util's `LengthDelimitedCodec` default), then the frame.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::protocol::Frame;

/// Bodies at least this long are written from their own bytes; shorter ones are copied into the gather buffer.
const SHARE_FROM: usize = 1024;
/// Once this much is waiting, `feed` writes it out before taking more (as the codec's backpressure did).
const WRITE_BOUNDARY: usize = 64 * 1024;
/// The most slices handed to one `writev` (Linux takes up to 1,024).
const MAX_SLICES: usize = 64;

pub(super) struct VectoredWriter<W> {
    io: W,
    /// Prefixes, headers and small bodies of frames not yet handed to `chunks`.
    gather: BytesMut,
    /// What is ready to write, in order.
    chunks: VecDeque<Bytes>,
    /// Bytes in `gather` and `chunks` together.
    waiting: usize,
}

impl<W: AsyncWrite + Unpin> VectoredWriter<W> {
    /// Allocates nothing until the first frame.
    pub(super) fn new(io: W) -> VectoredWriter<W> {
        VectoredWriter {
            io,
            gather: BytesMut::new(),
            chunks: VecDeque::new(),
            waiting: 0,
        }
    }

    /// Queues one frame (stamped with `seq`); writes out what waits once it passes the boundary.
    pub(super) async fn feed(&mut self, frame: &Frame, seq: u16) -> io::Result<()> {
        let wire = frame.wire_len();
        let prefix = u32::try_from(wire).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {wire}-byte frame does not fit a u32 length prefix"),
            )
        })?;
        let body = &frame.payload;
        let shared = body.len() >= SHARE_FROM;
        self.gather
            .reserve(4 + wire - if shared { body.len() } else { 0 });
        self.gather.put_u32(prefix);
        frame.encode_header(seq, &mut self.gather);
        if shared {
            self.chunks.push_back(self.gather.split().freeze());
            self.chunks.push_back(body.clone());
        } else {
            self.gather.extend_from_slice(body);
        }
        self.waiting += 4 + wire;
        if self.waiting >= WRITE_BOUNDARY {
            self.write_out().await?;
        }
        Ok(())
    }

    /// Writes everything queued and flushes the stream.
    pub(super) async fn flush(&mut self) -> io::Result<()> {
        self.write_out().await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Nothing more to write for now: gives the buffers back, so an idle connection keeps none (the next
    /// burst allocates afresh: one allocation beside its system call; while a burst lasts they are reused).
    ///
    /// Whatever their size: `capacity()` cannot tell, since after `split` a `BytesMut` reports only the tail
    /// of its allocation, while the whole allocation stays with it. Keeping buffers whose capacity read small
    /// had left ~6 KB per connection of a 1,000-member room held by idle writers (a massif profile).
    pub(super) fn idle(&mut self) {
        if self.gather.is_empty() {
            self.gather = BytesMut::new();
        }
        if self.chunks.is_empty() {
            self.chunks = VecDeque::new();
        }
    }

    /// Flushes, then shuts the write side down (a TCP FIN, a TLS close_notify first).
    pub(super) async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.io.shutdown().await
    }

    async fn write_out(&mut self) -> io::Result<()> {
        if !self.gather.is_empty() {
            self.chunks.push_back(self.gather.split().freeze());
        }
        while !self.chunks.is_empty() {
            // Built per call (a small allocation beside a system call) so that no slice array lives in the
            // writer task between writes.
            let slices: Vec<IoSlice<'_>> = self
                .chunks
                .iter()
                .take(MAX_SLICES)
                .map(|c| IoSlice::new(c))
                .collect();
            let mut written = self.io.write_vectored(&slices).await?;
            drop(slices);
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.waiting = self.waiting.saturating_sub(written);
            while written > 0 {
                let Some(front) = self.chunks.front_mut() else {
                    break;
                };
                if written >= front.len() {
                    written -= front.len();
                    self.chunks.pop_front();
                } else {
                    front.advance(written);
                    written = 0;
                }
            }
        }
        self.waiting = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::MessageType;

    /// Frames of every size class come out exactly as the codec path wrote them, through a writer that takes
    /// only a few bytes per call (so every partial-write path runs).
    #[tokio::test]
    async fn writes_what_the_codec_wrote_even_a_few_bytes_at_a_time() {
        let frames: Vec<Frame> = [0usize, 5, 1023, 1024, 5000, 70_000, 3]
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let body: Vec<u8> = (0..n).map(|b| (b * 7 + i) as u8).collect();
                Frame::new(MessageType::Command, i as u16 + 1, Bytes::from(body))
            })
            .collect();
        let mut expected = BytesMut::new();
        for (seq, f) in frames.iter().enumerate() {
            expected.put_u32(f.wire_len() as u32);
            f.encode(seq as u16, &mut expected);
        }
        let (client, mut server) = tokio::io::duplex(7);
        let writer = tokio::spawn(async move {
            let mut w = VectoredWriter::new(client);
            for (seq, f) in frames.iter().enumerate() {
                w.feed(f, seq as u16).await.expect("feed");
            }
            w.shutdown().await.expect("shutdown");
        });
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut server, &mut got)
            .await
            .expect("read");
        writer.await.expect("writer");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected[..], "the bytes differ from the codec's");
    }
}
