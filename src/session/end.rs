//! Why a session ended, and what follows from it: the metrics label, whether the session is kept for a fast
//! reconnect, and the reason the client and the log are told.

/// Why a session ended; decides the last word the client hears.
#[derive(Debug)]
pub enum End {
    /// The peer closed the transport cleanly: nobody to tell.
    PeerGone,
    /// The client closed on purpose (QUIC application close, WebSocket close frame): ended, not parked.
    ClientClosed(String),
    /// The transport was lost (reset, I/O error, QUIC timeout): the session may be resumed.
    Lost(String),
    /// The peer broke the transport's rules (oversize length, text on a WebSocket): tell it, if it listens.
    Transport(String),
    /// We already sent the status that explains it.
    AfterStatus(String),
    /// The client said goodbye (`close` on pipe 0) and was answered: gone for good, not parked.
    Goodbye(String),
    HandshakeTimeout,
    SlowConsumer,
    /// A reconnect with this session's uuid took it over.
    TakenOver,
    /// The app's backend disconnected the user (server API), with this reason for the client.
    Disconnected(String),
    Shutdown,
    /// The token's `exp` passed and no `refresh` replaced it.
    TokenExpired,
    /// The session task panicked while handling a frame (a bug): logged, counted, cleaned up like any end.
    Internal,
}

impl End {
    /// A fixed label for metrics.
    pub(super) fn label(&self) -> &'static str {
        match self {
            End::PeerGone => "peer_closed",
            End::ClientClosed(_) => "client_closed",
            End::Lost(_) => "lost",
            End::Transport(_) => "transport_error",
            End::AfterStatus(_) => "refused",
            End::Goodbye(_) => "goodbye",
            End::HandshakeTimeout => "handshake_timeout",
            End::SlowConsumer => "slow_consumer",
            End::TakenOver => "taken_over",
            End::Disconnected(_) => "disconnected",
            End::Shutdown => "shutdown",
            End::Internal => "internal_error",
            End::TokenExpired => "token_expired",
        }
    }

    /// Ends after which a connected session is kept for a fast reconnect.
    pub(super) fn resumable(&self) -> bool {
        matches!(self, End::PeerGone | End::Lost(_) | End::TakenOver)
    }

    pub(super) fn reason(&self, limits: &crate::config::Limits) -> String {
        match self {
            End::PeerGone => "peer closed".to_string(),
            End::Lost(r)
            | End::Transport(r)
            | End::AfterStatus(r)
            | End::Goodbye(r)
            | End::ClientClosed(r)
            | End::Disconnected(r) => r.clone(),
            End::HandshakeTimeout => {
                format!("no `connect` within {} ms", limits.handshake_timeout_ms)
            }
            End::SlowConsumer => "slow consumer: outgoing queue full".to_string(),
            End::TakenOver => "taken over by a reconnect".to_string(),
            End::Shutdown => "gateway shutdown".to_string(),
            End::Internal => "internal error".to_string(),
            End::TokenExpired => "token expired".to_string(),
        }
    }
}
