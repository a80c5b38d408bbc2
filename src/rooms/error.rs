//! Room failures; the session maps each to the status code of the command that hit it.

use thiserror::Error;

use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum RoomError {
    #[error("room {0:?} does not exist")]
    NoSuchRoom(String),
    /// Also what a message in someone else's conversation looks like: ids must not reveal conversations.
    #[error("message {0} does not exist")]
    NoSuchMessage(i64),
    #[error("you are not allowed in room {0:?}")]
    Banned(String),
    #[error("your token does not grant room {0:?}")]
    NotGranted(String),
    #[error("join room {0:?} before sending to it")]
    NotJoined(String),
    #[error("you have no write (w) permission in room {0:?}")]
    NoWrite(String),
    #[error("you have no read (r) permission in room {0:?}")]
    NoRead(String),
    #[error("you have no administer (x) permission in room {0:?}")]
    NotAdmin(String),
    #[error("the owner of room {0:?} keeps the x permission")]
    OwnerKeepsAdmin(String),
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// The details are logged; the client only learns that storage failed.
    #[error("storage is unavailable right now; nothing was changed or sent")]
    Store(#[from] StoreError),
    /// The journal's commit of the batch holding this message failed: shared by every message of the batch.
    #[error("storage is unavailable right now; nothing was changed or sent")]
    Commit(std::sync::Arc<StoreError>),
    /// In a cluster: the room's home node did not commit the message (it is not acknowledged).
    #[error("the room's home node did not accept the message: {0}")]
    Cluster(String),
    #[error("the gateway is shutting down")]
    ShuttingDown,
    #[error("stream {0:?} already has two players")]
    Busy(String),
    #[error("this pipe has no peer yet: play a stream and wait for NetStream.Play.Start")]
    NoPeer,
    /// The backend's `publish` hook refused the message, or could not be asked (fail-closed): what the
    /// sender is told, one line.
    #[error("{0}")]
    Moderated(String),
    /// A repeat of a `cid` whose first send failed while the repeat waited for it.
    #[error("the first send with this cid failed: {0}")]
    Earlier(String),
}

impl From<crate::archive::QueryError> for RoomError {
    fn from(e: crate::archive::QueryError) -> RoomError {
        RoomError::Invalid {
            what: "query",
            reason: e.0,
        }
    }
}
