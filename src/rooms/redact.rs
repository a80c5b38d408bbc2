//! `redact {mid}` and the server API's redaction and erasure: a message's text and payload leave the store
//! and the search index, history keeps a tombstone (`redacted`, by whom, when), and the members online are
//! told with `NetGroup.Redact.Notify`.

use serde_json::{json, Value};

use crate::protocol::args::Mask;
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::rooms::access::{authorize, Act, RoomClaims};
use crate::rooms::member::Notice;
use crate::rooms::{RoomError, Rooms};
use crate::store::Thread;

/// Ids redacted per transaction when erasing a user's messages (and per notice about them).
const ERASE_BATCH: u32 = 500;

/// Who asks for a redaction.
pub enum RedactBy<'a> {
    /// A connected user: their own messages, or any message of a room where they hold `x`.
    User { id: &'a str, claims: &'a RoomClaims },
    /// The server API, in the name of this identity: any message.
    Server { id: &'a str },
}

impl Rooms {
    /// Redacts message `mid` and tells the members online. Redacting a redacted message changes nothing and
    /// answers the same. Someone else's conversation looks like a missing message.
    pub async fn redact(&self, by: RedactBy<'_>, mid: i64) -> Result<Value, RoomError> {
        let store = self.store();
        let missing = || RoomError::NoSuchMessage(mid);
        let msg = store.message_ref(mid).await?.ok_or_else(missing)?;
        let who = match by {
            RedactBy::Server { id } => id,
            RedactBy::User { id, claims } => {
                match &msg.thread {
                    Thread::Peers(lo, hi) if id != lo && id != hi => return Err(missing()),
                    Thread::Peers(..) if id != msg.sender => {
                        return Err(RoomError::Invalid {
                            what: "redact",
                            reason: "only its sender may redact a message of a conversation".into(),
                        })
                    }
                    Thread::Peers(..) => {}
                    Thread::Room(rid) => {
                        // Reading the room is needed to know the message at all; its sender may redact it,
                        // and so may an `x` holder.
                        authorize(claims, Act::Read, rid, None)?;
                        let row = self.existing_room(rid).await?;
                        let mask = self.mask_of(&row, id).await?;
                        authorize(claims, Act::Read, rid, Some(mask))?;
                        if id != msg.sender && !mask.contains(Mask::X) {
                            return Err(RoomError::NotAdmin(rid.clone()));
                        }
                    }
                }
                id
            }
        };
        let at = crate::clock::now_ms();
        let done = store.redact(&[mid], who, at, false).await?;
        if !done.is_empty() {
            self.inner.metrics.history_redacted_total.inc();
            self.announce_redacted(&msg.thread, &done, who, at);
        }
        Ok(json!({ "mid": mid, "redacted": true }))
    }

    /// Erases every message `uid` sent in room `rid` (the right to erasure, from the server API): redacted
    /// as by `by`, the sender's nick and avatar erased too, in batches; members online are told per batch.
    /// Returns how many messages it redacted.
    pub async fn erase_messages(&self, by: &str, rid: &str, uid: &str) -> Result<u64, RoomError> {
        crate::rooms::state::validate_user_id(uid)?;
        self.existing_room(rid).await?;
        let store = self.store();
        let thread = Thread::Room(rid.to_string());
        let mut after = 0;
        let mut total = 0u64;
        loop {
            let ids = store
                .sender_messages_in_room(rid, uid, after, ERASE_BATCH)
                .await?;
            let Some(&last) = ids.last() else { break };
            after = last;
            let at = crate::clock::now_ms();
            let done = store.redact(&ids, by, at, true).await?;
            total += done.len() as u64;
            if !done.is_empty() {
                self.inner
                    .metrics
                    .history_redacted_total
                    .inc_by(done.len() as u64);
                self.announce_redacted(&thread, &done, by, at);
            }
        }
        Ok(total)
    }

    /// Tells this node's members and, over the bus, every other node's.
    fn announce_redacted(&self, thread: &Thread, mids: &[i64], by: &str, at: i64) {
        let (rid, users) = match thread {
            Thread::Room(rid) => (Some(rid.as_str()), Vec::new()),
            Thread::Peers(lo, hi) => (None, vec![lo.clone(), hi.clone()]),
        };
        self.tell_redacted(rid, &users, mids, by, at);
        self.publish(|node| crate::bus::Event::Redact {
            node: node.to_string(),
            rid: rid.map(str::to_string),
            users: users.clone(),
            mids: mids.to_vec(),
            by: by.to_string(),
            at,
        });
    }

    /// Pushes `NetGroup.Redact.Notify` to this node's members of `rid` who may read it, or to the inboxes of
    /// the conversation's two `users`.
    pub(in crate::rooms) fn tell_redacted(
        &self,
        rid: Option<&str>,
        users: &[String],
        mids: &[i64],
        by: &str,
        at: i64,
    ) {
        let mut info = json!({ "mids": mids, "by": { "id": by }, "at": at });
        match rid {
            Some(rid) => info["room"] = json!({ "id": rid }),
            None => info["users"] = json!(users),
        }
        let status = Status::ok(
            codes::GROUP_REDACT_NOTIFY,
            format!("{} message(s) redacted", mids.len()),
        )
        .with_info(info);
        let notice = Notice::new(&status);
        match rid {
            Some(rid) => {
                if let Some(room) = self.room_state(rid).rooms.get(rid) {
                    for (m, reads) in room.members.iter().zip(room.readers.iter()) {
                        if *reads {
                            m.push_notice(&notice);
                        }
                    }
                }
            }
            None => {
                let inboxes = self.inboxes();
                for u in users {
                    for m in inboxes.get(u).into_iter().flatten() {
                        m.push_notice(&notice);
                    }
                }
            }
        }
    }
}
