//! The wire unit: a 5-byte header and a payload.
//!
//! The header carries no length; transports delimit frames (a u32 prefix on streams, one message per
//! WebSocket message). So `Frame::decode` always receives exactly one frame's bytes.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::FrameError;

/// Bytes in the fixed header: flags/type, sequence number, pipe id.
pub const HEADER_LEN: usize = 5;

const FIN: u8 = 0x80;
const RSV: u8 = 0x70;
const TYPE: u8 = 0x0F;

/// The message types PROTOCOL.md defines (the `T` nibble).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Abort = 0x1,
    AckWindowSize = 0x2,
    Ack = 0x3,
    Command = 0x4,
}

impl MessageType {
    pub fn from_u8(t: u8) -> Option<MessageType> {
        match t {
            0x1 => Some(MessageType::Abort),
            0x2 => Some(MessageType::AckWindowSize),
            0x3 => Some(MessageType::Ack),
            0x4 => Some(MessageType::Command),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MessageType::Abort => "abort",
            MessageType::AckWindowSize => "ack_window_size",
            MessageType::Ack => "ack",
            MessageType::Command => "command",
        }
    }
}

/// One frame as it travels: `fin` is false on every fragment but the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub kind: MessageType,
    /// Sequence number. Ignored on frames we send: the transport's writer stamps it (see `encode`).
    pub seq: u16,
    pub pipe: u16,
    pub payload: Bytes,
}

impl Frame {
    /// A whole (unfragmented) frame.
    pub fn new(kind: MessageType, pipe: u16, payload: Bytes) -> Frame {
        Frame {
            fin: true,
            kind,
            seq: 0,
            pipe,
            payload,
        }
    }

    /// Parses exactly one delimited frame. Never panics, whatever the bytes.
    pub fn decode(mut bytes: Bytes) -> Result<Frame, FrameError> {
        if bytes.len() < HEADER_LEN {
            return Err(FrameError::Truncated { len: bytes.len() });
        }
        let head = bytes.split_to(HEADER_LEN);
        let flags = head[0];
        let seq = u16::from_be_bytes([head[1], head[2]]);
        let pipe = u16::from_be_bytes([head[3], head[4]]);
        if flags & RSV != 0 {
            return Err(FrameError::Reserved { pipe, byte: flags });
        }
        let t = flags & TYPE;
        let kind = MessageType::from_u8(t).ok_or(FrameError::UnknownType { pipe, kind: t })?;
        Ok(Frame {
            fin: flags & FIN != 0,
            kind,
            seq,
            pipe,
            payload: bytes,
        })
    }

    /// Length of the encoded frame, header included (what the ACK counters count).
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Appends the header (with the given sequence number) and payload to `dst`.
    pub fn encode(&self, seq: u16, dst: &mut BytesMut) {
        dst.reserve(self.wire_len());
        self.encode_header(seq, dst);
        dst.extend_from_slice(&self.payload);
    }

    /// Appends only the `HEADER_LEN` header bytes: for writers that send the payload from its own buffer.
    pub fn encode_header(&self, seq: u16, dst: &mut BytesMut) {
        let mut flags = self.kind as u8;
        if self.fin {
            flags |= FIN;
        }
        dst.put_u8(flags);
        dst.put_u16(seq);
        dst.put_u16(self.pipe);
    }

    /// Convenience for one-off encodes (tests, WebSocket messages).
    pub fn to_bytes(&self, seq: u16) -> Bytes {
        let mut b = BytesMut::with_capacity(self.wire_len());
        self.encode(seq, &mut b);
        b.freeze()
    }
}

/// Sequence numbers for one direction of one connection: start at 1, +1 per frame, wrap 65535 -> 0.
#[derive(Debug, Clone)]
pub struct SeqCounter(u16);

impl Default for SeqCounter {
    fn default() -> Self {
        SeqCounter(1)
    }
}

impl SeqCounter {
    pub fn next_seq(&mut self) -> u16 {
        let s = self.0;
        self.0 = self.0.wrapping_add(1);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_big_endian() {
        let f = Frame::new(MessageType::Command, 0x0102, Bytes::from_static(b"xy"));
        let b = f.to_bytes(0xA0B0);
        assert_eq!(&b[..], &[0x84, 0xA0, 0xB0, 0x01, 0x02, b'x', b'y']);
    }

    #[test]
    fn rejects_reserved_bits_and_unknown_types() {
        assert_eq!(
            Frame::decode(Bytes::from_static(&[0xC4, 0, 1, 0, 7])),
            Err(FrameError::Reserved {
                pipe: 7,
                byte: 0xC4
            })
        );
        assert_eq!(
            Frame::decode(Bytes::from_static(&[0x89, 0, 1, 0, 2])),
            Err(FrameError::UnknownType { pipe: 2, kind: 9 })
        );
        assert_eq!(
            Frame::decode(Bytes::from_static(&[0x84, 0, 1])),
            Err(FrameError::Truncated { len: 3 })
        );
    }

    #[test]
    fn sequence_wraps_to_zero() {
        let mut c = SeqCounter(65535);
        assert_eq!(c.next_seq(), 65535);
        assert_eq!(c.next_seq(), 0);
        assert_eq!(c.next_seq(), 1);
        assert_eq!(SeqCounter::default().next_seq(), 1);
    }
}
