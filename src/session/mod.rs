//! The session layer: one task per connection, whatever the transport.
//!
//! A session owns the connection's state (identity, pipes, and the I/O-free rules of `core.rs`: timers,
//! command rate, reassembly, ACK counters), answers every request with a `status` on the request's pipe and
//! transaction id, and hands room work to `rooms`. Handlers live
//! one file per command group (`connect.rs`, `pipes.rs`, ...); every client-visible failure is a
//! `SessionError` turned into a status in exactly one place (`error.rs`).

pub mod acks;
mod answer;
mod chmod;
mod commands;
mod connect;
pub mod connection;
pub mod context;
pub mod core;
mod end;
pub mod error;
mod history;
pub mod joined;
mod lifecycle;
mod media;
mod order;
pub mod per_ip;
mod pipe_commands;
pub mod pipes;
mod properties;
mod rate;
pub mod remote_resume;
pub mod resume;
mod rooms;
mod send;
mod signaling;
pub mod state;
mod typing;

pub use crate::auth::{AuthError, ConfigVerifier, Principal, TokenVerifier};
pub use connection::run;
pub use context::Context;
pub use error::SessionError;

/// Who a connection is, once `connect` succeeded.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The session's uuid: the key for fast reconnect, unguessable (v4).
    pub uuid: String,
    pub user: crate::protocol::args::User,
}

pub use crate::clock::now_secs;
