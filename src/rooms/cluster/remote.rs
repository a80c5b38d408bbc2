//! What this node knows of the other nodes' presence: per node, which users are present in which rooms, and
//! when it last heard from that node. Plain data; the event handling that changes it is in `events.rs`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::protocol::args::User;

/// What this node knows of the others' presence.
#[derive(Default)]
pub(in crate::rooms) struct Remote {
    nodes: HashMap<String, NodeView>,
}

pub struct NodeView {
    seen: Instant,
    /// room id -> user id -> user.
    pub rooms: HashMap<String, HashMap<String, User>>,
    /// Its overview figures from its last snapshot (`Metrics::overview`), for the admin console.
    pub figures: Option<serde_json::Value>,
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

    /// Rooms `uid` is present in on other nodes.
    pub fn rooms_of(&self, uid: &str) -> impl Iterator<Item = &str> + '_ {
        let uid = uid.to_string();
        self.nodes.values().flat_map(move |n| {
            let uid = uid.clone();
            n.rooms
                .iter()
                .filter(move |(_, users)| users.contains_key(&uid))
                .map(|(rid, _)| rid.as_str())
        })
    }

    /// Other nodes alive.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn user(&self, rid: &str, uid: &str) -> Option<&User> {
        self.nodes
            .values()
            .filter_map(|n| n.rooms.get(rid))
            .find_map(|r| r.get(uid))
    }

    pub fn view(&mut self, node: &str) -> &mut NodeView {
        let v = self
            .nodes
            .entry(node.to_string())
            .or_insert_with(|| NodeView {
                seen: Instant::now(),
                rooms: HashMap::new(),
                figures: None,
            });
        v.seen = Instant::now();
        v
    }

    /// Whether `node` was heard from within the TTL.
    pub fn alive(&self, node: &str) -> bool {
        self.nodes.contains_key(node)
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

    /// The other live nodes' names.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// The (room, user) pairs `node` reports present (empty for an unknown node).
    pub fn pairs_of(&self, node: &str) -> HashSet<(String, String)> {
        self.nodes
            .get(node)
            .map(|v| pairs(&v.rooms))
            .unwrap_or_default()
    }

    /// Forgets `uid` in `rid` on `node` (a leave it published).
    pub fn remove_user(&mut self, node: &str, rid: &str, uid: &str) {
        let Some(view) = self.nodes.get_mut(node) else {
            return;
        };
        view.seen = Instant::now();
        if let Some(users) = view.rooms.get_mut(rid) {
            users.remove(uid);
            if users.is_empty() {
                view.rooms.remove(rid);
            }
        }
    }

    /// Forgets a node altogether.
    pub fn remove_node(&mut self, node: &str) {
        self.nodes.remove(node);
    }

    /// Nodes not heard from within `ttl`.
    pub fn silent_for(&self, ttl: Duration) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, v)| v.seen.elapsed() > ttl)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// The (room, user) pairs of one node's view.
pub fn pairs(rooms: &HashMap<String, HashMap<String, User>>) -> HashSet<(String, String)> {
    rooms
        .iter()
        .flat_map(|(rid, users)| users.keys().map(move |uid| (rid.clone(), uid.clone())))
        .collect()
}
