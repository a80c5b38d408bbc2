//! Transports turn bytes into frames and frames into bytes, and nothing else.
//!
//! Every transport (TCP, TLS, QUIC, WebSocket) ends in the same `Link`: a channel of inbound frames and a
//! `Writer` that drains a channel of outbound frames onto the wire. The session layer never learns which
//! transport it talks to.
//!
//! The writer hands its channel back when the transport dies (`Writer::start` returns it from the task), so
//! a session can outlive one connection and pick up on the next with nothing queued lost: that is the base of
//! fast reconnect.

pub mod budget;
pub mod certs;
pub mod inbound;
pub mod limit;
pub mod link;
pub mod loops;
pub mod outbox;
pub mod queue;
pub mod quic;
pub mod shared;
pub mod tcp;
pub mod tls;
pub mod udp;
mod vectored;
pub mod ws;
pub mod ws_accept;

pub use budget::{Hold, MemoryBudget};
pub use inbound::{inbound_queue, InboundRx, InboundTx, WeakInboundTx};
pub use limit::{FrameLimit, PRE_CONNECT_FRAME};
pub use link::{
    outbound_queue, Inbound, Link, LinkInfo, Outbound, OutboundRx, OutboundTx, Source, Stop,
    ToWrite, TransportKind, Writer,
};
pub use outbox::{Outbox, Undeliverable};
pub use shared::{Picks, SharedBatch};
