//! The bus between gateway nodes. A single gateway needs none: rooms deliver in process (`Bus::Local`, the
//! default, no run-time dependency). A cluster joins over a wire (`Bus::Cluster`): every node publishes what
//! the others must know (committed messages, presence, rights) and subscribes to the same subjects.
//!
//! By job: `cluster.rs` events, requests and answers between nodes; `wire.rs` the seam under it (subjects and
//! bytes); `nats.rs` the NATS wire used in production; `memory.rs` an in-process wire, so a test runs several
//! nodes in one process without NATS; `event.rs` what travels.
//!
//! The bus moves `Event`s and nothing else: it knows subjects and bytes, not rooms or sessions. `rooms`
//! decides what to publish and applies what arrives (`rooms::cluster`).

mod cluster;
mod event;
mod memory;
mod nats;
mod wire;

pub use cluster::{BusError, ClusterBus, Events, Request, Requests};
pub use event::{decode, encode, Event, EventError};
pub use memory::{MemoryHub, MemoryLink};
pub use wire::{Subscription, Wire, WireMsg};

/// How this gateway reaches the others.
#[derive(Clone, Default)]
pub enum Bus {
    /// One node: fan-out stays in process.
    #[default]
    Local,
    /// Several nodes sharing rooms (over NATS, or an in-process hub in tests).
    Cluster(ClusterBus),
}

impl Bus {
    /// The cluster side, if any.
    pub fn cluster(&self) -> Option<&ClusterBus> {
        match self {
            Bus::Local => None,
            Bus::Cluster(n) => Some(n),
        }
    }

    /// This node's name (`local` for a single node).
    pub fn node(&self) -> &str {
        match self {
            Bus::Local => "local",
            Bus::Cluster(n) => n.node(),
        }
    }
}
