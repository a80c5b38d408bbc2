//! What this node knows of the other nodes: which of them are alive (when each was last heard, its overview
//! figures: `Nodes`), and who is present on each, per room (`Remote`, one per shard of the rooms' state, holding
//! the presence in that shard's rooms). Plain data; the event handling that changes it is in `events.rs`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::protocol::args::User;

/// The other live nodes.
#[derive(Default)]
pub(in crate::rooms) struct Nodes {
    nodes: HashMap<String, NodeMeta>,
}

struct NodeMeta {
    seen: Instant,
    /// Its overview figures from its last snapshot (`Metrics::overview`), for the admin console.
    figures: Option<serde_json::Value>,
}

impl Nodes {
    /// `node` was heard from now (it becomes known if it was not).
    pub fn heard(&mut self, node: &str) {
        self.nodes
            .entry(node.to_string())
            .and_modify(|n| n.seen = Instant::now())
            .or_insert_with(|| NodeMeta {
                seen: Instant::now(),
                figures: None,
            });
    }

    /// `node` was heard from now, if it is known.
    pub fn heard_if_known(&mut self, node: &str) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.seen = Instant::now();
        }
    }

    pub fn set_figures(&mut self, node: &str, figures: Option<serde_json::Value>) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.figures = figures;
        }
    }

    /// Whether `node` was heard from within the TTL.
    pub fn alive(&self, node: &str) -> bool {
        self.nodes.contains_key(node)
    }

    /// Other nodes alive.
    pub fn count(&self) -> usize {
        self.nodes.len()
    }

    /// The other live nodes' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// The other live nodes' last figures, by name.
    pub fn figures(&self) -> Vec<(String, Option<serde_json::Value>)> {
        let mut all: Vec<_> = self
            .nodes
            .iter()
            .map(|(name, n)| (name.clone(), n.figures.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn remove(&mut self, node: &str) {
        self.nodes.remove(node);
    }

    /// Nodes not heard from within `ttl`.
    pub fn silent_for(&self, ttl: Duration) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.seen.elapsed() > ttl)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// The other nodes' presence in the rooms of one shard: node -> room id -> user id -> user.
#[derive(Default)]
pub(in crate::rooms) struct Remote {
    nodes: HashMap<String, HashMap<String, HashMap<String, User>>>,
}

impl Remote {
    pub fn has(&self, rid: &str, uid: &str) -> bool {
        self.nodes
            .values()
            .any(|n| n.get(rid).is_some_and(|r| r.contains_key(uid)))
    }

    /// Users present in `rid` on other nodes (each once).
    pub fn users(&self, rid: &str) -> HashMap<&str, &User> {
        self.nodes
            .values()
            .filter_map(|n| n.get(rid))
            .flat_map(|r| r.iter().map(|(k, u)| (k.as_str(), u)))
            .collect()
    }

    /// Rooms `uid` is present in on other nodes.
    pub fn rooms_of(&self, uid: &str) -> impl Iterator<Item = &str> + '_ {
        let uid = uid.to_string();
        self.nodes.values().flat_map(move |rooms| {
            let uid = uid.clone();
            rooms
                .iter()
                .filter(move |(_, users)| users.contains_key(&uid))
                .map(|(rid, _)| rid.as_str())
        })
    }

    pub fn user(&self, rid: &str, uid: &str) -> Option<&User> {
        self.nodes
            .values()
            .filter_map(|n| n.get(rid))
            .find_map(|r| r.get(uid))
    }

    /// `user` is present in `rid` on `node`.
    pub fn add_user(&mut self, node: &str, rid: &str, user: User) {
        self.nodes
            .entry(node.to_string())
            .or_default()
            .entry(rid.to_string())
            .or_default()
            .insert(user.id.clone(), user);
    }

    /// Replaces what `node` has present in this shard's rooms.
    pub fn set_rooms(&mut self, node: &str, rooms: HashMap<String, HashMap<String, User>>) {
        if rooms.is_empty() {
            self.nodes.remove(node);
        } else {
            self.nodes.insert(node.to_string(), rooms);
        }
    }

    /// The (room, user) pairs `node` reports present here (empty for an unknown node).
    pub fn pairs_of(&self, node: &str) -> HashSet<(String, String)> {
        self.nodes.get(node).map(pairs).unwrap_or_default()
    }

    /// Forgets `uid` in `rid` on `node` (a leave it published).
    pub fn remove_user(&mut self, node: &str, rid: &str, uid: &str) {
        let Some(rooms) = self.nodes.get_mut(node) else {
            return;
        };
        if let Some(users) = rooms.get_mut(rid) {
            users.remove(uid);
            if users.is_empty() {
                rooms.remove(rid);
            }
        }
        if rooms.is_empty() {
            self.nodes.remove(node);
        }
    }

    /// Forgets a node altogether.
    pub fn remove_node(&mut self, node: &str) {
        self.nodes.remove(node);
    }
}

/// The (room, user) pairs of one node's view.
pub fn pairs(rooms: &HashMap<String, HashMap<String, User>>) -> HashSet<(String, String)> {
    rooms
        .iter()
        .flat_map(|(rid, users)| users.keys().map(move |uid| (rid.clone(), uid.clone())))
        .collect()
}
