//! Rooms across nodes: what this node tells the cluster and how it applies what the others tell it.
//!
//! Presence: every node knows, per other node, which users are present in which rooms (`Remote`). Joins and
//! leaves are published as they happen; a full snapshot follows every heartbeat, so a lost event heals within
//! one heartbeat, and a node whose snapshots stop (killed, cut off) is dropped after the TTL: its users leave
//! presence everywhere with `NetGroup.Neighbor.Disconnect`. A user is present in a room when any node has a
//! visible (non-private) connection of it there; `Neighbor.Connect` / `Disconnect` are pushed when that
//! cluster-wide answer flips, so a user on two nodes does not flap.
//!
//! Messages: with a cluster bus, the journal does not deliver itself; it publishes each committed message
//! once, and every node (itself included) delivers what arrives on the bus to its own members. One NATS
//! subscription per node sees the cluster's events in the server's order, so every member of a room, on any
//! node, sees the room's messages in the same order, each exactly once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::journal::deliver_body;
use super::presence::{push_status, room_json};
use super::state::State;
use super::Rooms;
use crate::bus::{Event, NatsBus};
use crate::protocol::args::{Mask, User};
use crate::protocol::status::codes;
use crate::protocol::Status;

/// What this node knows of the others' presence.
#[derive(Default)]
pub(super) struct Remote {
    nodes: HashMap<String, NodeView>,
}

struct NodeView {
    seen: Instant,
    /// room id -> user id -> user.
    rooms: HashMap<String, HashMap<String, User>>,
}

impl Remote {
    pub fn has(&self, rid: &str, uid: &str) -> bool {
        self.nodes
            .values()
            .any(|n| n.rooms.get(rid).is_some_and(|r| r.contains_key(uid)))
    }

    /// Users present in `rid` on other nodes (each once).
    pub fn users(&self, rid: &str) -> HashMap<&str, &User> {
        self.nodes
            .values()
            .filter_map(|n| n.rooms.get(rid))
            .flat_map(|r| r.iter().map(|(k, u)| (k.as_str(), u)))
            .collect()
    }

    /// Other nodes alive.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    fn user(&self, rid: &str, uid: &str) -> Option<&User> {
        self.nodes
            .values()
            .filter_map(|n| n.rooms.get(rid))
            .find_map(|r| r.get(uid))
    }

    fn view(&mut self, node: &str) -> &mut NodeView {
        let v = self
            .nodes
            .entry(node.to_string())
            .or_insert_with(|| NodeView {
                seen: Instant::now(),
                rooms: HashMap::new(),
            });
        v.seen = Instant::now();
        v
    }
}

/// Whether others see `uid` in `rid`: a visible connection here, or on any other node.
fn visible(state: &State, rid: &str, uid: &str) -> bool {
    let here = state
        .rooms
        .get(rid)
        .is_some_and(|r| r.members.iter().any(|m| m.user.id == uid && !m.private));
    here || state.remote.has(rid, uid)
}

/// Changes the remote view with `change`, then tells local members about every (room, user) whose
/// cluster-wide presence flipped.
fn with_presence_diff(
    state: &mut State,
    touched: &[(String, String)],
    reason: &str,
    change: impl FnOnce(&mut State),
) {
    let before: Vec<bool> = touched
        .iter()
        .map(|(rid, uid)| visible(state, rid, uid))
        .collect();
    let mut gone_users: HashMap<(String, String), User> = HashMap::new();
    for ((rid, uid), was) in touched.iter().zip(&before) {
        if *was {
            if let Some(u) = state.remote.user(rid, uid) {
                gone_users.insert((rid.clone(), uid.clone()), u.clone());
            }
        }
    }
    change(state);
    for ((rid, uid), was) in touched.iter().zip(before) {
        let now = visible(state, rid, uid);
        if was == now {
            continue;
        }
        let Some(room) = state.rooms.get(rid) else {
            continue;
        };
        let info = room_json(room);
        let status = if now {
            let user = state.remote.user(rid, uid).cloned().unwrap_or_default();
            Status::ok(codes::GROUP_NEIGHBOR_CONNECT, format!("{uid} joined"))
                .with_info(json!({ "user": user, "room": info }))
        } else {
            let user = gone_users
                .remove(&(rid.clone(), uid.clone()))
                .unwrap_or_else(|| User {
                    id: uid.clone(),
                    ..User::default()
                });
            let text = if reason.is_empty() {
                format!("{uid} left")
            } else {
                format!("{uid} left: {reason}")
            };
            Status::ok(codes::GROUP_NEIGHBOR_DISCONNECT, text)
                .with_info(json!({ "user": user, "room": info }))
        };
        for m in &room.members {
            push_status(m, &status);
        }
    }
}

fn pairs(rooms: &HashMap<String, HashMap<String, User>>) -> HashSet<(String, String)> {
    rooms
        .iter()
        .flat_map(|(rid, users)| users.keys().map(move |uid| (rid.clone(), uid.clone())))
        .collect()
}

impl Rooms {
    /// This node's name on the bus.
    pub fn node(&self) -> &str {
        self.inner.bus.node()
    }

    /// Who is present on this node, per room (visible members, each user once): the heartbeat snapshot.
    pub fn snapshot(&self) -> Event {
        let state = self.state();
        let rooms = state
            .rooms
            .iter()
            .map(|(rid, room)| {
                let users: Vec<User> = room.present().into_values().cloned().collect();
                (rid.clone(), users)
            })
            .filter(|(_, users)| !users.is_empty())
            .collect();
        Event::Snapshot {
            node: self.node().to_string(),
            rooms,
        }
    }

