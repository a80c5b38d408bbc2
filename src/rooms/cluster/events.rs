//! What the other nodes say, applied here: joins, leaves and heartbeat snapshots change the remote presence
//! view (local members are told when a user's cluster-wide presence flips), messages are delivered to local
//! members, rights and room properties update loaded rooms, and nodes that fall silent are dropped.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::remote::pairs;
use crate::bus::Event;
use crate::protocol::args::{Mask, User};
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::rooms::journal::{deliver_body, Deliveries, To};
use crate::rooms::state::{room_json, State};
use crate::rooms::Rooms;

/// Whether others see `uid` in `rid`: a visible connection here, or on any other node.
fn visible(state: &State, rid: &str, uid: &str) -> bool {
    let here = state.rooms.get(rid).is_some_and(|r| r.has_visible(uid));
    here || state.remote.has(rid, uid)
}

/// Changes the remote view with `change`, then tells local members about every (room, user) whose
/// cluster-wide presence flipped.
fn with_presence_diff(
    state: &mut State,
    limit: usize,
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
        // A crowded room announces nobody (docs/protocol.md, big rooms).
        if room.crowded(&state.remote, limit) {
            continue;
        }
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
        let notice = crate::rooms::member::Notice::new(&status);
        for m in &room.members {
            m.push_notice(&notice);
        }
    }
}

impl Rooms {
    /// Who is present on this node, per room (visible members, each user once): the heartbeat snapshot.
    pub fn snapshot(&self, figures: Option<serde_json::Value>) -> Event {
        let mut rooms = Vec::new();
        for shard in self.each_shard() {
            rooms.extend(
                shard
                    .rooms
                    .iter()
                    .map(|(rid, room)| {
                        let users: Vec<User> = room.present().into_values().cloned().collect();
                        (rid.clone(), users)
                    })
                    .filter(|(_, users)| !users.is_empty()),
            );
        }
        Event::Snapshot {
            node: self.node().to_string(),
            rooms,
            figures,
        }
    }

    /// Applies one event from the bus. Events this node published itself are skipped, except messages: those
    /// are delivered here too, on their way back, so local and remote members share one order.
    pub fn apply(&self, event: Event, body: Bytes) {
        let limit = self.policy().presence_limit;
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
                let mut out = Deliveries::default();
                let to = To {
                    room,
                    target: &target,
                    sender: &sender,
                    skip,
                };
                let n = deliver_body(&self.inner, to, mid, &body, &mut out);
                out.flush();
                self.inner.metrics.fanout_deliveries_total.inc_by(n as u64);
            }
            _ if from_me => {}
            Event::Join { node, rid, user } => {
                self.heard(&node);
                let mut state = self.room_state(&rid);
                let touched = [(rid.clone(), user.id.clone())];
                with_presence_diff(&mut state, limit, &touched, "", |s| {
                    s.remote.add_user(&node, &rid, user);
                });
            }
            Event::Leave {
                node,
                rid,
                uid,
                reason,
            } => {
                self.nodes().heard_if_known(&node);
                let mut state = self.room_state(&rid);
                let touched = [(rid.clone(), uid.clone())];
                with_presence_diff(&mut state, limit, &touched, &reason, |s| {
                    s.remote.remove_user(&node, &rid, &uid);
                });
            }
            Event::Snapshot {
                node,
                rooms,
                figures,
            } => {
                self.heard(&node);
                self.nodes().set_figures(&node, figures);
                // Each shard gets the node's presence in its own rooms (nothing, for a shard whose rooms the
                // node no longer has anyone in).
                let mut by_shard: HashMap<usize, HashMap<String, HashMap<String, User>>> =
                    HashMap::new();
                for (rid, users) in rooms {
                    let users: HashMap<String, User> =
                        users.into_iter().map(|u| (u.id.clone(), u)).collect();
                    by_shard
                        .entry(self.inner.shards.index(&rid))
                        .or_default()
                        .insert(rid, users);
                }
                for (i, mut state) in self.each_shard().enumerate() {
                    let fresh = by_shard.remove(&i).unwrap_or_default();
                    let old = state.remote.pairs_of(&node);
                    let new = pairs(&fresh);
                    if old == new && old.is_empty() {
                        continue;
                    }
                    let touched: Vec<(String, String)> =
                        old.symmetric_difference(&new).cloned().collect();
                    with_presence_diff(&mut state, limit, &touched, "", |s| {
                        s.remote.set_rooms(&node, fresh);
                    });
                }
            }
            Event::Hello { .. } => {
                if let Some(bus) = self.inner.bus.cluster() {
                    bus.publish(&self.snapshot(None), &[]);
                }
            }
            Event::Bye { node } => self.drop_node(&node, "node stopped"),
            Event::Rights { rid, uid, mask, .. } => {
                if let Some(room) = self.room_state(&rid).rooms.get_mut(&rid) {
                    room.set_rights(&uid, Mask(mask));
                }
            }
            Event::RoomProperties {
                rid, properties, ..
            } => {
                if let Some(room) = self.room_state(&rid).rooms.get_mut(&rid) {
                    room.row.properties = properties;
                }
            }
            Event::Read { rid, uid, mid, .. } => {
                if !from_me {
                    self.tell_read(&rid, &uid, mid);
                }
            }
            Event::Redact {
                rid,
                users,
                mids,
                by,
                at,
                ..
            } => {
                if !from_me {
                    self.tell_redacted(rid.as_deref(), &users, &mids, &by, at);
                }
            }
            Event::Typing { rid, user, .. } => {
                if !from_me {
                    self.tell_typing(&rid, &user);
                }
            }
            Event::Disconnect { uid, reason, .. } => {
                // The node that was called ended its own sessions already.
                if !from_me {
                    let ended = self.disconnect_here(&uid, &reason);
                    tracing::info!(user = %uid, ended, "disconnected on another node's request");
                }
            }
        }
    }

    /// Forgets a node: its users leave presence.
    fn drop_node(&self, node: &str, reason: &str) {
        let limit = self.policy().presence_limit;
        {
            let mut nodes = self.nodes();
            if !nodes.alive(node) {
                return;
            }
            nodes.remove(node);
        }
        let mut users = 0;
        for mut state in self.each_shard() {
            let touched: Vec<(String, String)> = state.remote.pairs_of(node).into_iter().collect();
            if touched.is_empty() {
                continue;
            }
            users += touched.len();
            with_presence_diff(&mut state, limit, &touched, reason, |s| {
                s.remote.remove_node(node);
            });
        }
        tracing::info!(node, users, reason, "cluster node dropped");
        self.count_nodes();
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
        let dead = self.nodes().silent_for(ttl);
        for node in dead {
            self.drop_node(&node, "node timed out");
        }
    }

    /// `node` was heard from (it is alive, and known from now on).
    fn heard(&self, node: &str) {
        self.nodes().heard(node);
        self.count_nodes();
    }

    fn count_nodes(&self) {
        let others = self.nodes().count();
        self.inner.metrics.cluster_nodes.set(1 + others as i64);
    }
}
