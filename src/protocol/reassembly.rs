//! Fragment reassembly: frames with F=0 are gathered per pipe until the frame with F=1.
//!
//! Only Command messages may be fragmented (the control messages are 1 or 4 bytes), so a partial message is
//! keyed by its pipe alone. Memory is bounded twice: one message may not exceed `max_message`, and all partial
//! messages of a connection together may not exceed twice that, so a client cannot park a large buffer on
//! each of 65,535 pipes.

use std::collections::{HashMap, HashSet};

use bytes::{Bytes, BytesMut};

use super::command::CommandMessage;
use super::error::FrameError;
use super::frame::{Frame, MessageType};
use super::message::Message;

#[derive(Debug)]
pub struct Reassembler {
    max_message: usize,
    partial: HashMap<u16, BytesMut>,
    /// Pipes whose current message overflowed: their remaining fragments are dropped up to the F=1 frame.
    discarding: HashSet<u16>,
    buffered: usize,
}

impl Reassembler {
    pub fn new(max_message: usize) -> Reassembler {
        Reassembler {
            max_message,
            partial: HashMap::new(),
            discarding: HashSet::new(),
            buffered: 0,
        }
    }

    /// Changes the largest message (e.g. from the small pre-`connect` bound to the configured one). Partial
    /// messages already held keep what they have.
    pub fn set_max_message(&mut self, max_message: usize) {
        self.max_message = max_message;
    }

    /// Bytes currently held in partial messages.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Feeds one frame. Returns a whole message when one completes, `None` while a message is still partial.
    pub fn push(&mut self, frame: Frame) -> Result<Option<Message>, FrameError> {
        let pipe = frame.pipe;
        match frame.kind {
            MessageType::Command => self.push_command(frame),
            control => {
                if !frame.fin {
                    return Err(FrameError::FragmentedControl {
                        pipe,
                        kind: control.name(),
                    });
                }
                let p = &frame.payload;
                let expect = |n: usize| {
                    if p.len() == n {
                        Ok(())
                    } else {
                        Err(FrameError::BadControlLength {
                            pipe,
                            kind: control.name(),
                            expected: n,
                            got: p.len(),
                        })
                    }
                };
                match control {
                    MessageType::Abort => {
                        expect(1)?;
                        let kind = MessageType::from_u8(p[0])
                            .ok_or(FrameError::BadAbort { pipe, kind: p[0] })?;
                        if kind == MessageType::Command {
                            self.drop_partial(pipe);
                            self.discarding.remove(&pipe);
                        }
                        Ok(Some(Message::Abort { pipe, kind }))
                    }
                    MessageType::AckWindowSize => {
                        expect(4)?;
                        let size = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                        Ok(Some(Message::AckWindowSize { pipe, size }))
                    }
                    MessageType::Ack => {
                        expect(4)?;
                        let received = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                        Ok(Some(Message::Ack { pipe, received }))
                    }
                    MessageType::Command => unreachable!("handled above"),
                }
            }
        }
    }

    fn push_command(&mut self, frame: Frame) -> Result<Option<Message>, FrameError> {
        let pipe = frame.pipe;
        if self.discarding.contains(&pipe) {
            if frame.fin {
                self.discarding.remove(&pipe);
            }
            return Ok(None);
        }
        let held = self.partial.get(&pipe).map_or(0, BytesMut::len);
        let total = held + frame.payload.len();
        if total > self.max_message || self.buffered + frame.payload.len() > 2 * self.max_message {
            self.drop_partial(pipe);
            if !frame.fin {
                self.discarding.insert(pipe);
            }
            return Err(FrameError::MessageTooLarge {
                pipe,
                limit: self.max_message,
            });
        }
        let whole: Bytes = match (frame.fin, self.partial.remove(&pipe)) {
            // The common case: an unfragmented command, no copy.
            (true, None) => frame.payload,
            (true, Some(mut buf)) => {
                self.buffered -= buf.len();
                buf.extend_from_slice(&frame.payload);
                buf.freeze()
            }
            (false, prev) => {
                let mut buf = prev.unwrap_or_default();
                buf.extend_from_slice(&frame.payload);
                self.buffered += frame.payload.len();
                self.partial.insert(pipe, buf);
                return Ok(None);
            }
        };
        let command = CommandMessage::decode(pipe, whole)?;
        Ok(Some(Message::Command { pipe, command }))
    }

