//! `join` and `leave` on a messaging pipe.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Join {
    pub rid: String,
    /// Catch up: replay the room's stored messages after this `mid` (as `send` pushes, oldest first) before
    /// any live message. The answer's `info.catchup` says how many and whether more remain.
    #[serde(default)]
    pub after: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Leave {
    pub rid: String,
    #[serde(default)]
    pub reason: String,
}
