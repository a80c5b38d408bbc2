//! Building the frames the gateway sends: statuses, pushes and ACKs, always whole (F=1) frames.

use bytes::Bytes;

use super::command::CommandMessage;
use super::error::FrameError;
use super::frame::{Frame, MessageType};
use super::status::{codes, Status};

/// A `status` command frame on `pipe` answering `txid` (0 for a push).
pub fn status_frame(pipe: u16, txid: u16, status: &Status, timestamp: u32) -> Frame {
    let json = status.to_json();
    command_frame(pipe, txid, &json, &[], timestamp).unwrap_or_else(|e| {
        // The offset field is a u16: an answer that does not fit is replaced, never truncated into bad JSON.
        let fallback = Status::error(
            codes::CALL_FAILED,
            format!("the answer could not be sent: {e}"),
        );
        Frame::new(
            MessageType::Command,
            pipe,
            CommandMessage::encode(timestamp, txid, &fallback.to_json(), &[]).unwrap_or_default(),
        )
    })
}

/// Any command frame: pre-serialized JSON args and an optional binary payload.
pub fn command_frame(
    pipe: u16,
    txid: u16,
    args: &[u8],
    payload: &[u8],
    timestamp: u32,
) -> Result<Frame, FrameError> {
    Ok(Frame::new(
        MessageType::Command,
        pipe,
        CommandMessage::encode(timestamp, txid, args, payload)?,
    ))
}

/// An ACK frame on pipe 0 carrying the received byte count.
pub fn ack_frame(received: u32) -> Frame {
    Frame::new(
        MessageType::Ack,
        0,
        Bytes::copy_from_slice(&received.to_be_bytes()),
    )
}
