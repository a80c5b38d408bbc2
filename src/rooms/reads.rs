//! Read positions and unread counts (docs/protocol.md, `read`): a user marks a room or a conversation read up
//! to a message; unread counts are the messages beyond, counted up to `UNREAD_CAP` so that a room with
//! millions of messages costs at most that many index entries, never a scan.

use serde_json::{json, Value};

use super::access::RoomClaims;
use super::history::HistoryThread;
use super::{RoomError, Rooms};
use crate::store::Thread;

/// Unread counts stop here (`more: true` beyond): what a badge shows as "9999+".
pub const UNREAD_CAP: u32 = 9_999;

impl Rooms {
    /// `caller`'s position in a thread they may read, moved forward to `mark` if given (clamped to the
    /// thread's newest message; positions never move back), with the unread count beyond it.
    pub async fn read(
        &self,
        caller: &str,
        claims: &RoomClaims,
        thread: HistoryThread,
        mark: Option<i64>,
    ) -> Result<Value, RoomError> {
        let thread = self.readable(caller, claims, thread).await?;
        let store = self.store();
        let position = match mark {
            Some(mid) if mid <= 0 => {
                return Err(RoomError::Invalid {
                    what: "mid",
                    reason: "must be a message id (positive)".into(),
                })
            }
            Some(mid) => {
                let newest = store.newest_in(&thread).await?;
                let (now, moved) = store.mark_read(caller, &thread, mid.min(newest)).await?;
                // A first mark in an empty thread stores 0: nothing was read, nobody is told.
                if let (Thread::Room(rid), true) = (&thread, moved && now > 0) {
                    self.read_receipt(rid, caller, now).await?;
                }
                now
            }
            None => store.read_position(caller, &thread).await?.unwrap_or(0),
        };
        self.unread_json(&thread, position).await
    }

    /// Every thread `user` has a read position in (rooms only while they may read them), with its unread count:
    /// `{"threads": [{"room": rid | "user": uid, "mid", "unread", "more"}]}`, conversations first, then rooms.
    pub async fn unread_of(&self, user: &str) -> Result<Value, RoomError> {
        let mut threads = Vec::new();
        for (key, mid) in self.store().read_positions(user).await? {
            let Some(thread) = Thread::from_read_key(&key) else {
                continue;
            };
            // A room the user may no longer read (or that is gone) is left out, counts included.
            if let Thread::Room(rid) = &thread {
                let Ok(row) = self.existing_room(rid).await else {
                    continue;
                };
                if !self
                    .mask_of(&row, user)
                    .await?
                    .contains(crate::protocol::args::Mask::R)
                {
                    continue;
                }
            }
            let mut item = self.unread_json(&thread, mid).await?;
            match &thread {
                Thread::Room(rid) => item["room"] = json!(rid),
                Thread::Peers(lo, hi) => item["user"] = json!(if lo == user { hi } else { lo }),
            }
            threads.push(item);
        }
        Ok(json!({ "threads": threads }))
    }

    /// In a room with `read_receipts`, tells the members (here, and on other nodes over the bus) that `uid`
    /// has read up to `mid`.
    async fn read_receipt(&self, rid: &str, uid: &str, mid: i64) -> Result<(), RoomError> {
        let row = self.existing_room(rid).await?;
        if super::state::room_properties(&row)?.get("read_receipts") != Some(&Value::Bool(true)) {
            return Ok(());
        }
        self.tell_read(rid, uid, mid);
        self.publish(|node| crate::bus::Event::Read {
            node: node.to_string(),
            rid: rid.to_string(),
            uid: uid.to_string(),
            mid,
        });
        Ok(())
    }

    /// Pushes `NetGroup.Read.Notify` to this node's members of `rid` who may read it.
    pub(super) fn tell_read(&self, rid: &str, uid: &str, mid: i64) {
        let status = crate::protocol::Status::ok(
            crate::protocol::status::codes::GROUP_READ_NOTIFY,
            format!("{uid} read up to {mid}"),
        )
        .with_info(json!({ "room": { "id": rid }, "user": { "id": uid }, "mid": mid }));
        let notice = super::member::Notice::new(&status);
        if let Some(room) = self.room_state(rid).rooms.get(rid) {
            for (m, reads) in room.members.iter().zip(room.readers.iter()) {
                if *reads {
                    m.push_notice(&notice);
                }
            }
        }
    }

    async fn unread_json(&self, thread: &Thread, position: i64) -> Result<Value, RoomError> {
        let counted = self
            .store()
            .count_after(thread, position, UNREAD_CAP + 1)
            .await?;
        let unread = counted.min(i64::from(UNREAD_CAP));
        Ok(json!({ "mid": position, "unread": unread, "more": counted > unread }))
    }
}
