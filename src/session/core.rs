//! The rules of one connection that need no I/O, in the manner of quinn-proto: the core takes events and
//! `now` and says what follows; the run loop (`connection.rs`) is its driver (it owns the sockets, the
//! timer and the handlers). Here: the handshake deadline, token expiry (with the clock skew JWT validation
//! allows), the command rate, acknowledgements, reassembly, and the budget of malformed frames.
//!
//! Everything is a value in, a value out, so the unit tests below run these rules on virtual time (plain
//! `Instant`s they advance themselves) instead of sockets and waiting.

use std::time::Duration;

use tokio::time::Instant;

use super::acks::AckState;
use super::end::End;
use super::rate::RateLimit;
use crate::protocol::{Frame, FrameError, Message, Reassembler};

/// The clock skew a token's `exp` is allowed, as at validation.
pub const EXPIRY_SKEW_SECS: u64 = 5;
/// The longest a session's token timer runs (100 years).
pub const MAX_TOKEN_LIFE_SECS: u64 = 100 * 365 * 86_400;

/// What the core was set up with (from `limits`).
#[derive(Debug, Clone, Copy)]
pub struct CoreLimits {
    pub handshake: Duration,
    pub commands_per_second: u32,
    /// The largest message gathered before `connect` succeeds, and after.
    pub pre_connect_message: usize,
    pub max_message: usize,
    pub max_protocol_errors: u32,
}

/// A timer the driver arms: when it fires, the session ends as this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// No successful `connect` in time.
    Handshake,
    /// The token ran out (and no `refresh` came).
    TokenExpiry,
}

impl Timer {
    pub fn end(self) -> End {
        match self {
            Timer::Handshake => End::HandshakeTimeout,
            Timer::TokenExpiry => End::TokenExpired,
        }
    }
}

/// What a received frame leads to.
#[derive(Debug)]
pub struct Received {
    /// An acknowledgement to send (the byte count to put in it), when a window's worth arrived.
    pub ack: Option<u32>,
    /// A whole message, nothing yet (a fragment), or a framing error.
    pub message: Result<Option<Message>, FrameError>,
}

pub struct Core {
    limits: CoreLimits,
    connected: bool,
    handshake_by: Instant,
    /// When the token expires, skew included.
    expiry: Option<Instant>,
    rate: RateLimit,
    acks: AckState,
    reassembler: Reassembler,
    protocol_errors: u32,
}

impl Core {
    pub fn new(limits: CoreLimits, now: Instant) -> Core {
        Core {
            handshake_by: now + limits.handshake,
            expiry: None,
            connected: false,
            rate: RateLimit::new(limits.commands_per_second, now),
            acks: AckState::default(),
            reassembler: Reassembler::new(limits.pre_connect_message.min(limits.max_message)),
            protocol_errors: 0,
            limits,
        }
    }

    /// The next timer and when it fires; `None`: nothing but the client or the transport ends this session.
    pub fn deadline(&self) -> Option<(Instant, Timer)> {
        let handshake = (!self.connected).then_some((self.handshake_by, Timer::Handshake));
        let expiry = self.expiry.map(|at| (at, Timer::TokenExpiry));
        match (handshake, expiry) {
            (Some(h), Some(e)) => Some(if e.0 < h.0 { e } else { h }),
            (h, e) => h.or(e),
        }
    }

