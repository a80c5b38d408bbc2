//! The per-connection command rate limit: a token bucket, so bursts are allowed but a flood is not; and the
//! rate of `typing` announcements per room.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A token bucket: `per_second` commands, bursts of twice that.
pub(super) struct RateLimit {
    per_second: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl RateLimit {
    pub(super) fn new(per_second: u32, now: tokio::time::Instant) -> RateLimit {
        let per_second = f64::from(per_second.max(1));
        RateLimit {
            per_second,
            tokens: per_second * 2.0,
            last: now,
        }
    }

    pub(super) fn allow(&mut self, now: tokio::time::Instant) -> bool {
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.per_second * 2.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// At most one `typing` announcement per room and connection this often (typing.rs).
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

/// When each room was last announced from this connection.
#[derive(Debug, Default)]
pub(super) struct TypingGate {
    last: HashMap<String, Instant>,
}

impl TypingGate {
    /// Whether a notice for `rid` may go out at `now`.
    pub(super) fn open(&self, rid: &str, now: Instant) -> bool {
        self.last
            .get(rid)
            .is_none_or(|at| now.duration_since(*at) >= TYPING_EVERY)
    }

    /// Counts a notice for `rid` sent at `now` (only for rooms the connection is in: the caller checked).
    pub(super) fn record(&mut self, rid: &str, now: Instant) {
        // Forget rooms quiet for a while, so the map holds only the rooms being typed in.
        if self.last.len() >= 16 {
            self.last
                .retain(|_, at| now.duration_since(*at) < TYPING_EVERY);
        }
        self.last.insert(rid.to_string(), now);
    }
}

#[cfg(test)]
mod typing_tests {
    use super::*;

    #[test]
    fn one_typing_notice_per_room_per_interval() {
        let mut gate = TypingGate::default();
        let t = Instant::now();
        let mut pass = |rid: &str, at: Instant| {
            let open = gate.open(rid, at);
            if open {
                gate.record(rid, at);
            }
            open
        };
        assert!(pass("a", t));
        assert!(!pass("a", t + Duration::from_millis(500)));
        assert!(pass("b", t + Duration::from_millis(500)), "rooms are apart");
        assert!(!pass("a", t + TYPING_EVERY - Duration::from_millis(1)));
        assert!(pass("a", t + TYPING_EVERY));
        for i in 0..100 {
            pass(&format!("r{i}"), t + TYPING_EVERY * 3);
        }
        assert!(pass("z", t + TYPING_EVERY * 5));
        assert_eq!(gate.last.len(), 1, "quiet rooms are forgotten");
    }
}
