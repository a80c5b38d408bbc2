//! Wall-clock time in the units the protocol and the store use. The protocol layer itself never reads the
//! clock (callers pass timestamps in); everything else gets the time here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as command timestamps carry them.
pub fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, as the store keeps them.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
