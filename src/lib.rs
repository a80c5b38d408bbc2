//! odd-gateway: a server for the Odd IM protocol.
//!
//! Data flows one way through the layers: `protocol` (pure wire format) -> `transport` (bytes <-> frames)
//! -> `session` (connection state, pipes, transactions) -> `rooms` (membership, fan-out, rights, the one
//! authorization decision) -> `store` (the only place with SQL). `auth` (token verification) serves both the
//! session layer and `http`; `config`, `metrics` and `http` sit beside them, `gateway` wires them together,
//! and `client` is the project's own client library, used by the tests, the CLI and the benches.

pub mod auth;
pub mod bus;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod protocol;
pub mod rooms;
pub mod session;
pub mod store;
pub mod transport;
