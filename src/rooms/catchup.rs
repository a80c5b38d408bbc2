//! Catch-up on join: `join {rid, after}` replays the room's stored messages after `after` before any live one.
//!
//! The join registers the pipe as catching up under the same lock that adds it to the room, so from that
//! instant every live message for it is held (with its stored id) instead of pushed. The replay is read from
//! the store afterwards, so a message committed at any moment is either in the replay or held, or both; the
//! held ones are pushed after the replay, skipping ids the replay already had. Nothing is lost, nothing is
//! delivered twice, and no live message overtakes the replay.

use serde_json::value::RawValue;

use super::access::RoomClaims;
use super::history::{HistoryRequest, HistoryThread};
use super::{RoomError, Rooms};
use crate::protocol::args::{RoomRef, SendPush, User};
use crate::protocol::outgoing::command_frame;
use crate::protocol::Frame;
use crate::transport::Outbox;

/// Payload bytes one replay may carry; past it the replay stops early and says `more`.
const REPLAY_BYTES: usize = 8 << 20;

/// The replayed pushes and where they end.
pub struct Replay {
    pub frames: Vec<Frame>,
    /// The highest `mid` replayed (`None`: nothing).
    pub last: Option<i64>,
    /// More stored messages follow `last` than one replay carries: page them with `history {after: last}`.
    pub more: bool,
}

impl Rooms {
    /// Reads the stored messages of `rid` after `after`, page by page (`history_max` a page), as the `send`
    /// pushes a member gets on `pipe`, payloads included, until none are left or `REPLAY_BYTES` are read.
    pub async fn replay(
        &self,
        caller: &str,
        claims: &RoomClaims,
        pipe: u16,
        rid: &str,
        after: i64,
    ) -> Result<Replay, RoomError> {
        let mut replay = Replay {
            frames: Vec::new(),
            last: None,
            more: false,
        };
        let mut bytes = 0;
        let mut from = after;
        loop {
            let page = self
                .history(
                    caller,
                    claims,
                    HistoryRequest {
                        thread: HistoryThread::Room(rid.to_string()),
                        before: None,
                        after: Some(from),
                        limit: Some(self.policy().history_max),
                    },
                )
                .await?;
            let Some(newest) = page.messages.last().map(|m| m.id) else {
                break;
            };
            for m in &page.messages {
                let payload = if m.payload_len > 0 {
                    match self.store().payload(m.id).await? {
                        Some(p) => p.bytes,
                        None => Vec::new(),
                    }
                } else {
                    Vec::new()
                };
                bytes += payload.len() + m.data.len();
                if bytes > REPLAY_BYTES && replay.last.is_some() {
                    replay.more = true;
                    return Ok(replay);
                }
                replay.last = Some(m.id);
                if let Some(frame) = push_frame(m, rid, pipe, &payload) {
                    replay.frames.push(frame);
                }
            }
            if !page.more {
                break;
            }
            from = newest;
        }
        Ok(replay)
    }

    /// Ends the catch-up of (`conn`, `pipe`) in `rid`: the live messages held meanwhile go to `outbox`, except
    /// those the replay (up to `last`) already delivered. Under the state lock, so nothing live slips between.
    /// Returns how many held messages were pushed.
    pub fn finish_catch_up(
        &self,
        conn: u64,
        pipe: u16,
        rid: &str,
        last: Option<i64>,
        outbox: &Outbox,
    ) -> usize {
        let mut state = self.room_state(rid);
        let Some(held) = state
            .rooms
            .get_mut(rid)
            .and_then(|r| r.catching_up.remove(&(conn, pipe)))
        else {
            return 0;
        };
        let mut pushed = 0;
        for (mid, frame) in held {
            let fresh = match (mid, last) {
                (Some(m), Some(l)) => m > l,
                _ => true,
            };
            if fresh && outbox.push(frame).is_ok() {
                pushed += 1;
            }
        }
        pushed
    }
}

/// A stored message as the `send` push a member gets on `pipe`; `None` for rows that are not replayed: those
/// that fail the read-back check (counted by `history`) and redacted ones (a replay is live messages late;
/// a tombstone is history's to show).
fn push_frame(
    m: &crate::store::StoredMessage,
    rid: &str,
    pipe: u16,
    payload: &[u8],
) -> Option<Frame> {
    if m.unreadable || m.redacted_ms.is_some() {
        return None;
    }
    let data = RawValue::from_string(m.data.clone()).ok()?;
    let user = User {
        id: m.sender.clone(),
        nick: m.sender_nick.clone(),
        avatar: m.sender_avatar.clone(),
    };
    let push = SendPush {
        name: "send",
        kind: &m.kind,
        cast: &m.cast_to,
        id: &m.target,
        data: &data,
        user: &user,
        room: RoomRef { id: rid },
        mid: Some(m.id),
    };
    let args = serde_json::to_vec(&push).ok()?;
    let timestamp = u32::try_from(m.created_ms / 1000).unwrap_or(0);
    command_frame(pipe, 0, &args, payload, timestamp).ok()
}
