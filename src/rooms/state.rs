//! The in-memory picture: loaded rooms with their present members and cached rights, and each user's inboxes
//! for uni-cast.

use std::collections::HashMap;

use super::member::Member;
use crate::protocol::args::{Mask, User};
use crate::store::RoomRow;

#[derive(Default)]
pub(super) struct State {
    pub rooms: HashMap<String, Room>,
    /// user id -> the messaging pipe of each of that user's connections that can take uni-cast pushes.
    pub inboxes: HashMap<String, Vec<Member>>,
    /// Signaling streams and their players.
    pub streams: super::streams::Streams,
    /// Presence on the other nodes of a cluster (empty for a single node).
    pub remote: super::cluster::Remote,
}

/// Live messages held for a member pipe during its catch-up: (stored id, the push).
pub(super) type Held = Vec<(Option<i64>, crate::protocol::Frame)>;

pub(super) struct Room {
    pub row: RoomRow,
    /// Rights of users who joined while the room was loaded (write-through from chmod).
    pub rights: HashMap<String, Mask>,
    pub members: Vec<Member>,
    /// Member pipes replaying history after a `join {after}`: live messages wait here (with their stored id)
    /// until the replay is queued, so nothing live overtakes it and nothing is delivered twice.
    pub catching_up: HashMap<(u64, u16), Held>,
}

impl Room {
    pub fn new(row: RoomRow) -> Room {
        Room {
            row,
            rights: HashMap::new(),
            members: Vec::new(),
            catching_up: HashMap::new(),
        }
    }

    pub fn mask_of(&self, user: &str) -> Mask {
        self.rights.get(user).copied().unwrap_or(Mask::NONE)
    }

    /// Distinct users present and not private, keyed by id (a user on two devices is listed once).
    pub fn present(&self) -> HashMap<&str, &User> {
        self.members
            .iter()
            .filter(|m| !m.private)
            .map(|m| (m.user.id.as_str(), &m.user))
            .collect()
    }

    pub fn user_connections(&self, user: &str) -> usize {
        self.members.iter().filter(|m| m.user.id == user).count()
    }
}