    /// `connect` succeeded: the handshake timer is off and messages may grow to the configured size.
    pub fn connected(&mut self) {
        self.connected = true;
        self.reassembler.set_max_message(self.limits.max_message);
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The token (at `connect` or `refresh`) expires at `exp` (unix seconds; `None`: never); the wall clock
    /// reads `now_unix` at `now`.
    pub fn token_expires(&mut self, exp: Option<u64>, now_unix: u64, now: Instant) {
        self.expiry = exp.map(|exp| {
            // A token valid for longer than a century (an absurd `exp`, even 2^64) is held to one: an Instant
            // that far out would overflow.
            let left = exp
                .saturating_sub(now_unix)
                .saturating_add(EXPIRY_SKEW_SECS)
                .min(MAX_TOKEN_LIFE_SECS);
            now.checked_add(Duration::from_secs(left)).unwrap_or(now)
        });
    }

    /// A frame arrived: counts it for acknowledgements and reassembles it.
    pub fn received(&mut self, frame: Frame) -> Received {
        let ack = self.acks.on_received(frame.wire_len());
        let message = self.reassembler.push(frame);
        if let Ok(Some(m)) = &message {
            match m {
                Message::AckWindowSize { size, .. } => self.acks.set_window(*size),
                Message::Ack { received, .. } => self.acks.peer_acked = *received,
                _ => {}
            }
        }
        Received { ack, message }
    }

    /// A pipe was released: whatever it had half sent goes.
    pub fn forget_pipe(&mut self, pipe: u16) {
        self.reassembler.forget_pipe(pipe);
    }

    /// Bytes the reassembler holds (charged to the memory budget by the driver).
    pub fn buffered(&self) -> usize {
        self.reassembler.buffered()
    }

    /// Whether one more command may run at `now` (a token bucket: bursts of twice the rate).
    pub fn admit(&mut self, now: Instant) -> bool {
        self.rate.allow(now)
    }

    /// A malformed frame was answered; `Some(count)` when that was one too many and the connection closes.
    pub fn malformed(&mut self) -> Option<u32> {
        self.protocol_errors += 1;
        (self.protocol_errors >= self.limits.max_protocol_errors).then_some(self.protocol_errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{CommandMessage, MessageType};

    fn limits() -> CoreLimits {
        CoreLimits {
            handshake: Duration::from_secs(10),
            commands_per_second: 5,
            pre_connect_message: 100,
            max_message: 10_000,
            max_protocol_errors: 3,
        }
    }

    /// One whole command frame with `len` bytes of arguments.
    fn command(pipe: u16, len: usize) -> Frame {
        let body = CommandMessage::encode(0, 1, &vec![b' '; len], &[]).expect("fits");
        Frame::new(MessageType::Command, pipe, body)
    }

    #[test]
    fn the_handshake_timer_runs_until_connect_and_nothing_else_ends_a_quiet_session() {
        let t0 = Instant::now();
        let mut core = Core::new(limits(), t0);
        assert_eq!(
            core.deadline(),
            Some((t0 + Duration::from_secs(10), Timer::Handshake))
        );
        core.connected();
        // Connected without an expiring token: no timer at all. A client silent for an hour, a day, is
        // served; only the transport (TCP keep-alive, QUIC idle timeout, WebSocket pings) can end it.
        assert_eq!(core.deadline(), None);
    }

    #[test]
    fn a_token_ends_the_session_at_its_expiry_plus_the_skew_and_refresh_moves_it() {
        let t0 = Instant::now();
        let mut core = Core::new(limits(), t0);
        core.token_expires(Some(1_000_060), 1_000_000, t0);
        // Before connect, the handshake comes first.
        assert_eq!(core.deadline().map(|d| d.1), Some(Timer::Handshake));
        core.connected();
        assert_eq!(
            core.deadline(),
            Some((t0 + Duration::from_secs(65), Timer::TokenExpiry))
        );
        // A refresh 50 s later, for another hour.
        let t50 = t0 + Duration::from_secs(50);
        core.token_expires(Some(1_003_650), 1_000_050, t50);
        assert_eq!(
            core.deadline(),
            Some((t50 + Duration::from_secs(3_605), Timer::TokenExpiry))
        );
        // An absurd expiry (as far as u64 goes) is held to a century, without overflowing.
        core.token_expires(Some(u64::MAX), 1_000_000, t0);
        assert_eq!(
            core.deadline().map(|d| d.0),
            Some(t0 + Duration::from_secs(MAX_TOKEN_LIFE_SECS))
        );
        // A token already past its expiry ends the session within the skew.
        core.token_expires(Some(999_000), 1_000_100, t0);
        assert_eq!(
            core.deadline().map(|d| d.0),
            Some(t0 + Duration::from_secs(5))
        );
        assert_eq!(Timer::TokenExpiry.end().label(), "token_expired");
    }

    #[test]
    fn commands_come_in_bursts_of_twice_the_rate_then_at_the_rate() {
        let t0 = Instant::now();
        let mut core = Core::new(limits(), t0);
        let burst = (0..20).filter(|_| core.admit(t0)).count();
        assert_eq!(burst, 10, "a burst of 2 x 5");
        // 200 ms later one more token has come back, not two.
        let t1 = t0 + Duration::from_millis(200);
        assert!(core.admit(t1));
        assert!(!core.admit(t1));
        // After a quiet while the bucket is full again, never fuller.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| core.admit(t2)).count(), 10);
    }

    #[test]
    fn acks_follow_the_window_the_client_asks_for() {
        let mut core = Core::new(limits(), Instant::now());
        let window = Frame::new(
            MessageType::AckWindowSize,
            0,
            bytes::Bytes::copy_from_slice(&60u32.to_be_bytes()),
        );
        let w = core.received(window);
        assert!(w.ack.is_none(), "no window yet when it arrives");
        let mut acks = Vec::new();
        for _ in 0..6 {
            let r = core.received(command(0, 10));
            assert!(matches!(r.message, Ok(Some(Message::Command { .. }))));
            acks.extend(r.ack);
        }
        assert_eq!(acks.len(), 2, "one ack per 60 bytes: {acks:?}");
    }

    #[test]
    fn before_connect_only_a_connect_sized_message_is_gathered() {
        let mut core = Core::new(limits(), Instant::now());
        let big = core.received(command(0, 500));
        assert!(big.message.is_err(), "500 bytes before connect");
        core.connected();
        let r = core.received(command(0, 500));
        assert!(matches!(r.message, Ok(Some(_))), "{:?}", r.message);
        assert_eq!(core.buffered(), 0);
    }

    #[test]
    fn the_third_malformed_frame_closes() {
        let mut core = Core::new(limits(), Instant::now());
        assert_eq!(core.malformed(), None);
        assert_eq!(core.malformed(), None);
        assert_eq!(core.malformed(), Some(3));
    }
}
