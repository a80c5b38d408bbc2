//! A whole message: what one or more frames of the same pipe add up to.

use super::command::CommandMessage;
use super::frame::MessageType;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Discard the partly received message of type `kind` on `pipe`.
    Abort {
        pipe: u16,
        kind: MessageType,
    },
    /// The peer will acknowledge after receiving this many bytes; we should do the same for it.
    AckWindowSize {
        pipe: u16,
        size: u32,
    },
    /// The peer has received this many bytes from us so far (mod 2^32).
    Ack {
        pipe: u16,
        received: u32,
    },
    Command {
        pipe: u16,
        command: CommandMessage,
    },
}

impl Message {
    pub fn pipe(&self) -> u16 {
        match self {
            Message::Abort { pipe, .. }
            | Message::AckWindowSize { pipe, .. }
            | Message::Ack { pipe, .. }
            | Message::Command { pipe, .. } => *pipe,
        }
    }
}
