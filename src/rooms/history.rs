//! History reads, shared by the in-band `history` command and the HTTP API: rights checks, page size limits,
//! and the page's JSON shape.

use serde::Serialize;
use serde_json::value::RawValue;

use super::access::{authorize, Act, RoomClaims};
use super::state::validate_user_id;
use super::{RoomError, Rooms};
use crate::protocol::args::RoomRef;
use crate::protocol::json_check::check_json;
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
    /// The stored thread `caller` may read: a room needs `r` (token claim and stored rights); a conversation
    /// is readable by its two users.
    pub(super) async fn readable(
        &self,
        caller: &str,
        claims: &RoomClaims,
        thread: HistoryThread,
    ) -> Result<Thread, RoomError> {
        Ok(match thread {
            HistoryThread::Room(rid) => {
                authorize(claims, Act::Read, &rid, None)?;
                let row = self.existing_room(&rid).await?;
                let mask = self.mask_of(&row, caller).await?;
                authorize(claims, Act::Read, &rid, Some(mask))?;
                Thread::Room(rid)
            }
            HistoryThread::With(uid) => {
                validate_user_id(&uid)?;
                Thread::peers(caller, &uid)
            }
        })
    }

    /// Reads a page for `caller`, who needs `r` in a room; a conversation is readable by its two users.
    pub async fn history(
        &self,
        caller: &str,
        claims: &RoomClaims,
        req: HistoryRequest,
    ) -> Result<Page, RoomError> {
        let limit = self.policy().page_limit(req.limit)?;
        let thread = self.readable(caller, claims, req.thread).await?;
        self.read_page(HistoryQuery {
            thread,
            before: req.before,
            after: req.after,
            limit,
        })
        .await
    }

    /// A page of room `rid` (which must exist) with no rights check: the server API's read (an API key holder).
    pub async fn server_history(
        &self,
        rid: &str,
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Page, RoomError> {
        let limit = self.policy().page_limit(limit)?;
        self.existing_room(rid).await?;
        self.read_page(HistoryQuery {
            thread: Thread::Room(rid.to_string()),
            before,
            after,
            limit,
        })
        .await
    }

    /// The page the store has for `query` (its rights already checked), unreadable rows marked.
    async fn read_page(&self, query: HistoryQuery) -> Result<Page, RoomError> {
        let mut page = self.store().history(&query).await?;
        self.check_readable(&mut page.messages);
        Ok(page)
    }

    /// Rows stored before the accept-time check existed (or written by hand) are held to the same rule: one
    /// that fails it is marked to be served as a placeholder.
    pub(super) fn check_readable(&self, rows: &mut [StoredMessage]) {
        for m in rows {
            if let Err(e) = check_json(m.data.as_bytes()) {
                tracing::warn!(mid = m.id, error = %e, "stored message cannot be rendered; served as a placeholder");
                self.inner.metrics.history_unreadable_total.inc();
                m.unreadable = true;
            }
        }
    }
}

impl Rooms {
    /// `{"messages": [...]}` for the asynchronous hooks: the rows rendered as history pages render them
    /// (stored data passed through; a row failing the accept-time check becomes a placeholder).
    pub fn hook_messages(&self, rows: Vec<crate::store::StoredMessage>) -> String {
        // Joined as text: going through a `Value` would parse every stored `data` again.
        let items: Vec<String> = rows.into_iter().map(|m| self.hook_message(m)).collect();
        format!("{{\"messages\":[{}]}}", items.join(","))
    }

    /// One message as history pages render it, as JSON text.
    pub fn hook_message(&self, mut m: crate::store::StoredMessage) -> String {
        if check_json(m.data.as_bytes()).is_err() {
            self.inner.metrics.history_unreadable_total.inc();
            m.unreadable = true;
        }
        message_json(&m).1.get().to_string()
    }
}

/// One message of a page as the client sees it. `data` is the stored JSON text, passed through as is: it
/// passed `protocol::json_check` when it was accepted, and is never parsed again on the way out.
#[derive(Serialize)]
struct MessageView<'a> {
    mid: i64,
    #[serde(rename = "type")]
    kind: &'a str,
    cast: &'a str,
    id: &'a str,
    data: &'a RawValue,
    user: UserView<'a>,
    room: RoomRef<'a>,
    timestamp: i64,
    size: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unreadable: bool,
    /// A tombstone: the message was redacted by `redacted_by` at `redacted_at` (its data is null).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    redacted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted_at: Option<i64>,
}

