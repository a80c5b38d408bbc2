//! What the server API reads about rooms: trusted callers (an API key holder), so no rights checks here.

use serde_json::{json, Value};

use super::state::{room_default, room_properties, validate_room_id, validate_user_id};
use super::{RoomError, Rooms};

impl Rooms {
    /// Lets the rooms service reach this node's sessions (the gateway calls it once, with the registry).
    pub fn set_sessions(&self, sessions: std::sync::Arc<dyn super::SessionDirectory>) {
        let _ = self.inner.sessions.set(sessions);
    }

    /// Ends every session of `uid` on this node; returns how many.
    pub(super) fn disconnect_here(&self, uid: &str, reason: &str) -> usize {
        self.inner
            .sessions
            .get()
            .map(|s| s.disconnect_user(uid, reason))
            .unwrap_or(0)
    }

    /// `uid`'s sessions on this node: (live, parked).
    pub fn sessions_of(&self, uid: &str) -> (usize, usize) {
        self.inner
            .sessions
            .get()
            .map(|s| s.sessions_of(uid))
            .unwrap_or((0, 0))
    }

    /// `uid` as the store last recorded it (`{"nick","avatar","first_connect","last_recorded"}`, ms), or
    /// `null` for a user who never connected.
    pub async fn user_record(&self, uid: &str) -> Result<Value, RoomError> {
        validate_user_id(uid)?;
        Ok(match self.store().user(uid).await? {
            Some((nick, avatar, first, last)) => json!({
                "nick": nick,
                "avatar": avatar,
                "first_connect": first,
                "last_recorded": last,
            }),
            None => Value::Null,
        })
    }

    /// Ends every session of `uid`, on every node: here now (the count returned), elsewhere through the bus.
    pub fn disconnect_user(&self, uid: &str, reason: &str) -> usize {
        let here = self.disconnect_here(uid, reason);
        self.publish(|node| crate::bus::Event::Disconnect {
            node: node.to_string(),
            uid: uid.to_string(),
            reason: reason.to_string(),
        });
        here
    }

    /// Creates `rid` owned by `owner` unless it exists (the server API's way to make rooms when
    /// `rooms.create_on_join` is off); the room as it is now, and whether this call created it.
    pub async fn server_create_room(
        &self,
        rid: &str,
        owner: &str,
    ) -> Result<(Value, bool), RoomError> {
        validate_room_id(rid)?;
        validate_user_id(owner)?;
        let (_, created) = self.store().ensure_room(rid, owner).await?;
        Ok((self.room_info(rid).await?, created))
    }

    /// A room's description: owner, creation time, properties, the rights users without stored rights get,
    /// and how many users are present now (on every node).
    pub async fn room_info(&self, rid: &str) -> Result<Value, RoomError> {
        validate_room_id(rid)?;
        let row = self.existing_room(rid).await?;
        let properties = room_properties(&row)?;
        let default_rights = room_default(&row, self.policy().default_mask).letters();
        let present = self.present_count(rid);
        Ok(json!({
            "id": row.id,
            "owner": row.owner,
            "created": row.created_ms,
            "properties": properties,
            "default_rights": default_rights,
            "present": present,
        }))
    }

    /// The rooms `uid` is present in, on every node, ascending by id.
    /// The rooms `uid` is present in through other nodes.
    pub fn remote_rooms_of(&self, uid: &str) -> Vec<String> {
        let mut rooms: Vec<String> = Vec::new();
        for shard in self.each_shard() {
            rooms.extend(shard.remote.rooms_of(uid).map(str::to_string));
        }
        rooms.sort();
        rooms.dedup();
        rooms
    }

    pub fn rooms_of(&self, uid: &str) -> Vec<String> {
        let mut rooms: Vec<String> = Vec::new();
        for shard in self.each_shard() {
            rooms.extend(
                shard
                    .rooms
                    .iter()
                    .filter(|(_, r)| r.members.iter().any(|m| m.user.id == uid))
                    .map(|(rid, _)| rid.clone())
                    .chain(shard.remote.rooms_of(uid).map(str::to_string)),
            );
        }
        rooms.sort();
        rooms.dedup();
        rooms
    }

    /// Whether room `rid` asks for offline notifications (its `offline_notify` property is `true`).
    pub async fn offline_notify(&self, rid: &str) -> Result<bool, RoomError> {
        let row = self.existing_room(rid).await?;
        Ok(room_properties(&row)?.get("offline_notify") == Some(&Value::Bool(true)))
    }

    /// A page of who is present in `rid` (which must exist), with no rights check.
    pub async fn presence(
        &self,
        rid: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<super::PresencePage, RoomError> {
        validate_room_id(rid)?;
        self.existing_room(rid).await?;
        Ok(self.present_page(rid, after, limit))
    }

    /// Users present in `rid`, here and on other nodes, each once: counted, not listed.
    fn present_count(&self, rid: &str) -> usize {
        let state = self.room_state(rid);
        match state.rooms.get(rid) {
            Some(room) => room.present_count(&state.remote),
            None => state.remote.users(rid).len(),
        }
    }

    /// Stored rights in `rid` (which must exist), ascending by user id after `after`:
    /// `{"rights": [{"user","mask": "rw"}], "more"}`. Users without stored rights hold the room's default.
    pub async fn room_rights(
        &self,
        rid: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Value, RoomError> {
        validate_room_id(rid)?;
        if let Some(a) = after {
            validate_user_id(a)?;
        }
        self.existing_room(rid).await?;
        let mut rows = self
            .store()
            .member_masks(rid, after, limit.saturating_add(1))
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let rights: Vec<Value> = rows
            .into_iter()
            .map(|(user, mask)| json!({ "user": user, "mask": crate::protocol::args::Mask(mask).letters() }))
            .collect();
        Ok(json!({ "rights": rights, "more": more }))
    }

    /// This node's and every other live node's overview figures (the admin console's overview): this node's
    /// read now, the others' from their last heartbeat (`{"node"}` only until one arrives).
    pub fn nodes_overview(&self, mine: Value) -> Value {
        let mut nodes = vec![mine];
        for (name, figures) in self.nodes().figures() {
            nodes.push(figures.unwrap_or_else(|| json!({ "node": name })));
        }
        json!({ "self": self.node(), "nodes": nodes })
    }

    /// Rooms ascending by id after `after`: `{"rooms": [{"id","owner","created","present"}], "more"}`.
    pub async fn rooms_page(&self, after: Option<&str>, limit: u32) -> Result<Value, RoomError> {
        if let Some(a) = after {
            validate_room_id(a)?;
        }
        let mut rows = self
            .store()
            .rooms_page(after, limit.saturating_add(1))
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let rooms: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "owner": r.owner,
                    "created": r.created_ms,
                    "present": self.present_count(&r.id),
                })
            })
            .collect();
        Ok(json!({ "rooms": rooms, "more": more }))
    }
}
