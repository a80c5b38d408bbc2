//! What a client remembers so that a lost transport costs its app nothing: the pipes it created, the rooms it
//! joined, and the last message id it received in each room.
//!
//! - A **resumed** session (same uuid) gets, with its `connect`, `after: {rid: last mid}`: the gateway replays
//!   the stored messages after it (what the dead transport swallowed) before what queued while it was away.
//!   Pushes whose `mid` is not above the last one seen in their room are dropped here, so the app sees each
//!   message once, in order.
//! - A **new** session (the old one expired) is restored: the pipes are created again in order and every room
//!   is joined again with `join {rid, after: last mid}`, so the replay comes before live messages.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::reply::Reply;

#[derive(Debug, Default)]
pub(super) struct Memory {
    /// Pipes this client created and has not released: (id, kind), in creation order.
    pub(super) pipes: Vec<(u16, String)>,
    /// Rooms joined: (pipe, rid).
    pub(super) rooms: Vec<(u16, String)>,
    /// The highest `mid` received per room.
    last: HashMap<String, i64>,
}

impl Memory {
    pub(super) fn created(&mut self, id: u16, kind: &str) {
        self.pipes.retain(|(p, _)| *p != id);
        self.pipes.push((id, kind.to_string()));
    }

    pub(super) fn released(&mut self, id: u16) {
        self.pipes.retain(|(p, _)| *p != id);
        self.rooms.retain(|(p, _)| *p != id);
    }

    pub(super) fn joined(&mut self, pipe: u16, rid: &str) {
        if !self.rooms.iter().any(|(p, r)| *p == pipe && r == rid) {
            self.rooms.push((pipe, rid.to_string()));
        }
    }

    pub(super) fn left(&mut self, pipe: u16, rid: &str) {
        self.rooms.retain(|(p, r)| !(*p == pipe && r == rid));
    }

    /// The last mid seen in each joined room, for a resuming `connect`'s `after`.
    pub(super) fn after(&self) -> BTreeMap<String, i64> {
        self.rooms
            .iter()
            .filter_map(|(_, rid)| Some((rid.clone(), *self.last.get(rid)?)))
            .collect()
    }

    /// The `join` that brings `rid` back on a new session: with `after` when a message of it was seen.
    pub(super) fn rejoin_args(&self, rid: &str) -> Value {
        use crate::protocol::commands::Command;
        crate::protocol::args::Join {
            rid: rid.to_string(),
            after: self.last.get(rid).copied(),
        }
        .to_args()
    }

    /// Records a push's room message id; false when it was already delivered (a replay and the queue after a
    /// resume may both carry it).
    pub(super) fn fresh(&mut self, push: &Reply) -> bool {
        let Some((rid, mid)) = room_message(push) else {
            return true;
        };
        match self.last.get_mut(rid) {
            Some(last) if mid <= *last => false,
            Some(last) => {
                *last = mid;
                true
            }
            None => {
                self.last.insert(rid.to_string(), mid);
                true
            }
        }
    }
}

/// (room id, mid) of a room message push (`send` with `cast: multi`).
fn room_message(push: &Reply) -> Option<(&str, i64)> {
    if push.txid != 0 || push.name() != "send" || push.args["cast"] != "multi" {
        return None;
    }
    Some((
        push.args["room"]["id"].as_str()?,
        push.args["mid"].as_i64()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn push(rid: &str, mid: i64) -> Reply {
        Reply {
            pipe: 1,
            txid: 0,
            timestamp: 0,
            args: json!({"name": "send", "cast": "multi", "id": rid, "room": {"id": rid}, "mid": mid}),
            raw_args: bytes::Bytes::new(),
            payload: bytes::Bytes::new(),
        }
    }

    #[test]
    fn drops_what_was_delivered_and_remembers_the_last() {
        let mut m = Memory::default();
        m.created(1, "messaging");
        m.joined(1, "a");
        m.joined(1, "b");
        assert!(m.fresh(&push("a", 5)));
        assert!(m.fresh(&push("a", 7)));
        assert!(!m.fresh(&push("a", 7)));
        assert!(!m.fresh(&push("a", 6)));
        assert!(m.fresh(&push("b", 1)));
        assert_eq!(
            m.after(),
            BTreeMap::from([("a".to_string(), 7), ("b".to_string(), 1)])
        );
        assert_eq!(m.rejoin_args("a")["after"], 7);
        assert!(m.rejoin_args("c").get("after").is_none());
        m.left(1, "b");
        assert_eq!(m.after().len(), 1);
        m.released(1);
        assert!(m.rooms.is_empty() && m.pipes.is_empty());
    }
}