    fn drop_partial(&mut self, pipe: u16) {
        if let Some(buf) = self.partial.remove(&pipe) {
            self.buffered -= buf.len();
        }
    }

    /// Forgets everything gathered for `pipe` (the pipe was released).
    pub fn forget_pipe(&mut self, pipe: u16) {
        self.drop_partial(pipe);
        self.discarding.remove(&pipe);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(fin: bool, pipe: u16, p: &[u8]) -> Frame {
        Frame {
            fin,
            kind: MessageType::Command,
            seq: 0,
            pipe,
            payload: Bytes::copy_from_slice(p),
        }
    }

    fn command_bytes(args: &[u8], payload: &[u8]) -> Bytes {
        CommandMessage::encode(1, 2, args, payload).expect("fits")
    }

    #[test]
    fn gathers_fragments_per_pipe() {
        let whole = command_bytes(br#"{"name":"send"}"#, b"0123456789");
        let (a, b) = whole.split_at(10);
        let mut r = Reassembler::new(1024);
        assert_eq!(r.push(frag(false, 1, a)), Ok(None));
        // Another pipe's whole message passes straight through while pipe 1 is partial.
        let other = command_bytes(br#"{"name":"x"}"#, b"");
        assert!(matches!(
            r.push(frag(true, 2, &other)),
            Ok(Some(Message::Command { pipe: 2, .. }))
        ));
        assert_eq!(r.buffered(), 10);
        match r.push(frag(true, 1, b)) {
            Ok(Some(Message::Command { pipe: 1, command })) => {
                assert_eq!(&command.payload[..], b"0123456789")
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn abort_discards_the_partial_message() {
        let mut r = Reassembler::new(1024);
        assert_eq!(r.push(frag(false, 3, b"garbage-")), Ok(None));
        let abort = Frame::new(MessageType::Abort, 3, Bytes::from_static(&[4]));
        assert!(matches!(
            r.push(abort),
            Ok(Some(Message::Abort { pipe: 3, .. }))
        ));
        assert_eq!(r.buffered(), 0);
        let whole = command_bytes(br#"{"name":"x"}"#, b"");
        assert!(matches!(
            r.push(frag(true, 3, &whole)),
            Ok(Some(Message::Command { .. }))
        ));
    }

    #[test]
    fn oversize_message_is_refused_and_its_tail_skipped() {
        let mut r = Reassembler::new(16);
        assert_eq!(r.push(frag(false, 1, &[0; 10])), Ok(None));
        assert_eq!(
            r.push(frag(false, 1, &[0; 10])),
            Err(FrameError::MessageTooLarge { pipe: 1, limit: 16 })
        );
        // The rest of that message is dropped silently, up to and including its F=1 frame.
        assert_eq!(r.push(frag(false, 1, &[0; 10])), Ok(None));
        assert_eq!(r.push(frag(true, 1, &[0; 3])), Ok(None));
        let whole = command_bytes(b"{}", b"");
        assert!(matches!(
            r.push(frag(true, 1, &whole)),
            Ok(Some(Message::Command { .. }))
        ));
    }

    #[test]
    fn control_messages_are_checked() {
        let mut r = Reassembler::new(16);
        let bad = Frame::new(MessageType::Ack, 0, Bytes::from_static(&[1, 2]));
        assert!(matches!(
            r.push(bad),
            Err(FrameError::BadControlLength { .. })
        ));
        let ok = Frame::new(
            MessageType::AckWindowSize,
            0,
            Bytes::from_static(&[0, 0, 1, 0]),
        );
        assert_eq!(
            r.push(ok),
            Ok(Some(Message::AckWindowSize { pipe: 0, size: 256 }))
        );
        let mut frag_ack = Frame::new(MessageType::Ack, 0, Bytes::from_static(&[0, 0, 0, 1]));
        frag_ack.fin = false;
        assert!(matches!(
            r.push(frag_ack),
            Err(FrameError::FragmentedControl { .. })
        ));
    }
}
