//! A stream of frames (split from the input by a length byte) through the reassembler: never panics, never
//! holds more than its bound.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use odd_gateway::protocol::{Frame, Message, Reassembler, Request};

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::new(1024);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        rest = next;
        if let Ok(frame) = Frame::decode(Bytes::copy_from_slice(chunk)) {
            if let Ok(Some(Message::Command { command, .. })) = r.push(frame) {
                let _ = Request::parse(&command.args);
            }
        }
        assert!(r.buffered() <= 2048);
    }
});
