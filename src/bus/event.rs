//! What nodes tell each other, and its encoding: a u32 big-endian length, that many bytes of JSON header, then
//! the raw body (a message's push, already encoded once by the node that committed it, so no node re-encodes
//! it and every recipient everywhere gets the same bytes).

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::protocol::args::User;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// A committed (or temporary) message; the body is the push's command payload.
    Message {
        node: String,
        /// The sending connection on `node`: it gets the answer, not a copy.
        conn: u64,
        /// True: `target` is a room id (`multi`); false: a user id (`uni`).
        room: bool,
        target: String,
        sender: String,
        /// The stored id (absent for live-only messages, and from nodes older than catch-up on join).
        #[serde(default)]
        mid: Option<i64>,
    },
    /// `user` became present in room `rid` on `node` (its first connection there joined).
    Join {
        node: String,
        rid: String,
        user: User,
    },
    /// `uid` is no longer present in room `rid` on `node`.
    Leave {
        node: String,
        rid: String,
        uid: String,
        reason: String,
    },
    /// Everyone present on `node`, per room: sent every heartbeat. A node not heard from within the TTL is dead.
    Snapshot {
        node: String,
        rooms: Vec<(String, Vec<User>)>,
        /// The node's overview figures (connections, rates' counters, store, memory: `Metrics::overview`), for
        /// the admin console's view of every node. Absent from nodes older than the console.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        figures: Option<serde_json::Value>,
    },
    /// A node started: the others answer with a snapshot at once, so it sees presence without waiting.
    Hello { node: String },
    /// A node stops: its users leave presence now rather than at the TTL.
    Bye { node: String },
    /// Rights changed (persisted already): nodes with the room loaded update their cache.
    Rights {
        node: String,
        rid: String,
        uid: String,
        mask: u32,
    },
    /// A room's properties changed (persisted already).
    RoomProperties {
        node: String,
        rid: String,
        properties: String,
    },
    /// `uid` read room `rid` up to `mid`, in a room with read receipts: members everywhere are told.
    Read {
        node: String,
        rid: String,
        uid: String,
        mid: i64,
    },
    /// Messages `mids` were redacted (persisted already): the members of room `rid`, or the two users of a
    /// conversation (`users`), are told everywhere.
    Redact {
        node: String,
        rid: Option<String>,
        users: Vec<String>,
        mids: Vec<i64>,
        by: String,
        at: i64,
    },
    /// `user` is typing in room `rid` (not stored; nodes tell their own members).
    Typing {
        node: String,
        rid: String,
        user: User,
    },
    /// The server API disconnected user `uid`: every node ends that user's sessions, telling them `reason`.
    Disconnect {
        node: String,
        uid: String,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("bus event shorter than its header length")]
    Truncated,
    #[error("bus event header is not valid: {0}")]
    Header(String),
    #[error("bus header cannot be encoded: {0}")]
    Encode(String),
}

impl Event {
    /// The node that sent it.
    pub fn node(&self) -> &str {
        match self {
            Event::Message { node, .. }
            | Event::Join { node, .. }
            | Event::Leave { node, .. }
            | Event::Snapshot { node, .. }
            | Event::Hello { node }
            | Event::Bye { node }
            | Event::Rights { node, .. }
            | Event::RoomProperties { node, .. }
            | Event::Disconnect { node, .. }
            | Event::Redact { node, .. }
            | Event::Typing { node, .. }
            | Event::Read { node, .. } => node,
        }
    }

    /// A short name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Message { .. } => "message",
            Event::Join { .. } => "join",
            Event::Leave { .. } => "leave",
            Event::Snapshot { .. } => "snapshot",
            Event::Hello { .. } => "hello",
            Event::Bye { .. } => "bye",
            Event::Rights { .. } => "rights",
            Event::RoomProperties { .. } => "room_properties",
            Event::Disconnect { .. } => "disconnect",
            Event::Read { .. } => "read",
            Event::Redact { .. } => "redact",
            Event::Typing { .. } => "typing",
        }
    }

    pub fn encode(&self, body: &[u8]) -> Result<Bytes, EventError> {
        encode(self, body)
    }

    pub fn decode(bytes: &Bytes) -> Result<(Event, Bytes), EventError> {
        decode(bytes)
    }
}

/// Any header and a body in the bus layout (requests and answers use it too).
pub fn encode<H: Serialize>(header: &H, body: &[u8]) -> Result<Bytes, EventError> {
    // Headers are trees of strings and numbers; should one ever fail, the caller says so instead of sending
    // an empty header.
    let header = serde_json::to_vec(header).map_err(|e| EventError::Encode(e.to_string()))?;
    let mut b = BytesMut::with_capacity(4 + header.len() + body.len());
    b.put_u32(header.len() as u32);
    b.put_slice(&header);
    b.put_slice(body);
    Ok(b.freeze())
}

pub fn decode<H: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<(H, Bytes), EventError> {
    if bytes.len() < 4 {
        return Err(EventError::Truncated);
    }
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = 4usize.checked_add(len).ok_or(EventError::Truncated)?;
    if bytes.len() < end {
        return Err(EventError::Truncated);
    }
    let header =
        serde_json::from_slice(&bytes[4..end]).map_err(|e| EventError::Header(e.to_string()))?;
    Ok((header, bytes.slice(end..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_header_and_body() {
        let e = Event::Message {
            node: "n1".into(),
            conn: 7,
            room: true,
            target: "lobby".into(),
            sender: "alice".into(),
            mid: Some(3),
        };
        let bytes = e.encode(b"\x00\x01body").expect("encodes");
        let (back, body) = Event::decode(&bytes).expect("decodes");
        assert_eq!(back, e);
        assert_eq!(&body[..], b"\x00\x01body");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(
            Event::decode(&Bytes::from_static(b"\x00\x00")),
            Err(EventError::Truncated)
        );
        assert_eq!(
            Event::decode(&Bytes::from_static(b"\xff\xff\xff\xffab")),
            Err(EventError::Truncated)
        );
        assert!(matches!(
            Event::decode(&Bytes::from_static(b"\x00\x00\x00\x02{}")),
            Err(EventError::Header(_))
        ));
    }
}
