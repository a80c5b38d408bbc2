//! `history {rid | uid, before, after, limit}`: a page of stored messages (an extension of the seed).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct History {
    /// A room's history...
    pub rid: Option<String>,
    /// ...or the conversation between the caller and this user.
    pub uid: Option<String>,
    /// Only messages with an id below this.
    pub before: Option<i64>,
    /// Only messages with an id above this.
    pub after: Option<i64>,
    pub limit: Option<u32>,
    /// Full-text search terms (docs/protocol.md, "Search").
    pub query: Option<String>,
}

/// `redact {mid}`: erases a message's data and payload, leaving a tombstone in history (an extension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redact {
    pub mid: i64,
}

/// `read {rid | uid, mid}`: marks a room or a conversation read up to message `mid` (positions only move
/// forward); without `mid`, asks where the caller is. Answered with the position and the unread count.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct Read {
    pub rid: Option<String>,
    pub uid: Option<String>,
    pub mid: Option<i64>,
}
