//! Plain values the store reads and writes.

use sqlx::FromRow;

/// A message to persist. `room_id` for room messages, `peers` (sorted pair) for user-to-user ones.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub thread: Thread,
    pub sender: String,
    pub sender_nick: String,
    pub sender_avatar: String,
    pub kind: String,
    pub cast: String,
    pub target: String,
    /// Raw JSON of the `data` field.
    pub data: String,
    pub payload: Option<Vec<u8>>,
    pub created_ms: i64,
}

/// Where a message lives: a room, or the conversation of two users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thread {
    Room(String),
    /// Always stored as (smaller id, larger id), so both directions are one conversation.
    Peers(String, String),
}

impl Thread {
    /// The thread of stored message `id` from its columns: a room, or a pair of users.
    pub(super) fn of_row(
        id: i64,
        room: Option<String>,
        lo: Option<String>,
        hi: Option<String>,
    ) -> Result<Thread, super::StoreError> {
        match (room, lo, hi) {
            (Some(room), _, _) => Ok(Thread::Room(room)),
            (None, Some(lo), Some(hi)) => Ok(Thread::Peers(lo, hi)),
            _ => Err(super::StoreError::Corrupt(format!(
                "message {id} has neither room nor peers"
            ))),
        }
    }

    pub fn peers(a: &str, b: &str) -> Thread {
        if a <= b {
            Thread::Peers(a.to_string(), b.to_string())
        } else {
            Thread::Peers(b.to_string(), a.to_string())
        }
    }
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: i64,
    pub room_id: Option<String>,
    pub sender: String,
    pub sender_nick: String,
    pub sender_avatar: String,
    pub kind: String,
    pub cast_to: String,
    pub target: String,
    pub data: String,
    pub payload_len: i64,
    pub created_ms: i64,
    /// Who redacted the message and when (docs/protocol.md, `redact`): its data and payload are gone.
    pub redacted_by: Option<String>,
    pub redacted_ms: Option<i64>,
    /// Set by the history reader when `data` fails the accept-time check (`protocol::json_check`): the row
    /// is served with `data: null` and `unreadable: true` instead of breaking the page.
    #[sqlx(skip)]
    pub unreadable: bool,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct RoomRow {
    pub id: String,
    pub owner: String,
    pub created_ms: i64,
    pub properties: String,
}

/// Which end of the thread to read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The newest messages (below `before`, if set): a chat window scrolling back.
    Newest,
    /// The oldest messages above `after`: catching up from a known point.
    Oldest,
}

#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub thread: Thread,
    /// Only ids strictly below this.
    pub before: Option<i64>,
    /// Only ids strictly above this.
    pub after: Option<i64>,
    pub limit: u32,
}

impl HistoryQuery {
    pub fn direction(&self) -> Direction {
        if self.after.is_some() && self.before.is_none() {
            Direction::Oldest
        } else {
            Direction::Newest
        }
    }
}

/// A page of history, always in ascending id order.
#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<StoredMessage>,
    /// More messages exist beyond this page in the direction read.
    pub more: bool,
    /// Retention removed this thread's messages below this id (only set on a page that reaches the oldest
    /// message kept, where the gap would show).
    pub pruned_before: Option<i64>,
}

/// A message's binary payload with the thread it belongs to.
#[derive(Debug, Clone)]
pub struct StoredPayload {
    pub thread: Thread,
    pub bytes: Vec<u8>,
}

/// One term of a search: its words adjacent and in order (one word is a one-word phrase); with `prefix`, the
/// last word matches any word it begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerm {
    pub words: Vec<String>,
    pub prefix: bool,
}

/// Where a search looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchScope {
    /// Every room the user's stored rights let them read and their own conversations; `rooms`, when the
    /// user's token names the rooms it may touch, keeps only those.
    Readable { rooms: Option<Vec<String>> },
    /// One room (the caller checked the user may read it).
    Room(String),
    /// One conversation (sorted pair, the user being one of them).
    Peers(String, String),
}

/// A search: messages matching every term, below `before`, newest first.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub user: String,
    pub terms: Vec<SearchTerm>,
    /// With a one-thread scope: the word the indexer adds for that thread (`archive::thread_token`). SQLite
    /// adds it as a term, so FTS5 intersects the thread's list with the words' instead of reading every
    /// message that has the words; PostgreSQL's planner does better without it (it walks the index newest
    /// first, or takes a bitmap for rare words, by its statistics).
    pub thread_word: Option<String>,
    pub scope: SearchScope,
    pub before: Option<i64>,
    pub limit: u32,
}
