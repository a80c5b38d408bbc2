//! RTMP-style acknowledgements: when the client announces a window, we ACK every `window` bytes received.
//!
//! Bytes are counted per frame as header + payload (the transport's own delimiting excluded), so the count is
//! the same whichever transport carries the frames.

#[derive(Debug, Default)]
pub struct AckState {
    window: Option<u32>,
    /// Total received, mod 2^32, as the ACK payload carries it.
    received: u32,
    since_ack: u64,
    /// The last ACK value the client sent us (what it has received from us).
    pub peer_acked: u32,
}

impl AckState {
    pub fn set_window(&mut self, size: u32) {
        self.window = if size == 0 { None } else { Some(size) };
    }

    /// Counts `n` received bytes; returns the value to ACK when a window's worth has arrived.
    pub fn on_received(&mut self, n: usize) -> Option<u32> {
        self.received = self.received.wrapping_add(n as u32);
        self.since_ack += n as u64;
        let w = self.window? as u64;
        if self.since_ack >= w {
            self.since_ack %= w;
            Some(self.received)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_once_per_window() {
        let mut a = AckState::default();
        assert_eq!(a.on_received(100), None);
        a.set_window(250);
        assert_eq!(a.on_received(100), None);
        assert_eq!(a.on_received(100), Some(300));
        assert_eq!(a.on_received(100), None);
        assert_eq!(a.on_received(200), Some(600));
    }
}
