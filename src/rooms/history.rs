//! History reads, shared by the in-band `history` command and the HTTP API: rights checks, page size limits,
//! and the page's JSON shape.

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::presence::validate_user_id;
use super::{RoomError, Rooms};
use crate::protocol::args::Mask;
use crate::store::{HistoryQuery, Page, StoredMessage, Thread};

/// A history request: a room's messages, or the caller's conversation with one user.
#[derive(Debug, Clone)]
pub struct HistoryRequest {
    pub thread: HistoryThread,
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone)]
pub enum HistoryThread {
    Room(String),
    /// Conversation between the caller and this user.
    With(String),
}

impl Rooms {
    /// Reads a page for `caller`, who needs `r` in a room; a conversation is readable by its two users.
    pub async fn history(&self, caller: &str, req: HistoryRequest) -> Result<Page, RoomError> {
        let policy = self.policy();
        let limit = req.limit.unwrap_or(policy.history_default);
        if limit == 0 || limit > policy.history_max {
            return Err(RoomError::Invalid {
                what: "limit",
                reason: format!("must be between 1 and {}", policy.history_max),
            });
        }
        let thread = match req.thread {
            HistoryThread::Room(rid) => {
                let row = self.existing_room(&rid).await?;
                if !self.mask_of(&row, caller).await?.contains(Mask::R) {
                    return Err(RoomError::NoRead(rid));
                }
                Thread::Room(rid)
            }
            HistoryThread::With(uid) => {
                validate_user_id(&uid)?;
                Thread::peers(caller, &uid)
            }
        };
        Ok(self
            .store()
            .history(&HistoryQuery {
                thread,
                before: req.before,
                after: req.after,
                limit,
            })
            .await?)
    }
}

fn message_json(m: &StoredMessage) -> Value {
    let data = RawValue::from_string(m.data.clone()).ok();
    json!({
        "mid": m.id,
        "type": m.kind,
        "cast": m.cast_to,
        "id": m.target,
        "data": data,
        "user": { "id": m.sender, "nick": m.sender_nick, "avatar": m.sender_avatar },
        "room": { "id": m.room_id.as_deref().unwrap_or("") },
        "timestamp": m.created_ms,
        "size": m.payload_len,
    })
}

/// The page as JSON: `{messages: [...ascending...], more, before, after}`. `before`/`after` are the cursors for
/// the next older / newer page. With `max_bytes`, messages are dropped from the far end of the page (and `more`
/// set) until it fits, because an in-band answer must fit a command's 64 KiB argument limit.
pub fn page_json(page: &Page, newest_first_trim: bool, max_bytes: Option<usize>) -> Value {
    let mut items: Vec<Value> = page.messages.iter().map(message_json).collect();
    let mut more = page.more;
    if let Some(max) = max_bytes {
        let mut size: usize = items.iter().map(|v| v.to_string().len() + 1).sum::<usize>() + 128;
        while size > max && !items.is_empty() {
            let dropped = if newest_first_trim {
                items.remove(0)
            } else {
                items.pop().unwrap_or(Value::Null)
            };
            size -= dropped.to_string().len() + 1;
            more = true;
        }
    }
    let first = items.first().and_then(|m| m["mid"].as_i64());
    let last = items.last().and_then(|m| m["mid"].as_i64());
    json!({ "messages": items, "more": more, "before": first, "after": last })
}

impl Rooms {
    /// The binary payload of message `mid`, if `caller` may read the thread it is in.
    pub async fn payload(&self, caller: &str, mid: i64) -> Result<Option<Vec<u8>>, RoomError> {
        let Some(p) = self.store().payload(mid).await? else {
            return Ok(None);
        };
        match &p.thread {
            Thread::Room(rid) => {
                let row = self.existing_room(rid).await?;
                if !self.mask_of(&row, caller).await?.contains(Mask::R) {
                    return Err(RoomError::NoRead(rid.clone()));
                }
            }
            Thread::Peers(a, b) => {
                if caller != a && caller != b {
                    // Indistinguishable from a missing message: ids must not reveal other conversations.
                    return Ok(None);
                }
            }
        }
        Ok(Some(p.bytes))
    }
}
