//! odd-gateway: a server for the Odd IM protocol.
//!
//! Data flows one way through the layers: `protocol` (pure wire format) -> `transport` (bytes <-> frames)
//! -> `session` (connection state, pipes, transactions, auth) -> `rooms` (membership, fan-out, rights)
//! -> `store` (the only place with SQL). `config`, `metrics` and `http` sit beside them, and `client` is the
//! project's own client library, used by the tests, the CLI and the benchmarks.

pub mod protocol;
