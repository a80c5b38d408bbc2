//! The in-memory picture: loaded rooms with their present members and cached rights, and each user's inboxes
//! for uni-cast; and what every file of `rooms` checks or renders about a room (ids, default rights, its JSON).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::cluster::remote::Remote;
use super::error::RoomError;
use super::member::Member;
use crate::protocol::args::{Mask, User};
use crate::store::RoomRow;

/// One shard of the in-memory picture (`shards.rs`): the loaded rooms whose ids hash to it, and the other
/// nodes' presence in those rooms (empty for a single node).
#[derive(Default)]
pub(super) struct State {
    pub rooms: HashMap<String, Room>,
    pub remote: Remote,
}

/// Live messages held for a member pipe during its catch-up: (stored id, the push).
pub(super) type Held = Vec<(Option<i64>, crate::protocol::Frame)>;

pub(super) struct Room {
    pub row: RoomRow,
    /// Rights of users who joined while the room was loaded (write-through from chmod).
    pub rights: HashMap<String, Mask>,
    /// Change only through `add_member` / `remove_member`, which keep the two counts below in step.
    pub members: Vec<Member>,
    /// Member pipes per user, and visible (not private) member pipes per user: presence questions (is this
    /// user's first pipe? how many users are present?) answered in O(1), not by scanning a big room.
    pipes_of: HashMap<String, u32>,
    visible: HashMap<String, u32>,
    /// Beside `members`, index for index: whether that member's user holds `r` now (kept by `set_rights`), so
    /// fan-out reads a flag per recipient instead of looking the user's rights up per message.
    pub readers: Vec<bool>,
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
            pipes_of: HashMap::new(),
            visible: HashMap::new(),
            readers: Vec::new(),
            catching_up: HashMap::new(),
        }
    }

    pub fn add_member(&mut self, m: Member) {
        *self.pipes_of.entry(m.user.id.clone()).or_default() += 1;
        if !m.private {
            *self.visible.entry(m.user.id.clone()).or_default() += 1;
        }
        self.readers
            .push(self.mask_of(&m.user.id).contains(Mask::R));
        self.members.push(m);
    }

    /// Records a user's rights in this loaded room (a chmod here or on another node).
    pub fn set_rights(&mut self, user: &str, mask: Mask) {
        self.rights.insert(user.to_string(), mask);
        let reads = mask.contains(Mask::R);
        for (m, r) in self.members.iter().zip(self.readers.iter_mut()) {
            if m.user.id == user {
                *r = reads;
            }
        }
    }

    pub fn remove_member(&mut self, pos: usize) -> Member {
        self.readers.swap_remove(pos);
        let m = self.members.swap_remove(pos);
        let forget = |counts: &mut HashMap<String, u32>| {
            if let Some(n) = counts.get_mut(&m.user.id) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&m.user.id);
                }
            }
        };
        forget(&mut self.pipes_of);
        if !m.private {
            forget(&mut self.visible);
        }
        m
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

    /// Whether this room has `limit` users present or more, here and (`remote`) on other nodes: then joins and
    /// leaves are not announced to everyone and coverage lists are capped (docs/protocol.md, big rooms).
    pub fn crowded(&self, remote: &Remote, limit: usize) -> bool {
        self.present_count(remote) >= limit
    }

    /// Users present here (visible) and on other nodes, each once.
    pub fn present_count(&self, remote: &Remote) -> usize {
        let elsewhere = remote
            .users(&self.row.id)
            .into_keys()
            .filter(|id| !self.visible.contains_key(*id))
            .count();
        self.visible.len() + elsewhere
    }

    /// Whether `user` has a visible (not private) pipe in this room.
    pub fn has_visible(&self, user: &str) -> bool {
        self.visible.contains_key(user)
    }

    pub fn user_connections(&self, user: &str) -> usize {
        self.pipes_of.get(user).copied().unwrap_or(0) as usize
    }
}

/// A room as clients see it in answers and pushes.
pub(super) fn room_json(room: &Room) -> Value {
    json!({ "id": room.row.id, "owner": room.row.owner, "created": room.row.created_ms })
}

/// A room's stored properties (a JSON object as text). Stored text that is not an object is an error, not an
/// empty object: a write on top of it would silently drop what was there.
pub(super) fn room_properties(row: &RoomRow) -> Result<Map<String, Value>, RoomError> {
    serde_json::from_str(&row.properties).map_err(|e| {
        RoomError::Store(crate::store::StoreError::Corrupt(format!(
            "properties of room {:?} are not a JSON object: {e}",
            row.id
        )))
    })
}

/// The rights a room gives users without stored rights: its `default_rights` property, else the policy's
/// (also when the stored properties cannot be read: joining must not fail over them; it is logged).
pub(super) fn room_default(row: &RoomRow, policy_default: Mask) -> Mask {
    let props = match room_properties(row) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "using the default rights");
            return policy_default;
        }
    };
    props
        .get("default_rights")
        .and_then(|v| v.as_str())
        .and_then(Mask::from_letters)
        .unwrap_or(policy_default)
}

/// Room ids are opaque strings in any script, bounded so they stay usable as keys and in logs, and never
/// markup or made to look like another: `protocol::args::rooms::valid_room_id`.
pub(super) fn validate_room_id(rid: &str) -> Result<(), RoomError> {
    if !crate::protocol::args::rooms::valid_room_id(rid) {
        return Err(RoomError::Invalid {
            what: "room id",
            reason: "1 to 128 characters: no control or invisible characters, no space but U+0020 (none at either end), none of < > & \" ' \\, not . or .."
                .into(),
        });
    }
    Ok(())
}

/// User ids as targets (uni-cast, chmod, ban, read, the server API): the same rule as a token's user
/// (`auth::valid_user_id`), so no id can be named that no user could have.
pub(super) fn validate_user_id(uid: &str) -> Result<(), RoomError> {
    if !crate::protocol::args::user::valid_user_id(uid) {
        return Err(RoomError::Invalid {
            what: "user id",
            reason: "1 to 128 letters, digits or _ - . @ : (not . or ..)".into(),
        });
    }
    Ok(())
}