    /// Applies one event from the bus. Events this node published itself are skipped, except messages: those
    /// are delivered here too, on their way back, so local and remote members share one order.
    pub fn apply(&self, event: Event, body: Bytes) {
        let me = self.node().to_string();
        let from_me = event.node() == me;
        match event {
            Event::Message {
                node,
                conn,
                room,
                target,
                sender,
            } => {
                let skip = (node == me).then_some(conn);
                let n = deliver_body(&self.inner, room, &target, &sender, skip, &body);
                self.inner.metrics.fanout_deliveries_total.inc_by(n as u64);
            }
            _ if from_me => {}
            Event::Join { node, rid, user } => {
                let mut state = self.state();
                let touched = [(rid.clone(), user.id.clone())];
                with_presence_diff(&mut state, &touched, "", |s| {
                    s.remote
                        .view(&node)
                        .rooms
                        .entry(rid)
                        .or_default()
                        .insert(user.id.clone(), user);
                });
            }
            Event::Leave {
                node,
                rid,
                uid,
                reason,
            } => {
                let mut state = self.state();
                let touched = [(rid.clone(), uid.clone())];
                with_presence_diff(&mut state, &touched, &reason, |s| {
                    let Some(view) = s.remote.nodes.get_mut(&node) else {
                        return;
                    };
                    view.seen = Instant::now();
                    if let Some(users) = view.rooms.get_mut(&rid) {
                        users.remove(&uid);
                        if users.is_empty() {
                            view.rooms.remove(&rid);
                        }
                    }
                });
            }
            Event::Snapshot { node, rooms } => {
                let fresh: HashMap<String, HashMap<String, User>> = rooms
                    .into_iter()
                    .map(|(rid, users)| {
                        (rid, users.into_iter().map(|u| (u.id.clone(), u)).collect())
                    })
                    .collect();
                let mut state = self.state();
                let old = state
                    .remote
                    .nodes
                    .get(&node)
                    .map(|v| pairs(&v.rooms))
                    .unwrap_or_default();
                let new = pairs(&fresh);
                let touched: Vec<(String, String)> =
                    old.symmetric_difference(&new).cloned().collect();
                with_presence_diff(&mut state, &touched, "", |s| {
                    s.remote.view(&node).rooms = fresh;
                });
                self.count_nodes(&state);
            }
            Event::Hello { .. } => {
                if let Some(bus) = self.inner.bus.nats() {
                    bus.publish(&self.snapshot(), &[]);
                }
            }
            Event::Bye { node } => self.drop_node(&node, "node stopped"),
            Event::Rights { rid, uid, mask, .. } => {
                if let Some(room) = self.state().rooms.get_mut(&rid) {
                    room.rights.insert(uid, Mask(mask));
                }
            }
            Event::RoomProperties {
                rid, properties, ..
            } => {
                if let Some(room) = self.state().rooms.get_mut(&rid) {
                    room.row.properties = properties;
                }
            }
        }
    }

    /// Forgets a node: its users leave presence.
    fn drop_node(&self, node: &str, reason: &str) {
        let mut state = self.state();
        let Some(view) = state.remote.nodes.get(node) else {
            return;
        };
        let touched: Vec<(String, String)> = pairs(&view.rooms).into_iter().collect();
        with_presence_diff(&mut state, &touched, reason, |s| {
            s.remote.nodes.remove(node);
        });
        tracing::info!(node, users = touched.len(), reason, "cluster node dropped");
        self.count_nodes(&state);
    }

    /// Drops nodes not heard from within `ttl`.
    pub fn expire_nodes(&self, ttl: Duration) {
        let dead: Vec<String> = self
            .state()
            .remote
            .nodes
            .iter()
            .filter(|(_, v)| v.seen.elapsed() > ttl)
            .map(|(k, _)| k.clone())
            .collect();
        for node in dead {
            self.drop_node(&node, "node timed out");
        }
    }

    fn count_nodes(&self, state: &State) {
        self.inner
            .metrics
            .cluster_nodes
            .set(1 + state.remote.nodes() as i64);
    }

    /// Publishes an event if this node is in a cluster.
    pub(super) fn publish(&self, event: impl FnOnce(&str) -> Event) {
        if let Some(bus) = self.inner.bus.nats() {
            bus.publish(&event(bus.node()), &[]);
        }
    }
}

/// Subscribes and announces this node; the returned future then runs the cluster side until `shutdown`:
/// applies what the bus says, announces this node's presence every heartbeat, drops nodes past the TTL, and
/// says goodbye at the end.
pub async fn run_cluster(
    rooms: Rooms,
    bus: NatsBus,
    heartbeat: Duration,
    ttl: Duration,
    shutdown: CancellationToken,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static, crate::bus::BusError> {
    let mut sub = bus.subscribe().await?;
    bus.publish(
        &Event::Hello {
            node: bus.node().to_string(),
        },
        &[],
    );
    bus.publish(&rooms.snapshot(), &[]);
    let mut tick = tokio::time::interval(heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    rooms.inner.metrics.cluster_nodes.set(1);
    Ok(async move {
        loop {
            tokio::select! {
                msg = sub.next() => {
                    let Some(msg) = msg else { break };
                    match Event::decode(&msg.payload) {
                        Ok((event, body)) => {
                            bus.metrics().bus_received_total.with_label_values(&[event.kind()]).inc();
                            rooms.apply(event, body);
                        }
                        Err(e) => {
                            bus.metrics().bus_errors_total.with_label_values(&["decode"]).inc();
                            tracing::warn!(error = %e, subject = %msg.subject, "undecodable bus event ignored");
                        }
                    }
                }
                _ = tick.tick() => {
                    bus.publish(&rooms.snapshot(), &[]);
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
