//! Any bytes as command arguments: parsing returns a request or a typed error, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use odd_gateway::protocol::Request;

fuzz_target!(|data: &[u8]| {
    let _ = Request::parse(data);
});
