//! Any bytes as one delimited frame, then as a command body: decoding must never panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use odd_gateway::protocol::{CommandMessage, Frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(Bytes::copy_from_slice(data)) {
        let again = Frame::decode(frame.to_bytes(frame.seq)).expect("a decoded frame re-encodes");
        assert_eq!(again.payload, frame.payload);
        let _ = CommandMessage::decode(frame.pipe, frame.payload);
    }
});
