//! The bus between gateway nodes. A single gateway needs none: rooms deliver in process (`Bus::Local`, the
//! default, no run-time dependency). A cluster joins over NATS (`Bus::Nats`): every node publishes what the
//! others must know (committed messages, presence, rights) and subscribes to the same subjects.
//!
//! The bus moves `Event`s and nothing else: it knows subjects and bytes, not rooms or sessions. `rooms`
//! decides what to publish and applies what arrives (`rooms::cluster`).

mod event;
mod nats;

pub use event::{decode, encode, Event, EventError};
pub use nats::{BusError, Events, NatsBus, Request, Requests};

/// How this gateway reaches the others.
#[derive(Clone, Default)]
pub enum Bus {
    /// One node: fan-out stays in process.
    #[default]
    Local,
    /// Several nodes sharing rooms over NATS.
    Nats(NatsBus),
}

impl Bus {
    /// The cluster side, if any.
    pub fn nats(&self) -> Option<&NatsBus> {
        match self {
            Bus::Local => None,
            Bus::Nats(n) => Some(n),
        }
    }

    /// This node's name (`local` for a single node).
    pub fn node(&self) -> &str {
        match self {
            Bus::Local => "local",
            Bus::Nats(n) => n.node(),
        }
    }
}
