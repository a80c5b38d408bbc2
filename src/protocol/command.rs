//! The Command message (type 0x4): `u32 timestamp · u16 transaction id · u16 offset · JSON args · binary payload`.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::FrameError;

/// Bytes before the JSON arguments: timestamp, transaction id, offset.
pub const COMMAND_HEAD_LEN: usize = 8;

/// Largest JSON argument block a command can carry: the offset field is a u16.
pub const MAX_ARGS_LEN: usize = u16::MAX as usize;

/// A decoded command, arguments still as raw JSON bytes (parsed later by `Request::parse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMessage {
    /// Unix seconds. On pushes the server sets it to the time it accepted the message.
    pub timestamp: u32,
    /// Non-zero when the sender wants a `status` answer; 0 on server pushes.
    pub txid: u16,
    pub args: Bytes,
    /// Optional binary payload after the arguments (e.g. a file's bytes).
    pub payload: Bytes,
}

impl CommandMessage {
    /// Splits a reassembled command payload. `pipe` only labels errors.
    pub fn decode(pipe: u16, mut bytes: Bytes) -> Result<CommandMessage, FrameError> {
        if bytes.len() < COMMAND_HEAD_LEN {
            return Err(FrameError::ShortCommand {
                pipe,
                len: bytes.len(),
            });
        }
        let head = bytes.split_to(COMMAND_HEAD_LEN);
        let timestamp = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let txid = u16::from_be_bytes([head[4], head[5]]);
        let offset = u16::from_be_bytes([head[6], head[7]]) as usize;
        if offset > bytes.len() {
            return Err(FrameError::BadOffset {
                pipe,
                offset,
                available: bytes.len(),
            });
        }
        let args = bytes.split_to(offset);
        Ok(CommandMessage {
            timestamp,
            txid,
            args,
            payload: bytes,
        })
    }

    /// Encodes the command body (what goes after the frame header). Arguments longer than the u16 offset can
    /// address are refused rather than cut into invalid JSON.
    pub fn encode(
        timestamp: u32,
        txid: u16,
        args: &[u8],
        payload: &[u8],
    ) -> Result<Bytes, FrameError> {
        let offset =
            u16::try_from(args.len()).map_err(|_| FrameError::ArgsTooLong { len: args.len() })?;
        let mut b = BytesMut::with_capacity(COMMAND_HEAD_LEN + args.len() + payload.len());
        b.put_u32(timestamp);
        b.put_u16(txid);
        b.put_u16(offset);
        b.extend_from_slice(args);
        b.extend_from_slice(payload);
        Ok(b.freeze())
    }

    /// Re-encodes a decoded command (whose arguments, having been decoded, always fit).
    pub fn to_bytes(&self) -> Result<Bytes, FrameError> {
        CommandMessage::encode(self.timestamp, self.txid, &self.args, &self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_payload() {
        let b = CommandMessage::encode(7, 3, br#"{"name":"x"}"#, b"\x00\x01").expect("fits");
        let c = CommandMessage::decode(1, b).expect("decodes");
        assert_eq!(c.timestamp, 7);
        assert_eq!(c.txid, 3);
        assert_eq!(&c.args[..], br#"{"name":"x"}"#);
        assert_eq!(&c.payload[..], b"\x00\x01");
    }

    #[test]
    fn oversize_arguments_are_refused() {
        let args = vec![b' '; MAX_ARGS_LEN + 1];
        assert_eq!(
            CommandMessage::encode(0, 1, &args, b""),
            Err(FrameError::ArgsTooLong {
                len: MAX_ARGS_LEN + 1
            })
        );
        assert!(CommandMessage::encode(0, 1, &args[1..], b"").is_ok());
    }

    #[test]
    fn offset_past_end_is_an_error() {
        let mut b = BytesMut::new();
        b.put_u32(0);
        b.put_u16(1);
        b.put_u16(100);
        b.extend_from_slice(b"{}");
        assert_eq!(
            CommandMessage::decode(4, b.freeze()),
            Err(FrameError::BadOffset {
                pipe: 4,
                offset: 100,
                available: 2
            })
        );
    }
}
