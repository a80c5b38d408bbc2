//! odd-gateway: a server for the Odd IM protocol.
//!
//! Data flows one way through the layers: `protocol` (pure wire format) -> `transport` (bytes <-> frames)
//! -> `session` (connection state, pipes, transactions) -> `rooms` (membership, fan-out, rights, the one
//! authorization decision) -> `store` (the only place with SQL, speaking its own row types). Two writes go
//! from `session` to `store` directly, because they are about connections, not rooms: the user row at
//! `connect`, and in a cluster which node holds a session (`record_session`, `session_owner`,
//! `forget_session`) for a fast reconnect through another node. `bus` (between nodes) serves `rooms` and
//! `session` and hands them its own `Event`s and `Request`s. `auth` (token verification) serves both the
//! session layer and `http`; `metrics` is a leaf every layer reports to by event-named methods; `clock` is
//! the one clock helper server and client share; `config` and `http` sit beside them, `gateway` wires them
//! together, and `client` is the project's own client library, used by the tests, the CLI and the benches.
//! `archive` (search words, the indexer, retention) works on stored history with the store alone, below `rooms`.
//! `python3 ../shared/tools/rs_imports.py src` checks that no files or folders import each other in a loop.

pub mod archive;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod gateway;
pub mod hooks;
pub mod http;
pub mod metrics;
pub mod protocol;
pub mod rooms;
pub mod session;
pub mod sfu;
pub mod store;
pub mod transport;
