//! How long a frame a connection's reader accepts. Before `connect` succeeds a stranger gets only what a
//! `connect` needs (`PRE_CONNECT_FRAME`): the reader never sets aside the configured maximum (megabytes) for
//! someone it does not know. The session raises the limit once the client is authenticated.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The longest frame before `connect`: the 5-byte header and a whole `connect` command (8-byte head and at most
/// 65,535 bytes of arguments).
pub const PRE_CONNECT_FRAME: usize = 5 + 8 + 65_535;

/// All a connection may send before `connect` succeeds: a `connect` and room to spare. Frames queued while a
/// `connect` is being checked (a connect hook can take seconds) count too, so a stranger cannot fill the
/// session's inbound queue with 64 maximal frames.
pub const PRE_CONNECT_BYTES: usize = 2 * PRE_CONNECT_FRAME;

/// One connection's frame limit, shared by its reader(s) and its session. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FrameLimit {
    now: Arc<AtomicUsize>,
    full: usize,
    /// Bytes still allowed before `raise` (`usize::MAX` once raised, or for a fixed limit).
    left: Arc<AtomicUsize>,
}

impl FrameLimit {
    /// `max` from the start (a client's own connection).
    pub fn fixed(max: usize) -> FrameLimit {
        FrameLimit {
            now: Arc::new(AtomicUsize::new(max)),
            full: max,
            left: Arc::new(AtomicUsize::new(usize::MAX)),
        }
    }

    /// `PRE_CONNECT_FRAME` until `raise`, then `max` (a gateway's connection from a client).
    pub fn until_connect(max: usize) -> FrameLimit {
        FrameLimit {
            now: Arc::new(AtomicUsize::new(PRE_CONNECT_FRAME.min(max))),
            full: max,
            left: Arc::new(AtomicUsize::new(PRE_CONNECT_BYTES)),
        }
    }

    /// The client is authenticated: frames may be as long as configured.
    pub fn raise(&self) {
        self.left.store(usize::MAX, Ordering::Release);
        self.now.store(self.full, Ordering::Release);
    }

    /// Counts `n` bytes read; `false` when that is more than a stranger may send before `connect`.
    pub fn charge(&self, n: usize) -> bool {
        let mut left = self.left.load(Ordering::Acquire);
        loop {
            if left == usize::MAX {
                return true;
            }
            let Some(rest) = left.checked_sub(n) else {
                return false;
            };
            match self
                .left
                .compare_exchange_weak(left, rest, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => left = now,
            }
        }
    }

    /// Whether `raise` was called (or the limit was fixed from the start).
    pub fn raised(&self) -> bool {
        self.left.load(Ordering::Acquire) == usize::MAX
    }

    pub fn get(&self) -> usize {
        self.now.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_get_a_connect_sized_frame_until_raised() {
        let l = FrameLimit::until_connect(16 << 20);
        let reader = l.clone();
        assert_eq!(reader.get(), PRE_CONNECT_FRAME);
        l.raise();
        assert_eq!(reader.get(), 16 << 20);
        assert_eq!(
            FrameLimit::until_connect(1000).get(),
            1000,
            "never above the configured maximum"
        );
        assert_eq!(FrameLimit::fixed(7).get(), 7);
        // Before connect, the bytes add up; after, they do not count.
        let l = FrameLimit::until_connect(16 << 20);
        assert!(l.charge(PRE_CONNECT_BYTES - 10));
        assert!(!l.charge(11));
        l.raise();
        assert!(l.charge(usize::MAX / 2) && l.charge(usize::MAX / 2));
        assert!(FrameLimit::fixed(7).charge(1 << 40));
    }
}
