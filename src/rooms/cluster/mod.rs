//! Rooms across nodes: what this node tells the cluster and how it applies what the others tell it. By job:
//! `remote.rs` the other nodes' presence, `events.rs` applying what they say, `home.rs` home nodes and
//! forwarding; the loop that runs it all is here.
//!
//! Presence: every node knows, per other node, which users are present in which rooms (`Remote`). Joins and
//! leaves are published as they happen; a full snapshot follows every heartbeat, so a lost event heals within
//! one heartbeat, and a node whose snapshots stop (killed, cut off) is dropped after the TTL: its users leave
//! presence everywhere with `NetGroup.Neighbor.Disconnect`. A user is present in a room when any node has a
//! visible (non-private) connection of it there; `Neighbor.Connect` / `Disconnect` are pushed when that
//! cluster-wide answer flips, so a user on two nodes does not flap.
//!
//! Messages: every room has a home node (rendezvous hashing of the room id over the live nodes), and only the
//! home commits the room's messages: a node whose member sends to a room homed elsewhere checks membership and
//! rights itself, then forwards the message to the home (a NATS request), which commits it in its journal and
//! answers with the stored id. The journal does not deliver in a cluster; it publishes each committed message
//! once, and every node (itself included) delivers what arrives on the bus to its own members. One publisher
//! per room, committing in id order, and NATS keeping each publisher's order: every member of a room, on any
//! node, sees the room's messages once each, in stored-id order.

mod events;
mod home;
pub(super) mod remote;

pub use home::home_node;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{ClusterBus, Event};
use crate::rooms::Rooms;

impl Rooms {
    /// How this node reaches the others.
    pub fn bus(&self) -> &crate::bus::Bus {
        &self.inner.bus
    }

    /// Whether another node is alive as far as this node knows (heard from within the TTL).
    pub fn node_alive(&self, node: &str) -> bool {
        self.nodes().alive(node)
    }

    /// This node's name on the bus.
    pub fn node(&self) -> &str {
        self.inner.bus.node()
    }

    /// Publishes an event if this node is in a cluster.
    pub(super) fn publish(&self, event: impl FnOnce(&str) -> Event) {
        if let Some(bus) = self.inner.bus.cluster() {
            bus.publish(&event(bus.node()), &[]);
        }
    }
}

/// This node's overview figures, as the admin console shows them (`GET /api/server/nodes`): made by the
/// gateway, which sees every layer's gauges; sent with every heartbeat.
pub type Figures = std::sync::Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Subscribes and announces this node; the returned future then runs the cluster side until `shutdown`:
/// applies what the bus says, announces this node's presence every heartbeat, drops nodes past the TTL, and
/// says goodbye at the end.
pub async fn run_cluster(
    rooms: Rooms,
    figures: Figures,
    bus: ClusterBus,
    heartbeat: Duration,
    ttl: Duration,
    shutdown: CancellationToken,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static, crate::bus::BusError> {
    let mut events = bus.subscribe().await?;
    let mut posts = bus.serve("post").await?;
    bus.publish(
        &Event::Hello {
            node: bus.node().to_string(),
        },
        &[],
    );
    // The first tick comes at once: this node's first snapshot follows its hello.
    let mut tick = tokio::time::interval(heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Ok(async move {
        loop {
            tokio::select! {
                event = events.next() => {
                    let Some((event, body)) = event else { break };
                    let kind = event.kind();
                    rooms.apply(event, body);
                    bus.applied(kind);
                }
                request = posts.next() => {
                    let Some(request) = request else { break };
                    rooms.commit_forwarded(request).await;
                }
                _ = tick.tick() => {
                    bus.publish(&rooms.snapshot(Some(figures())), &[]);
                    rooms.expire_nodes(ttl);
                }
                _ = shutdown.cancelled() => break,
            }
        }
        bus.publish(
            &Event::Bye {
                node: bus.node().to_string(),
            },
            &[],
        );
        bus.flush().await;
    })
}
