//! `typing`: a member says it is typing, and the room's other readers are told, on this node and over the bus
//! on every other. Nothing is stored and nothing is replayed: a notice that finds nobody is gone.

use serde_json::json;

use super::access::{authorize, Act};
use super::member::Notice;
use super::state::validate_room_id;
use super::{RoomError, Rooms};
use crate::protocol::args::User;
use crate::protocol::status::codes;
use crate::protocol::Status;

impl Rooms {
    /// Connection `conn` of `user`, joined to `rid`, is typing. It must be allowed to send there (checked as a
    /// send is); with `announce` false (the session's rate limit) only that check is made. A private member
    /// (hidden from presence) is never announced. Whether a notice went out.
    pub fn typing(
        &self,
        conn: u64,
        user: &User,
        rid: &str,
        announce: bool,
    ) -> Result<bool, RoomError> {
        validate_room_id(rid)?;
        let private = {
            let state = self.room_state(rid);
            let room = state.rooms.get(rid);
            let member = room
                .and_then(|r| r.members.iter().find(|m| m.conn == conn))
                .ok_or_else(|| RoomError::NotJoined(rid.to_string()))?;
            authorize(
                &member.claims,
                Act::Send,
                rid,
                room.map(|r| r.mask_of(&user.id)),
            )?;
            member.private
        };
        if !announce || private {
            return Ok(false);
        }
        self.tell_typing(rid, user);
        self.publish(|node| crate::bus::Event::Typing {
            node: node.to_string(),
            rid: rid.to_string(),
            user: user.clone(),
        });
        Ok(true)
    }

    /// Pushes `NetGroup.Typing.Notify` to this node's readers of `rid`, except `user`'s own connections.
    pub(super) fn tell_typing(&self, rid: &str, user: &User) {
        let status = Status::ok(codes::GROUP_TYPING_NOTIFY, format!("{} is typing", user.id))
            .with_info(json!({ "room": { "id": rid }, "user": user }));
        let notice = Notice::new(&status);
        if let Some(room) = self.room_state(rid).rooms.get(rid) {
            for (m, reads) in room.members.iter().zip(room.readers.iter()) {
                if *reads && m.user.id != user.id {
                    m.push_notice(&notice);
                }
            }
        }
    }
}
