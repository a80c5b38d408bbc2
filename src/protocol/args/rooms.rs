//! `join` and `leave` on a messaging pipe.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Join {
    pub rid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Leave {
    pub rid: String,
    #[serde(default)]
    pub reason: String,
}
