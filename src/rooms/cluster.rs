//! Rooms across nodes: what this node tells the cluster and how it applies what the others tell it.
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

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::journal::{deliver_body, PendingPost, Post, Posted};
use super::presence::{push_status, room_json};
use super::state::State;
use super::RoomError;
use super::Rooms;
use crate::bus::{Event, NatsBus};
use crate::protocol::args::{Cast, SendKind};
use crate::protocol::args::{Mask, User};
use crate::protocol::status::codes;
use crate::protocol::Status;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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
    /// How this node reaches the others.
    pub fn bus(&self) -> &crate::bus::Bus {
        &self.inner.bus
    }

    /// Whether another node is alive as far as this node knows (heard from within the TTL).
    pub fn node_alive(&self, node: &str) -> bool {
        self.state().remote.nodes.contains_key(node)
    }

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
                mid,
            } => {
                let skip = (node == me).then_some(conn);
                let n = deliver_body(&self.inner, room, &target, &sender, skip, mid, &body);
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
        // Its sessions died with it: a reconnect naming one starts fresh instead of asking a dead node.
        let (store, node) = (self.store().clone(), node.to_string());
        tokio::spawn(async move {
            if let Err(e) = store.forget_node_sessions(&node).await {
                tracing::warn!(%node, error = %e, "could not forget a dropped node's sessions");
            }
        });
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

/// A message forwarded to its room's home node.
#[derive(Serialize, Deserialize)]
struct Forwarded {
    origin: String,
    conn: u64,
    sender: User,
    kind: SendKind,
    target: String,
    data: Box<RawValue>,
    persist: bool,
}

/// The home node's answer.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Committed { mid: Option<i64>, timestamp: u32 },
    Failed { error: String },
}

/// The home of room `rid` among the live `nodes` (rendezvous hashing: the highest score wins, ties by name), so
/// every node that sees the same set of nodes picks the same home, and a node leaving moves only its own rooms.
/// Public so that operators' tools and tests can tell which node a room's messages go through.
pub fn home_node<'a>(nodes: impl IntoIterator<Item = &'a str>, rid: &str) -> Option<&'a str> {
    nodes.into_iter().max_by_key(|n| (score(n, rid), *n))
}

/// Rendezvous score of a node for a room: the node with the highest score is the room's home.
fn score(node: &str, rid: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([0u8]).chain(rid.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64 finalizer: FNV alone mixes the last bytes poorly.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Rooms {
    /// The room's home node and the bus to reach it, when that is another node (`None`: this node commits,
    /// or no cluster).
    pub(super) fn home_elsewhere(&self, rid: &str) -> Option<(&NatsBus, String)> {
        // Cut off from NATS, this node cannot reach any home: it commits for every room itself.
        let bus = self.inner.bus.nats().filter(|b| b.connected())?;
        let me = bus.node();
        let state = self.state();
        let best = home_node(
            state.remote.nodes.keys().map(String::as_str).chain([me]),
            rid,
        )?;
        (best != me).then(|| (bus, best.to_string()))
    }

    /// Sends a checked message to its room's home node; the handle resolves with the home's answer.
    pub(super) fn forward(bus: &NatsBus, home: &str, post: &Post) -> PendingPost {
        let (done, answer) = tokio::sync::oneshot::channel();
        let header = Forwarded {
            origin: bus.node().to_string(),
            conn: post.conn,
            sender: post.sender.clone(),
            kind: post.kind,
            target: post.target.clone(),
            data: post.data.clone(),
            persist: post.persist,
        };
        let pending = bus.request(home, "post", crate::bus::encode(&header, &post.payload));
        let home = home.to_string();
        tokio::spawn(async move {
            let result = match pending.answer().await {
                Ok(bytes) => match crate::bus::decode::<Answer>(&bytes) {
                    Ok((Answer::Committed { mid, timestamp }, _)) => Ok(Posted {
                        mid,
                        timestamp,
                        delivered: None,
                    }),
                    Ok((Answer::Failed { error }, _)) => Err(RoomError::Cluster(error)),
                    Err(e) => Err(RoomError::Cluster(format!("bad answer from {home}: {e}"))),
                },
                Err(e) => Err(RoomError::Cluster(format!("{home}: {e}"))),
            };
            let _ = done.send(result);
        });
        PendingPost(answer)
    }

    /// Commits a message forwarded by another node (this node is the room's home) and answers it.
    async fn commit_forwarded(&self, bus: &NatsBus, msg: async_nats::Message) {
        let Some(reply) = msg.reply.map(|r| r.to_string()) else {
            return;
        };
        let answer = |a: &Answer| crate::bus::encode(a, &[]);
        let (f, payload) = match crate::bus::decode::<Forwarded>(&msg.payload) {
            Ok(x) => x,
            Err(e) => {
                bus.metrics()
                    .bus_errors_total
                    .with_label_values(&["decode"])
                    .inc();
                let error = format!("undecodable forwarded message: {e}");
                bus.respond(&reply, answer(&Answer::Failed { error }));
                return;
            }
        };
        let post = Post {
            sender: f.sender,
            conn: f.conn,
            kind: f.kind,
            cast: Cast::Multi,
            target: f.target,
            data: f.data,
            payload,
            persist: f.persist,
            origin: Some(f.origin),
        };
        // Queued in arrival order, so one sender's messages keep their order; answered when committed.
        let pending = self.enqueue(post).await;
        let bus = bus.clone();
        tokio::spawn(async move {
            let result = match pending {
                Ok(p) => p.committed().await,
                Err(e) => Err(e),
            };
            let a = match result {
                Ok(p) => Answer::Committed {
                    mid: p.mid,
                    timestamp: p.timestamp,
                },
                Err(e) => Answer::Failed {
                    error: e.to_string(),
                },
            };
            bus.respond(&reply, answer(&a));
        });
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
                msg = posts.next() => {
                    let Some(msg) = msg else { break };
                    rooms.commit_forwarded(&bus, msg).await;
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
