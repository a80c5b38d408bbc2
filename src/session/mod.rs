//! The session layer: one task per connection, whatever the transport.
//!
//! A session owns the connection's state (identity, pipes, reassembly, ACK counters), answers every request
//! with a `status` on the request's pipe and transaction id, and hands room work to `rooms`. Handlers live
//! one file per command group (`connect.rs`, `pipes.rs`, ...); every client-visible failure is a
//! `SessionError` turned into a status in exactly one place (`error.rs`).

pub mod acks;
pub mod auth;
mod connect;
pub mod connection;
pub mod context;
pub mod error;
pub mod outbox;
pub mod pipes;
pub mod reply;

pub use auth::{AuthError, ConfigVerifier, TokenVerifier};
pub use connection::run;
pub use context::Context;
pub use error::SessionError;
pub use outbox::Outbox;

/// Who a connection is, once `connect` succeeded.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The session's uuid: the key for fast reconnect, unguessable (v4).
    pub uuid: String,
    pub user: crate::protocol::args::User,
}

/// Seconds since the Unix epoch, as command timestamps carry them.
pub fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}