#[derive(Serialize)]
struct UserView<'a> {
    id: &'a str,
    nick: &'a str,
    avatar: &'a str,
}

#[derive(Serialize)]
struct PageView<'a> {
    messages: &'a [&'a RawValue],
    more: bool,
    before: Option<i64>,
    after: Option<i64>,
    /// Retention removed the thread's messages below this id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pruned_before: Option<i64>,
}

/// `null`, for rows whose data cannot be served.
pub(super) fn null() -> Box<RawValue> {
    RawValue::from_string("null".into()).unwrap_or_default()
}

pub(super) fn message_json(m: &StoredMessage) -> (i64, Box<RawValue>) {
    let data = if m.unreadable {
        None
    } else {
        RawValue::from_string(m.data.clone()).ok()
    };
    let redacted = m.redacted_ms.is_some();
    let unreadable = data.is_none() && !redacted;
    let data = if redacted { None } else { data }.unwrap_or_else(null);
    let view = MessageView {
        mid: m.id,
        kind: &m.kind,
        cast: &m.cast_to,
        id: &m.target,
        data: &data,
        user: UserView {
            id: &m.sender,
            nick: &m.sender_nick,
            avatar: &m.sender_avatar,
        },
        room: RoomRef {
            id: m.room_id.as_deref().unwrap_or(""),
        },
        timestamp: m.created_ms,
        size: m.payload_len,
        unreadable,
        redacted,
        redacted_by: m.redacted_by.as_deref().filter(|_| redacted),
        redacted_at: m.redacted_ms,
    };
    // Serializing strings, numbers and already-valid raw JSON cannot fail.
    (
        m.id,
        serde_json::value::to_raw_value(&view).unwrap_or_else(|_| null()),
    )
}

/// The page as JSON text: `{messages: [...ascending...], more, before, after}`. `before`/`after` are the
/// cursors for the next older / newer page. With `max_bytes`, messages are dropped from the far end of the
/// page (and `more` set) until it fits, because an in-band answer must fit a command's 64 KiB argument limit.
/// Built without a `serde_json::Value`, so stored text is never re-parsed (and can never make this panic).
pub fn page_json(page: &Page, newest_first_trim: bool, max_bytes: Option<usize>) -> Box<RawValue> {
    let mut items: std::collections::VecDeque<(i64, Box<RawValue>)> =
        page.messages.iter().map(message_json).collect();
    let mut more = page.more;
    let mut pruned_before = page.pruned_before;
    if let Some(max) = max_bytes {
        let mut size: usize = items.iter().map(|(_, v)| v.get().len() + 1).sum::<usize>() + 128;
        while size > max {
            let dropped = if newest_first_trim {
                items.pop_front()
            } else {
                items.pop_back()
            };
            let Some((_, dropped)) = dropped else { break };
            size -= dropped.get().len() + 1;
            more = true;
            if newest_first_trim {
                // The page no longer reaches the oldest message kept.
                pruned_before = None;
            }
        }
    }
    let before = items.front().map(|(mid, _)| *mid);
    let after = items.back().map(|(mid, _)| *mid);
    let refs: Vec<&RawValue> = items.iter().map(|(_, v)| v.as_ref()).collect();
    let view = PageView {
        messages: &refs,
        more,
        before,
        after,
        pruned_before,
    };
    serde_json::value::to_raw_value(&view).unwrap_or_else(|_| null())
}

impl Rooms {
    /// The binary payload of message `mid`, if `caller` may read the thread it is in.
    pub async fn payload(
        &self,
        caller: &str,
        claims: &RoomClaims,
        mid: i64,
    ) -> Result<Option<Vec<u8>>, RoomError> {
        let Some(p) = self.store().payload(mid).await? else {
            return Ok(None);
        };
        match &p.thread {
            Thread::Room(rid) => {
                authorize(claims, Act::Download, rid, None)?;
                let row = self.existing_room(rid).await?;
                let mask = self.mask_of(&row, caller).await?;
                authorize(claims, Act::Download, rid, Some(mask))?;
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
